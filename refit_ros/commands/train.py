"""``refit-ros train``: train ReFit-KP on synthetic data from the open body (CPU)."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

DEFAULT_OUT = "out/train_refit_kp"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="training recipe YAML (default refit_ros/training/refit_kp.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a recipe key, e.g. budget.max_minutes=5; repeatable")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"output folder: checkpoint, weights, log (default {DEFAULT_OUT})")
    parser.add_argument("--no-resume", action="store_true",
                        help="start afresh even if OUT/checkpoint.pt exists")
    parser.add_argument("--publish", metavar="WEIGHTS", default=None,
                        help="instead of training: store trained WEIGHTS as the shipped "
                             "weights with train_config.yaml and PROVENANCE.md")


def run(args: argparse.Namespace) -> int:
    from refit_ros.training.config import load_train_config
    from refit_ros.training.trainer import train

    if args.publish:
        import json

        import torch

        from refit_ros.training.publish import publish

        torch.set_num_threads(2)
        print(json.dumps(publish(args.publish), indent=2))
        return 0

    cfg = load_train_config(args.config, args.overrides)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    command = "refit-ros " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = train(cfg, out, resume=not args.no_resume, command=command)
    print(f"weights: {result.weights}  steps: {result.steps}  "
          f"wall: {result.wall_minutes:.1f} min")
    return 0
