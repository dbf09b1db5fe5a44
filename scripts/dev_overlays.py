"""Compose the README's dev-set picture from a ``refit-ros eval multiview --overlay`` run.

usage: python scripts/dev_overlays.py EVAL_OUT FIXTURE_DIR OUT.png [--snapshot middle]

Takes each view's ``overlay_<snapshot>.png`` (the shaded meshes of the pipeline's bodies),
draws the ground-truth joints of that frame on it (projected with the view's K; P0 red,
P1 blue), puts the four views side by side, downsizes to 1400 px and 256 colours.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from refit_ros.evaluation.multiview_metrics import load_fixture, project


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_out", type=Path)
    ap.add_argument("fixture", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--snapshot", default="middle", choices=("first", "middle", "last"))
    ap.add_argument("--width", type=int, default=1400)
    a = ap.parse_args(argv)
    fix = load_fixture(a.fixture)
    panels = []
    for name, cam in sorted(fix.cameras.items()):
        summary = json.loads((a.eval_out / name / "summary.json").read_text())
        snap = summary["snapshots"][a.snapshot]
        img = cv2.imread(str(a.eval_out / name / snap["file"]))
        if img is None:
            print(f"no {snap['file']} in {a.eval_out / name} (run eval multiview with --overlay)",
                  file=sys.stderr)
            return 2
        f = int(snap["frame"])
        for p, colour in ((0, (40, 40, 230)), (1, (230, 80, 40))):
            if f >= fix.frames:
                continue
            for u in project(cam.to_cam(fix.joints_world[f, p]), cam.K):
                if np.all(np.isfinite(u)):
                    cv2.circle(img, (int(u[0]), int(u[1])), 11, colour, -1, cv2.LINE_AA)
                    cv2.circle(img, (int(u[0]), int(u[1])), 11, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(img, f"{name} frame {f}", (24, 70), cv2.FONT_HERSHEY_SIMPLEX, 2.2,
                    (255, 255, 255), 5, cv2.LINE_AA)
        panels.append(img)
    h = min(p.shape[0] for p in panels)
    row = np.hstack([cv2.resize(p, (int(p.shape[1] * h / p.shape[0]), h)) for p in panels])
    scale = a.width / row.shape[1]
    row = cv2.resize(row, (a.width, int(row.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    Image.fromarray(cv2.cvtColor(row, cv2.COLOR_BGR2RGB)).quantize(256).save(a.out, optimize=True)
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
