"""Make clean projected landmarks look like a real BlazePose detection.

What the real detector does (and the simulation imitates): small pixel noise that grows
toward the extremities, a few confidently wrong points, low visibility for occluded,
self-occluded and out-of-image points (their positions are still guessed, with larger
error), now and then a missing point, left/right swaps of a limb pair or of the whole
body, and a box that is the landmarks' extent padded by 10% and clipped to the image
(``refit_ros.detect.blazepose``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES

_NAMES = BLAZEPOSE_LANDMARK_NAMES
#: Index of each landmark's left/right twin (itself for the nose).
MIRROR_LANDMARKS = tuple(
    _NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
    for n in _NAMES)
_LEG_WORDS = ("hip", "knee", "ankle", "heel", "foot_index")
_ARM_WORDS = ("elbow", "wrist", "pinky", "index", "thumb")
LEG_LANDMARKS = tuple(i for i, n in enumerate(_NAMES) if any(w in n for w in _LEG_WORDS))
ARM_LANDMARKS = tuple(i for i, n in enumerate(_NAMES)
                      if any(w in n for w in _ARM_WORDS) and "foot" not in n)


def _noise_scale() -> np.ndarray:
    """Per-landmark multiplier of the pixel noise (extremities and hips are worse)."""
    s = np.ones(len(_NAMES))
    for i, n in enumerate(_NAMES):
        if any(w in n for w in ("eye", "ear", "mouth", "nose")):
            s[i] = 0.6
        elif "hip" in n:
            s[i] = 1.6
        elif "wrist" in n or "ankle" in n:
            s[i] = 1.3
        elif any(w in n for w in ("pinky", "index", "thumb", "heel")):
            s[i] = 1.6
    return s


NOISE_SCALE = _noise_scale()


@dataclass(frozen=True)
class DetectorNoiseConfig:
    """Rates and sizes of the simulated detector errors.

    Attributes
    ----------
    sigma_range : tuple of float
        Per-person pixel noise, log-uniform, as a fraction of the box height.
    outlier_rate : float
        Per landmark: displaced by ``outlier_sigma`` box heights, confidence kept.
    outlier_sigma : float
    missing_rate : float
        Per landmark: confidence 0, position anywhere in the box.
    occluder_rate : float
        Per person: a rectangle hides part of the body (low confidence, larger error).
    self_occlusion : bool
        Points well behind the torso, as seen from the camera, get low confidence.
    swap_body_rate, swap_legs_rate, swap_arms_rate, swap_pair_rate : float
        Per person left/right swaps: all landmarks, the legs, the arms; per pair: one
        random pair.
    box_padding_range : tuple of float
        Padding of the landmark extent (the detector pads by 0.1).
    """

    sigma_range: tuple[float, float] = (0.004, 0.025)
    outlier_rate: float = 0.02
    outlier_sigma: float = 0.12
    missing_rate: float = 0.01
    occluder_rate: float = 0.15
    self_occlusion: bool = True
    swap_body_rate: float = 0.03
    swap_legs_rate: float = 0.04
    swap_arms_rate: float = 0.02
    swap_pair_rate: float = 0.03
    box_padding_range: tuple[float, float] = (0.05, 0.15)


def simulate_detections(rng: np.random.Generator, points2d: np.ndarray, depth: np.ndarray,
                        torso2d: np.ndarray, torso_depth: np.ndarray, image_size: np.ndarray,
                        cfg: DetectorNoiseConfig) -> tuple[np.ndarray, np.ndarray]:
    """Turn true landmark projections into detector-like landmarks and boxes.

    Parameters
    ----------
    rng : np.random.Generator
    points2d : np.ndarray
        ``N x 33 x 2`` true projections (full-image pixels).
    depth : np.ndarray
        ``N x 33`` camera depth of each landmark (metres).
    torso2d : np.ndarray
        ``N x 2`` projected torso centre.
    torso_depth : np.ndarray
        ``N`` its depth.
    image_size : np.ndarray
        ``N x 2`` (width, height).
    cfg : DetectorNoiseConfig

    Returns
    -------
    keypoints : np.ndarray
        ``N x 33 x 3`` x, y (pixels) and confidence.
    bbox : np.ndarray
        ``N x 4`` x_min, y_min, x_max, y_max, clipped to the image.
    """
    n, l, _ = points2d.shape
    lo, hi = points2d.min(1), points2d.max(1)
    size = np.maximum((hi - lo).max(-1), 8.0)                     # N
    sigma = np.exp(rng.uniform(*np.log(cfg.sigma_range), n)) * size
    noise_mult = np.tile(NOISE_SCALE, (n, 1))
    conf = rng.uniform(0.75, 1.0, (n, l))

    # Self-occlusion: behind the torso and near it in the image.
    if cfg.self_occlusion:
        behind = depth - torso_depth[:, None] > 0.08
        near = np.linalg.norm(points2d - torso2d[:, None], axis=-1) < 0.22 * size[:, None]
        occl = behind & near & (rng.random((n, l)) < 0.8)
        conf = np.where(occl, rng.uniform(0.1, 0.6, (n, l)), conf)
        noise_mult = np.where(occl, noise_mult * 2.5, noise_mult)

    # Occluder rectangles (desk, another person, a frame edge inside the image).
    has = rng.random(n) < cfg.occluder_rate
    kind = rng.integers(0, 3, n)   # 0: bottom part, 1: one side, 2: random block
    frac = rng.uniform(0.2, 0.5, n)
    u = (points2d - lo[:, None]) / np.maximum(hi - lo, 1.0)[:, None]   # N x L x 2 in [0, 1]
    side = rng.random(n) < 0.5
    rx, ry = rng.uniform(0, 0.6, n), rng.uniform(0, 0.6, n)
    inside = np.where(kind[:, None] == 0, u[..., 1] > 1 - frac[:, None],
                      np.where(kind[:, None] == 1,
                               np.where(side[:, None], u[..., 0] < frac[:, None],
                                        u[..., 0] > 1 - frac[:, None]),
                               (np.abs(u[..., 0] - rx[:, None] - 0.2) < 0.25)
                               & (np.abs(u[..., 1] - ry[:, None] - 0.2) < 0.25)))
    hidden = has[:, None] & inside
    conf = np.where(hidden, rng.uniform(0.0, 0.5, (n, l)), conf)
    noise_mult = np.where(hidden, noise_mult * 3.0, noise_mult)

    # Outside the image: low presence, guessed position.
    w, h = image_size[:, 0:1], image_size[:, 1:2]
    out = ((points2d[..., 0] < 0) | (points2d[..., 0] >= w)
           | (points2d[..., 1] < 0) | (points2d[..., 1] >= h))
    conf = np.where(out, conf * rng.uniform(0.0, 0.4, (n, l)), conf)
    noise_mult = np.where(out, noise_mult * 2.0, noise_mult)

    xy = points2d + rng.normal(0.0, 1.0, (n, l, 2)) * (sigma[:, None] * noise_mult)[..., None]
    outl = rng.random((n, l)) < cfg.outlier_rate
    xy = xy + outl[..., None] * rng.normal(0.0, cfg.outlier_sigma, (n, l, 2)) * size[:, None, None]
    miss = rng.random((n, l)) < cfg.missing_rate
    anywhere = lo[:, None] + rng.random((n, l, 2)) * (hi - lo)[:, None]
    xy = np.where(miss[..., None], anywhere, xy)
    conf = np.where(miss, 0.0, np.clip(conf + rng.normal(0.0, 0.03, (n, l)), 0.0, 1.0))

    kp = np.concatenate([xy, conf[..., None]], axis=-1)
    kp = _swap(rng, kp, cfg)
    bbox = _boxes(rng, kp[..., :2], image_size, cfg.box_padding_range)
    return kp, bbox


def _swap(rng: np.random.Generator, kp: np.ndarray, cfg: DetectorNoiseConfig) -> np.ndarray:
    n, l, _ = kp.shape
    mirror = np.array(MIRROR_LANDMARKS)
    mask = np.zeros((n, l), bool)
    mask |= (rng.random(n) < cfg.swap_body_rate)[:, None]
    legs = np.zeros(l, bool)
    legs[list(LEG_LANDMARKS)] = True
    arms = np.zeros(l, bool)
    arms[list(ARM_LANDMARKS)] = True
    mask |= (rng.random(n) < cfg.swap_legs_rate)[:, None] & legs
    mask |= (rng.random(n) < cfg.swap_arms_rate)[:, None] & arms
    pair = rng.integers(0, l, n)
    one = rng.random(n) < cfg.swap_pair_rate
    mask[np.nonzero(one)[0], pair[one]] = True
    mask |= mask[:, mirror]                      # a swap moves both twins
    swapped = kp[:, mirror]
    return np.where(mask[..., None], swapped, kp)


def _boxes(rng: np.random.Generator, xy: np.ndarray, image_size: np.ndarray,
           padding: tuple[float, float]) -> np.ndarray:
    lo, hi = xy.min(1), xy.max(1)
    pad = (hi - lo)[:, None, :] * rng.uniform(*padding, (len(xy), 2, 2))
    lo = np.clip(lo - pad[:, 0], 0, image_size)
    hi = np.clip(hi + pad[:, 1], 0, image_size)
    hi = np.maximum(hi, lo + 2.0)
    return np.concatenate([lo, hi], axis=-1)
