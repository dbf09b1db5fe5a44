"""``refit-ros eval``: accuracy of the default model.

``synthetic``: ReFit-KP on the fixed held-out synthetic set (per-iteration MPJPE,
PA-MPJPE, PVE, 2D reprojection). ``video``: the whole pipeline on real footage
(``refit_ros.evaluation.video``). ``temporal``: warm-started tracking vs per-frame fitting
vs One-Euro on synthetic sequences or a real clip (``refit_ros.evaluation.temporal``).
``multiview FIXTURE_DIR VIDEO_DIR --out DIR``: 3D accuracy on a calibrated multi-view rig
(``refit_ros.evaluation.multiview``).
"""

from __future__ import annotations

import argparse
import importlib
import json


def _video_module():
    try:
        return importlib.import_module("refit_ros.evaluation.video")
    except ModuleNotFoundError:
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=("synthetic", "video", "temporal", "multiview"),
                        help="what to evaluate on")
    parser.add_argument("video", nargs="?", default=None,
                        help="video file (video mode); FIXTURE_DIR (multiview mode)")
    parser.add_argument("video_dir", nargs="?", default=None,
                        help="multiview mode: folder holding <cam>.mp4 per camera")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--weights", default="",
                        help="ReFit-KP weights (default: the shipped weights)")
    parser.add_argument("--train-config", default=None,
                        help="recipe whose data/eval sections define the held-out set "
                             "(default refit_ros/training/refit_kp.yaml)")
    parser.add_argument("--samples", type=int, default=None,
                        help="held-out samples (default: the recipe's eval.size)")
    parser.add_argument("--iters", type=int, default=5, help="loop steps (default 5)")
    parser.add_argument("--no-mesh", action="store_true", help="skip PVE (faster)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    video = _video_module()
    if video is not None and hasattr(video, "add_arguments"):
        video.add_arguments(parser)
    importlib.import_module("refit_ros.evaluation.temporal").add_arguments(parser)
    importlib.import_module("refit_ros.evaluation.multiview").add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.mode == "multiview":
        return int(importlib.import_module("refit_ros.evaluation.multiview").run(args) or 0)
    if args.mode == "temporal":
        return int(importlib.import_module("refit_ros.evaluation.temporal").run(args) or 0)
    if args.mode == "video":
        video = _video_module()
        if video is None:
            raise SystemExit("refit-ros eval video: refit_ros.evaluation.video is not "
                             "available in this checkout")
        return int(video.run(args) or 0)
    return _run_synthetic(args)


def _run_synthetic(args: argparse.Namespace) -> int:
    import torch

    from refit_ros.body import create_body_model
    from refit_ros.evaluation.synthetic import evaluate_synthetic
    from refit_ros.models.refit_kp.loading import load_refit_kp
    from refit_ros.training.config import load_train_config

    torch.set_num_threads(args.threads)
    cfg = load_train_config(args.train_config)
    body = create_body_model(cfg.body)
    model = load_refit_kp(body, args.weights or None)
    size = cfg.eval.size if args.samples is None else args.samples
    res = evaluate_synthetic(model, cfg.data, cfg.eval.seed, size, args.iters,
                             mesh=not args.no_mesh)
    out = {"mode": "synthetic", "model": "refit_kp", "body": body.name, **res.to_dict()}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"held-out synthetic set: {res.samples} samples, seed {res.seed}")
        print(" iter  MPJPE  PA-MPJPE    PVE  2D(px)  2D-vs-kp(px)  root(rel)")
        for m in res.iterations:
            print(f" {m.iteration:4d} {m.mpjpe_mm:6.1f} {m.pa_mpjpe_mm:9.1f} {m.pve_mm:6.1f} "
                  f"{m.reproj_px:7.1f} {m.reproj_kp_px:13.1f} {m.root_error_rel:10.3f}")
    return 0
