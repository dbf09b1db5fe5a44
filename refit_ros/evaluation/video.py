"""``refit-ros eval video VIDEO``: the whole pipeline on real footage, without ground truth.

Two measures, both per the issue's targets:

* **detection rate**: the fraction of frames with at least one recovered body (and with at
  least two, for multi-person clips);
* **2D agreement**: for every body, the 12 limb joints of the fitted body (shoulders, elbows,
  wrists, hips, knees, ankles; SMPL order) are projected with the frame's intrinsics and
  compared with the detector's landmarks of the same joints (BlazePose). Distances are
  divided by the body's box height, so they read "fraction of the person's height" whatever
  the resolution; only landmarks the detector is confident about (``>= min_conf``) count.

The landmarks are also the fitter's input, so this measures how well the fitted body
explains its evidence (a fit-quality check), not absolute accuracy. SMPL's hip joints sit
inside the pelvis, a few percent of body height from BlazePose's hip landmarks, which puts a
floor under the hip distances.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from typing import Any, Iterable

import numpy as np

from refit_ros.detect.base import LANDMARK_INDEX

log = logging.getLogger(__name__)

#: (name, SMPL joint index, BlazePose landmark index) of the joints both define.
JOINT_PAIRS: tuple[tuple[str, int, int], ...] = tuple(
    (name, smpl, LANDMARK_INDEX[name])
    for name, smpl in (
        ("left_shoulder", 16), ("right_shoulder", 17),
        ("left_elbow", 18), ("right_elbow", 19),
        ("left_wrist", 20), ("right_wrist", 21),
        ("left_hip", 1), ("right_hip", 2),
        ("left_knee", 4), ("right_knee", 5),
        ("left_ankle", 7), ("right_ankle", 8),
    )
)
_SMPL_IDS = np.array([p[1] for p in JOINT_PAIRS])
_LANDMARK_IDS = np.array([p[2] for p in JOINT_PAIRS])


def joint_errors(joints: np.ndarray, keypoints2d: np.ndarray | None, bbox: np.ndarray,
                 intrinsics, min_conf: float = 0.5) -> np.ndarray:
    """Projected-joint to landmark distances of one body, as fractions of its box height.

    Parameters
    ----------
    joints : ndarray, (24, 3)
        Body joints in the camera frame (metres, SMPL order).
    keypoints2d : ndarray, (33, 3) or None
        Detector landmarks ``x, y, confidence`` in pixels (BlazePose order).
    bbox : ndarray, (4,)
        ``x_min, y_min, x_max, y_max`` of the body's detection.
    intrinsics : Intrinsics
        Camera used by the pipeline for this frame.
    min_conf : float
        Landmarks below this confidence are left out (NaN).

    Returns
    -------
    ndarray, (12,)
        One value per :data:`JOINT_PAIRS` entry; NaN where the landmark is missing or not
        confident, the joint is behind the camera, or the box is degenerate.
    """
    out = np.full(len(JOINT_PAIRS), np.nan)
    height = float(bbox[3] - bbox[1])
    if keypoints2d is None or height <= 1.0:
        return out
    kp = np.asarray(keypoints2d, dtype=np.float64)[_LANDMARK_IDS]
    pts = np.asarray(joints, dtype=np.float64)[_SMPL_IDS]
    proj = intrinsics.project(pts)
    ok = (kp[:, 2] >= min_conf) & (pts[:, 2] > 1e-3)
    out[ok] = np.linalg.norm(proj[ok] - kp[ok, :2], axis=1) / height
    return out


@dataclasses.dataclass
class VideoEvalResult:
    """What ``refit-ros eval video`` reports.

    Attributes
    ----------
    frames : int
    rate_ge1, rate_ge2 : float
        Fraction of frames with >= 1 / >= 2 bodies.
    people_per_frame : list of int
        Histogram: entry k = number of frames with k bodies.
    bodies : int
        Bodies over all frames.
    joints_compared : int
        (body, joint) pairs with a confident landmark.
    median_rel, p90_rel : float or None
        Median / 90th percentile of the projected-joint-to-landmark distance, fraction of
        box height (``None`` when nothing could be compared, e.g. a box-only detector).
    within_5pct : float or None
        Fraction of compared pairs closer than 0.05 box heights.
    per_joint_median_rel : dict
        Joint name -> median distance (fraction of box height), or ``None``.
    fps : float
        Frames per second of the whole pipeline (decode excluded).
    stage_median_ms : dict
        Median per-stage time reported by the pipeline.
    """

    frames: int
    rate_ge1: float
    rate_ge2: float
    people_per_frame: list[int]
    bodies: int
    joints_compared: int
    median_rel: float | None
    p90_rel: float | None
    within_5pct: float | None
    per_joint_median_rel: dict[str, float | None]
    fps: float
    stage_median_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def evaluate_video(pipeline, frames: Iterable, intrinsics=None, max_frames: int | None = None,
                   min_conf: float = 0.5) -> VideoEvalResult:
    """Run ``pipeline`` over ``frames`` and measure detection rate and 2D agreement.

    Parameters
    ----------
    pipeline : FramePipeline
        ``process(image_rgb, intrinsics=None, stamp=0.0) -> FrameResult``; reset first.
    frames : iterable of Frame
        ``(index, stamp, image_rgb)`` tuples (:func:`refit_ros.io.frames.open_source`).
    intrinsics : Intrinsics, optional
        Calibration (rescaled to the frame size); ``None`` = the pipeline's fallback.
    max_frames : int, optional
    min_conf : float
        Landmark confidence needed for a joint to be compared.
    """
    from refit_ros.io.camera_info import intrinsics_for_size

    if hasattr(pipeline, "reset"):
        pipeline.reset()
    counts: list[int] = []
    errors: list[np.ndarray] = []
    stages: dict[str, list[float]] = {}
    busy = 0.0
    for index, stamp, image in frames:
        if max_frames is not None and index >= max_frames:
            break
        intr = None if intrinsics is None else intrinsics_for_size(
            intrinsics, image.shape[1], image.shape[0])
        t0 = time.perf_counter()
        result = pipeline.process(image, intrinsics=intr, stamp=stamp)
        busy += time.perf_counter() - t0
        counts.append(len(result.bodies))
        for name, ms in (result.timings_ms or {}).items():
            stages.setdefault(name, []).append(float(ms))
        for body in result.bodies:
            errors.append(joint_errors(body.joints, body.keypoints2d, body.bbox,
                                       result.intrinsics, min_conf))
    n = len(counts)
    if n == 0:
        raise ValueError("no frame was read from the input")
    c = np.asarray(counts)
    err = np.stack(errors) if errors else np.zeros((0, len(JOINT_PAIRS)))
    valid = err[np.isfinite(err)]
    per_joint = {}
    for j, (name, _, _) in enumerate(JOINT_PAIRS):
        col = err[:, j][np.isfinite(err[:, j])] if len(err) else np.zeros(0)
        per_joint[name] = round(float(np.median(col)), 4) if len(col) else None
    return VideoEvalResult(
        frames=n,
        rate_ge1=round(float(np.mean(c >= 1)), 4),
        rate_ge2=round(float(np.mean(c >= 2)), 4),
        people_per_frame=np.bincount(c).tolist(),
        bodies=int(c.sum()),
        joints_compared=int(valid.size),
        median_rel=round(float(np.median(valid)), 4) if valid.size else None,
        p90_rel=round(float(np.percentile(valid, 90)), 4) if valid.size else None,
        within_5pct=round(float(np.mean(valid < 0.05)), 4) if valid.size else None,
        per_joint_median_rel=per_joint,
        fps=round(n / busy, 2) if busy > 0 else 0.0,
        stage_median_ms={k: round(float(np.median(v)), 2) for k, v in stages.items()},
    )


# -- CLI hook used by refit_ros.commands.eval ("refit-ros eval video VIDEO") ----------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eval video`` (added to the ``eval`` command's parser)."""
    from refit_ros.cli import add_config_arguments

    add_config_arguments(parser)
    parser.add_argument("--camera-info", default=None, metavar="YAML",
                        help="video mode: camera calibration (ROS camera_calibration YAML); "
                             "default source.camera_info, else the fallback focal length")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="video mode: evaluate at most N frames")
    parser.add_argument("--min-conf", type=float, default=0.5,
                        help="video mode: landmark confidence needed to compare a joint")


def run(args: argparse.Namespace) -> int:
    """``refit-ros eval video VIDEO [--json]``: print the :class:`VideoEvalResult`."""
    from refit_ros.cli import config_from_args
    from refit_ros.config import resolve_path
    from refit_ros.io.camera_info import CameraInfoError, load_camera_info
    from refit_ros.io.frames import FrameSourceError, open_source
    from refit_ros.pipeline import ModelFileError, build_pipeline

    if not args.video:
        print("refit-ros eval video: give the video file (refit-ros eval video VIDEO)",
              file=sys.stderr)
        return 2
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "weights", ""):
        overrides.append(f"model.weights={args.weights}")
    args.overrides = overrides
    cfg = config_from_args(args)
    try:
        source = open_source(args.video, cfg.source.rate)
        intrinsics = None
        if args.camera_info:
            intrinsics = load_camera_info(args.camera_info)
        elif cfg.source.camera_info:
            intrinsics = load_camera_info(resolve_path(cfg.source.camera_info))
    except (FrameSourceError, CameraInfoError) as exc:
        print(f"refit-ros eval video: {exc}", file=sys.stderr)
        return 2
    from refit_ros.runtime.base import BackendError

    try:
        pipeline = build_pipeline(cfg)
    except (ModelFileError, FileNotFoundError, BackendError) as exc:  # e.g. weights not trained/shipped yet
        print(f"refit-ros eval video: {exc}", file=sys.stderr)
        return 2
    res = evaluate_video(pipeline, source, intrinsics, args.max_frames, args.min_conf)
    out = {"mode": "video", "input": str(args.video), "model": cfg.model.name,
           "detector": cfg.detector.name, "body": cfg.body.model,
           "intrinsics": "calibrated" if intrinsics is not None else "fallback",
           **res.to_dict()}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        med = "n/a" if res.median_rel is None else f"{100 * res.median_rel:.1f}%"
        print(f"{args.video}: {res.frames} frames, people in {100 * res.rate_ge1:.1f}% "
              f"(>= 2 in {100 * res.rate_ge2:.1f}%), {res.fps:.1f} FPS")
        print(f"projected joints vs detector landmarks: median {med} of box height "
              f"over {res.joints_compared} joints")
        for name, v in res.per_joint_median_rel.items():
            print(f"  {name:15s} {'n/a' if v is None else f'{100 * v:5.1f}%'}")
    return 0
