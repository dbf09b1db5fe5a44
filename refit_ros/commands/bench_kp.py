"""``refit-ros bench kp``: latency of ReFit-KP alone (encode + initial estimate + loop
steps, then the final full mesh), per batch and per person, as JSON."""

from __future__ import annotations

import argparse
import json
import statistics
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--weights", default="", help="ReFit-KP weights (default: shipped)")
    parser.add_argument("--batch", type=int, action="append", default=None,
                        help="people per call; repeatable (default 1 and 4)")
    parser.add_argument("--iters", type=int, default=5, help="loop steps (default 5)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per setting")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def run(args: argparse.Namespace) -> int:
    import torch

    from refit_ros.body import create_body_model
    from refit_ros.models.refit_kp.loading import load_refit_kp
    from refit_ros.training.config import load_train_config
    from refit_ros.training.synthetic import EVAL_STREAM, SceneSampler, batch_rng
    from refit_ros.models.refit_kp.evidence import KeypointEvidence
    from refit_ros.training.trainer import cpu_name

    torch.set_num_threads(args.threads)
    cfg = load_train_config(None)
    body = create_body_model(cfg.body)
    model = load_refit_kp(body, args.weights or None)
    sampler = SceneSampler(body, cfg.data)
    results = []
    for b in args.batch or [1, 4]:
        batch = sampler.sample(batch_rng(cfg.eval.seed, 10_000 + b, EVAL_STREAM), b)
        cam = batch.camera

        def loop():
            ev = KeypointEvidence.from_full_image(batch.keypoints2d, cam)
            feats = model.encode(ev)
            state = model.init_state(feats, cam)
            for _ in range(args.iters):
                state = model.step(state, feats, cam)
            return state

        def timed(fn):
            with torch.inference_mode():
                for _ in range(5):
                    fn()
                out = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    fn()
                    out.append((time.perf_counter() - t) * 1e3)
            return out

        loop_ms = timed(loop)
        state = loop()
        mesh_ms = timed(lambda: model.predict(state, cam, mesh=True))
        med_loop, med_mesh = statistics.median(loop_ms), statistics.median(mesh_ms)
        results.append({
            "batch": b, "iters": args.iters,
            "loop_ms_median": round(med_loop, 3), "loop_ms_p90": round(_p90(loop_ms), 3),
            "loop_ms_per_person": round(med_loop / b, 3),
            "final_mesh_ms_median": round(med_mesh, 3),
            "total_ms_per_person": round((med_loop + med_mesh) / b, 3),
        })
    out = {"model": "refit_kp", "body": body.name, "parameters": model.num_parameters(),
           "threads": args.threads, "cpu": cpu_name(), "torch": str(torch.__version__),
           "results": results}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for r in results:
            print(f"batch {r['batch']}: loop {r['loop_ms_median']:.2f} ms "
                  f"({r['loop_ms_per_person']:.2f} ms/person), final mesh "
                  f"{r['final_mesh_ms_median']:.2f} ms")
    return 0


def _p90(x: list[float]) -> float:
    s = sorted(x)
    return s[min(len(s) - 1, int(0.9 * len(s)))]
