#!/usr/bin/env python3
"""Render the shipped open body in a few poses to a PNG (for the README and for a look).

    python scripts/render_open_body.py --out docs/img/open_body.png

Panels: T-pose (with the 67 markers in red and the BlazePose landmarks in blue), arms
down (the stored mean pose), a 90-degree left-elbow bend, a walking step, and a tall and a
short adult (betas[0] set from stature). Uses the project's z-buffer rasteriser.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from smplx.lbs import batch_rodrigues

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from refit_ros.body.open_body import OpenBody  # noqa: E402
from refit_ros.geometry.intrinsics import Intrinsics  # noqa: E402
from refit_ros.render.raster import rasterize  # noqa: E402

log = logging.getLogger("render_open_body")

PANEL_W, PANEL_H = 300, 520
SKIN = np.array([222, 184, 160], float)  # RGB
LIGHT = np.array([0.35, 0.45, 0.82])
YAWS = (0.0, 20.0, 35.0, 70.0)  # view turn per pose panel, degrees


def _rot(axis_angle) -> torch.Tensor:
    return batch_rodrigues(torch.tensor([axis_angle], dtype=torch.float32))[0]


def poses(body: OpenBody) -> list[tuple[str, torch.Tensor]]:
    """Named B=1 rotation sets (1 x 24 x 3 x 3)."""
    eye = torch.eye(3).expand(1, 24, 3, 3).clone()
    down = body.mean_rotmat().clone()
    elbow = down.clone()
    elbow[0, 18] = _rot([0.0, -math.pi / 2, 0.0])  # left forearm forward
    walk = down.clone()
    walk[0, 1], walk[0, 4] = _rot([-0.45, 0, 0]), _rot([0.25, 0, 0])    # left leg forward
    walk[0, 2], walk[0, 5] = _rot([0.3, 0, 0]), _rot([0.55, 0, 0])      # right leg back
    walk[0, 7] = _rot([0.15, 0, 0])
    walk[0, 16] = _rot([0.45, 0, 0]) @ down[0, 16]                      # arms swing
    walk[0, 17] = _rot([-0.45, 0, 0]) @ down[0, 17]
    return [("T-pose + markers", eye), ("arms down", down), ("left elbow 90 deg", elbow),
            ("walking", walk)]


def render_panel(verts: np.ndarray, faces: np.ndarray, yaw_deg: float, scale_h: float,
                 points: list[tuple[np.ndarray, tuple[int, int, int]]] = (),
                 centre=(0.0, -0.12, 0.0), width: int | None = None) -> np.ndarray:
    """One RGB panel of a body (SMPL frame) seen from the front, turned by ``yaw_deg``.

    ``scale_h`` metres fill the panel height around ``centre``; ``points`` are drawn as
    dots where visible.
    """
    pw = width or PANEL_W
    yaw = math.radians(yaw_deg)
    rot = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0],
                    [-math.sin(yaw), 0, math.cos(yaw)]])
    centre = np.asarray(centre, float)
    dist = 6.0
    f = PANEL_H * dist / scale_h

    def to_cam(p):
        q = (p - centre) @ rot.T
        return np.stack([q[:, 0], -q[:, 1], dist - q[:, 2]], 1)

    cam = to_cam(verts)
    intr = Intrinsics(fx=f, fy=f, cx=pw / 2, cy=PANEL_H / 2, width=pw, height=PANEL_H)
    raster = rasterize(cam, faces, intr)
    normals = _vertex_normals(cam, faces)
    n = np.einsum("mk,mkc->mc", raster.bary, normals[faces[raster.face]])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    light = LIGHT * np.array([1, -1, -1]) / np.linalg.norm(LIGHT)  # towards the camera side
    shade = 0.3 + 0.7 * np.clip(n @ light, 0, 1)
    img = np.full((PANEL_H * pw, 3), 245, np.uint8)
    img[raster.pixel] = np.clip(SKIN[None] * shade[:, None], 0, 255).astype(np.uint8)
    img = img.reshape(PANEL_H, pw, 3)
    depth = raster.depth_map()
    for p, color in points:
        pc = to_cam(p[None])[0]
        u, v = intr.project(pc[None])[0]
        ui, vi = int(round(u)), int(round(v))
        if 0 <= vi < PANEL_H and 0 <= ui < pw and pc[2] <= depth[vi, ui] + 0.01:
            cv2.circle(img, (ui, vi), 3, color, -1, cv2.LINE_AA)
    return img


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, f[:, k], fn)
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/img/open_body.png")
    parser.add_argument("--data", default=None, help="open body npz (default: packaged)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    body = OpenBody(args.data) if args.data else OpenBody()
    faces = body.faces.numpy()
    zero = torch.zeros(1, body.num_betas)
    panels = []
    with torch.no_grad():
        for i, (title, rotmat) in enumerate(poses(body)):
            out = body(rotmat, zero)
            verts = out.vertices[0].numpy()
            pts = []
            if i == 0:
                pts += [(verts[m], (220, 30, 30)) for m in body.marker_ids.numpy()]
                lm = body.landmarks(rotmat, zero)[0].numpy()
                pts += [(p, (30, 80, 230)) for p in lm]
            yaw, width = YAWS[i], (560 if i == 0 else None)
            panels.append(_titled(render_panel(verts, faces, yaw, 2.0, pts, width=width), title))
        for height in (1.90, 1.55):
            betas = body.betas_for_height(torch.tensor([height]))
            verts = body(body.mean_rotmat(), betas).vertices[0].numpy()
            measured = verts[:, 1].max() - verts[:, 1].min()
            rest = body(torch.eye(3).expand(1, 24, 3, 3), betas).vertices[0].numpy()
            stature = rest[:, 1].max() - rest[:, 1].min()
            panels.append(_titled(render_panel(verts, faces, 0.0, 2.0),
                                  f"stature {stature:.2f} m"))
            log.info("betas for %.2f m -> T-pose stature %.3f m (arms down %.3f)", height,
                     stature, measured)
    img = np.concatenate(panels, 1)
    cv2.putText(img, f"{body.name}: {body.num_vertices} vertices, 24 SMPL joints, "
                f"{len(body.marker_ids)} markers (red), BlazePose landmarks (blue)",
                (8, PANEL_H - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    log.info("wrote %s (%d x %d)", args.out, img.shape[1], img.shape[0])
    return 0


def _titled(img: np.ndarray, title: str) -> np.ndarray:
    cv2.putText(img, title, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1, cv2.LINE_AA)
    return img


if __name__ == "__main__":
    sys.exit(main())
