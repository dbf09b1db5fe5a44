"""``refit-ros bringup``: the refit node (+ camera source, + recorder) in one process.

The same nodes and parameters as ``launch/camera.launch.py``, for machines without
``ros2 launch``.
"""

from __future__ import annotations

import argparse
import threading

from refit_ros.cli import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--source", nargs="?", const="", default=None, metavar="INPUT",
                        help="also start the camera source (INPUT overrides source.input)")
    parser.add_argument("--mcap", default=None, metavar="FILE",
                        help="also start the recorder writing FILE")
    parser.add_argument("--image", default="", metavar="TOPIC", help="remap the image topic")
    parser.add_argument("--camera-info", default="", metavar="TOPIC",
                        help="remap the camera_info topic")
    parser.add_argument("--exit-after-source", action="store_true",
                        help="stop once the source has finished and the node has caught up")


def run(args: argparse.Namespace) -> int:
    if args.source:
        args.overrides = list(args.overrides) + [f"source.input={args.source}"]
    cfg = config_from_args(args)
    from refit_ros.ros.bringup import Bringup
    from refit_ros.ros.spin import run_nodes

    ros = cfg.ros
    remaps = {ros.image_topic: args.image, ros.camera_info_topic: args.camera_info}
    if ros.compressed and args.image:
        remaps = {ros.image_topic + "/compressed": args.image + "/compressed",
                  ros.camera_info_topic: args.camera_info}
    bringup = Bringup(cfg, source=args.source is not None, mcap=args.mcap, remaps=remaps)
    done = None
    if args.exit_after_source and args.source is not None:
        done = threading.Event()
        bringup.stop_after_source(done)
    return run_nodes(bringup.factories(), getattr(args, "ros_args", []), done=done,
                     transport=cfg.ros.transport)
