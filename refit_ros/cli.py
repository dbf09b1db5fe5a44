"""``refit-ros``: one command-line entry point, one subcommand module per task.

Each module in ``refit_ros/commands/`` exposes ``add_arguments(parser)`` and
``run(args) -> int`` and is imported only when its subcommand is used, so ``refit-ros
parity`` never pays for importing ROS and ``refit-ros node`` never pays for training code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

#: subcommand -> (module under refit_ros.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("config_cmd", "print the effective configuration (after --config/--set)"),
    "parity": ("parity", "check the ReFit implementation against a reference fixture"),
    "export": ("export", "export the fitting network to ONNX (+ TensorRT engines) for the runtimes"),
    "bench": ("bench", "benchmarks (JSON): network, pipeline, kp, model, body, detect, render, "
                       "transport"),
    "demo": ("demo", "camera source -> refit node -> recorder on a clip, then overlays (make demo)"),
    "video": ("video", "run the pipeline on a video / image folder / image, no ROS (JSON + overlays)"),
    "node": ("node", "run the refit ROS 2 node (images -> /human/smpl + mesh markers)"),
    "source": ("source", "publish a video / image folder / image as a ROS 2 camera"),
    "record": ("record", "record images, CameraInfo, bodies and markers to MCAP"),
    "bringup": ("bringup", "refit node (+ camera source, + recorder) in one process"),
    "train": ("train", "train ReFit-KP on synthetic data from the open body (CPU)"),
    "eval": ("eval", "accuracy: held-out synthetic set (ReFit-KP) or real video (JSON)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refit-ros", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        _load(module).add_arguments(p)
    return parser


def _load(module: str):
    return importlib.import_module(f"refit_ros.commands.{module}")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The shared ``--config`` / ``--set`` options of every command that reads the config."""
    parser.add_argument("--config", default=None, help="YAML file overriding config/refit.yaml")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config key (dotted path, e.g. model.iterations=3); repeatable",
    )


def config_from_args(args: argparse.Namespace):
    from refit_ros.config import load_config

    return load_config(args.config, args.overrides)


def main(argv: Sequence[str] | None = None) -> int:
    from refit_ros.config import ConfigError

    argv = list(sys.argv[1:] if argv is None else argv)
    # ROS arguments (remaps, -p parameters) come last, as `ros2 run` / launch pass them.
    ros_args: list[str] = []
    if "--ros-args" in argv:
        cut = argv.index("--ros-args")
        argv, ros_args = argv[:cut], argv[cut:]
    # Build only the requested subcommand's parser when possible (fast start-up).
    parser = build_parser() if not argv or argv[0] not in COMMANDS else _single_parser(argv[0])
    args = parser.parse_args(argv)
    args.ros_args = ros_args
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(levelname)s] %(name)s: %(message)s",
    )
    try:
        return int(_load(args._module).run(args) or 0)
    except ConfigError as exc:
        print(f"refit-ros: config error: {exc}", file=sys.stderr)
        return 2


def _single_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refit-ros")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command")
    module, help_text = COMMANDS[name]
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(_module=module)
    _load(module).add_arguments(p)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
