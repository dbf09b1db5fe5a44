"""Benchmark the body models; prints one JSON object.

    refit-ros bench body [--model open|smpl-synthetic] [--device cpu|cuda]

Measures (median of repeated runs, plus the minimum, no autograd):
- ``markers_b64_ms``: markers-only forward (67 vertices) for batch 64;
- ``full_b64_ms``: full-mesh forward for batch 64, and their ratio (target >= 10x);
- ``full_b1_ms``: full-mesh forward for batch 1 (target < 5 ms on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import torch
from smplx.lbs import batch_rodrigues

from refit_ros.body.base import BodyModel


def _time_ms(fn, repeats: int, sync) -> tuple[float, float]:
    """(median, min) wall time of ``fn`` in ms; the min is robust to a busy machine."""
    for _ in range(max(3, repeats // 10)):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def bench(body: BodyModel, device: str, repeats: int) -> dict:
    body = body.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    gen = torch.Generator().manual_seed(0)

    def inputs(b):
        rot = batch_rodrigues(torch.randn(b * 24, 3, generator=gen) * 0.3).view(b, 24, 3, 3)
        return rot.to(device), torch.randn(b, body.num_betas, generator=gen).to(device)

    r64, b64 = inputs(64)
    r1, b1 = inputs(1)
    with torch.no_grad():
        markers = _time_ms(lambda: body.markers(r64, b64), repeats, sync)
        full64 = _time_ms(lambda: body(r64, b64), repeats, sync)
        full1 = _time_ms(lambda: body(r1, b1), repeats, sync)
    return {
        "model": body.name, "vertices": body.num_vertices, "markers": int(body.marker_ids.numel()),
        "device": device, "torch_threads": torch.get_num_threads(), "repeats": repeats,
        "markers_b64_ms": round(markers[0], 3), "full_b64_ms": round(full64[0], 3),
        "markers_speedup_b64": round(full64[0] / markers[0], 1), "full_b1_ms": round(full1[0], 3),
        "min_ms": {"markers_b64": round(markers[1], 3), "full_b64": round(full64[1], 3),
                   "full_b1": round(full1[1], 3)},
        "targets": {"markers_speedup_b64": ">= 10", "full_b1_ms": "< 5 (CPU)"},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=("open", "smpl-synthetic"), default="open")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model == "open":
        from refit_ros.body.open_body import OpenBody
        body = OpenBody()
    else:
        from refit_ros.body.smpl import SmplBody
        from refit_ros.body.synthetic import write_synthetic_smpl
        body = SmplBody(write_synthetic_smpl(tempfile.mkdtemp(), genders=("neutral",)))
    result = bench(body, args.device, args.repeats)
    result["cpu"] = platform.processor() or platform.machine()
    print(json.dumps(result))
    return 0

