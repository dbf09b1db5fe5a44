"""``refit-ros video INPUT --out DIR``: the node's pipeline on a file, without ROS."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from refit_ros.cli import add_config_arguments, config_from_args

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="video file, folder of images, or one image")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="output folder (bodies.jsonl, summary.json, overlay.mp4, PNGs)")
    add_config_arguments(parser)
    parser.add_argument("--camera-info", default=None, metavar="YAML",
                        help="camera calibration (ROS camera_calibration YAML); default: "
                             "source.camera_info, else the fallback focal length")
    parser.add_argument("--max-frames", type=int, default=None, metavar="N",
                        help="process at most N frames")
    parser.add_argument("--no-overlay", action="store_true",
                        help="skip rendering (no overlay.mp4 / PNGs; faster)")
    parser.add_argument("--skeleton", action="store_true",
                        help="also draw the 24 SMPL joints in the overlay")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--mcap", default=None, type=Path, metavar="FILE",
                        help="also record Image, CameraInfo, SMPLArray and MarkerArray messages "
                             "on the node's topics (ros.*) to this ROS 2 MCAP file (Foxglove, "
                             "ros2 bag); needs the ROS 2 Python packages (make setup)")


def run(args: argparse.Namespace) -> int:
    from refit_ros.config import resolve_path
    from refit_ros.io.camera_info import CameraInfoError, load_camera_info
    from refit_ros.io.frames import FrameSourceError, open_source
    from refit_ros.io.runner import RunOptions, run_offline
    from refit_ros.render.overlay import OverlayStyle

    cfg = config_from_args(args)
    if args.max_frames is not None and args.max_frames < 1:
        print("refit-ros video: --max-frames must be >= 1", file=sys.stderr)
        return 2
    try:
        source = open_source(args.input, cfg.source.rate)
        intrinsics = None
        if args.camera_info:
            intrinsics = load_camera_info(args.camera_info)
        elif cfg.source.camera_info:
            intrinsics = load_camera_info(resolve_path(cfg.source.camera_info))
    except (FrameSourceError, CameraInfoError) as exc:
        print(f"refit-ros video: {exc}", file=sys.stderr)
        return 2

    from refit_ros.pipeline import ModelFileError, build_pipeline
    from refit_ros.pipeline import resolve_backend
    from refit_ros.runtime.base import BackendError

    try:
        pipeline = build_pipeline(cfg)
    except (ModelFileError, BackendError) as exc:
        print(f"refit-ros video: {exc}", file=sys.stderr)
        return 2
    sinks = ()
    if args.mcap is not None:
        try:
            from refit_ros.ros.mcap_io import OfflineRecording
        except ImportError as exc:
            print(f"refit-ros video: --mcap needs the ROS 2 Python packages and the built "
                  f"refit_ros messages (run `make setup`): {exc}", file=sys.stderr)
            return 2
        try:
            sinks = ((str(args.mcap), OfflineRecording(args.mcap, cfg)),)
        except OSError as exc:
            print(f"refit-ros video: cannot write {args.mcap}: {exc}", file=sys.stderr)
            return 2
    options = RunOptions(
        out_dir=args.out,
        max_frames=args.max_frames,
        overlay=not args.no_overlay,
        style=OverlayStyle(skeleton=args.skeleton),
        progress=not args.no_progress,
        info={"backend": resolve_backend(cfg), "model": cfg.model.name,
              "body_model": cfg.body.model, "device": cfg.model.device,
              "config": cfg.to_dict()},
        sinks=sinks,
    )
    try:
        summary = run_offline(source, pipeline, options, intrinsics)
    except (FrameSourceError, CameraInfoError) as exc:
        print(f"refit-ros video: {exc}", file=sys.stderr)
        return 2
    print(f"{summary['frames']} frames, {summary['bodies']} bodies, "
          f"pipeline {summary['pipeline_fps']} FPS -> {args.out}"
          + (f" (+ {args.mcap})" if args.mcap is not None else ""))
    return 0
