#!/usr/bin/env python
"""Benchmark the CPU overlay renderer: two overlapping bodies over a 640x480 frame.

Prints one JSON object (FPS of the full ``render_overlay`` call: rasterise, shade, blend,
boxes). The bodies are ellipsoid mannequins (``--detail 1``: ~6,700 vertices each,
``--detail 2``: ~12,800) or, with ``--body open``, the shipped open body in its zero pose,
placed so one partly hides the other.

    refit-ros bench render [--body open] [--width 640 --height 480]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.pipeline.types import Body, FrameResult
from refit_ros.render.overlay import OverlayStyle, render_overlay
from refit_ros.render.primitives import mannequin


def _open_body() -> tuple[np.ndarray, np.ndarray]:
    """The open body in its zero pose, turned to face the camera, feet at the origin."""
    import torch

    from refit_ros.body.open_body import OpenBody

    body = OpenBody()
    rot = torch.eye(3).repeat(1, 24, 1, 1)
    rot[0, 0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # body y up, z front -> camera
    with torch.no_grad():
        verts = body(rot, torch.zeros(1, body.num_betas)).vertices[0].double().numpy()
    verts[:, 1] -= verts[:, 1].max()
    return verts, body.faces.numpy()


def _frame(width: int, height: int, detail: int, body: str) -> tuple[np.ndarray, FrameResult]:
    intr = Intrinsics.fallback(width, height)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    bodies, faces = [], None
    shape = _open_body() if body == "open" else None
    for track, pos in enumerate(((-0.25, 0.85, 3.2), (0.2, 0.85, 4.0))):
        if shape is None:
            verts, faces = mannequin(pos, detail=detail)
        else:
            verts, faces = shape[0] + pos, shape[1]
        uv = intr.project(verts)
        bbox = np.concatenate([uv.min(0), uv.max(0)])
        bodies.append(Body(track, body, "neutral", np.zeros(72), np.zeros(10),
                           np.asarray(pos, float), np.zeros((24, 3)) + pos, verts, bbox, 1.0))
    return image, FrameResult(bodies, faces, intr, {})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--body", default="mannequin", choices=("mannequin", "open"))
    parser.add_argument("--detail", type=int, default=2, choices=(1, 2),
                        help="mannequin resolution")
    parser.add_argument("--skeleton", action="store_true")


def run(args: argparse.Namespace) -> int:

    image, result = _frame(args.width, args.height, args.detail, args.body)
    style = OverlayStyle(skeleton=args.skeleton)
    render_overlay(image, result, style)  # warm-up
    times = []
    for _ in range(args.frames):
        t0 = time.perf_counter()
        render_overlay(image, result, style)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(json.dumps({
        "benchmark": "render_overlay", "body": args.body,
        "width": args.width, "height": args.height, "bodies": len(result.bodies),
        "vertices_per_body": int(len(result.bodies[0].vertices)),
        "faces_per_body": int(len(result.faces)),
        "frames": args.frames,
        "median_ms": round(1e3 * median, 2),
        "fps_median": round(1.0 / median, 1),
        "fps_mean": round(len(times) / sum(times), 1),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }))
    return 0

