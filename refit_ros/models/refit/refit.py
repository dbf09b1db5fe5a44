"""The official ReFit network (Wang & Daniilidis, ICCV 2023) with an explicit loop state.

ReFit encodes a 256x256 person crop once (HRNet feature map, one correlation map per
body marker, a global vector), makes an initial estimate from the mean body, then refines
it recurrently: project the 67 markers of the current body into the crop, read a 7x7
window of each marker's map there, and let 26 GRU streams (24 joints, shape, camera)
regress updates of the 6D pose, shape and CLIFF-style crop camera.

The API splits the official ``forward`` into its stages so that frames can warm-start:

* :meth:`Refit.encode` -- crop -> :class:`RefitFeatures`,
* :meth:`Refit.init_state` -- features -> cold :class:`RefitState` (mean params + one
  regressor step from ``tanh(init_layer(z))``, then hidden states reset to zero),
* :meth:`Refit.step` -- one refinement,
* :meth:`Refit.run` -- encode + init (or a given state) + ``iters`` steps; with the
  defaults this is exactly the official ``forward(batch, iters=5, flip_test=False)``.

State_dict names, shapes and dtypes equal the official ``REFIT.state_dict()`` (1987 entries
for HRNet-W48), SMPL buffers included, so official checkpoints load strictly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.rotation import rot6d_to_rotmat
from refit_ros.models.layers import MultiLinear
from refit_ros.models.refit.assets import RefitAssets
from refit_ros.models.refit.heads import N_JOINTS, Regressor, UpdateBlock, corr_head
from refit_ros.models.refit.hrnet import HRNet, hrnet_dims
from refit_ros.models.refit.lookup import window_lookup
from refit_ros.models.refit.smpl_head import BodyJoints, SmplJoints49
from refit_ros.models.refit.state import (RefitFeatures, RefitPrediction, RefitRun, RefitState,
                                          StepTrace)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefitConfig:
    """Architecture of the official model (defaults: ``configs/config_all.yaml``).

    Attributes
    ----------
    backbone : str
        ``hrnet_w48`` (released checkpoints) or ``hrnet_w32``.
    radius : int
        Lookup window radius (3 -> 7x7).
    flow_dim : int
        Per-marker feature size after the multi-linear layer.
    local_dim : int
        Size of the pooled local feature.
    hidden_dim : int
        GRU hidden size per stream.
    corr_layers : int
        3x3 conv layers in the correlation head.
    reg_layers : int
        Hidden layers of each regressor branch.
    crop_size : int
        Input crop side in pixels.
    """

    backbone: str = "hrnet_w48"
    radius: int = 3
    flow_dim: int = 5
    local_dim: int = 256
    hidden_dim: int = 32
    corr_layers: int = 2
    reg_layers: int = 1
    crop_size: int = 256


@dataclass
class InitTrace:
    """Intermediates of :meth:`Refit.init_state` (parity checks).

    Attributes
    ----------
    init_h_pretanh : Tensor
        ``B x 26H`` ``init_layer(z)``.
    d_pose, d_shape, d_cam : Tensor
        The initial regressor output (``B x 144``, ``B x 10``, ``B x 3``).
    """

    init_h_pretanh: Tensor
    d_pose: Tensor
    d_shape: Tensor
    d_cam: Tensor


def _check_finite(name: str, t: Tensor, fix: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; {fix}")


class Refit(nn.Module):
    """ReFit with HRNet backbone, marker feedback and 26 GRU streams.

    Parameters
    ----------
    assets : RefitAssets
        SMPL arrays, markers, mean parameters.
    config : RefitConfig
        Architecture; the default is the released model.
    """

    def __init__(self, assets: RefitAssets, config: RefitConfig = RefitConfig()):
        super().__init__()
        self.config = config
        f32 = torch.float32
        self.register_buffer("init_pose", torch.tensor(np.asarray(assets.mean_pose), dtype=f32)
                             .reshape(1, -1))
        self.register_buffer("init_shape", torch.tensor(np.asarray(assets.mean_shape), dtype=f32)
                             .reshape(1, -1))
        self.register_buffer("init_cam", torch.tensor(np.asarray(assets.mean_cam), dtype=f32)
                             .reshape(1, -1))
        common = dict(j_regressor_extra=assets.j_regressor_extra,
                      extra_joints_idxs=assets.extra_joints_idxs, joint_map=assets.joint_map)
        self.smpl = SmplJoints49(assets.smpl_neutral, name="smpl", **common)
        if assets.smpl_male is None or assets.smpl_female is None:
            log.info("gendered SMPL not given: smpl_male/smpl_female hold the neutral model "
                     "(they are stored in checkpoints but unused by the network)")
        male = assets.smpl_neutral if assets.smpl_male is None else assets.smpl_male
        female = assets.smpl_neutral if assets.smpl_female is None else assets.smpl_female
        self.smpl_male = SmplJoints49(male, name="smpl_male", **common)
        self.smpl_female = SmplJoints49(female, name="smpl_female", **common)
        markers = torch.tensor(np.asarray(assets.markers), dtype=torch.long)  # a copy
        self.register_buffer("marker_ids", markers, persistent=False)
        n_markers = markers.numel()

        dims = hrnet_dims(config.backbone)
        c = config
        self.backbone = HRNet(dims.width)
        self.init_layer = nn.Linear(dims.z_dim, (N_JOINTS + 2) * c.hidden_dim)
        self.corr_layer = corr_head(dims.feature_dim, n_markers, c.corr_layers)
        self.flow_layer = MultiLinear(n_markers, (2 * c.radius + 1) ** 2, c.flow_dim)
        self.local_layer = nn.Linear(n_markers * c.flow_dim, c.local_dim)
        step_input = c.local_dim + 3 + 6 * N_JOINTS + 10 + 3
        self.update_block = UpdateBlock(step_input, c.hidden_dim)
        self.regressor = Regressor(c.hidden_dim, c.reg_layers)

    # ------------------------------------------------------------------ stages
    def encode(self, img: Tensor, keep_feature_map: bool = False) -> RefitFeatures:
        """Backbone and correlation head.

        Parameters
        ----------
        img : Tensor
            ``B x 3 x 256 x 256`` RGB crop, ``/255`` then ImageNet mean/std normalised.
        keep_feature_map : bool
            Also return the backbone feature map (memory; parity checks only).

        Returns
        -------
        RefitFeatures
        """
        s = self.config.crop_size
        if img.dim() != 4 or img.shape[1] != 3 or img.shape[2] != s or img.shape[3] != s:
            raise ValueError(f"crop must be B x 3 x {s} x {s} (NCHW, RGB), got "
                             f"{tuple(img.shape)}; resize the square person box to {s}x{s} "
                             "before calling the model")
        _check_finite("input crop", img, "check the image conversion and normalisation")
        feature, z = self.backbone(img.contiguous())
        corr = self.corr_layer(feature)
        return RefitFeatures(corr=corr, z=z, feature_map=feature if keep_feature_map else None)

    def body(self, pose6d: Tensor, betas: Tensor) -> BodyJoints:
        """Neutral SMPL body of ``pose6d`` ``B x 144`` and ``betas`` ``B x 10``."""
        rotmat = rot6d_to_rotmat(pose6d).reshape(pose6d.shape[0], N_JOINTS, 3, 3)
        return self.smpl(rotmat, betas)

    def init_state(self, features: RefitFeatures, camera: CropCamera) -> RefitState:
        """Cold start: mean parameters plus one regressor step (hidden states then zero)."""
        return self.init_state_traced(features, camera)[0]

    def init_state_traced(self, features: RefitFeatures,
                          camera: CropCamera) -> tuple[RefitState, InitTrace]:
        """:meth:`init_state` that also returns its intermediates."""
        self._check_camera(camera, features.z.shape[0])
        b, hdim = features.z.shape[0], self.config.hidden_dim
        pre = self.init_layer(features.z)
        h = torch.tanh(pre).view(b, N_JOINTS + 2, hdim)
        bbox_info = camera.bbox_info()
        d_pose, d_shape, d_cam = self.regressor(h[:, :N_JOINTS], h[:, N_JOINTS],
                                                h[:, N_JOINTS + 1], bbox_info)
        pose6d = self.init_pose + d_pose
        betas = self.init_shape + d_shape
        cam = self.init_cam + d_cam
        body = self.body(pose6d, betas)
        state = RefitState(pose6d=pose6d, betas=betas, cam=cam,
                           hpose=torch.zeros_like(h[:, :N_JOINTS]),
                           hshape=torch.zeros_like(h[:, N_JOINTS]),
                           hcam=torch.zeros_like(h[:, N_JOINTS + 1]),
                           vertices=body.vertices, joints=body.joints)
        return state, InitTrace(pre, d_pose, d_shape, d_cam)

    def step(self, state: RefitState, features: RefitFeatures, camera: CropCamera) -> RefitState:
        """One refinement step (markers -> lookup -> GRUs -> regressor -> new estimate)."""
        return self.step_traced(state, features, camera)[0]

    def step_traced(self, state: RefitState, features: RefitFeatures,
                    camera: CropCamera) -> tuple[RefitState, StepTrace]:
        """:meth:`step` that also returns its intermediates."""
        corr = features.corr
        b = corr.shape[0]
        if state.batch_size != b:
            raise ValueError(f"state has {state.batch_size} people but features have {b}")
        self._check_camera(camera, b)
        vertices = state.vertices
        if vertices is None:  # a hand-built state: compute the body cache
            vertices = self.body(state.pose6d, state.betas).vertices
        # Each step starts from a detached estimate, as in the official loop.
        pose6d, betas, cam = state.pose6d.detach(), state.betas.detach(), state.cam.detach()
        bbox_info = camera.bbox_info()

        p2d = camera.project_to_crop(vertices[:, self.marker_ids], cam).detach()
        coords = p2d / (self.config.crop_size / corr.shape[-1])
        lookup = window_lookup(corr, coords, self.config.radius)
        flow = self.flow_layer(lookup)
        local = self.local_layer(flow.reshape(b, -1))
        x = torch.cat([local, bbox_info, pose6d, betas, cam], dim=-1)
        hpose, hshape, hcam = self.update_block(state.hpose, state.hshape, state.hcam, x)
        d_pose, d_shape, d_cam = self.regressor(hpose, hshape, hcam, bbox_info)

        pose6d, betas, cam = pose6d + d_pose, betas + d_shape, cam + d_cam
        body = self.body(pose6d, betas)
        new = RefitState(pose6d=pose6d, betas=betas, cam=cam, hpose=hpose, hshape=hshape,
                         hcam=hcam, vertices=body.vertices, joints=body.joints)
        return new, StepTrace(p2d, coords, lookup, flow, local, d_pose, d_shape, d_cam)

    def predict(self, state: RefitState, camera: CropCamera) -> RefitPrediction:
        """The body of a state, placed in the camera frame and projected into the crop."""
        vertices, joints = state.vertices, state.joints
        if vertices is None or joints is None:
            body = self.body(state.pose6d, state.betas)
            vertices, joints = body.vertices, body.joints
        translation = camera.translation(state.cam)
        j2d = camera.project_to_crop(joints, state.cam)
        return RefitPrediction(rotmat=state.rotmat, pose6d=state.pose6d, betas=state.betas,
                               cam=state.cam, vertices=vertices, joints=joints,
                               translation=translation, joints2d_crop=j2d)

    def run(self, img: Tensor, camera: CropCamera, iters: int = 5,
            state: RefitState | None = None) -> RefitRun:
        """Encode, start (cold, or warm from ``state``) and refine ``iters`` times.

        Parameters
        ----------
        img : Tensor
            ``B x 3 x 256 x 256`` normalised crops.
        camera : CropCamera
            Crop boxes and intrinsics of the ``B`` crops.
        iters : int
            Refinement steps (the paper uses 5 for a cold start).
        state : RefitState, optional
            Warm start (e.g. the previous frame's final state); its hidden states are used
            as given (call :meth:`RefitState.with_zero_hidden` to reset them).

        Returns
        -------
        RefitRun
            ``iters + 1`` predictions (index 0 = starting estimate), the final state and
            the features.
        """
        if iters < 0:
            raise ValueError(f"iters must be >= 0, got {iters}")
        features = self.encode(img)
        if state is None:
            state = self.init_state(features, camera)
        predictions = [self.predict(state, camera)]
        for _ in range(iters):
            state = self.step(state, features, camera)
            predictions.append(self.predict(state, camera))
        return RefitRun(predictions=predictions, state=state, features=features)

    def forward(self, img: Tensor, camera: CropCamera, iters: int = 5,
                state: RefitState | None = None) -> RefitRun:
        """Same as :meth:`run`."""
        return self.run(img, camera, iters, state)

    # ------------------------------------------------------------------ checks
    def _check_camera(self, camera: CropCamera, batch: int) -> None:
        for name, t, shape in (("center", camera.center, (batch, 2)),
                               ("box_size", camera.box_size, (batch,)),
                               ("focal", camera.focal, (batch, 2)),
                               ("principal", camera.principal, (batch, 2))):
            if tuple(t.shape) != shape:
                raise ValueError(f"camera.{name} must have shape {shape}, got {tuple(t.shape)}")
            _check_finite(f"camera.{name}", t, "check the detection box and CameraInfo")
        if not bool((camera.box_size > 0).all()) or not bool((camera.focal > 0).all()):
            raise ValueError("camera.box_size and camera.focal must be positive; "
                             "check the detection box and CameraInfo")
        if camera.crop_size != self.config.crop_size:
            raise ValueError(f"camera.crop_size is {camera.crop_size} but the model expects "
                             f"{self.config.crop_size}")
