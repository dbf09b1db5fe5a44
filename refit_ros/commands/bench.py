"""``refit-ros bench MODE``: the benchmarks, one command with modes; each prints JSON.

Modes (each a module ``refit_ros/commands/bench_<mode>.py`` with ``add_arguments`` / ``run``):
network (per-stage latency and FPS of a runtime backend), pipeline (the whole pipeline on real
footage), kp (ReFit-KP alone, per person), model (parameters, GMACs and stage latency of the
ReFit network), body (body-model forward), detect (the person detector on the demo clip),
render (overlay rendering), transport (raw images between two processes per DDS transport).
"""

from __future__ import annotations

import argparse
import importlib

#: mode -> (module under refit_ros.commands, one-line help)
MODES: dict[str, tuple[str, str]] = {
    "network": ("bench_network", "per-stage latency and FPS of a runtime backend"),
    "pipeline": ("bench_pipeline", "FPS of the whole pipeline, decode to ROS messages, on real "
                                   "footage"),
    "kp": ("bench_kp", "latency of ReFit-KP alone, per person"),
    "model": ("bench_model", "parameters, GMACs and per-stage latency of the ReFit network"),
    "body": ("bench_body", "body-model forward: markers-only vs full mesh"),
    "detect": ("bench_detect", "person/keypoint detector frame rate on the demo clip"),
    "render": ("bench_render", "overlay rendering frame rate"),
    "transport": ("bench_transport", "raw images between two processes per DDS transport and QoS"),
}


def _module(mode: str):
    return importlib.import_module(f"refit_ros.commands.{MODES[mode][0]}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mode", metavar="MODE")
    sub.required = True
    for mode, (_, help_text) in MODES.items():
        p = sub.add_parser(mode, help=help_text, description=help_text)
        _module(mode).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return _module(args.mode).run(args)
