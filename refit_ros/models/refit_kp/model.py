"""ReFit-KP: ReFit's learned feedback-update loop driven by 2D keypoint evidence.

The loop is ReFit's (Wang & Daniilidis, ICCV 2023): project the markers of the current
body into the crop, read a 7x7 window of each marker's feedback map there, turn the
windows into per-marker features with a multi-linear layer, pool them into a local
feature, update 26 GRU streams (24 joints, shape, camera) and regress deltas of the 6D
pose, shape and CLIFF crop camera. What differs is the evidence: instead of HRNet
correlation maps of an image crop, the feedback maps are confidence-weighted heatmaps of
detected 2D landmarks (:mod:`refit_ros.models.refit_kp.feedback`), the markers are the
landmark-equivalent points of the body model (``BodyModel.landmark_map``), and the global
vector that drives the initial estimate embeds the 2D keypoints and their confidences.

The stages and the state are those of :class:`refit_ros.models.refit.Refit`
(``encode``, ``init_state``, ``step``, ``predict``, ``run``; :class:`RefitState`), so warm
starts, tracking, export and the node treat both networks alike. In a ReFit-KP state,
``vertices`` is None (the loop never needs the full mesh) and ``joints``, when set, caches
the ``24 + M`` points of the current body: the 24 SMPL joints, then the M markers (the
public ``init_state``/``step`` leave it None; ``unroll``, used in training, fills it).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES, NUM_JOINTS, BodyModel
from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.rotation import axis_angle_to_rotmat, rot6d_to_rotmat, rotmat_to_rot6d
from refit_ros.models.layers import MultiGRU, MultiLinear
from refit_ros.models.refit.heads import Regressor, UpdateBlock
from refit_ros.models.refit.state import RefitPrediction, RefitRun, RefitState
from refit_ros.models.refit_kp.config import RefitKpConfig
from refit_ros.models.refit_kp.evidence import KeypointEvidence, KpFeatures
from refit_ros.models.refit_kp.feedback import gaussian_windows, marker_residuals

log = logging.getLogger(__name__)

#: Initial crop camera (s, tx, ty), as in ReFit.
INIT_CAM = (0.9, 0.0, 0.0)


def default_init_pose6d() -> Tensor:
    """The starting pose: upright, facing the camera, arms relaxed at the sides.

    Global orientation is a half turn about x (SMPL's y-up, +z-facing body seen by a
    camera with y down, z forward); the shoulders are lowered by 75 degrees.

    Returns
    -------
    Tensor
        ``144`` 6D rotations (24 joints).
    """
    aa = torch.zeros(NUM_JOINTS, 3, dtype=torch.float64)
    aa[0] = torch.tensor([math.pi, 0.0, 0.0])
    aa[16] = torch.tensor([0.0, 0.0, -math.radians(75)])   # left arm down (+x -> -y)
    aa[17] = torch.tensor([0.0, 0.0, math.radians(75)])    # right arm down (-x -> -y)
    return rotmat_to_rot6d(axis_angle_to_rotmat(aa)).reshape(-1).float()


def pack_multigru(gru: MultiGRU, hidden: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gate weights of a :class:`MultiGRU` regrouped for :func:`shared_input_multigru`.

    Returns
    -------
    wx : Tensor
        ``(K * 3H) x D`` input weights of the z, r and q gates of all heads.
    bias : Tensor
        ``K x 3H``.
    whzr : Tensor
        ``K x 2H x H`` hidden weights of the z and r gates.
    whq : Tensor
        ``K x H x H`` hidden weights of the q gate.
    """
    wz, wr, wq = gru.lz.weight, gru.lr.weight, gru.lq.weight          # K x H x (H + D)
    k = wz.shape[0]
    wx = torch.cat([wz[..., hidden:], wr[..., hidden:], wq[..., hidden:]], dim=1)
    bias = torch.cat([gru.lz.bias, gru.lr.bias, gru.lq.bias], dim=1)
    whzr = torch.cat([wz[..., :hidden], wr[..., :hidden]], dim=1)
    return wx.reshape(k * 3 * hidden, -1), bias, whzr, wq[..., :hidden]


def shared_input_multigru(gru: MultiGRU, h: Tensor, x: Tensor,
                          packed: tuple[Tensor, Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """``gru(h, x expanded to every head)``, computed with one matrix product for ``x``.

    ReFit feeds the same step input to all 24 joint GRUs; the input halves of their gate
    weights then act on one vector, so they are applied as a single ``B x D`` by
    ``D x (24 * 3H)`` product instead of 24 small ones (same parameters, same result, ~3x
    faster on a CPU).

    Parameters
    ----------
    gru : MultiGRU
    h : Tensor
        ``B x K x H`` hidden states.
    x : Tensor
        ``B x D`` input shared by the K heads.
    packed : tuple of Tensor, optional
        :func:`pack_multigru` of ``gru`` (cached at inference; recomputed if None).

    Returns
    -------
    Tensor
        ``B x K x H``.
    """
    b, k, hd = h.shape
    wx, bias, whzr, whq = pack_multigru(gru, hd) if packed is None else packed
    gx = (x @ wx.t()).view(b, k, 3 * hd) + bias
    gh = torch.einsum("kij,bkj->bki", whzr, h)
    z = torch.sigmoid(gx[..., :hd] + gh[..., :hd])
    r = torch.sigmoid(gx[..., hd:2 * hd] + gh[..., hd:])
    q = torch.tanh(gx[..., 2 * hd:] + torch.einsum("kij,bkj->bki", whq, r * h))
    return (1 - z) * h + z * q


@dataclass
class KpEstimate:
    """One estimate of the loop with the body points the losses and metrics need.

    Attributes
    ----------
    pose6d : Tensor
        ``B x 144``.
    betas : Tensor
        ``B x K``.
    cam : Tensor
        ``B x 3`` crop camera ``(s, tx, ty)``.
    rotmat : Tensor
        ``B x 24 x 3 x 3``.
    joints : Tensor
        ``B x 24 x 3`` body-model frame (no translation).
    markers : Tensor
        ``B x M x 3`` landmark-equivalent points, body-model frame.
    vertices : Tensor or None
        ``B x N x 3`` the requested vertex subset, body-model frame.
    """

    pose6d: Tensor
    betas: Tensor
    cam: Tensor
    rotmat: Tensor
    joints: Tensor
    markers: Tensor
    vertices: Tensor | None


def marker_layout(lmap) -> tuple[list[int], list[int], list[int]]:
    """Where ReFit-KP's markers come from on a body with a BlazePose landmark map.

    Returns
    -------
    defined : list of int
        The landmarks (of 33) the body defines, one marker each, in order.
    vertex_ids : list of int
        The body vertices of the landmarks defined by a vertex.
    gather : list of int
        Per marker, its row in ``cat(24 joints, posed vertex_ids)``.
    """
    defined = [i for i, ok in enumerate(lmap.defined) if ok]
    vids = [lmap.vertex_ids[i] for i in defined if lmap.vertex_ids[i] >= 0]
    gather, k = [], 0
    for i in defined:
        if lmap.vertex_ids[i] >= 0:
            gather.append(NUM_JOINTS + k)
            k += 1
        else:
            gather.append(lmap.joint_ids[i])
    return defined, vids, gather


def _pose(body: BodyModel, pose6d: Tensor, betas: Tensor, marker_vertex_ids: Tensor,
          marker_gather: Tensor, vertex_ids: Tensor | None = None
          ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """:meth:`RefitKp.pose_body` on ``body`` with a marker layout."""
    b = pose6d.shape[0]
    rotmat = rot6d_to_rotmat(pose6d).reshape(b, NUM_JOINTS, 3, 3)
    n_lm = marker_vertex_ids.numel()
    ids = marker_vertex_ids if vertex_ids is None else torch.cat(
        [marker_vertex_ids, vertex_ids.to(marker_vertex_ids.device)])
    out = body.skin(rotmat, betas, ids)
    pts = torch.cat([out.joints, out.vertices[:, :n_lm]], dim=1)
    markers = pts[:, marker_gather]
    verts = None if vertex_ids is None else out.vertices[:, n_lm:]
    return rotmat, out.joints, markers, verts


def pose_markers(body: BodyModel, pose6d: Tensor, betas: Tensor) -> Tensor:
    """``B x M x 3`` ReFit-KP markers of ``B`` poses on ``body`` (as the network poses them;
    the pipeline's fit check uses this without the network)."""
    _, vids, gather = marker_layout(body.landmark_map)
    dev = pose6d.device
    return _pose(body, pose6d, betas, torch.tensor(vids, dtype=torch.long, device=dev),
                 torch.tensor(gather, device=dev))[2]


class RefitKp(nn.Module):
    """The keypoint-driven ReFit loop on a body model with a BlazePose landmark map.

    Parameters
    ----------
    body : BodyModel
        Body whose parameters the network predicts; must define ``landmark_map``. It is
        not a submodule (its arrays are not saved with the weights); keep it on the same
        device as the network.
    config : RefitKpConfig
        Architecture.
    """

    name = "refit_kp"

    def __init__(self, body: BodyModel, config: RefitKpConfig = RefitKpConfig()):
        super().__init__()
        lmap = body.landmark_map
        if lmap is None:
            raise ValueError(f"body model {body.name!r} defines no BlazePose landmark map; "
                             "ReFit-KP needs one (BodyModel.landmark_map)")
        if tuple(lmap.names) != BLAZEPOSE_LANDMARK_NAMES:
            raise ValueError(f"body model {body.name!r}: landmark map is not BlazePose's 33 "
                             "landmarks in MediaPipe order")
        self.__dict__["body"] = body  # not a submodule: its arrays ship with the body
        self.config = config
        c = config
        defined, vids, gather = marker_layout(lmap)
        self.marker_names = tuple(lmap.names[i] for i in defined)
        n_markers = len(defined)
        n_lm = len(lmap.names)
        self.register_buffer("marker_landmarks", torch.tensor(defined), persistent=False)
        self.register_buffer("marker_vertex_ids", torch.tensor(vids, dtype=torch.long),
                             persistent=False)
        self.register_buffer("marker_gather", torch.tensor(gather), persistent=False)

        k_betas = body.num_betas
        self.num_betas = k_betas
        self.register_buffer("init_pose", default_init_pose6d()[None])
        self.register_buffer("init_shape", torch.zeros(1, k_betas))
        self.register_buffer("init_cam", torch.tensor([INIT_CAM]))

        n_win = len(c.sigmas) * (2 * c.radius + 1) ** 2
        self.global_encoder = nn.Sequential(
            nn.Linear(3 * n_lm, c.global_dim), nn.ReLU(),
            nn.Linear(c.global_dim, c.global_dim), nn.ReLU(),
            nn.Linear(c.global_dim, c.global_dim), nn.ReLU())
        self.step_global = (nn.Linear(c.global_dim, c.step_global_dim)
                            if c.step_global_dim > 0 else None)
        self.init_layer = nn.Linear(c.global_dim + 3, (NUM_JOINTS + 2) * c.hidden_dim)
        self.flow_layer = MultiLinear(n_markers, n_win + 3, c.flow_dim)
        self.local_layer = nn.Linear(n_markers * c.flow_dim, c.local_dim)
        step_input = c.local_dim + 3 + 6 * NUM_JOINTS + k_betas + 3 + c.step_global_dim
        self.update_block = UpdateBlock(step_input, c.hidden_dim)
        self.regressor = Regressor(c.hidden_dim, 1)
        if k_betas != self.regressor.decshape.out_features:
            self.regressor.decshape = nn.Linear(c.hidden_dim, k_betas)
        # Small first updates keep early training from throwing bodies out of the crop.
        for dec in (self.regressor.decpose, self.regressor.decshape, self.regressor.deccam):
            with torch.no_grad():
                dec.weight.mul_(0.1)
                dec.bias.zero_()

    # ------------------------------------------------------------------ body
    @property
    def num_markers(self) -> int:
        return int(self.marker_gather.numel())

    def pose_body(self, pose6d: Tensor, betas: Tensor,
                  vertex_ids: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Joints, markers and (optionally) some vertices of a pose.

        Parameters
        ----------
        pose6d : Tensor
            ``B x 144``.
        betas : Tensor
            ``B x K``.
        vertex_ids : Tensor, optional
            ``N`` vertex ids to pose as well (losses).

        Returns
        -------
        rotmat : Tensor
            ``B x 24 x 3 x 3``.
        joints : Tensor
            ``B x 24 x 3``.
        markers : Tensor
            ``B x M x 3``.
        vertices : Tensor or None
            ``B x N x 3``.
        """
        return _pose(self.body, pose6d, betas, self.marker_vertex_ids, self.marker_gather,
                     vertex_ids)

    def _estimate(self, pose6d: Tensor, betas: Tensor, cam: Tensor,
                  vertex_ids: Tensor | None) -> KpEstimate:
        rotmat, joints, markers, verts = self.pose_body(pose6d, betas, vertex_ids)
        return KpEstimate(pose6d, betas, cam, rotmat, joints, markers, verts)

    # ------------------------------------------------------------------ stages
    def encode(self, evidence: KeypointEvidence) -> KpFeatures:
        """Embed the keypoints (once per frame).

        Parameters
        ----------
        evidence : KeypointEvidence
            ``B x 33`` landmarks in crop pixels with confidences.

        Returns
        -------
        KpFeatures
        """
        kp, conf = evidence.keypoints, evidence.confidence
        if kp.dim() != 3 or kp.shape[1] != len(BLAZEPOSE_LANDMARK_NAMES) or kp.shape[2] != 2:
            raise ValueError(f"keypoints must be B x 33 x 2 crop pixels, got {tuple(kp.shape)}")
        c = self.config
        present = (conf > 0).to(kp.dtype)
        xy = ((kp / c.crop_size) * 2 - 1).clamp(-2.0, 2.0) * present[..., None]
        z = self.global_encoder(torch.cat([xy, conf[..., None]], dim=-1).flatten(1))
        g = None if self.step_global is None else self.step_global(z)
        lm = kp[:, self.marker_landmarks] / c.stride
        return KpFeatures(landmarks=lm, confidence=conf[:, self.marker_landmarks], z=z, g=g)

    def init_state(self, features: KpFeatures, camera: CropCamera) -> RefitState:
        """Cold start: mean parameters plus one regressor step from the keypoint embedding
        (hidden states then reset to zero), as in ReFit.

        The returned state carries no body cache (``joints`` is None): the next
        :meth:`step` poses the markers it needs, so a cold start followed by ``n`` steps
        poses the body ``n`` times, not ``n + 1``."""
        return self._init(features, camera, None, pose=False)[0]

    def _init(self, features: KpFeatures, camera: CropCamera, vertex_ids: Tensor | None,
              pose: bool = True) -> tuple[RefitState, KpEstimate | None]:
        b, hdim = features.z.shape[0], self.config.hidden_dim
        self._check_camera(camera, b)
        bbox_info = camera.bbox_info()
        h = torch.tanh(self.init_layer(torch.cat([features.z, bbox_info], dim=-1)))
        h = h.view(b, NUM_JOINTS + 2, hdim)
        d_pose, d_shape, d_cam = self.regressor(h[:, :NUM_JOINTS], h[:, NUM_JOINTS],
                                                h[:, NUM_JOINTS + 1], bbox_info)
        pose6d, betas = self.init_pose + d_pose, self.init_shape + d_shape
        cam = self._clamp_cam(self.init_cam + d_cam)
        est = self._estimate(pose6d, betas, cam, vertex_ids) if pose else None
        state = RefitState(pose6d=pose6d, betas=betas, cam=cam,
                           hpose=h.new_zeros(b, NUM_JOINTS, hdim), hshape=h.new_zeros(b, hdim),
                           hcam=h.new_zeros(b, hdim), vertices=None,
                           joints=None if est is None else torch.cat([est.joints, est.markers], 1))
        return state, est

    def step(self, state: RefitState, features: KpFeatures, camera: CropCamera) -> RefitState:
        """One refinement: markers -> windows -> GRUs -> regressor -> new estimate.

        The markers of the incoming state come from its cache (``state.joints``) or are
        posed here; the new state carries no cache (the next step or :meth:`predict`
        poses the body), which saves one body evaluation per fit."""
        return self._step(state, features, camera, None, pose=False)[0]

    def _step(self, state: RefitState, features: KpFeatures, camera: CropCamera,
              vertex_ids: Tensor | None, pose: bool = True) -> tuple[RefitState, KpEstimate | None]:
        c = self.config
        b = features.batch_size
        if state.batch_size != b:
            raise ValueError(f"state has {state.batch_size} people but features have {b}")
        self._check_camera(camera, b)
        # Each step starts from a detached estimate, as in the official loop.
        pose6d, betas, cam = state.pose6d.detach(), state.betas.detach(), state.cam.detach()
        if state.joints is None or state.joints.shape[1] != NUM_JOINTS + self.num_markers:
            markers = self.pose_body(pose6d, betas)[2]
        else:
            markers = state.joints[:, NUM_JOINTS:]
        bbox_info = camera.bbox_info()
        p = camera.project_to_crop(markers.detach(), cam) / c.stride
        win = gaussian_windows(p, features.landmarks, features.confidence, c.sigmas, c.radius)
        res = marker_residuals(p, features.landmarks, features.confidence, c.map_size,
                               c.residual_clip)
        flow = self.flow_layer(torch.cat([win, res], dim=-1))
        local = self.local_layer(flow.flatten(1))
        parts = [local, bbox_info, pose6d, betas, cam]
        if features.g is not None:
            parts.append(features.g)
        x = torch.cat(parts, dim=-1)
        ub = self.update_block
        hpose = shared_input_multigru(ub.pose_gru, state.hpose, x, self._packed_gru())
        hshape, hcam = ub.shape_gru(state.hshape, x), ub.cam_gru(state.hcam, x)
        d_pose, d_shape, d_cam = self.regressor(hpose, hshape, hcam, bbox_info)
        pose6d, betas, cam = pose6d + d_pose, betas + d_shape, self._clamp_cam(cam + d_cam)
        est = self._estimate(pose6d, betas, cam, vertex_ids) if pose else None
        new = RefitState(pose6d=pose6d, betas=betas, cam=cam, hpose=hpose, hshape=hshape,
                         hcam=hcam, vertices=None,
                         joints=None if est is None else torch.cat([est.joints, est.markers], 1))
        return new, est

    def unroll(self, features: KpFeatures, camera: CropCamera, iters: int,
               vertex_ids: Tensor | None = None,
               state: RefitState | None = None) -> tuple[list[KpEstimate], RefitState]:
        """Cold (or warm) start and ``iters`` steps, keeping every estimate (training).

        Returns
        -------
        estimates : list of KpEstimate
            ``iters + 1`` estimates (index 0 = the starting one).
        state : RefitState
            The final state.
        """
        if state is None:
            state, est = self._init(features, camera, vertex_ids)
        else:
            est = self._estimate(state.pose6d, state.betas, state.cam, vertex_ids)
        estimates = [est]
        for _ in range(iters):
            state, est = self._step(state, features, camera, vertex_ids)
            estimates.append(est)
        return estimates, state

    def predict(self, state: RefitState, camera: CropCamera, mesh: bool = True) -> RefitPrediction:
        """The body of a state placed in the camera frame and projected into the crop.

        Parameters
        ----------
        state : RefitState
        camera : CropCamera
        mesh : bool
            Pose the full mesh (``vertices`` ``B x V x 3``); otherwise ``vertices`` is
            ``B x 0 x 3``.

        Returns
        -------
        RefitPrediction
            ``joints`` is ``B x (24 + M) x 3``: the 24 SMPL joints, then the M markers
            (BlazePose landmark equivalents, names in :attr:`marker_names`).
        """
        b = state.batch_size
        rotmat = state.rotmat
        if mesh:
            out = self.body(rotmat, state.betas)
            vertices = out.vertices
            pts = torch.cat([out.joints, out.vertices[:, self.marker_vertex_ids]], dim=1)
            joints = torch.cat([out.joints, pts[:, self.marker_gather]], dim=1)
        else:
            vertices = rotmat.new_zeros(b, 0, 3)
            joints = state.joints
            if joints is None:
                _, j, m, _ = self.pose_body(state.pose6d, state.betas)
                joints = torch.cat([j, m], dim=1)
        translation = camera.translation(state.cam)
        j2d = camera.project_to_crop(joints, state.cam)
        return RefitPrediction(rotmat=rotmat, pose6d=state.pose6d, betas=state.betas,
                               cam=state.cam, vertices=vertices, joints=joints,
                               translation=translation, joints2d_crop=j2d)

    def run(self, evidence: KeypointEvidence, camera: CropCamera, iters: int = 5,
            state: RefitState | None = None, mesh: str = "final") -> RefitRun:
        """Encode, start (cold, or warm from ``state``) and refine ``iters`` times.

        Parameters
        ----------
        evidence : KeypointEvidence
        camera : CropCamera
            Crop boxes and intrinsics of the ``B`` people.
        iters : int
            Refinement steps (5 for a cold start).
        state : RefitState, optional
            Warm start (e.g. last frame's final state, its crop camera re-expressed for the
            new box); hidden states are used as given.
        mesh : str
            ``"final"`` (full mesh for the last prediction only), ``"all"`` or ``"none"``.

        Returns
        -------
        RefitRun
            ``iters + 1`` predictions (index 0 = starting estimate), final state, features.
        """
        if iters < 0:
            raise ValueError(f"iters must be >= 0, got {iters}")
        if mesh not in ("final", "all", "none"):
            raise ValueError(f"mesh must be 'final', 'all' or 'none', got {mesh!r}")
        features = self.encode(evidence)
        if state is None:
            state = self.init_state(features, camera)
        predictions = [self.predict(state, camera, mesh == "all" or (mesh == "final" and iters == 0))]
        for k in range(iters):
            state = self.step(state, features, camera)
            full = mesh == "all" or (mesh == "final" and k == iters - 1)
            predictions.append(self.predict(state, camera, full))
        return RefitRun(predictions=predictions, state=state, features=features)

    def forward(self, evidence: KeypointEvidence, camera: CropCamera, iters: int = 5,
                state: RefitState | None = None) -> RefitRun:
        """Same as :meth:`run`."""
        return self.run(evidence, camera, iters, state)

    # ------------------------------------------------------------------ helpers
    def _packed_gru(self) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
        """Regrouped joint-GRU weights, cached while no gradient is needed (inference)."""
        if torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            self._packed = None
            return None
        gru = self.update_block.pose_gru
        try:
            key = tuple((p.data_ptr(), p._version) for p in gru.parameters())
        except RuntimeError:   # fake tensors of torch.export: no storage, no cache
            return None
        if getattr(self, "_packed", None) is None or self._packed[0] != key:
            with torch.no_grad():
                self._packed = (key, pack_multigru(gru, self.config.hidden_dim))
        return self._packed[1]

    def _clamp_cam(self, cam: Tensor) -> Tensor:
        s = cam[:, :1].clamp(min=self.config.min_cam_scale)
        return torch.cat([s, cam[:, 1:]], dim=-1)

    def _check_camera(self, camera: CropCamera, batch: int) -> None:
        if tuple(camera.center.shape) != (batch, 2) or tuple(camera.box_size.shape) != (batch,):
            raise ValueError(f"camera must describe {batch} crops (center {batch} x 2, "
                             f"box_size {batch}), got {tuple(camera.center.shape)} and "
                             f"{tuple(camera.box_size.shape)}")
        if camera.crop_size != self.config.crop_size:
            raise ValueError(f"camera.crop_size is {camera.crop_size} but ReFit-KP expects "
                             f"{self.config.crop_size}")

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
