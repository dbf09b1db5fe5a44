"""HMR baseline (Kanazawa et al. 2018): ResNet-50 + iterative error feedback.

The seed method ReFit improves on, behind the same stage API as
:class:`~refit_ros.models.refit.refit.Refit` (``encode`` / ``init_state`` / ``step`` /
``run``), so the pipeline, tracker and benchmarks can swap them:

* ``encode``: a 224x224 crop -> 2048-d ResNet-50 feature (computed once);
* ``init_state``: the mean body (mean pose, shape and camera);
* ``step``: one IEF iteration, ``[feature, pose, betas, cam] -> fc1024 -> dropout ->
  fc1024 -> dropout -> delta`` added to the estimate (3 iterations in the paper).

The camera is HMR's weak perspective ``(s, tx, ty)`` on the crop; it becomes a
full-frame translation with the same crop geometry as ReFit
(:meth:`CropCamera.translation <refit_ros.geometry.camera.CropCamera.translation>`,
``tz = 2 f / (b s)``), so outputs are in metres in the camera optical frame.

Rotations use the continuous 6D representation (as in SPIN's HMR regressor) rather
than the paper's axis-angle: same network, a better-behaved output. The adversarial
pose/shape prior of the paper belongs to training, which refit_ros does not do here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.rotation import rot6d_to_rotmat
from refit_ros.models.refit.assets import RefitAssets
from refit_ros.models.refit.smpl_head import BodyJoints, SmplJoints49
from refit_ros.models.refit.state import RefitPrediction
from refit_ros.models.resnet import ResNet50

#: HMR's input crop side.
HMR_CROP_SIZE = 224
_N_POSE, _N_SHAPE, _N_CAM = 24 * 6, 10, 3


@dataclass
class HmrFeatures:
    """``z``: ``B x 2048`` pooled ResNet-50 feature of each crop."""

    z: Tensor


@dataclass
class HmrState:
    """Current HMR estimate (IEF carries no hidden state).

    Attributes
    ----------
    pose6d : Tensor
        ``B x 144``.
    betas : Tensor
        ``B x 10``.
    cam : Tensor
        ``B x 3`` weak-perspective crop camera ``(s, tx, ty)``.
    """

    pose6d: Tensor
    betas: Tensor
    cam: Tensor

    @property
    def rotmat(self) -> Tensor:
        """``B x 24 x 3 x 3``."""
        return rot6d_to_rotmat(self.pose6d).reshape(self.pose6d.shape[0], 24, 3, 3)


@dataclass
class HmrRun:
    """``predictions[0]`` is the starting estimate, ``predictions[k]`` after k iterations."""

    predictions: list[RefitPrediction]
    state: HmrState
    features: HmrFeatures

    @property
    def final(self) -> RefitPrediction:
        return self.predictions[-1]


class Hmr(nn.Module):
    """HMR with a ResNet-50 encoder and a 3-iteration IEF regressor.

    Parameters
    ----------
    assets : RefitAssets
        Neutral SMPL, extra joint regressor and mean parameters (markers unused).
    dropout : float
        Dropout between the IEF layers (active in training only).
    """

    def __init__(self, assets: RefitAssets, dropout: float = 0.5):
        super().__init__()
        f32 = torch.float32
        self.register_buffer("init_pose", torch.tensor(np.asarray(assets.mean_pose), dtype=f32)
                             .reshape(1, -1))
        self.register_buffer("init_shape", torch.tensor(np.asarray(assets.mean_shape), dtype=f32)
                             .reshape(1, -1))
        self.register_buffer("init_cam", torch.tensor(np.asarray(assets.mean_cam), dtype=f32)
                             .reshape(1, -1))
        self.smpl = SmplJoints49(assets.smpl_neutral, assets.j_regressor_extra,
                                 assets.extra_joints_idxs, assets.joint_map)
        self.encoder = ResNet50()
        n_params = _N_POSE + _N_SHAPE + _N_CAM
        self.fc1 = nn.Linear(ResNet50.out_dim + n_params, 1024)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, 1024)
        self.drop2 = nn.Dropout(dropout)
        self.decpose = nn.Linear(1024, _N_POSE)
        self.decshape = nn.Linear(1024, _N_SHAPE)
        self.deccam = nn.Linear(1024, _N_CAM)
        for dec in (self.decpose, self.decshape, self.deccam):
            # Small initial updates, so an untrained IEF starts near the mean body.
            nn.init.xavier_uniform_(dec.weight, gain=0.01)
            nn.init.zeros_(dec.bias)

    def encode(self, img: Tensor) -> HmrFeatures:
        """``img``: ``B x 3 x 224 x 224`` normalised RGB crop."""
        s = HMR_CROP_SIZE
        if img.dim() != 4 or img.shape[1] != 3 or img.shape[2] != s or img.shape[3] != s:
            raise ValueError(f"HMR crop must be B x 3 x {s} x {s}, got {tuple(img.shape)}; "
                             f"resize the square person box to {s}x{s}")
        if not bool(torch.isfinite(img).all()):
            raise ValueError("input crop contains NaN or inf; check the image conversion")
        return HmrFeatures(self.encoder(img))

    def init_state(self, features: HmrFeatures, camera: CropCamera | None = None) -> HmrState:
        """The mean body for every crop (the camera is not used by HMR's regressor)."""
        b = features.z.shape[0]
        return HmrState(self.init_pose.expand(b, -1), self.init_shape.expand(b, -1),
                        self.init_cam.expand(b, -1))

    def step(self, state: HmrState, features: HmrFeatures,
             camera: CropCamera | None = None) -> HmrState:
        """One iterative-error-feedback update."""
        x = torch.cat([features.z, state.pose6d, state.betas, state.cam], dim=-1)
        x = self.drop2(torch.relu(self.fc2(self.drop1(torch.relu(self.fc1(x))))))
        return replace(state, pose6d=state.pose6d + self.decpose(x),
                       betas=state.betas + self.decshape(x), cam=state.cam + self.deccam(x))

    def body(self, state: HmrState) -> BodyJoints:
        return self.smpl(state.rotmat, state.betas)

    def predict(self, state: HmrState, camera: CropCamera) -> RefitPrediction:
        """Body of a state in the camera frame, joints projected to crop pixels."""
        if camera.crop_size != HMR_CROP_SIZE:
            camera = replace(camera, crop_size=HMR_CROP_SIZE)
        body = self.body(state)
        return RefitPrediction(rotmat=state.rotmat, pose6d=state.pose6d, betas=state.betas,
                               cam=state.cam, vertices=body.vertices, joints=body.joints,
                               translation=camera.translation(state.cam),
                               joints2d_crop=camera.project_to_crop(body.joints, state.cam))

    def run(self, img: Tensor, camera: CropCamera, iters: int = 3,
            state: HmrState | None = None) -> HmrRun:
        """Encode, start from the mean (or ``state``) and apply ``iters`` IEF updates."""
        if iters < 0:
            raise ValueError(f"iters must be >= 0, got {iters}")
        features = self.encode(img)
        state = self.init_state(features, camera) if state is None else state
        predictions = [self.predict(state, camera)]
        for _ in range(iters):
            state = self.step(state, features, camera)
            predictions.append(self.predict(state, camera))
        return HmrRun(predictions, state, features)

    def forward(self, img: Tensor, camera: CropCamera, iters: int = 3,
                state: HmrState | None = None) -> HmrRun:
        """Same as :meth:`run`."""
        return self.run(img, camera, iters, state)
