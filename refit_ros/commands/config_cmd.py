"""``refit-ros config``: print the effective configuration as YAML."""

from __future__ import annotations

import argparse

import yaml

from refit_ros.cli import add_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
