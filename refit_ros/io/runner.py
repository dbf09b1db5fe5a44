"""Run a frame pipeline over a video / image folder / image without ROS and keep the results.

Writes into the output folder:

``bodies.jsonl``
    One JSON line per frame (:func:`refit_ros.io.records.frame_record`).
``summary.json``
    Frames, frame rates, backend and models, median latency per pipeline stage, the
    intrinsics used (and whether they were the fallback guess), the files written.
``overlay.mp4``, ``overlay_{first,middle,last}.png``
    Shaded meshes over the frames (unless the overlay is switched off).

Extra per-frame consumers (e.g. the ROS 2 MCAP recording of ``refit-ros video --mcap``,
:class:`refit_ros.ros.mcap_io.OfflineRecording`) are passed as ``RunOptions.sinks``; this
module itself never imports ROS.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.io.camera_info import intrinsics_for_size
from refit_ros.io.frames import FrameSource
from refit_ros.io.overlay_output import OverlayOutput
from refit_ros.io.records import frame_record
from refit_ros.pipeline.types import FramePipeline
from refit_ros.render.overlay import OverlayStyle, render_overlay

log = logging.getLogger(__name__)


class FrameSink(Protocol):
    """Receives every processed frame of an offline run (e.g. an MCAP recording)."""

    def write_frame(self, stamp_s: float, rgb, intrinsics: Intrinsics, result) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What an offline run does besides running the pipeline.

    Attributes
    ----------
    out_dir : Path
        Created if missing; existing output files are overwritten.
    max_frames : int or None
        Stop after this many frames.
    overlay : bool
        Write ``overlay.mp4`` and the PNGs.
    style : OverlayStyle
    progress : bool
        Show a progress bar on stderr (for inputs of more than one frame).
    info : dict
        Extra fields for ``summary.json`` (``backend``, ``model``, ``body_model``, ...).
    sinks : tuple of FrameSink
        Each gets ``write_frame(stamp, rgb, intrinsics_used, result)`` for every frame and
        ``close()`` at the end (also after an interruption); ``(name, sink)`` pairs, the
        name is listed under ``outputs`` in ``summary.json``.
    """

    out_dir: Path
    max_frames: int | None = None
    overlay: bool = True
    style: OverlayStyle = OverlayStyle()
    progress: bool = True
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    sinks: tuple[tuple[str, FrameSink], ...] = ()


def run_offline(source: FrameSource, pipeline: FramePipeline, options: RunOptions,
                intrinsics: Intrinsics | None = None) -> dict[str, Any]:
    """Process every frame of ``source`` and write the outputs.

    Parameters
    ----------
    source : FrameSource
    pipeline : FramePipeline
        Reset before the first frame.
    options : RunOptions
    intrinsics : Intrinsics, optional
        Calibration of the input (rescaled to the frame size if needed); ``None`` lets
        the pipeline use its fallback.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total = source.count
    if options.max_frames is not None:
        total = options.max_frames if total is None else min(total, options.max_frames)
    overlay = OverlayOutput(out, source.fps, total) if options.overlay else None
    stats = _Stats()
    pipeline.reset()
    bar = tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True,
               disable=not options.progress or (total is not None and total < 2))
    interrupted = False
    t_run = time.perf_counter()
    try:
        with open(out / "bodies.jsonl", "w", encoding="utf-8") as jsonl:
            for index, stamp, image in source:
                if options.max_frames is not None and index >= options.max_frames:
                    break
                intr = None if intrinsics is None else intrinsics_for_size(
                    intrinsics, image.shape[1], image.shape[0])
                t0 = time.perf_counter()
                result = pipeline.process(image, intrinsics=intr, stamp=stamp)
                stats.add_pipeline(time.perf_counter() - t0, result)
                jsonl.write(json.dumps(frame_record(index, stamp, result)) + "\n")
                for _, sink in options.sinks:
                    sink.write_frame(stamp, image, result.intrinsics, result)
                if overlay is not None:
                    t0 = time.perf_counter()
                    picture = render_overlay(image, result, options.style)
                    stats.render_s.append(time.perf_counter() - t0)
                    overlay.add(index, picture, bool(result.bodies))
                bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: writing the outputs of the %d frames processed", stats.frames)
    finally:
        bar.close()
        snapshots = overlay.close() if overlay is not None else {}
        for _, sink in options.sinks:
            sink.close()
    summary = stats.summary(source, time.perf_counter() - t_run)
    summary.update(options.info)
    summary["interrupted"] = interrupted
    summary["outputs"] = ["bodies.jsonl", "summary.json"] + (
        ["overlay.mp4"] + [s["file"] for s in snapshots.values()] if overlay is not None else []) + [
        name for name, _ in options.sinks]
    summary["snapshots"] = snapshots
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if stats.frames == 0:
        log.warning("no frame was processed from %s", source.path)
    return summary


class _Stats:
    """Per-frame timings and counts gathered during a run."""

    def __init__(self) -> None:
        self.frames = 0
        self.frames_with_bodies = 0
        self.bodies = 0
        self.pipeline_s: list[float] = []
        self.render_s: list[float] = []
        self.stages: dict[str, list[float]] = {}
        self.tracks: set[int] = set()
        self.body_models: set[str] = set()
        self.intrinsics: Intrinsics | None = None

    def add_pipeline(self, seconds: float, result) -> None:
        self.frames += 1
        self.pipeline_s.append(seconds)
        self.bodies += len(result.bodies)
        self.frames_with_bodies += bool(result.bodies)
        self.tracks.update(int(b.track_id) for b in result.bodies if b.track_id >= 0)
        self.body_models.update(b.body_model for b in result.bodies)
        for stage, ms in result.timings_ms.items():
            self.stages.setdefault(stage, []).append(float(ms))
        if self.intrinsics is None:
            self.intrinsics = result.intrinsics

    def summary(self, source: FrameSource, wall_s: float) -> dict[str, Any]:
        intr = self.intrinsics
        return {
            "input": str(source.path),
            "input_kind": source.kind,
            "frames": self.frames,
            "frames_with_bodies": self.frames_with_bodies,
            "bodies": self.bodies,
            "track_ids": sorted(self.tracks),
            "body_models_seen": sorted(self.body_models),
            "input_fps": source.fps,
            "pipeline_fps": _rate(self.frames, sum(self.pipeline_s)),
            "end_to_end_fps": _rate(self.frames, wall_s),
            "wall_s": round(wall_s, 3),
            "latency_ms_median": {k: round(statistics.median(v), 2)
                                  for k, v in self.stages.items()},
            "render_ms_median": (round(1e3 * statistics.median(self.render_s), 2)
                                 if self.render_s else None),
            "intrinsics": None if intr is None else {
                "fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy,
                "width": intr.width, "height": intr.height, "is_fallback": intr.is_fallback},
        }


def _rate(frames: int, seconds: float) -> float | None:
    return round(frames / seconds, 3) if seconds > 0 else None
