"""``refit-ros bench model``: parameters, GMACs and per-stage latency of the ReFit network.

Stages are those of the state API: ``encode`` (HRNet + correlation head), ``init`` (the
initial estimate incl. one SMPL pass) and one ``step`` of the loop (lookup, GRUs,
regressor, SMPL). A cold prediction costs encode + init + 5 steps; a warm-started tracked
person costs steps only. Weights are random and SMPL is the synthetic stand-in: latency
and MACs do not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Callable

import numpy as np
import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="hrnet_w48", choices=["hrnet_w48", "hrnet_w32"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8],
                        help="batch sizes (people per call)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per stage")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per stage")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "fp16"],
                        help="CUDA only: fp32 (TF32 off), tf32, or fp16 autocast")
    parser.add_argument("--no-macs", action="store_true", help="skip the MAC count")
    parser.add_argument("--json", action="store_true", help="print JSON only")


def _timer(fn: Callable[[], object], device: torch.device, warmup: int,
           repeats: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    # cpu_ms (all threads of this process) barely depends on other load on the machine;
    # on an idle machine wall time is about cpu_ms / threads for well-parallelised stages.
    return {"median_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95)),
            "min_ms": float(min(times)), "cpu_median_ms": float(np.median(cpu)),
            "repeats": repeats}


def _macs(fn: Callable[[], object]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2.0


def run(args: argparse.Namespace) -> int:
    from refit_ros.geometry.camera import CropCamera
    from refit_ros.models.refit import Refit, RefitAssets, RefitConfig

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        tf32 = args.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    model = Refit(RefitAssets.synthetic(), RefitConfig(backbone=args.backbone)).eval().to(device)
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in model.named_children()}
    result: dict = {
        "model": f"ReFit ({args.backbone}), random weights, synthetic SMPL",
        "device": str(device), "device_name": (torch.cuda.get_device_name(device)
                                               if device.type == "cuda" else platform.processor()
                                               or platform.machine()),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "precision": args.precision if device.type == "cuda" else "fp32",
        "params": {"total": sum(p.numel() for p in model.parameters()),
                   "by_module": {k: v for k, v in params.items() if v}},
        "gmac_per_person": None, "latency": {},
        # Other processes on the machine inflate CPU latency; the 1-minute load says how much.
        "load_average_1min": {"start": os.getloadavg()[0]},
    }
    autocast = (torch.autocast("cuda", dtype=torch.float16)
                if device.type == "cuda" and args.precision == "fp16" else None)

    def stages(b: int):
        img = torch.randn(b, 3, 256, 256, device=device)
        cam = CropCamera(center=torch.full((b, 2), 500.0), box_size=torch.full((b,), 400.0),
                         focal=torch.full((b, 2), 1500.0),
                         principal=torch.tensor([[640.0, 360.0]]).repeat(b, 1)).to(device)
        feats = model.encode(img)
        state = model.init_state(feats, cam)
        return {"encode": lambda: model.encode(img),
                "init": lambda: model.init_state(feats, cam),
                "step": lambda: model.step(state, feats, cam)}

    with torch.inference_mode():
        if autocast is not None:
            autocast.__enter__()
        try:
            if not args.no_macs:
                fns = stages(1)
                result["gmac_per_person"] = {k: _macs(f) / 1e9 for k, f in fns.items()}
                g = result["gmac_per_person"]
                g["cold_5_steps"] = g["encode"] + g["init"] + 5 * g["step"]
            for b in args.batch:
                fns = stages(b)
                lat = {k: _timer(f, device, args.warmup, args.repeats) for k, f in fns.items()}
                lat["cold_5_steps_ms_est"] = (lat["encode"]["median_ms"] + lat["init"]["median_ms"]
                                              + 5 * lat["step"]["median_ms"])
                result["latency"][str(b)] = lat
        finally:
            if autocast is not None:
                autocast.__exit__(None, None, None)

    result["load_average_1min"]["end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print(result)
    return 0


def _print(r: dict) -> None:
    print(f"{r['model']} on {r['device']} ({r['device_name']}), torch {r['torch']}, "
          f"{r['threads']} threads, {r['precision']}")
    print(f"parameters: {r['params']['total']:,}; load average {r['load_average_1min']}")
    if r["gmac_per_person"]:
        print("GMAC/person: " + ", ".join(f"{k} {v:.3f}" for k, v in r["gmac_per_person"].items()))
    for b, lat in r["latency"].items():
        parts = [f"{k} {v['median_ms']:.1f} (p95 {v['p95_ms']:.1f})" for k, v in lat.items()
                 if isinstance(v, dict)]
        print(f"batch {b}: " + ", ".join(parts) + f" ms; cold 5 steps ~{lat['cold_5_steps_ms_est']:.0f} ms")
