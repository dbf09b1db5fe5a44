"""``refit-ros demo``: camera source -> refit node -> recorder on a clip, then overlays.

This is what ``make demo`` runs: the real ROS 2 graph (three nodes, one process), with the
source publishing the clip at ``source.rate`` and the node dropping frames it cannot keep
up with (latest-only). Afterwards the recording is read back and every frame that got
bodies is rendered from the *published* messages into ``OUT/overlay.mp4`` and PNGs.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from refit_ros.cli import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--input", required=True, help="video file, image folder or image")
    parser.add_argument("--out", default="out/demo", help="output folder")
    parser.add_argument("--rate", type=float, default=None,
                        help="publishing rate in fps (default: source.rate of the config)")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides) + [f"source.input={args.input}"]
    if args.rate is not None:
        overrides.append(f"source.rate={args.rate}")
    args.overrides = overrides
    cfg = config_from_args(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mcap = out / "recording.mcap"
    mcap.unlink(missing_ok=True)

    from refit_ros.ros.bringup import Bringup
    from refit_ros.ros.spin import run_nodes

    bringup = Bringup(cfg, source=True, mcap=str(mcap))
    done = threading.Event()
    bringup.stop_after_source(done)
    t0 = time.monotonic()
    status = run_nodes(bringup.factories(), getattr(args, "ros_args", []), done=done,
                       transport=cfg.ros.transport)
    wall = time.monotonic() - t0
    if status != 0:
        print(f"refit-ros demo: the ROS graph stopped with status {status}", file=sys.stderr)
        return status
    node = bringup.nodes["node"]
    return _render(cfg, out, mcap, node.stats, wall)


def _render(cfg, out: Path, mcap: Path, stats: dict, wall: float) -> int:
    from refit_ros.io.replay import read_recording
    from refit_ros.pipeline import build_body
    from refit_ros.render.overlay import render_overlay

    ros = cfg.ros
    published, frames = read_recording(mcap, build_body(cfg), ros.image_topic, ros.smpl_topic,
                                       ros.camera_info_topic)
    writer = None
    counts, ids, pngs = [], set(), []
    for k, fr in enumerate(frames):
        img = render_overlay(fr.image_rgb, fr.result)
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if writer is None:
            fps = max(1.0, cfg.source.rate or 10.0)
            writer = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                     fps, (bgr.shape[1], bgr.shape[0]))
        writer.write(bgr)
        n = len(fr.result.bodies)
        counts.append(n)
        ids.update(b.track_id for b in fr.result.bodies)
        print(f"frame {k:4d}  stamp {fr.stamp:.3f}  bodies {n}  "
              f"track_ids {[b.track_id for b in fr.result.bodies]}")
        if k % 10 == 0:
            path = out / f"overlay_{k:04d}.png"
            cv2.imwrite(str(path), bgr)
            pngs.append(str(path))
    if writer is not None:
        writer.release()
    summary = {
        "images_published": published,
        "frames_with_bodies_message": len(counts),
        "frames_with_people": int(sum(c > 0 for c in counts)),
        "mean_bodies_per_frame": float(np.mean(counts)) if counts else 0.0,
        "track_ids": sorted(ids),
        "node_processed": stats.get("processed", 0),
        "node_fps": (1.0 / stats["period_s"]) if stats.get("period_s") else None,
        "wall_s": round(wall, 2),
        "model": cfg.model.name, "body_model": cfg.body.model,
        "outputs": {"mcap": str(mcap), "overlay": str(out / "overlay.mp4"), "pngs": pngs},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    if not counts:
        print("refit-ros demo: no bodies were recorded", file=sys.stderr)
        return 1
    return 0
