"""``refit-ros bench network``: per-stage latency and FPS of a runtime backend (JSON).

Stages: preprocess, encode, init, each step, body model, postprocess; frames: cold
(init + ``--cold-iters`` steps, 5 by default) and warm (``--iters`` steps). See
:mod:`refit_ros.bench.network`. The network has random weights (and, for ``refit``, the
synthetic SMPL) unless ``--export-dir`` points at a real export: latency does not depend
on the values. For onnxruntime/tensorrt the random-weight export is made once and cached
under ``out/bench/``.

On a 2-core CPU, HRNet-W48 (``--model refit``) takes seconds per crop: keep ``--repeats``
small.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from refit_ros.cli import add_config_arguments, config_from_args

log = logging.getLogger(__name__)

#: Recorded in the export.yaml of benchmark exports (never use them for inference).
BENCH_WEIGHTS = {"source": "random weights (torch seed 0), synthetic SMPL: benchmark only"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--backend", default=None, choices=["torch", "onnxruntime", "tensorrt"],
                        help="runtime (default: runtime.backend)")
    parser.add_argument("--model", default=None, choices=["refit", "refit_kp"],
                        help="network (default: model.name)")
    parser.add_argument("--backbone", default=None, choices=["hrnet_w48", "hrnet_w32"],
                        help="refit only (default: model.backbone)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: model.device)")
    parser.add_argument("--persons", type=int, default=1, help="people per frame")
    parser.add_argument("--iters", type=int, default=None,
                        help="steps of a warm frame (default: tracking.warm_iterations)")
    parser.add_argument("--cold-iters", type=int, default=None,
                        help="steps of a cold frame (default: model.iterations)")
    parser.add_argument("--repeats", type=int, default=3, help="timed frames of each kind")
    parser.add_argument("--warmup", type=int, default=1, help="untimed frames first")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch / ONNX Runtime (0 = their default)")
    parser.add_argument("--export-dir", default=None,
                        help="onnxruntime/tensorrt: use this export instead of a cached "
                        "random-weight one")
    parser.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "int8"],
                        help="tensorrt engine precision")
    parser.add_argument("--calibration", default=None, help="tensorrt int8: calibration .npz")
    parser.add_argument("--no-cuda-graphs", action="store_true",
                        help="torch on CUDA: run the stages eagerly instead of CUDA graphs")
    parser.add_argument("--json", action="store_true", help="print JSON only")


def _network(model: str, backbone: str):
    torch.manual_seed(0)
    if model == "refit":
        from refit_ros.models.refit import Refit, RefitAssets, RefitConfig

        return Refit(RefitAssets.synthetic(), RefitConfig(backbone=backbone)).eval(), "smpl"
    from refit_ros.body.open_body import OpenBody
    from refit_ros.models.refit_kp import DEFAULT_WEIGHTS, RefitKp, load_refit_kp

    body = OpenBody()
    if Path(DEFAULT_WEIGHTS).is_file():
        return load_refit_kp(body).eval(), "open"
    return RefitKp(body).eval(), "open"


def _bench_export(net, model: str, backbone: str, body: str, iterations: int) -> Path:
    from refit_ros.config import resolve_path
    from refit_ros.export.onnx import ExportError, export_onnx, load_export

    tag = backbone if model == "refit" else "kp"
    out = resolve_path(f"out/bench/{model}-{tag}")
    try:
        m = load_export(out, {"model": model})
        if m.weights == BENCH_WEIGHTS and m.body == body:
            return out
    except ExportError:
        pass
    log.info("exporting a random-weight %s (%s) to %s once for benchmarks", model, tag, out)
    export_onnx(net, out, body=body, iterations=iterations, weights=BENCH_WEIGHTS)
    return out


def run(args: argparse.Namespace) -> int:
    from refit_ros.pipeline import resolve_backend
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.runtime.base import BackendError
    from refit_ros.bench.network import run_bench
    from refit_ros.export.onnx import ExportError

    cfg = config_from_args(args)
    model = args.model or cfg.model.name
    backbone = args.backbone or cfg.model.backbone
    device = args.device or cfg.model.device
    backend = args.backend or resolve_backend(dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, name=model, device=device)))
    cold = cfg.model.iterations if args.cold_iters is None else args.cold_iters
    warm = cfg.tracking.warm_iterations if args.iters is None else args.iters
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        if backend == "tensorrt":
            from refit_ros.runtime.tensorrt_backend import require_tensorrt

            require_tensorrt()
        if backend == "torch":
            net, _ = _network(model, backbone)
            be = FittingModel.from_network(net, device, cuda_graphs=not args.no_cuda_graphs)
        else:
            if args.export_dir:
                export_dir = Path(args.export_dir)
            else:
                net, body = _network(model, backbone)
                export_dir = _bench_export(net, model, backbone, body, cold)
            expect = {"model": model}
            if model == "refit":
                expect["backbone"] = backbone
            if backend == "onnxruntime":
                be = FittingModel.from_export("onnxruntime", export_dir, expect, device=device, threads=args.threads)
            else:
                be = FittingModel.from_export("tensorrt", export_dir, expect, precision=args.precision,
                                      max_persons=max(args.persons, 1),
                                      calibration=args.calibration)
        result = run_bench(be, persons=args.persons, cold_iters=cold, warm_iters=warm,
                           repeats=args.repeats, warmup=args.warmup)
    except (BackendError, ExportError, ValueError, RuntimeError) as exc:
        print(f"refit-ros bench network: {exc}", file=sys.stderr)
        return 2
    d = result.to_dict()
    d["model"] = {"name": model, "backbone": backbone if model == "refit" else "keypoints",
                  "weights": "random/shipped (latency only)" if not args.export_dir
                  else str(args.export_dir)}
    if args.json:
        print(json.dumps(d, indent=1))
    else:
        _print(d)
    return 0


def _print(d: dict) -> None:
    b = d["backend"]
    print(f"{d['model']['name']} on {b['backend']} ({b.get('device')}), {d['persons']} person(s), "
          f"cold {d['cold_iters']} / warm {d['warm_iters']} steps, {d['repeats']} repeats")
    for name, s in d["stages"].items():
        print(f"  {name:14s} median {s['median_ms']:9.2f} ms  p95 {s['p95_ms']:9.2f} ms")
    for kind, f in d["frames"].items():
        print(f"  {kind} frame: {f['median_ms']:.1f} ms median, p95 {f['p95_ms']:.1f} ms, "
              f"{f['fps']:.2f} FPS")
