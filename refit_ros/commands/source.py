"""``refit-ros source``: publish a video / image folder / image as a camera."""

from __future__ import annotations

import argparse
import threading

from refit_ros.cli import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default=None,
                        help="video file, image folder or image (default: source.input)")
    add_config_arguments(parser)
    parser.add_argument("--rate", type=float, default=None, help="frames per second (0 = the file's)")
    parser.add_argument("--loop", action="store_true", default=None, help="start over at the end")
    parser.add_argument("--camera-info", default=None, metavar="YAML",
                        help="camera_calibration YAML published as CameraInfo")
    parser.add_argument("--name", default="camera_source", help="node name")


def source_overrides(args: argparse.Namespace) -> list[str]:
    """The convenience flags as ``--set`` items (they win over --config / --set)."""
    out = []
    for flag, key in (("input", "source.input"), ("rate", "source.rate"),
                      ("loop", "source.loop"), ("camera_info", "source.camera_info")):
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    return out


def run(args: argparse.Namespace) -> int:
    args.overrides = list(args.overrides) + source_overrides(args)
    cfg = config_from_args(args)
    from refit_ros.ros.source import CameraSource
    from refit_ros.ros.spin import run_nodes

    done = threading.Event()
    nodes = []

    def make():
        node = CameraSource(cfg, node_name=args.name)
        nodes.append(node)
        threading.Thread(target=lambda: (node.finished.wait(), done.set()), daemon=True).start()
        return node

    return run_nodes([make], getattr(args, "ros_args", []), done=done,
                     transport=cfg.ros.transport)
