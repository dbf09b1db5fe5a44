"""``refit-ros node``: the refit node (camera images -> bodies + mesh markers)."""

from __future__ import annotations

import argparse

from refit_ros.cli import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--name", default="refit_node", help="node name (default refit_node)")
    parser.epilog = ("ROS arguments go last: --ros-args -r /camera/image_raw:=/my/image "
                     "-p model.iterations:=3")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from refit_ros.ros.node import RefitNode
    from refit_ros.ros.spin import run_nodes

    return run_nodes([lambda: RefitNode(cfg, node_name=args.name)], getattr(args, "ros_args", []),
                     transport=cfg.ros.transport)
