"""``refit-ros eval multiview FIXTURE_DIR VIDEO_DIR --out DIR``: 3D accuracy on a calibrated rig.

Runs the node's pipeline (the same :func:`refit_ros.pipeline.build_pipeline` and the same
offline runner as ``refit-ros video``) on every view's video ``VIDEO_DIR/<cam>.mp4`` with that
view's calibration ``FIXTURE_DIR/<cam>.yaml``, writes ``DIR/<cam>/bodies.jsonl`` (the
``refit-ros video`` format, + ``summary.json``, + overlays with ``--overlay``), and scores
the bodies against the fixture's triangulated ground truth
(:mod:`refit_ros.evaluation.multiview_metrics`). It also reports, per view, how well the
published bodies reproject onto the detector's own landmarks (``reproj_rel``: median
projected-joint-to-landmark distance, fraction of box height), the check that tells a
mesh beside the person from a wrong 3D pose.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from refit_ros.evaluation.multiview_metrics import (FixtureError, evaluate, final_line,
                                                    load_fixture, read_bodies_jsonl,
                                                    report_lines)

log = logging.getLogger(__name__)


class _ReprojectionSink:
    """Collects ``joint_errors`` (projected joints vs the body's own landmarks) per body."""

    def __init__(self) -> None:
        self.errors: list[np.ndarray] = []

    def write_frame(self, stamp_s, rgb, intrinsics, result) -> None:
        from refit_ros.evaluation.video import joint_errors

        for b in result.bodies:
            self.errors.append(joint_errors(b.joints, b.keypoints2d, b.bbox, intrinsics))

    def close(self) -> None:
        pass

    def summary(self) -> dict[str, Any]:
        e = np.concatenate(self.errors) if self.errors else np.zeros(0)
        e = e[np.isfinite(e)]
        return {"reproj_rel_median": float(np.median(e)) if e.size else float("nan"),
                "reproj_rel_p90": float(np.percentile(e, 90)) if e.size else float("nan"),
                "reproj_joints": int(e.size)}


def run_views(cfg, fixture_dir: Path, video_dir: Path, out_dir: Path, views: list[str],
              overlay: bool = False, max_frames: int | None = None,
              progress: bool = False) -> dict[str, dict[str, Any]]:
    """Run the pipeline on each view; returns per view the reprojection summary + timing."""
    from refit_ros.io.camera_info import load_camera_info
    from refit_ros.io.frames import open_source
    from refit_ros.io.runner import RunOptions, run_offline
    from refit_ros.pipeline import build_pipeline
    from refit_ros.pipeline import resolve_backend

    pipeline = build_pipeline(cfg)
    out: dict[str, dict[str, Any]] = {}
    for name in views:
        source = open_source(str(video_dir / f"{name}.mp4"), cfg.source.rate)
        intrinsics = load_camera_info(fixture_dir / f"{name}.yaml")
        sink = _ReprojectionSink()
        options = RunOptions(
            out_dir=out_dir / name, max_frames=max_frames, overlay=overlay, progress=progress,
            info={"backend": resolve_backend(cfg), "model": cfg.model.name,
                  "body_model": cfg.body.model, "config": cfg.to_dict()},
            sinks=(("reprojection", sink),))
        summary = run_offline(source, pipeline, options, intrinsics)   # resets the pipeline
        out[name] = sink.summary() | {"pipeline_fps": summary["pipeline_fps"],
                                      "frames": summary["frames"],
                                      "track_ids": summary["track_ids"]}
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("multiview mode (FIXTURE_DIR VIDEO_DIR)")
    g.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="multiview: output folder (DIR/<cam>/bodies.jsonl, DIR/eval.json)")
    g.add_argument("--views", default=None, help="multiview: comma-separated cameras "
                   "(default: all cameras of the fixture)")
    g.add_argument("--match-frac", type=float, default=0.3,
                   help="multiview: a body matches a person below this mean 2D distance "
                        "(fraction of the person's projected height)")
    g.add_argument("--min-views", type=int, default=None,
                   help="multiview: GT joints from fewer views count as invalid")
    g.add_argument("--overlay", action="store_true",
                   help="multiview: also write overlay.mp4 + PNGs per view")
    g.add_argument("--score-only", action="store_true",
                   help="multiview: score the bodies.jsonl already in --out (no pipeline run)")


def run(args: argparse.Namespace) -> int:
    from refit_ros.cli import config_from_args
    from refit_ros.io.camera_info import CameraInfoError
    from refit_ros.io.frames import FrameSourceError

    if not args.video or not args.video_dir or args.out is None:
        print("usage: refit-ros eval multiview FIXTURE_DIR VIDEO_DIR --out DIR [--json] "
              "[--set k=v]", file=sys.stderr)
        return 2
    fixture_dir, video_dir = Path(args.video), Path(args.video_dir)
    try:
        fixture = load_fixture(fixture_dir)
    except FixtureError as exc:
        print(f"refit-ros eval multiview: {exc}", file=sys.stderr)
        return 2
    views = args.views.split(",") if args.views else sorted(fixture.cameras)
    unknown = [v for v in views if v not in fixture.cameras]
    if unknown:
        print(f"refit-ros eval multiview: unknown cameras {unknown}; the fixture has "
              f"{sorted(fixture.cameras)}", file=sys.stderr)
        return 2
    run_info: dict[str, Any] = {}
    if not args.score_only:
        missing = [str(video_dir / f"{v}.mp4") for v in views if not (video_dir / f"{v}.mp4").is_file()]
        missing += [str(fixture_dir / f"{v}.yaml") for v in views if not (fixture_dir / f"{v}.yaml").is_file()]
        if missing:
            print(f"refit-ros eval multiview: missing {', '.join(missing)}", file=sys.stderr)
            return 2
        cfg = config_from_args(args)
        try:
            run_info = run_views(cfg, fixture_dir, video_dir, args.out, views,
                                 overlay=args.overlay, max_frames=args.max_frames,
                                 progress=False)
        except (FrameSourceError, CameraInfoError) as exc:
            print(f"refit-ros eval multiview: {exc}", file=sys.stderr)
            return 2
    bodies = {v: read_bodies_jsonl(args.out / v / "bodies.jsonl", fixture.frames) for v in views}
    res = evaluate(fixture, bodies, match_frac=args.match_frac, min_views=args.min_views,
                   views=views)
    for v, info in run_info.items():
        res["views"][v].update(info)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(res, indent=1, default=_json) + "\n",
                                        encoding="utf-8")
    if args.json:
        print(json.dumps(_brief(res), indent=2, default=_json))
    else:
        for line in report_lines(res):
            print(line)
        if run_info:
            print("reprojection onto the detector's landmarks (median, fraction of box height):")
            for v, info in run_info.items():
                print(f"  {v}: {info['reproj_rel_median']:.3f} (p90 {info['reproj_rel_p90']:.3f}), "
                      f"pipeline {info['pipeline_fps']} FPS")
        print(final_line(res))
    return 0


def _brief(res: dict[str, Any]) -> dict[str, Any]:
    """The JSON printed by ``--json``: everything but the per-frame lists (in eval.json)."""
    out = {k: v for k, v in res.items() if k != "views"}
    out["views"] = {}
    for name, v in res["views"].items():
        out["views"][name] = {k: x for k, x in v.items() if k != "persons"}
        out["views"][name]["persons"] = {
            pk: {k: x for k, x in pv.items() if k != "per_frame"} for pk, pv in v["persons"].items()}
    return out


def _json(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
