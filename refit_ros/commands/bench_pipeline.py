"""``refit-ros bench pipeline``: frame rate of the whole pipeline on real footage (JSON).

Every frame is timed from the encoded video to the serialised ROS messages, the way the
node spends it: ``decode`` (read the next frame, crop, resize to ``--size``, BGR -> RGB),
``pipeline`` (:meth:`RefitPipeline.process`: BlazePose detection + landmarks, ReFit-KP
encode + iterations, body mesh; its own stage timings are reported too) and ``messages``
(``SMPLArray`` and the mesh ``MarkerArray`` built and CDR-serialised; skipped with a note
when the ROS 2 Python packages are missing). FPS = frames / the summed time of those three.

Modes: ``cold`` (``tracking.warm_start=false``: every person fitted from the mean body
with ``model.iterations`` steps every frame) and ``warm`` (the default config: tracked
people warm-started with ``tracking.warm_iterations``).

Without ``INPUT`` it runs on the demo clip (``make demo`` or
``bash scripts/fetch_demo_video.sh`` fetches it) cut to its left 1200x900 window, which
holds one person (the man on the wall; the woman walks into it for a few frames), resized
to 640x480: the "one person at 640x480" case. Frames with one body are also reported on
their own (``one_person``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from refit_ros.cli import add_config_arguments

log = logging.getLogger(__name__)

DEMO_CLIP = ".cache/demo/demo.mp4"
DEMO_CROP = (0, 0, 1200, 900)
MODES = {"cold": ["tracking.warm_start=false"], "warm": []}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default=None,
                        help=f"video file, image folder or image (default: {DEMO_CLIP} with --crop "
                             f"{','.join(map(str, DEMO_CROP))})")
    add_config_arguments(parser)
    parser.add_argument("--size", default="640x480", help="WxH the frames are resized to")
    parser.add_argument("--crop", default=None, metavar="X0,Y0,X1,Y1",
                        help="cut this window out of each frame before resizing")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per mode")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed frames first (model loading, caches)")
    parser.add_argument("--modes", default="cold,warm", help="comma list of cold, warm")
    parser.add_argument("--no-messages", action="store_true",
                        help="leave out building/serialising the ROS messages")
    parser.add_argument("--json", action="store_true", help="print JSON only")


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WxH, e.g. 640x480, got {text!r}") from None
    if w < 32 or h < 32:
        raise ValueError(f"--size {text} is too small")
    return w, h


def _parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--crop must be X0,Y0,X1,Y1 pixels, got {text!r}") from None
    if x1 <= x0 or y1 <= y0 or x0 < 0 or y0 < 0:
        raise ValueError(f"--crop {text}: need 0 <= X0 < X1 and 0 <= Y0 < Y1")
    return x0, y0, x1, y1


class _Decoder:
    """Frames of an input (:func:`refit_ros.io.frames.open_source`: decoded, RGB), cropped
    and resized; starts over when the input ends."""

    def __init__(self, path: Path, size: tuple[int, int], crop) -> None:
        from refit_ros.io.frames import open_source

        self.source = open_source(path)
        self.fps, self.size, self.crop = self.source.fps, size, crop
        first = next(iter(self.source)).image
        if crop is not None and (crop[2] > first.shape[1] or crop[3] > first.shape[0]):
            raise ValueError(f"--crop {crop} is outside the {first.shape[1]}x{first.shape[0]} "
                             f"frames of {path}")
        self.restart()

    def restart(self) -> None:
        self._frames = iter(self.source)

    def next(self) -> np.ndarray:
        import cv2

        frame = next(self._frames, None)
        if frame is None:  # end of the input: loop
            self.restart()
            frame = next(self._frames)
        rgb = frame.image
        if self.crop is not None:
            x0, y0, x1, y1 = self.crop
            rgb = rgb[y0:y1, x0:x1]
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(rgb)


class _Messages:
    """What the node publishes per frame, built and CDR-serialised."""

    def __init__(self, frame_id: str) -> None:
        from rclpy.serialization import serialize_message
        from std_msgs.msg import Header

        from refit_ros.ros.markers import MeshMarkers
        from refit_ros.ros.messages import frame_result_to_msg

        self.serialize, self.to_msg = serialize_message, frame_result_to_msg
        self.header = Header(frame_id=frame_id)
        self.markers = MeshMarkers()

    def __call__(self, result) -> int:
        data = self.serialize(self.to_msg(result, self.header))
        return len(data) + len(self.markers.frame_cdr(result, self.header))


def _stats(values_ms: list[float]) -> dict[str, float]:
    a = np.asarray(values_ms, dtype=np.float64)
    return {"median_ms": round(float(np.median(a)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "mean_ms": round(float(a.mean()), 2)}


def bench_mode(pipeline, decoder: _Decoder, frames: int, warmup: int, messages) -> dict[str, Any]:
    """Time ``frames`` frames (after ``warmup``) through decode -> pipeline -> messages."""
    decoder.restart()
    for _ in range(warmup):
        pipeline.process(decoder.next())
    pipeline.reset()
    decoder.restart()
    per: dict[str, list[float]] = {"decode": [], "pipeline": [], "messages": [], "frame": []}
    stages: dict[str, list[float]] = {}
    people: list[int] = []
    for k in range(frames):
        t0 = time.perf_counter()
        rgb = decoder.next()
        t1 = time.perf_counter()
        result = pipeline.process(rgb, stamp=k / decoder.fps)
        t2 = time.perf_counter()
        if messages is not None:
            messages(result)
        t3 = time.perf_counter()
        for name, dt in (("decode", t1 - t0), ("pipeline", t2 - t1), ("messages", t3 - t2),
                         ("frame", t3 - t0)):
            per[name].append(1e3 * dt)
        for name, ms in result.timings_ms.items():
            if name != "total":
                stages.setdefault(name, []).append(float(ms))
        people.append(len(result.bodies))
    frame_ms = np.asarray(per["frame"])
    one = np.asarray(people) == 1
    out: dict[str, Any] = {
        "frames": frames,
        "fps": round(1e3 * frames / float(frame_ms.sum()), 2),
        "frame": _stats(per["frame"]),
        "decode": _stats(per["decode"]),
        "pipeline": _stats(per["pipeline"]),
        "messages": _stats(per["messages"]) if messages is not None else None,
        "pipeline_stages_median_ms": {k: round(statistics.median(v), 2) for k, v in stages.items()},
        "people_per_frame": {str(n): people.count(n) for n in sorted(set(people))},
        "one_person": None,
    }
    if one.any():
        out["one_person"] = {"frames": int(one.sum()),
                             "fps": round(1e3 * int(one.sum()) / float(frame_ms[one].sum()), 2),
                             "frame": _stats(frame_ms[one].tolist())}
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from refit_ros.config import ConfigError, load_config, resolve_path
    from refit_ros.pipeline import ModelFileError, build_pipeline
    from refit_ros.pipeline import resolve_backend
    from refit_ros.runtime.base import BackendError

    try:
        size = _parse_size(args.size)
        crop = _parse_crop(args.crop)
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise ValueError(f"--modes: unknown {bad}; choose from {list(MODES)}")
        if args.frames < 1 or args.warmup < 0:
            raise ValueError("--frames must be >= 1 and --warmup >= 0")
        if args.input is None:
            path = resolve_path(DEMO_CLIP)
            crop = crop or DEMO_CROP
            if not path.is_file():
                raise ValueError(f"the demo clip {path} is missing: run `bash "
                                 "scripts/fetch_demo_video.sh` (or `make demo`) or give INPUT")
        else:
            path = Path(args.input)  # a video, image folder or image (open_source checks it)
        decoder = _Decoder(path, size, crop)
        cfg = load_config(args.config, list(args.overrides))
        messages = None
        notes = []
        if not args.no_messages:
            try:
                messages = _Messages(cfg.source.frame_id)
            except ImportError as exc:
                notes.append(f"ROS 2 messages not timed ({exc}); run `make setup`")
        report: dict[str, Any] = {
            "input": str(path), "crop": list(crop) if crop else None, "size": list(size),
            "model": cfg.model.name, "body": cfg.body.model, "detector": cfg.detector.name,
            "backend": resolve_backend(cfg), "runtime_threads": cfg.runtime.threads,
            "iterations": cfg.model.iterations, "warm_iterations": cfg.tracking.warm_iterations,
            "host": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpu_count": os.cpu_count(), "torch": torch.__version__},
            "modes": {}, "notes": notes,
        }
        for mode in modes:
            mcfg = load_config(args.config, list(args.overrides) + MODES[mode])
            pipeline = build_pipeline(mcfg)
            report["torch_threads"] = torch.get_num_threads()
            report["modes"][mode] = bench_mode(pipeline, decoder, args.frames, args.warmup, messages)
            if not args.json:
                m = report["modes"][mode]
                print(f"{mode}: {m['fps']} FPS ({m['frame']['median_ms']} ms/frame median), "
                      f"people/frame {m['people_per_frame']}", file=sys.stderr)
    except (ValueError, ConfigError, ModelFileError, BackendError) as exc:  # FrameSourceError too
        print(f"refit-ros bench pipeline: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=1))
    return 0
