"""scripts/gpu_check.py, the prepared GPU check of issue 14: its CPU smoke mode (ReFit-KP
only, seconds), its JSON keys, and a clear exit 2 where it cannot run. The CUDA run itself
is the device check; its test here is skipped when torch sees no CUDA device."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("gpu_check", None)


def _run(gpu_check, capsys, monkeypatch, argv):
    monkeypatch.delenv("OUT", raising=False)
    rc = gpu_check.main(argv)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, "stdout must hold exactly one JSON object"
    return rc, json.loads(lines[0])


def _check_rows(report, graphs):
    rows = report["timings"]
    assert {(r["persons"], r["cuda_graphs"]) for r in rows} == {(n, g) for n in (1, 2)
                                                               for g in graphs}
    for r in rows:
        assert r["model"] == "refit_kp" and r["cold_iters"] == 5 and r["warm_iters"] == 2
        for kind in ("cold", "warm"):
            f = r["frames"][kind]
            assert f["median_ms"] > 0 and f["network_median_ms"] > 0
            assert f["network_median_ms_per_person"] == pytest.approx(
                f["network_median_ms"] / r["persons"], rel=1e-2, abs=1e-3)
        assert {"preprocess", "encode", "init", "body", "postprocess", "step_all",
                "cold_step_5", "warm_step_2"} <= set(r["stage_median_ms"])
    assert len(report["summary"]) == len(rows)
    assert {"model", "persons", "cuda_graphs", "cold_ms", "warm_ms", "step_ms"} <= set(
        report["summary"][0])


def test_cpu_quick_refit_kp_prints_and_writes_the_json(gpu_check, capsys, monkeypatch,
                                                        tmp_path):
    out = tmp_path / "gpu_check.json"
    rc, report = _run(gpu_check, capsys, monkeypatch,
                      ["--device", "cpu", "--quick", "--models", "refit_kp", "--out", str(out)])
    assert rc == 0, report
    assert {"ok", "device", "gpu", "torch", "cuda", "python", "settings", "models", "timings",
            "summary", "parity", "errors", "skipped", "seconds"} <= set(report)
    assert report["ok"] is True and report["device"] == "cpu" and report["gpu"] is None
    assert report["torch"] == str(torch.__version__)
    assert report["errors"] == [] and report["skipped"] == []
    assert report["parity"] is None  # ReFit-KP has no reference fixture
    assert report["settings"]["cuda_graphs"] == [False]  # no CUDA graphs on the CPU
    assert report["models"]["refit_kp"]["weights"].startswith("shipped")
    _check_rows(report, [False])
    assert json.loads(out.read_text()) == report


def test_missing_fixture_is_a_clear_exit_2(gpu_check, capsys, monkeypatch, tmp_path):
    rc, report = _run(gpu_check, capsys, monkeypatch,
                      ["--device", "cpu", "--quick", "--models", "refit",
                       "--fixture", str(tmp_path / "nowhere")])
    assert rc == 2 and report["ok"] is False
    assert "fixture not found" in report["error"] and ".gpu_fixture" in report["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda_exits_2(gpu_check, capsys, monkeypatch):
    rc, report = _run(gpu_check, capsys, monkeypatch,
                      ["--device", "cuda", "--quick", "--models", "refit_kp"])
    assert rc == 2 and report["ok"] is False
    assert "sees no CUDA device" in report["error"] and "--device cpu --quick" in report["error"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch sees no device)")
def test_cuda_quick_refit_kp_with_and_without_graphs(gpu_check, capsys,
                                                     monkeypatch):  # pragma: no cover - GPU
    rc, report = _run(gpu_check, capsys, monkeypatch,
                      ["--device", "cuda", "--quick", "--models", "refit_kp"])
    assert rc == 0, report
    assert report["gpu"] and report["settings"]["cuda_graphs"] == [False, True]
    _check_rows(report, [False, True])
    for r in report["timings"]:
        assert r["graphs_captured"] == (["body", "init", "step"] if r["cuda_graphs"] else [])
