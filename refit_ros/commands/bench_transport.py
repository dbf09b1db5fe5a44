"""``refit-ros bench transport``: raw images between two processes per DDS transport and QoS
(JSON). Measures what ``ros.transport`` is for; see refit_ros/ros/transport_bench.py."""

from __future__ import annotations

import argparse
import json


def _size(text: str) -> tuple[int, int]:
    from refit_ros.commands.bench_pipeline import _parse_size

    try:
        return _parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from refit_ros.ros.transport_bench import TRANSPORT_CASES

    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--size", type=_size, action="append", default=None,
                        help="rgb8 image WIDTHxHEIGHT; repeatable (default 1280x720, 1920x1080)")
    parser.add_argument("--transport", choices=TRANSPORT_CASES, action="append", default=None,
                        help="repeatable (default all)")
    parser.add_argument("--reliability", choices=("best_effort", "reliable"), action="append",
                        default=None, help="subscriber QoS; repeatable (default both)")
    parser.add_argument("--rate", type=float, default=10.0, help="images per second (default 10)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per case (default 8)")


def run(args: argparse.Namespace) -> int:
    from refit_ros.ros.transport_bench import TRANSPORT_CASES, run_case

    cases = []
    for w, h in args.size or [(1280, 720), (1920, 1080)]:
        for transport in args.transport or TRANSPORT_CASES:
            for rel in args.reliability or ["best_effort", "reliable"]:
                case = run_case(transport, rel, w, h, args.rate, args.seconds)
                cases.append(case)
                if not args.json:
                    print(f"{w}x{h} {transport:10s} {rel:11s} received "
                          f"{case['received']:4d}/{case['published']:<4d} latency median "
                          f"{case['latency_ms_median']} ms, p95 {case['latency_ms_p95']} ms",
                          flush=True)
    print(json.dumps({"cases": cases}, indent=None if args.json else 1))
    return 0
