"""Benchmark the person/keypoint detector on a real clip: latency and detection rate as JSON.

For each running mode (BlazePose VIDEO = tracking, IMAGE = every frame on its own) and each
resolution (the clip's own and 640x480), every frame of the clip is decoded, converted to
RGB, resized if needed (centre-cropped to 4:3 first, so people keep their proportions) and
given to the detector; only ``detect`` is timed. Reports median / p95 / mean milliseconds
per frame and the fraction of frames with >= 1, exactly 2 and >= 2 people.

    bash scripts/fetch_demo_video.sh           # .cache/demo/demo.mp4 (Sports2D, BSD-3)
    refit-ros bench detect   # JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from refit_ros.config import REPO_ROOT, load_config
from refit_ros.detect import build_detector

LOG = logging.getLogger("bench_detect")
DEFAULT_CLIP = REPO_ROOT / ".cache" / "demo" / "demo.mp4"


def frames(path: Path, size: tuple[int, int] | None, limit: int | None):
    """Yield ``(index, time_s, rgb)``; ``size=(w, h)`` centre-crops to its aspect, then resizes."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    i = 0
    try:
        while limit is None or i < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            if size is not None:
                bgr = crop_resize(bgr, size)
            yield i, i / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def crop_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``image`` to the aspect ratio of ``size=(w, h)`` and resize to it."""
    h, w = image.shape[:2]
    tw, th = size
    if w * th > h * tw:  # too wide
        cw = int(round(h * tw / th))
        x0 = (w - cw) // 2
        image = image[:, x0:x0 + cw]
    else:
        ch = int(round(w * th / tw))
        y0 = (h - ch) // 2
        image = image[y0:y0 + ch]
    return cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)


def run_one(cfg, clip: Path, video: bool, size, limit, warmup: int) -> dict:
    detector = build_detector(cfg, video=video)
    times, counts = [], []
    res = None
    try:
        for i, t, rgb in frames(clip, size, limit):
            res = f"{rgb.shape[1]}x{rgb.shape[0]}"
            t0 = time.perf_counter()
            dets = detector.detect(rgb, timestamp_s=t)
            dt = (time.perf_counter() - t0) * 1000.0
            counts.append(len(dets))
            if i >= warmup:
                times.append(dt)
    finally:
        detector.close()
    counts_a = np.asarray(counts)
    times_a = np.asarray(times)
    return {
        "mode": "video" if video else "image",
        "resolution": res,
        "frames": int(len(counts_a)),
        "timed_frames": int(len(times_a)),
        "median_ms": round(float(np.median(times_a)), 1),
        "p95_ms": round(float(np.percentile(times_a, 95)), 1),
        "mean_ms": round(float(times_a.mean()), 1),
        "rate_ge1": round(float(np.mean(counts_a >= 1)), 3),
        "rate_eq2": round(float(np.mean(counts_a == 2)), 3),
        "rate_ge2": round(float(np.mean(counts_a >= 2)), 3),
        "people_per_frame_histogram": np.bincount(counts_a).tolist(),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", type=Path, default=DEFAULT_CLIP,
                        help="clip to run on (default: the demo clip)")
    parser.add_argument("--modes", default="video,image", help="comma list of video,image")
    parser.add_argument("--sizes", default="native,640x480",
                        help="comma list of native and/or WxH")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first frames")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override, e.g. detector.max_people=2")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="[%(levelname)s] %(name)s: %(message)s")
    if not args.video.is_file():
        LOG.error("%s not found; fetch the demo clip with `bash scripts/fetch_demo_video.sh`",
                  args.video)
        return 2
    cfg = load_config(overrides=args.overrides)
    cap = cv2.VideoCapture(str(args.video))
    clip = {
        "path": str(args.video),
        "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        "frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
        "fps": round(float(cap.get(cv2.CAP_PROP_FPS)), 2),
    }
    cap.release()
    import mediapipe

    out = {
        "detector": cfg.detector.name,
        "max_people": cfg.detector.max_people,
        "min_score": cfg.detector.min_score,
        "mediapipe": getattr(mediapipe, "__version__", "?"),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "clip": clip,
        "results": [],
    }
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        for size_s in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            size = None if size_s == "native" else tuple(int(v) for v in size_s.split("x"))
            out["results"].append(
                run_one(cfg, args.video, mode == "video", size, args.frames, args.warmup))
    out["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))
    return 0

