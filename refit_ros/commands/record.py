"""``refit-ros record --mcap FILE``: record images, CameraInfo, bodies and markers to MCAP."""

from __future__ import annotations

import argparse

from refit_ros.cli import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mcap", required=True, metavar="FILE", help="output .mcap file")
    add_config_arguments(parser)
    parser.add_argument("--name", default="refit_recorder", help="node name")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from refit_ros.ros.recorder import Recorder
    from refit_ros.ros.spin import run_nodes

    return run_nodes([lambda: Recorder(cfg, args.mcap, node_name=args.name)],
                     getattr(args, "ros_args", []), transport=cfg.ros.transport)
