#!/usr/bin/env python3
"""The prepared GPU check (issue 14): torch CUDA backend timings with and without CUDA
graphs, and CUDA parity against the ReFit reference fixture, as one JSON object.

Run it through ``scripts/gpu_check.sh`` (which installs carried wheels and sets
PYTHONPATH); ``python scripts/gpu_check.py --help`` lists the options.

What it does, all with the repo's own code:

* **timings** -- :func:`refit_ros.bench.network.run_bench` (the code of ``refit-ros bench network``)
  on the torch backend (:func:`refit_ros.pipeline.models.FittingModel.from_network`, i.e.
  :class:`refit_ros.runtime.torch_backend.TorchRunner`) with ``cuda_graphs`` off and on, for
  the official ReFit network (HRNet-W48, the fixture's rule weights and synthetic SMPL) and
  ReFit-KP (shipped weights, open body), for 1 and 8 persons, cold frames (5 steps) and
  warm frames (2 steps). Median ms per stage and per frame (whole frame and network only).
* **parity** -- on the fixture's inputs: ``refit-ros parity`` on the device (eager model,
  every intermediate, the fixture's tolerances), and the torch backend's stage graphs with
  CUDA graphs off and on (:func:`refit_ros.parity.backends.backend_outputs`, the same
  tolerances, plus max |backend - eager torch|). TF32 is off for parity (as in
  ``refit-ros parity``); one more informational run of the CUDA-graph backend under the
  flags the timings used shows what TF32 costs (not gated).

Exit status: 0 when every gated parity check passes, 1 when one fails, 2 when it cannot run
(no CUDA with ``--device cuda``, a missing package, no fixture).

On a machine without CUDA, ``--device cpu --quick`` runs the same code with tiny repeat
counts (a smoke test; CUDA graphs do not exist there, so only ``cuda_graphs: false`` rows).

Packages: torch, numpy, opencv-python-headless, pyyaml and smplx (pure Python; the only one
an NVIDIA image with PyTorch usually lacks -- ``scripts/gpu_wheels.sh`` downloads it). No
ROS, mediapipe, onnxruntime, scipy, mcap or network needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Where the fixture is looked for when --fixture is not given (first hit wins).
FIXTURE_CANDIDATES = (REPO / "shared" / "fixtures" / "refit_reference",
                      REPO / ".gpu_fixture" / "refit_reference",
                      REPO.parent / "shared" / "fixtures" / "refit_reference")
MODELS = ("refit", "refit_kp")
#: Modules the check imports; each with the package that provides it.
NEEDS = {"torch": "torch", "numpy": "numpy", "cv2": "opencv-python-headless",
         "yaml": "pyyaml", "smplx": "smplx==0.1.28 (scripts/gpu_wheels.sh)"}

log = logging.getLogger("gpu_check")


class CheckError(RuntimeError):
    """The check cannot run here (exit status 2)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke test)")
    p.add_argument("--quick", action="store_true",
                   help="tiny repeat counts (1 warm-up, 1 timed frame), persons 1 and 2")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated subset of refit,refit_kp (default both)")
    p.add_argument("--persons", default=None, help="comma-separated (default 1,8; quick 1,2)")
    p.add_argument("--cold-iters", type=int, default=5, help="steps of a cold frame")
    p.add_argument("--warm-iters", type=int, default=2, help="steps of a warm frame")
    p.add_argument("--repeats", type=int, default=None, help="timed frames (default 20; quick 1)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed frames first (default 3; quick 1); CUDA graphs are captured "
                   "in the first one")
    p.add_argument("--fixture", default=os.environ.get("REFIT_FIXTURE"),
                   help="refit_reference fixture folder (default: $REFIT_FIXTURE, then "
                   + ", ".join(str(c.relative_to(REPO.parent)) for c in FIXTURE_CANDIDATES) + ")")
    p.add_argument("--no-parity", action="store_true", help="timings only")
    p.add_argument("--budget-s", type=float, default=270.0,
                   help="start no new timing run after this many seconds (default 270: the "
                   "whole check stays under 6 minutes); skipped runs are listed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--out", default=None,
                   help="also write the JSON here (default: $OUT/gpu_check.json when $OUT is set)")
    return p.parse_args(argv)


def _csv(text: str, cast=str) -> list:
    return [cast(x) for x in text.split(",") if x.strip()]


def check_imports() -> None:
    """Every module the check needs, or a CheckError naming the missing packages."""
    import importlib

    missing = []
    for mod, pkg in NEEDS.items():
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            missing.append(f"{pkg} (import {mod}: {exc})")
    if missing:
        raise CheckError("missing Python packages: " + "; ".join(missing)
                         + ". Carry wheels: run scripts/gpu_wheels.sh here, carry .gpu_wheels, "
                         "and start through scripts/gpu_check.sh")


def find_fixture(explicit: str | None) -> Path:
    cands = [Path(explicit)] if explicit else list(FIXTURE_CANDIDATES)
    for c in cands:
        if (c / "manifest.json").is_file():
            return c.resolve()
    raise CheckError(
        "ReFit reference fixture not found (looked in " + ", ".join(map(str, cands)) + "). "
        "On a device machine ../shared does not travel: run scripts/gpu_wheels.sh here (it "
        "copies the fixture into .gpu_fixture/), carry .gpu_fixture, or pass --fixture PATH; "
        "--models refit_kp needs no fixture")


# ---------------------------------------------------------------------------- networks
def refit_network(fixture: Path):
    """The official ReFit network (HRNet-W48) with the fixture's rule weights."""
    from refit_ros.parity.fixture import load_fixture
    from refit_ros.parity.official import build_fixture_model

    fx = load_fixture(fixture)
    net, weights = build_fixture_model(fx, "cpu")
    if not weights["ok"]:
        raise CheckError(f"fixture weights do not match the manifest: {weights['mismatched']}")
    info = {"name": "refit", "backbone": fx.backbone,
            "weights": f"fixture rule weights ({fixture.name}, sha256 {weights['sha256_ok']}/"
                       f"{weights['entries']} ok)", "body": "synthetic SMPL (fixture)"}
    return net.eval(), info


def refit_kp_network():
    """ReFit-KP with the shipped weights on the open body."""
    from refit_ros.body.open_body import OpenBody
    from refit_ros.models.refit_kp import DEFAULT_WEIGHTS, load_refit_kp

    if not Path(DEFAULT_WEIGHTS).is_file():
        raise CheckError(f"shipped ReFit-KP weights missing: {DEFAULT_WEIGHTS}")
    net = load_refit_kp(OpenBody()).eval()
    return net, {"name": "refit_kp", "backbone": "keypoints",
                 "weights": f"shipped ({Path(DEFAULT_WEIGHTS).name})", "body": "open body"}


# ---------------------------------------------------------------------------- timings
def _row(model: dict, result, cuda_graphs: bool, captured: list[str]) -> dict[str, Any]:
    d = result.to_dict()
    frames = {k: {"median_ms": round(f["median_ms"], 3), "p95_ms": round(f["p95_ms"], 3),
                  "fps": round(f["fps"], 2), "iterations": f["iterations"],
                  "network_median_ms": round(f["network_median_ms"], 3),
                  "network_median_ms_per_person": round(f["network_median_ms_per_person"], 3)}
              for k, f in d["frames"].items()}
    stages = {k: round(s["median_ms"], 3) for k, s in d["stages"].items()}
    return {"model": model["name"], "persons": d["persons"], "cuda_graphs": cuda_graphs,
            "graphs_captured": captured, "cold_iters": d["cold_iters"],
            "warm_iters": d["warm_iters"], "repeats": d["repeats"], "warmup": d["warmup"],
            "frames": frames, "stage_median_ms": stages}


def time_model(net, model: dict, device: str, persons: list[int], graph_modes: list[bool],
               cold_iters: int, warm_iters: int, repeats: int, warmup: int) -> list[dict]:
    """:func:`run_bench` of the torch backend per CUDA-graph mode and person count."""
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.bench.network import run_bench

    rows = []
    for graphs in graph_modes:
        be = FittingModel.from_network(net, device, cuda_graphs=graphs)  # one per mode: graphs per batch
        for n in persons:
            t0 = time.perf_counter()
            res = run_bench(be, persons=n, cold_iters=cold_iters, warm_iters=warm_iters,
                            repeats=repeats, warmup=warmup)
            captured = list(be.describe().get("cuda_graphs", []))
            row = _row(model, res, graphs, captured)
            row["seconds"] = round(time.perf_counter() - t0, 2)
            rows.append(row)
            c, w = row["frames"]["cold"], row["frames"].get("warm", {})
            log.info("%-8s persons=%d graphs=%-5s cold %.2f ms (net %.2f)  warm %.2f ms "
                     "(net %.2f)  captured=%s", model["name"], n, graphs, c["median_ms"],
                     c["network_median_ms"], w.get("median_ms", float("nan")),
                     w.get("network_median_ms", float("nan")), captured)
        del be
    return rows


# ---------------------------------------------------------------------------- parity
def _backend_parity(fx, net, device: str, cuda_graphs: bool, eager_out) -> dict[str, Any]:
    """The torch backend's stage graphs on the fixture inputs vs the reference and vs eager
    torch (:func:`refit_ros.parity.backends.fill_comparisons`)."""
    import torch

    from refit_ros.parity.official import _inputs, check_names
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.parity.backends import (BackendParityReport, backend_outputs,
                                                fill_comparisons, summary)

    be = FittingModel.from_network(net, device, cuda_graphs=cuda_graphs)
    img, camera, iters = _inputs(fx, torch.device(device))
    t0 = time.perf_counter()
    ours = backend_outputs(be, img, camera, iters)
    if cuda_graphs:  # a second pass replays the captured graphs (the first one captured)
        ours = backend_outputs(be, img, camera, iters)
    report = BackendParityReport(
        fixture=str(fx.path), backend="torch", device=str(be.device),
        torch_version=str(torch.__version__), threads=torch.get_num_threads(), iters=iters,
        batch=int(img.shape[0]), dtype="float32", weights={"ok": True},
        state_dict_problems=check_names(net, fx.entries),
        seconds={"run": time.perf_counter() - t0}, export_dir="")
    fill_comparisons(report, fx, ours, eager_out)
    s = summary(report)
    worst_name, worst_ratio = s["reference_worst"]
    return {"ok": report.ok, "cuda_graphs": cuda_graphs,
            "graphs_captured": list(be.describe().get("cuda_graphs", [])),
            "max_abs_vs_reference": {k: c.max_abs for k, c in report.outputs.items()},
            "atol": {k: c.atol for k, c in report.outputs.items()},
            "failed": sorted(k for k, c in report.outputs.items() if not c.ok),
            "worst_vs_reference": {"output": worst_name, "max_abs_over_atol": worst_ratio},
            "max_abs_vs_eager_torch": s["max_abs_vs_torch_per_output"],
            "vs_eager_torch_bound": report.vs_torch_atol,
            "vs_eager_torch_bound_overrides": s["vs_torch_atol_overrides"],
            "not_compared": report.not_compared}


def parity(fixture: Path, net, device: str, graph_modes: list[bool],
           timing_tf32: dict[str, bool]) -> dict[str, Any]:
    """``refit-ros parity`` on ``device`` plus the torch backend with CUDA graphs off/on."""
    import torch

    from refit_ros.parity.fixture import load_fixture
    from refit_ros.parity.official import _inputs, _run_traced, run_parity

    out: dict[str, Any] = {"fixture": str(fixture), "tf32": False}

    def eager() -> dict[str, Any]:
        t0 = time.perf_counter()
        rep = run_parity(fixture, backend="torch", device=device)  # turns TF32 off on CUDA
        d = rep.to_dict()
        log.info("parity eager (refit-ros parity) on %s: %s, worst %s at %.3f x atol", device,
                 "PASS" if rep.ok else "FAIL", d["worst"]["output"],
                 d["worst"]["max_abs_over_atol"])
        return {"ok": rep.ok, "iters": rep.iters, "batch": rep.batch,
                "weights_ok": rep.weights["ok"],
                "max_abs": {k: c.max_abs for k, c in rep.outputs.items()},
                "atol": {k: c.atol for k, c in rep.outputs.items()},
                "failed": sorted(k for k, c in rep.outputs.items() if not c.ok),
                "worst": d["worst"], "seconds": round(time.perf_counter() - t0, 2)}

    out["eager"] = _guarded("parity eager", eager)
    if torch.device(device).type == "cuda":  # also when run_parity raised before setting it
        _set_tf32({"matmul": False, "cudnn": False})
    fx = load_fixture(fixture)
    net = net.to(device)
    img, camera, iters = _inputs(fx, torch.device(device))
    with torch.no_grad():
        eager_out = _run_traced(net, img, camera, iters)
    out["backend"] = {}
    for graphs in graph_modes:
        key = "cuda_graphs_on" if graphs else "cuda_graphs_off"
        r = _guarded(f"parity {key}", lambda: _backend_parity(fx, net, device, graphs,
                                                               eager_out))
        out["backend"][key] = r
        if "error" not in r:
            log.info("parity torch backend %s: %s, worst %s at %.3f x atol, max |backend - "
                     "eager| %.2e", key, "PASS" if r["ok"] else "FAIL",
                     r["worst_vs_reference"]["output"],
                     r["worst_vs_reference"]["max_abs_over_atol"],
                     max(r["max_abs_vs_eager_torch"].values(), default=float("nan")))
    if torch.device(device).type == "cuda" and any(timing_tf32.values()):
        # Informational: the flags the timings ran under (cuDNN TF32 is torch's default).
        _set_tf32(timing_tf32)
        try:
            r = _guarded("parity under the timing flags", lambda: _backend_parity(
                fx, net, device, graph_modes[-1], eager_out))
        finally:
            _set_tf32({"matmul": False, "cudnn": False})
        out["informational_timing_flags"] = {
            "tf32": timing_tf32, "gated": False, "cuda_graphs": graph_modes[-1],
            **({"error": r["error"]} if "error" in r else {
                "ok_under_fixture_tolerances": r["ok"],
                "max_abs_vs_reference": r["max_abs_vs_reference"],
                "worst_vs_reference": r["worst_vs_reference"],
                "failed": r["failed"]})}
    out["ok"] = out["eager"]["ok"] and all(r["ok"] for r in out["backend"].values())
    return out


def _guarded(name: str, fn) -> dict[str, Any]:
    """``fn()``, or ``{"ok": False, "error": ...}`` when it raises (logged with traceback):
    one failing part of the parity check must not hide the others."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - reported in the JSON
        log.exception("%s failed", name)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:]}


def _tf32() -> dict[str, bool]:
    import torch

    return {"matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn": bool(torch.backends.cudnn.allow_tf32)}


def _set_tf32(flags: dict[str, bool]) -> None:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = flags["matmul"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn"]


# ---------------------------------------------------------------------------- main
def run_check(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    check_imports()
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CheckError(f"--device {args.device}: torch {torch.__version__} sees no CUDA device "
                         f"(torch.cuda.is_available() is False; torch.version.cuda="
                         f"{torch.version.cuda}). Run on the GPU machine, or smoke-test here "
                         "with --device cpu --quick")
    if device.type not in ("cuda", "cpu"):
        raise CheckError(f"--device must be cuda or cpu, got {args.device!r}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    models = _csv(args.models)
    unknown = sorted(set(models) - set(MODELS))
    if unknown or not models:
        raise CheckError(f"--models: unknown {unknown}; choose from {list(MODELS)}")
    persons = _csv(args.persons, int) if args.persons else ([1, 2] if args.quick else [1, 8])
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    graph_modes = [False, True] if device.type == "cuda" else [False]
    fixture = find_fixture(args.fixture) if "refit" in models else None

    report: dict[str, Any] = {
        "check": "gpu_check", "ok": None, "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": str(torch.__version__), "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "quick": bool(args.quick),
        "settings": {"models": models, "persons": persons, "cold_iters": args.cold_iters,
                     "warm_iters": args.warm_iters, "repeats": repeats, "warmup": warmup,
                     "cuda_graphs": graph_modes},
        "timing_tf32": _tf32() if device.type == "cuda" else None,
        "models": {}, "timings": [], "summary": [], "parity": None, "errors": [],
        "skipped": [], "seconds": {}}
    flags = report["timing_tf32"] or {"matmul": False, "cudnn": False}
    out_path = args.out

    def section(name: str, fn) -> Any:
        """Run one part; an exception is recorded (not fatal: one device run must bring
        back everything that worked) and the partial report is written."""
        t0 = time.perf_counter()
        try:
            return fn()
        except CheckError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded in the JSON, exit status 1
            log.exception("%s failed", name)
            report["errors"].append({"section": name, "error": f"{type(exc).__name__}: {exc}",
                                     "traceback": traceback.format_exc()[-4000:]})
            return None
        finally:
            report["seconds"][name] = round(time.perf_counter() - t0, 2)
            _write(report, out_path)

    nets = {}
    for name in models:
        built = section(f"build_{name}", lambda: refit_network(fixture) if name == "refit"
                        else refit_kp_network())
        if built is not None:
            nets[name], report["models"][name] = built
            log.info("built %s (%s) in %.1f s", name, built[1]["weights"],
                     report["seconds"][f"build_{name}"])
    # Parity first (the gate; seconds on a GPU), with TF32 off as refit-ros parity has it;
    # then the timings under torch's default flags (what the node runs with).
    if "refit" in nets and not args.no_parity:
        report["parity"] = section("parity", lambda: parity(fixture, nets["refit"], str(device),
                                                            graph_modes, flags))
        if device.type == "cuda":
            _set_tf32(flags)
    for name in sorted(nets, key=lambda m: m != "refit_kp"):  # the fast one first
        for graphs in graph_modes:
            for n in persons:
                tag = f"timings_{name}_{'graphs' if graphs else 'eager'}_{n}"
                if time.perf_counter() - t_start > args.budget_s:
                    report["skipped"].append(tag)
                    log.warning("skipping %s: past the --budget-s of %.0f s", tag, args.budget_s)
                    continue
                rows = section(tag, lambda: time_model(
                    nets[name], report["models"][name], str(device), [n], [graphs],
                    args.cold_iters, args.warm_iters, repeats, warmup))
                report["timings"] += rows or []
                report["summary"] = [_summary(r) for r in report["timings"]]
    parity_ok = report["parity"] is None or bool(report["parity"]["ok"])
    report["ok"] = parity_ok and not report["errors"] and not report["skipped"] and (
        report["parity"] is not None or "refit" not in models or args.no_parity)
    report["seconds"]["total"] = round(time.perf_counter() - t_start, 2)
    return report


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    """One flat line per timing row (easy to put in a README table)."""
    cold, warm = r["frames"]["cold"], r["frames"].get("warm", {})
    return {"model": r["model"], "persons": r["persons"], "cuda_graphs": r["cuda_graphs"],
            "cold_ms": cold["median_ms"], "cold_network_ms": cold["network_median_ms"],
            "warm_ms": warm.get("median_ms"), "warm_network_ms": warm.get("network_median_ms"),
            "step_ms": r["stage_median_ms"].get("step_all"),
            "encode_ms": r["stage_median_ms"].get("encode")}


def _write(report: dict[str, Any], out: str | None) -> str | None:
    path = out or (str(Path(os.environ["OUT"]) / "gpu_check.json") if os.environ.get("OUT")
                   else None)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1, default=str) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="[gpu_check] %(message)s",
                            stream=sys.stderr)
    log.setLevel(logging.INFO)
    try:
        report = run_check(args)
    except CheckError as exc:
        err = {"check": "gpu_check", "ok": False, "error": str(exc), "device": args.device}
        print(json.dumps(err), flush=True)
        _write(err, args.out)
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, default=str), flush=True)
    path = _write(report, args.out)
    if path:
        log.info("wrote %s", path)
    if not report["ok"]:
        log.error("gpu_check FAILED: parity ok=%s, errors in %s, skipped %s (see the JSON: "
                  "parity.eager.failed, parity.backend.*.failed, errors)",
                  None if report["parity"] is None else report["parity"]["ok"],
                  [e["section"] for e in report["errors"]], report["skipped"])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
