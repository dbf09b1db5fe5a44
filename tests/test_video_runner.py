"""``refit-ros video`` / :func:`run_offline` end to end on synthetic footage.

The pipeline here is a small real one (test-only, no learned model): it finds bright
upright rectangles ("people") by thresholding, and places a 1.7 m ellipsoid mannequin
where a person of that height must stand to project onto the rectangle (depth
``z = fy * 1.7 / box height``). So the outputs have known, checkable values.
"""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from refit_ros.cli import main
from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.io.frames import open_source
from refit_ros.io.runner import RunOptions, run_offline
from refit_ros.pipeline.types import Body, FrameResult
from refit_ros.render.annotate import track_color
from refit_ros.render.primitives import mannequin

HEIGHT_M = 1.7
W, H = 160, 120
BOXES = [(20, 20, 24, 80), (110, 40, 16, 50)]  # x, y, w, h of each "person" in frame 0


class BlobPipeline:
    """Bright rectangles -> mannequins at the depth implied by their pixel height."""

    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def process(self, image_rgb, intrinsics=None, stamp=0.0):
        t0 = time.perf_counter()
        h, w = image_rgb.shape[:2]
        intr = intrinsics or Intrinsics.fallback(w, h)
        mask = (image_rgb.min(axis=2) > 200).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        blobs = sorted((s for s in stats[1:] if s[4] > 50), key=lambda s: s[0])
        bodies, faces = [], None
        for track, (x, y, bw, bh, _) in enumerate(blobs):
            z = intr.fy * HEIGHT_M / bh
            feet = np.array([(x + (bw - 1) / 2 - intr.cx) * z / intr.fx,
                             (y + bh - 1 - intr.cy) * z / intr.fy, z])
            verts, faces = mannequin(feet, HEIGHT_M)
            joints = np.linspace(feet - [0, HEIGHT_M, 0], feet, 24)
            bodies.append(Body(track, "mannequin", "neutral", np.zeros(72), np.zeros(10), feet,
                               joints, verts, np.array([x, y, x + bw - 1, y + bh - 1], float), 0.9))
        ms = 1e3 * (time.perf_counter() - t0)
        return FrameResult(bodies, faces, intr, {"detect": ms, "total": ms})


def _frames(tmp_path, n=9):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        img = np.full((H, W, 3), 30, np.uint8)
        for k, (x, y, bw, bh) in enumerate(BOXES):
            dx = 2 * i if k == 0 else -2 * i
            img[y:y + bh, x + dx:x + dx + bw] = 255
        assert cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    return folder


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_outputs_hold_the_geometry(tmp_path):
    source = open_source(_frames(tmp_path), rate=5.0)
    pipe = BlobPipeline()
    out = tmp_path / "out"
    summary = run_offline(source, pipe, RunOptions(out, info={"backend": "torch"}))
    assert pipe.resets == 1
    lines = _read_jsonl(out / "bodies.jsonl")
    assert [r["frame"] for r in lines] == list(range(9))
    assert lines[4]["stamp"] == pytest.approx(0.8)
    f = Intrinsics.fallback(W, H).fy
    for rec in lines:
        near, far = rec["bodies"]
        assert near["transl"][2] == pytest.approx(f * HEIGHT_M / 80, rel=1e-4)
        assert far["transl"][2] == pytest.approx(f * HEIGHT_M / 50, rel=1e-4)
        assert (len(near["pose"]), len(near["betas"]), len(near["transl"])) == (72, 10, 3)
        assert np.shape(near["joints"]) == (24, 3) and len(near["bbox"]) == 4
        assert [near["track_id"], far["track_id"]] == [0, 1]
    assert lines[3]["bodies"][0]["bbox"] == [26.0, 20.0, 49.0, 99.0]

    saved = json.loads((out / "summary.json").read_text())
    assert saved == summary
    assert summary["frames"] == 9 and summary["bodies"] == 18 and summary["input_fps"] == 5.0
    assert summary["intrinsics"]["is_fallback"] is True and summary["backend"] == "torch"
    assert set(summary["latency_ms_median"]) == {"detect", "total"}
    assert summary["track_ids"] == [0, 1] and summary["pipeline_fps"] > 0
    assert [s["frame"] for s in summary["snapshots"].values()] == [0, 4, 8]

    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 9
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (W, H)
    cap.release()
    png = cv2.imread(str(out / "overlay_middle.png"))[..., ::-1].astype(int)
    # frame 4: the near person's torso is painted in track 0's colour over the white blob
    torso = png[45, 20 + 8 + 12]
    expected = np.array(track_color(0))
    assert np.argmax(torso) == np.argmax(expected) and torso.min() < 200
    assert tuple(png[5, 80]) == (30, 30, 30)  # background untouched


def test_camera_info_and_max_frames(tmp_path):
    calib = Intrinsics(400.0, 400.0, 159.5, 119.5, 320, 240)  # twice the frame size
    out = tmp_path / "out"
    summary = run_offline(open_source(_frames(tmp_path)), BlobPipeline(),
                          RunOptions(out, max_frames=3, overlay=False), calib)
    assert summary["frames"] == 3 and summary["intrinsics"]["fx"] == 200.0
    assert summary["intrinsics"]["is_fallback"] is False
    near = _read_jsonl(out / "bodies.jsonl")[0]["bodies"][0]
    assert near["transl"][2] == pytest.approx(200.0 * HEIGHT_M / 80, rel=1e-4)
    assert sorted(p.name for p in out.iterdir()) == ["bodies.jsonl", "summary.json"]


def test_cli(tmp_path, monkeypatch, capsys):
    import refit_ros.pipeline

    monkeypatch.setattr(refit_ros.pipeline, "build_pipeline", lambda cfg: BlobPipeline(),
                        raising=False)
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (W, H))
    for img in sorted((_frames(tmp_path, 4)).iterdir()):
        writer.write(cv2.imread(str(img)))
    writer.release()
    calib = tmp_path / "cam.yaml"
    calib.write_text("image_width: 160\nimage_height: 120\n"
                     "camera_matrix: {rows: 3, cols: 3, data: [150, 0, 80, 0, 150, 60, 0, 0, 1]}\n")
    out = tmp_path / "out"
    rc = main(["video", str(clip), "--out", str(out), "--camera-info", str(calib),
               "--set", "model.iterations=3", "--skeleton", "--no-progress"])
    assert rc == 0 and "4 frames, 8 bodies" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input_fps"] == pytest.approx(15.0) and summary["intrinsics"]["fx"] == 150
    assert summary["config"]["model"]["iterations"] == 3 and summary["model"] == "refit_kp"
    assert {"overlay.mp4", "overlay_first.png", "overlay_last.png"} <= {p.name for p in out.iterdir()}

    assert main(["video", str(tmp_path / "nope.mp4"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["video", str(clip), "--out", str(out), "--set", "model.nope=1"]) == 2
    assert "unknown config key" in capsys.readouterr().err
