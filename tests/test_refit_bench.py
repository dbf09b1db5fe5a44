"""Smoke test of ``refit-ros bench-model`` (the benchmark itself is a command, not a test)."""

from __future__ import annotations

import argparse
import json


def test_bench_model_prints_params_macs_and_latency_json(capsys):
    from refit_ros.commands import bench_model

    parser = argparse.ArgumentParser()
    bench_model.add_arguments(parser)
    args = parser.parse_args(["--backbone", "hrnet_w32", "--batch", "1", "--repeats", "1",
                              "--warmup", "0", "--json"])
    assert bench_model.run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"]["total"] > 25_000_000
    assert set(out["gmac_per_person"]) == {"encode", "init", "step", "cold_5_steps"}
    assert out["gmac_per_person"]["encode"] > 10  # HRNet-W32 + corr head at 256x256
    lat = out["latency"]["1"]
    assert {"encode", "init", "step"} <= set(lat)
    assert lat["step"]["median_ms"] > 0
