"""Smoke test of ``refit-ros bench model`` (the benchmark itself is a command, not a test)."""

from __future__ import annotations

import argparse
import json

import torch

from conftest import REPO_ROOT


def test_bench_model_prints_params_and_latency_json(capsys):
    from refit_ros.commands import bench_model

    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    args = parser.parse_args(["--backbone", "hrnet_w32", "--batch", "1", "--repeats", "1",
                              "--warmup", "0", "--no-macs", "--json"])
    assert bench_model.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"]["total"] > 25_000_000
    lat = out["latency"]["1"]
    assert {"encode", "init", "step"} <= set(lat)
    assert lat["step"]["median_ms"] > 0 and "load_average_1min" in out


def test_mac_counter_counts_convolutions_and_matmuls():
    from refit_ros.commands.bench_model import _macs

    conv = torch.nn.Conv2d(8, 16, 3, padding=1, bias=False)
    x = torch.zeros(1, 8, 10, 10)
    assert _macs(lambda: conv(x)) == 16 * 8 * 9 * 100
    w = torch.zeros(5, 7)
    assert _macs(lambda: torch.zeros(3, 5) @ w) == 3 * 5 * 7


def test_one_bench_command_with_modes_replaces_the_entry_points(capsys):
    """`refit-ros bench MODE`: every mode parses, and two quick ones run and print JSON."""

    from refit_ros.cli import COMMANDS, main
    from refit_ros.commands.bench import MODES

    assert set(MODES) == {"network", "pipeline", "kp", "model", "body", "detect", "render",
                          "transport"}
    assert not [c for c in COMMANDS if c.startswith("bench-")]
    assert not list((REPO_ROOT / "scripts").glob("bench_*.py"))
    assert main(["bench", "render", "--frames", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["benchmark"] == "render_overlay"
    assert main(["bench", "body", "--repeats", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["markers"] > 0
