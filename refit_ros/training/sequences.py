"""Synthetic *sequences* for the temporal evaluation and warm-start fine-tuning of ReFit-KP.

A sequence is one person moving smoothly in front of a fixed camera for ``frames`` frames at
``fps``: walking in a straight line, walking on an arc, turning on the spot, or standing
and reaching/gesturing. The camera-relative translation changes as the person walks. Poses
are built from the structured prior's templates and building blocks
(:mod:`refit_ros.training.pose_prior`) with *time-varying* parameters (gait phase, heading,
keyframed arm and spine targets eased smoothly); everything else about the person
(posture details, small per-joint offsets, shape, mirroring) is drawn once per sequence, so
the ground truth is smooth and its own acceleration is that of the motion.

Cameras follow :class:`refit_ros.training.synthetic.SceneSampler` (image sizes, fields of
view, the diagonal-focal fallback, pitch and roll). Every frame's landmarks go through the
*training's* detector simulation (:func:`refit_ros.training.detector_noise.simulate_detections`,
independently per frame: pixel noise, outliers, missing points, occluders, left/right
swaps), with the per-person pixel-noise level drawn once per sequence; on top of it whole
frames are dropped now and then (``dropout_rate``: the detector missed the person).

Determinism: a set of sequences is a pure function of ``(seed, index, stream)`` through
:func:`refit_ros.training.synthetic.batch_rng`. The temporal evaluation draws from
:data:`TEMPORAL_EVAL_STREAM` and warm-start fine-tuning from :data:`TEMPORAL_TRAIN_STREAM`;
the main training (stream 0) and the held-out single-frame set (stream 1) use others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from refit_ros.body.base import BodyModel
from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.crop import BOX_EXPANSION, square_boxes
from refit_ros.training.detector_noise import simulate_detections
from refit_ros.training.pose_prior import (_Draw, _assemble, _family_params, _rodrigues,
                                           mirror_rotmat, rot_x, rot_y, rot_z)
from refit_ros.training.synthetic import (IMAGE_SIZES, IMAGE_WEIGHTS, SceneConfig,
                                          SceneSampler, batch_rng)

#: Random streams of the sequence sets (see the module docstring).
TEMPORAL_EVAL_STREAM, TEMPORAL_TRAIN_STREAM = 2, 3
#: Motion kinds, drawn in turn (sequence ``i`` of a set has kind ``i % 4`` before shuffling).
MOTIONS = ("walk", "arc", "spin", "reach")


@dataclass(frozen=True)
class SequenceConfig:
    """How sequences are drawn.

    Attributes
    ----------
    frames : int
        Frames per sequence.
    fps : float
        Frame rate (motion speeds are in real units, so this sets the per-frame motion).
    dropout_rate : float
        Per frame: the detector misses the person entirely.
    score_noise : float
        Std of the per-frame noise added to the detection score.
    landmark_bias : float
        Std of a per-sequence, per-landmark constant offset (fraction of the person's
        projected height) added before the detector simulation: the systematic mismatch
        between a real detector's landmarks and the body model's points, which a warm-started
        fit must not integrate frame after frame. 0 (default) = the training noise model only.
    """

    frames: int = 90
    fps: float = 30.0
    dropout_rate: float = 0.02
    score_noise: float = 0.03
    landmark_bias: float = 0.0


@dataclass
class SyntheticSequences:
    """``S`` sequences of ``T`` frames, one person each (numpy float64 unless stated).

    Attributes
    ----------
    keypoints2d : ndarray, (S, T, 33, 3)
        Simulated detections: x, y full-image pixels, confidence.
    bbox : ndarray, (S, T, 4)
        Simulated detector boxes.
    score : ndarray, (S, T)
        Detection scores.
    detected : ndarray of bool, (S, T)
        False where the frame was dropped (no detection at all).
    focal : ndarray, (S, 2)
        ``fx, fy`` of each sequence's camera (pixels).
    principal : ndarray, (S, 2)
    image_size : ndarray of int, (S, 2)
        ``width, height``.
    rotmat : ndarray, (S, T, 24, 3, 3)
        True joint rotations; the root in the camera frame.
    betas : ndarray, (S, K)
        True shape (constant over a sequence).
    translation : ndarray, (S, T, 3)
        Body-model frame -> camera frame.
    joints : ndarray, (S, T, 24, 3)
        True joints in the body-model frame (add ``translation`` for the camera frame).
    landmarks : ndarray, (S, T, 33, 3)
        True landmark-equivalent points, body-model frame.
    motion : list of str
        Kind of each sequence (:data:`MOTIONS`).
    fps : float
    """

    keypoints2d: np.ndarray
    bbox: np.ndarray
    score: np.ndarray
    detected: np.ndarray
    focal: np.ndarray
    principal: np.ndarray
    image_size: np.ndarray
    rotmat: np.ndarray
    betas: np.ndarray
    translation: np.ndarray
    joints: np.ndarray
    landmarks: np.ndarray
    motion: list
    fps: float

    @property
    def num_sequences(self) -> int:
        return self.keypoints2d.shape[0]

    @property
    def num_frames(self) -> int:
        return self.keypoints2d.shape[1]

    def joints_camera(self) -> np.ndarray:
        """``S x T x 24 x 3`` true joints in the camera frame (metres)."""
        return self.joints + self.translation[:, :, None]

    def crop_camera(self, frame: int) -> CropCamera:
        """Square crop cameras (pipeline convention) of all sequences at ``frame``."""
        centre, side = square_boxes(self.bbox[:, frame], BOX_EXPANSION)
        f32 = dict(dtype=torch.float32)
        return CropCamera(center=torch.as_tensor(centre, **f32),
                          box_size=torch.as_tensor(side, **f32),
                          focal=torch.as_tensor(self.focal, **f32),
                          principal=torch.as_tensor(self.principal, **f32))

    def frame_tensors(self, frame: int) -> dict[str, Tensor]:
        """Detections and ground truth of all sequences at ``frame`` as float32 tensors
        (``keypoints2d`` ``S x 33 x 3``, ``rotmat``, ``betas``, ``translation``, ``joints``,
        ``landmarks``), the form the training losses take."""
        f32 = dict(dtype=torch.float32)
        return {"keypoints2d": torch.as_tensor(self.keypoints2d[:, frame], **f32),
                "rotmat": torch.as_tensor(self.rotmat[:, frame], **f32),
                "betas": torch.as_tensor(self.betas, **f32),
                "translation": torch.as_tensor(self.translation[:, frame], **f32),
                "joints": torch.as_tensor(self.joints[:, frame], **f32),
                "landmarks": torch.as_tensor(self.landmarks[:, frame], **f32)}


class _SeqDraw(_Draw):
    """The pose prior's draws, but one value per *sequence* repeated over its frames."""

    def __init__(self, rng: np.random.Generator, n_seq: int, frames: int):
        super().__init__(rng, n_seq * frames)
        self.n_seq, self.frames = n_seq, frames

    def rep(self, x: np.ndarray) -> np.ndarray:
        """``S`` (or ``S x ...``) per-sequence values -> ``S*T`` per-frame values."""
        return np.repeat(x, self.frames, axis=0)

    def u(self, lo, hi) -> np.ndarray:
        return self.rep(self.rng.uniform(lo, hi, self.n_seq))

    def g(self, mu, sd) -> np.ndarray:
        return self.rep(self.rng.normal(mu, sd, self.n_seq))

    def coin(self, p) -> np.ndarray:
        return self.rep(self.rng.random(self.n_seq) < p)


def _eased(rng: np.random.Generator, n_seq: int, t: np.ndarray, period: np.ndarray,
           lo: float, hi: float, start: np.ndarray | None = None) -> np.ndarray:
    """Keyframed values eased between keyframes (zero velocity at each keyframe).

    Parameters
    ----------
    t : ndarray, (T,)
        Frame times (s).
    period : ndarray, (S,)
        Seconds between keyframes.
    lo, hi : float
        Keyframe values are uniform in ``[lo, hi]``.
    start : ndarray, (S,), optional
        Value of the first keyframe.

    Returns
    -------
    ndarray, (S*T,)
    """
    u = t[None, :] / period[:, None]                          # S x T keyframe coordinate
    n_key = int(np.ceil(u.max())) + 2
    keys = rng.uniform(lo, hi, (n_seq, n_key))
    if start is not None:
        keys[:, 0] = start
    k = np.floor(u).astype(int)
    s = u - k
    w = 0.5 - 0.5 * np.cos(np.pi * s)
    a = np.take_along_axis(keys, k, 1)
    b = np.take_along_axis(keys, k + 1, 1)
    return (a + (b - a) * w).reshape(-1)


def _walk_params(d: _SeqDraw, t: np.ndarray) -> tuple[dict, np.ndarray]:
    """Gait template of the prior's ``walk`` family with the phase advancing in time.

    Returns the template parameters (arrays of ``S*T``) and the walking speed ``S*T`` (m/s).
    """
    freq = d.rng.uniform(0.8, 1.0, d.n_seq)                    # gait cycles per second
    phase0 = d.rng.uniform(0, 2 * np.pi, d.n_seq)
    phase = (phase0[:, None] + 2 * np.pi * freq[:, None] * t[None, :]).reshape(-1)
    amp = d.u(0.2, 0.45)
    lean = d.g(0.03, 0.03)
    o: dict = {"spine": (d.g(0.05, 0.06), d.g(0.0, 0.06), d.g(0.0, 0.04)),
               "neck": (d.g(0.05, 0.1), d.g(0.0, 0.2), d.g(0.0, 0.06)),
               "root": (lean, d.g(0.0, 0.03))}
    for side, ph in (("l", phase), ("r", phase + np.pi)):
        # A smooth stand-in for the family's clipped swing term (no kink in the knee curve).
        swing = ((1.0 + np.sin(ph + 1.3)) / 2.0) ** 2
        o[f"{side}_leg"] = (amp * np.sin(ph) + 0.05 + lean, np.abs(d.g(0.04, 0.04)),
                            d.g(0.0, 0.1))
        o[f"{side}_knee"] = 0.05 + amp * (0.4 + 1.1 * swing) + np.abs(d.g(0.0, 0.06))
        o[f"{side}_ankle"] = d.g(0.0, 0.1) - 0.2 * np.sin(ph)
        arm_amp = amp * d.u(0.5, 1.1)
        o[f"{side}_arm"] = (-arm_amp * np.sin(ph) + 0.1, d.u(0.05, 0.35), d.g(0.0, 0.3))
        o[f"{side}_elbow"] = d.u(0.1, 0.8)
    stride = 0.6 + 2.0 * amp                                    # metres per gait cycle
    speed = stride * d.rep(freq)
    return o, speed


def _reach_params(d: _SeqDraw, t: np.ndarray) -> dict:
    """The prior's ``reach`` posture with arms and trunk moving between keyframes."""
    o = _family_params("reach", d)
    rng, n = d.rng, d.n_seq
    for side in ("l", "r"):
        period = rng.uniform(0.8, 1.6, n)
        fwd = _eased(rng, n, t, period, -0.3, 2.5)
        ab = _eased(rng, n, t, period, 0.0, 1.6)
        tw = _eased(rng, n, t, period, -0.5, 0.5)
        elbow = _eased(rng, n, t, period, 0.0, 2.2)
        o[f"{side}_arm"] = (fwd, ab, tw)
        o[f"{side}_elbow"] = elbow
    period = rng.uniform(1.0, 2.0, n)
    o["spine"] = (_eased(rng, n, t, period, -0.05, 0.5), _eased(rng, n, t, period, -0.3, 0.3),
                  _eased(rng, n, t, period, -0.15, 0.15))
    return o


def _trajectory(speed: np.ndarray, heading: np.ndarray, frames: int, dt: float) -> np.ndarray:
    """World displacement ``S*T x 3`` (y up) of a walk with per-frame speed and heading.

    The body's front is +z of the body-model frame; a heading ``psi`` turns it about y,
    so the velocity is ``speed * (sin psi, 0, cos psi)``.
    """
    v = speed[:, None] * np.stack([np.sin(heading), np.zeros_like(heading),
                                   np.cos(heading)], -1)
    v = v.reshape(-1, frames, 3)
    # trapezoidal integration from the first frame
    steps = 0.5 * (v[:, 1:] + v[:, :-1]) * dt
    disp = np.concatenate([np.zeros_like(v[:, :1]), np.cumsum(steps, axis=1)], axis=1)
    return disp.reshape(-1, 3)


class SequenceSampler:
    """Draws :class:`SyntheticSequences` for one body model.

    Parameters
    ----------
    body : BodyModel
        Must define all 33 BlazePose landmarks.
    scene : SceneConfig
        Cameras, shapes, pose noise and the detector noise model (the training recipe's
        ``data`` section).
    config : SequenceConfig
    """

    def __init__(self, body: BodyModel, scene: SceneConfig = SceneConfig(),
                 config: SequenceConfig = SequenceConfig()):
        self.scenes = SceneSampler(body, scene)          # landmark map checks + shapes
        self.body = body
        self.scene = scene
        self.config = config

    def sample(self, rng: np.random.Generator, count: int,
               motions: tuple[str, ...] | None = None) -> SyntheticSequences:
        """Draw ``count`` sequences.

        Parameters
        ----------
        rng : np.random.Generator
        count : int
        motions : tuple of str, optional
            Kinds to cycle through (default :data:`MOTIONS`).
        """
        c, sc = self.config, self.scene
        n, T = count, c.frames
        t = np.arange(T) / c.fps
        kinds_all = motions or MOTIONS
        kinds = np.array([kinds_all[i % len(kinds_all)] for i in range(n)])
        rng.shuffle(kinds)

        local = np.empty((n * T, 24, 3, 3))
        heading = np.zeros(n * T)
        disp = np.zeros((n * T, 3))
        for kind in kinds_all:
            idx = np.nonzero(kinds == kind)[0]
            if idx.size == 0:
                continue
            d = _SeqDraw(rng, idx.size, T)
            psi0 = d.u(-np.pi, np.pi)
            if kind in ("walk", "arc"):
                o, speed = _walk_params(d, t)
                rate = d.u(0.4, 1.0) * np.where(d.coin(0.5), 1.0, -1.0) if kind == "arc" else 0.0
                psi = psi0 + rate * np.tile(t, idx.size)
                dsp = _trajectory(speed, psi, T, 1.0 / c.fps)
            elif kind == "spin":
                o = _family_params("stand", d)
                rate = d.u(0.6, 1.6) * np.where(d.coin(0.5), 1.0, -1.0)
                psi = psi0 + rate * np.tile(t, idx.size)
                dsp = np.zeros((idx.size * T, 3))
            else:  # reach: mostly in place, a slow sway and a slow change of facing
                o = _reach_params(d, t)
                period = rng.uniform(1.2, 2.5, idx.size)
                psi = psi0 + _eased(rng, idx.size, t, period, -0.4, 0.4, start=np.zeros(idx.size))
                sway = _eased(rng, idx.size, t, period, -0.12, 0.12, start=np.zeros(idx.size))
                dsp = np.stack([sway, np.zeros_like(sway), np.zeros_like(sway)], -1)
            r = _assemble(o, d, 0.0)
            # Per-sequence pose offsets (the prior's per-joint noise, constant in time).
            aa = rng.normal(0.0, sc.pose_noise, (idx.size, 24, 3))
            aa[:, 0] *= 0.3
            r = r @ d.rep(_rodrigues(aa))
            flip = d.rep(rng.random(idx.size) < 0.5)
            if flip.any():
                r[flip] = mirror_rotmat(r[flip])
            rows = (idx[:, None] * T + np.arange(T)[None]).reshape(-1)
            local[rows], heading[rows], disp[rows] = r, psi, dsp
        return self._place(rng, kinds, local, heading, disp)

    def _place(self, rng: np.random.Generator, kinds: np.ndarray, local: np.ndarray,
               heading: np.ndarray, disp: np.ndarray) -> SyntheticSequences:
        """Cameras, placement in view, posing and simulated detections."""
        c, sc = self.config, self.scene
        n, T = len(kinds), c.frames
        rep = lambda x: np.repeat(x, T, axis=0)  # noqa: E731 - per-sequence -> per-frame

        # Cameras, as SceneSampler draws them (one per sequence).
        pitch = np.clip(rng.normal(*sc.camera_pitch, n), -0.35, 0.7)
        roll = rng.normal(0.0, sc.camera_roll_std, n)
        world_to_cam = rot_z(roll) @ rot_x(pitch) @ rot_x(np.full(n, np.pi))   # S x 3 x 3
        sizes = np.array(IMAGE_SIZES, dtype=np.float64)
        which = rng.choice(len(sizes), n, p=np.array(IMAGE_WEIGHTS) / np.sum(IMAGE_WEIGHTS))
        wh = sizes[which]
        hfov = np.radians(rng.uniform(*sc.hfov_deg, n))
        focal = wh[:, 0] / (2 * np.tan(hfov / 2))
        fallback = rng.random(n) < sc.fallback_focal_rate
        focal = np.where(fallback, np.hypot(wh[:, 0], wh[:, 1]), focal)
        fy = focal * np.where(rng.random(n) < 0.1, 1 + rng.normal(0, 0.005, n), 1.0)
        principal = wh / 2 + np.where(fallback[:, None], 0.0, rng.normal(0, 0.01, (n, 2)) * wh)
        fxy = np.stack([focal, fy], -1)

        rotmat = local.copy()
        rotmat[:, 0] = rep(world_to_cam) @ rot_y(heading) @ local[:, 0]
        betas = self.scenes.sample_betas(rng, n)
        lmap = self.body.landmark_map
        vids = torch.tensor([max(v, 0) for v in lmap.vertex_ids])
        is_v = torch.tensor([v >= 0 for v in lmap.vertex_ids])
        jids = torch.tensor([max(j, 0) for j in lmap.joint_ids])
        with torch.no_grad():
            out = self.body.skin(torch.as_tensor(rotmat, dtype=torch.float32),
                                 torch.as_tensor(rep(betas), dtype=torch.float32), vids)
        joints = out.joints.double().numpy()
        lm = torch.where(is_v[None, :, None], out.vertices, out.joints[:, jids]).double().numpy()

        # Camera-frame path of the body-model origin, up to a constant T0 chosen below.
        path = np.einsum("sij,stj->sti", world_to_cam, disp.reshape(n, T, 3))       # S x T x 3
        lm_s = lm.reshape(n, T, 33, 3) + path[:, :, None]
        centre = 0.5 * (lm_s.max((1, 2)) + lm_s.min((1, 2)))                         # S x 3
        extent = lm_s.max((1, 2)) - lm_s.min((1, 2))
        z_fit = np.maximum(focal * extent[:, 1] / (0.9 * wh[:, 1]),
                           focal * extent[:, 0] / (0.9 * wh[:, 0]))
        z = np.exp(rng.uniform(np.log(sc.depth_range[0]), np.log(sc.depth_range[1]), n))
        z = np.maximum(z, z_fit)
        target = rng.uniform(-0.15, 0.15, (n, 2)) * wh                            # px offset
        ok = np.zeros(n, bool)
        for _ in range(40):
            cam_c = np.stack([target[:, 0] * z / focal, target[:, 1] * z / fy, z], -1)
            t0 = cam_c - centre
            pts = lm_s + t0[:, None, None]
            depth_ok = pts[..., 2].min((1, 2)) > 1.5
            p2d = pts[..., :2] / pts[..., 2:3] * fxy[:, None, None] + principal[:, None, None]
            margin = 0.01 * wh[:, None, None]
            inside = ((p2d >= margin) & (p2d <= wh[:, None, None] - margin)).all((1, 2, 3))
            ok = depth_ok & inside
            if ok.all():
                break
            z = np.where(ok, z, z * 1.08)
            target = np.where(ok[:, None], target, target * 0.9)
        translation = path + t0[:, None]                                            # S x T x 3

        lm_cam = lm.reshape(n, T, 33, 3) + translation[:, :, None]
        p2d = lm_cam[..., :2] / lm_cam[..., 2:3] * fxy[:, None, None] + principal[:, None, None]
        torso = joints.reshape(n, T, 24, 3)[:, :, [0, 3, 6, 9]].mean(2) + translation
        torso2d = torso[..., :2] / torso[..., 2:3] * fxy[:, None] + principal[:, None]
        if c.landmark_bias > 0:
            height = (p2d[..., 1].max(-1) - p2d[..., 1].min(-1))[..., None, None]   # S x T
            p2d = p2d + rng.normal(0.0, c.landmark_bias, (n, 1, 33, 2)) * height
        # The training's detector simulation, frame by frame; one noise level per sequence.
        sigma = np.exp(rng.uniform(*np.log(sc.noise.sigma_range), n))
        kp = np.empty((n, T, 33, 3))
        box = np.empty((n, T, 4))
        for s in range(n):
            noise = dataclasses.replace(sc.noise, sigma_range=(sigma[s], sigma[s]))
            kp[s], box[s] = simulate_detections(
                rng, p2d[s], lm_cam[s, ..., 2], torso2d[s], torso[s, :, 2],
                np.repeat(wh[s:s + 1], T, 0), noise)
        detected = rng.random((n, T)) >= c.dropout_rate
        detected[:, 0] = True
        score = np.clip(kp[..., 2].mean(-1) + rng.normal(0.0, c.score_noise, (n, T)), 0.0, 1.0)
        return SyntheticSequences(
            keypoints2d=kp, bbox=box, score=score, detected=detected, focal=fxy,
            principal=principal, image_size=wh.astype(int),
            rotmat=rotmat.reshape(n, T, 24, 3, 3), betas=betas, translation=translation,
            joints=joints.reshape(n, T, 24, 3), landmarks=lm.reshape(n, T, 33, 3),
            motion=[str(k) for k in kinds], fps=c.fps)


def sample_sequences(body: BodyModel, scene: SceneConfig, seed: int, count: int,
                     config: SequenceConfig = SequenceConfig(), index: int = 0,
                     stream: int = TEMPORAL_EVAL_STREAM) -> SyntheticSequences:
    """``count`` sequences drawn from ``batch_rng(seed, index, stream)`` (deterministic)."""
    return SequenceSampler(body, scene, config).sample(batch_rng(seed, index, stream), count)
