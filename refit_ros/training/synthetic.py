"""Synthetic training and evaluation samples for ReFit-KP, generated on the fly.

One sample is a person of a plausible pose (:mod:`refit_ros.training.pose_prior`) and a
realistic adult shape, any facing and mostly upright, placed 2-10 m in front of a camera
like the ones real footage comes from (image sizes 640x480 to 1920x1080, horizontal field
of view 45-80 degrees or the diagonal-focal fallback, principal point near the centre, a
camera pitched a little up or down). The body's BlazePose-equivalent landmarks are
projected and passed through the detector simulation
(:mod:`refit_ros.training.detector_noise`); the box and square crop follow the detector
and the pipeline (:func:`refit_ros.geometry.crop.square_boxes`).

Every batch is a pure function of a seed: training draws batch ``k`` from
``SeedSequence([seed, k])``; the held-out evaluation set uses its own seed and a
different spawn key, so it is never drawn during training.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from refit_ros.body.base import BodyModel
from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.crop import BOX_EXPANSION, square_boxes
from refit_ros.training.detector_noise import DetectorNoiseConfig, simulate_detections
from refit_ros.training.pose_prior import FAMILIES, rot_x, rot_y, rot_z, sample_poses

#: Spawn keys that keep the training stream and the held-out set apart.
TRAIN_STREAM, EVAL_STREAM = 0, 1

#: Image sizes (width, height) and their weights: HD video, webcams, phones held upright.
IMAGE_SIZES = ((1920, 1080), (1280, 720), (640, 480), (1768, 994), (960, 540), (1080, 1920),
               (720, 1280))
IMAGE_WEIGHTS = (0.25, 0.25, 0.2, 0.1, 0.08, 0.06, 0.06)


@dataclass(frozen=True)
class SceneConfig:
    """Ranges of the synthetic scenes.

    Attributes
    ----------
    depth_range : tuple of float
        Distance of the pelvis from the camera (metres), log-uniform.
    hfov_deg : tuple of float
        Horizontal field of view range (degrees) of a calibrated camera.
    fallback_focal_rate : float
        Fraction of samples using the uncalibrated fallback ``f = sqrt(W^2 + H^2)``.
    camera_pitch : tuple of float
        Mean and std (radians) of the camera's downward pitch.
    camera_roll_std : float
    truncation_rate : float
        Fraction of people allowed to extend past the image border.
    pose_noise : float
        Per-joint noise of the pose prior (radians).
    shape_spread : float
        Std of the non-stature shape coefficients.
    height_male, height_female : tuple of float
        Adult stature mean and std (metres) when the body gives none.
    families : dict
        Pose family weights.
    noise : DetectorNoiseConfig
    """

    depth_range: tuple[float, float] = (2.0, 10.0)
    hfov_deg: tuple[float, float] = (45.0, 80.0)
    fallback_focal_rate: float = 0.3
    camera_pitch: tuple[float, float] = (0.1, 0.15)
    camera_roll_std: float = 0.03
    truncation_rate: float = 0.1
    pose_noise: float = 0.06
    shape_spread: float = 1.0
    height_male: tuple[float, float] = (1.76, 0.07)
    height_female: tuple[float, float] = (1.63, 0.065)
    families: dict = field(default_factory=lambda: dict(FAMILIES))
    noise: DetectorNoiseConfig = DetectorNoiseConfig()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SceneConfig":
        """Build from YAML; unknown keys are errors naming the key."""
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown data config keys {sorted(unknown)}; known {sorted(known)}")
        if "noise" in d:
            nk = {f.name for f in fields(DetectorNoiseConfig)}
            bad = set(d["noise"]) - nk
            if bad:
                raise ValueError(f"unknown data.noise keys {sorted(bad)}; known {sorted(nk)}")
            d["noise"] = DetectorNoiseConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                for k, v in d["noise"].items()})
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class SyntheticBatch:
    """Samples with their detector-like evidence and ground truth (torch, float32).

    Attributes
    ----------
    keypoints2d : Tensor
        ``N x 33 x 3`` simulated detections: x, y full-image pixels, confidence.
    bbox : Tensor
        ``N x 4`` simulated detector box.
    camera : CropCamera
        Square crop boxes (pipeline convention) and intrinsics.
    image_size : Tensor
        ``N x 2`` (width, height).
    rotmat : Tensor
        ``N x 24 x 3 x 3`` true rotations; the root in the camera optical frame.
    betas : Tensor
        ``N x K``.
    translation : Tensor
        ``N x 3`` body-model frame -> camera frame.
    joints : Tensor
        ``N x 24 x 3`` true joints, body-model frame (add ``translation`` for camera).
    landmarks : Tensor
        ``N x 33 x 3`` true landmark-equivalent points, body-model frame.
    vertices : Tensor or None
        ``N x S x 3`` a vertex subset, body-model frame.
    family : Tensor
        ``N`` pose family index.
    """

    keypoints2d: Tensor
    bbox: Tensor
    camera: CropCamera
    image_size: Tensor
    rotmat: Tensor
    betas: Tensor
    translation: Tensor
    joints: Tensor
    landmarks: Tensor
    vertices: Tensor | None
    family: Tensor

    def __len__(self) -> int:
        return self.keypoints2d.shape[0]


def batch_rng(seed: int, index: int, stream: int = TRAIN_STREAM) -> np.random.Generator:
    """The generator of batch ``index`` of a stream (training or held-out)."""
    return np.random.default_rng(np.random.SeedSequence([seed, index], spawn_key=(stream,)))


def vertex_subset(num_vertices: int, count: int, seed: int = 0) -> Tensor:
    """A fixed random subset of vertex ids (vertex loss)."""
    rng = np.random.default_rng(seed)
    return torch.as_tensor(np.sort(rng.choice(num_vertices, size=min(count, num_vertices),
                                              replace=False)))


class SceneSampler:
    """Draws :class:`SyntheticBatch` es for one body model.

    Parameters
    ----------
    body : BodyModel
        Must define a BlazePose landmark map (all 33 landmarks).
    config : SceneConfig
    vertex_ids : Tensor, optional
        Vertex subset returned with each batch.
    """

    def __init__(self, body: BodyModel, config: SceneConfig = SceneConfig(),
                 vertex_ids: Tensor | None = None):
        lmap = body.landmark_map
        if lmap is None or not all(lmap.defined):
            raise ValueError(f"body {body.name!r} must define all 33 BlazePose landmarks "
                             "to simulate detections")
        self.body = body
        self.config = config
        self.vertex_ids = vertex_ids
        self._lm_vids = torch.tensor([max(v, 0) for v in lmap.vertex_ids])
        self._lm_is_vertex = torch.tensor([v >= 0 for v in lmap.vertex_ids])
        self._lm_jids = torch.tensor([max(j, 0) for j in lmap.joint_ids])

    # ------------------------------------------------------------------ shape
    def sample_betas(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Adult shapes: stature from a 50/50 male/female mixture (via the body's stature
        coefficient when it documents one), the other coefficients ``N(0, spread^2)``."""
        c = self.config
        k = self.body.num_betas
        betas = rng.normal(0.0, c.shape_spread, (n, k))
        betas = np.clip(betas, -2.5 * c.shape_spread, 2.5 * c.shape_spread)
        male = rng.random(n) < 0.5
        hm = getattr(self.body, "adult_height_male", c.height_male)
        hf = getattr(self.body, "adult_height_female", c.height_female)
        mean = np.where(male, hm[0], hf[0])
        std = np.where(male, hm[1], hf[1])
        height = np.clip(mean + std * rng.standard_normal(n), 1.45, 2.05)
        if hasattr(self.body, "height_per_beta0"):
            betas[:, 0] = (height - self.body.height_mean) / self.body.height_per_beta0
        return betas

    # ------------------------------------------------------------------ scene
    def sample(self, rng: np.random.Generator, n: int) -> SyntheticBatch:
        """Draw ``n`` samples."""
        c = self.config
        poses = sample_poses(rng, n, c.pose_noise, c.families)
        betas = self.sample_betas(rng, n)

        # Camera and facing: world y up; the camera optical frame has y down, z forward.
        yaw = rng.uniform(-np.pi, np.pi, n)
        pitch = np.clip(rng.normal(*c.camera_pitch, n), -0.35, 0.7)
        roll = rng.normal(0.0, c.camera_roll_std, n)
        world_to_cam = rot_z(roll) @ rot_x(pitch) @ rot_x(np.full(n, np.pi))
        rotmat = poses.rotmat.copy()
        rotmat[:, 0] = world_to_cam @ rot_y(yaw) @ poses.rotmat[:, 0]

        sizes = np.array(IMAGE_SIZES, dtype=np.float64)
        which = rng.choice(len(sizes), n, p=np.array(IMAGE_WEIGHTS) / np.sum(IMAGE_WEIGHTS))
        wh = sizes[which]
        hfov = np.radians(rng.uniform(*c.hfov_deg, n))
        focal = wh[:, 0] / (2 * np.tan(hfov / 2))
        fallback = rng.random(n) < c.fallback_focal_rate
        focal = np.where(fallback, np.hypot(wh[:, 0], wh[:, 1]), focal)
        fy = focal * np.where(rng.random(n) < 0.1, 1 + rng.normal(0, 0.005, n), 1.0)
        principal = wh / 2 + np.where(fallback[:, None], 0.0, rng.normal(0, 0.01, (n, 2)) * wh)

        # Pose the body (body-model frame), then place it.
        t_rot = torch.as_tensor(rotmat, dtype=torch.float32)
        t_betas = torch.as_tensor(betas, dtype=torch.float32)
        ids = self._lm_vids if self.vertex_ids is None else torch.cat([self._lm_vids,
                                                                        self.vertex_ids])
        with torch.no_grad():
            out = self.body.skin(t_rot, t_betas, ids)
        joints = out.joints
        lm_v = out.vertices[:, :33]
        landmarks = torch.where(self._lm_is_vertex[None, :, None], lm_v, joints[:, self._lm_jids])
        verts = None if self.vertex_ids is None else out.vertices[:, 33:]

        lm = landmarks.double().numpy()
        extent = lm.max(1) - lm.min(1)                      # N x 3 metres
        # Depth: log-uniform in range, but far enough that the person mostly fits.
        trunc = rng.random(n) < c.truncation_rate
        z_fit = focal * extent[:, 1] / (0.92 * wh[:, 1])
        z_fit = np.maximum(z_fit, focal * extent[:, 0] / (0.92 * wh[:, 0]))
        z_lo = np.maximum(c.depth_range[0], np.where(trunc, 0.75, 1.0) * z_fit)
        z_hi = np.maximum(c.depth_range[1], z_lo * 1.05)
        z = np.exp(rng.uniform(np.log(z_lo), np.log(z_hi)))
        # Image position: the projected extent (at the principal point) must fit.
        half = 0.5 * focal[:, None] * np.stack([extent[:, 0], extent[:, 1]], -1) / z[:, None]
        margin = np.where(trunc[:, None], -0.3 * half, 0.02 * wh)
        lo_c = half + margin - principal
        hi_c = wh - half - margin - principal
        lo_c, hi_c = np.minimum(lo_c, 0.0), np.maximum(hi_c, 0.0)
        target = lo_c + rng.random((n, 2)) * (hi_c - lo_c)            # px offset from principal
        centre_model = 0.5 * (lm.max(1) + lm.min(1))
        # Put the landmarks' centre at depth z and at the chosen image offset.
        cam_centre = np.stack([target[:, 0] * z / focal, target[:, 1] * z / fy, z], -1)
        translation = cam_centre - centre_model

        lm_cam = lm + translation[:, None]
        fxy = np.stack([focal, fy], -1)
        p2d = lm_cam[..., :2] / lm_cam[..., 2:3] * fxy[:, None] + principal[:, None]
        torso_idx = [0, 3, 6, 9]
        torso = joints[:, torso_idx].double().numpy().mean(1) + translation
        torso2d = torso[:, :2] / torso[:, 2:3] * fxy + principal
        kp, bbox = simulate_detections(rng, p2d, lm_cam[..., 2], torso2d, torso[:, 2], wh,
                                       c.noise)
        centre, side = square_boxes(bbox, BOX_EXPANSION)
        f32 = dict(dtype=torch.float32)
        camera = CropCamera(center=torch.as_tensor(centre, **f32),
                            box_size=torch.as_tensor(side, **f32),
                            focal=torch.as_tensor(fxy, **f32),
                            principal=torch.as_tensor(principal, **f32))
        return SyntheticBatch(
            keypoints2d=torch.as_tensor(kp, **f32), bbox=torch.as_tensor(bbox, **f32),
            camera=camera, image_size=torch.as_tensor(wh, **f32), rotmat=t_rot, betas=t_betas,
            translation=torch.as_tensor(translation, **f32), joints=joints.float(),
            landmarks=landmarks.float(), vertices=None if verts is None else verts.float(),
            family=torch.as_tensor(poses.family))
