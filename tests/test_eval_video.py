"""``refit-ros eval video``: metrics on a stand-in pipeline with known answers, and the CLI.

The pipeline here is a test double (no network, no detector): every other frame it returns
one body whose projected joints sit a known fraction of the box height from the landmarks,
so detection rate and the 2D agreement are known exactly. The real pipeline runs the same
code path through ``refit-ros eval video``.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from refit_ros.evaluation.video import JOINT_PAIRS, evaluate_video, joint_errors
from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.io.frames import Frame
from refit_ros.pipeline.types import Body, FrameResult

W, H = 320, 240
INTR = Intrinsics.fallback(W, H)
BOX = np.array([100.0, 20.0, 180.0, 220.0])  # 200 px tall
OFFSET = 0.03  # landmarks 3% of the box height right of the projected joints


def make_body(offset: float = OFFSET) -> Body:
    rng = np.random.default_rng(0)
    joints = np.column_stack([rng.uniform(-0.3, 0.3, 24), rng.uniform(-0.8, 0.8, 24),
                              np.full(24, 4.0)])
    kp = np.zeros((33, 3), np.float32)
    kp[:, 2] = 0.9
    for _, smpl, lm in JOINT_PAIRS:
        x, y = INTR.project(joints[smpl][None])[0]
        kp[lm] = (x + offset * 200.0, y, 0.9)
    kp[JOINT_PAIRS[0][2], :2] += 80.0  # a wild landmark ...
    kp[JOINT_PAIRS[0][2], 2] = 0.1      # ... that the detector is unsure of: not compared
    return Body(track_id=0, body_model="test", gender="neutral", pose=np.zeros(72),
                betas=np.zeros(10), transl=np.zeros(3), joints=joints, vertices=None,
                bbox=BOX.copy(), score=0.9, keypoints2d=kp)


class StubPipeline:
    """One body on even frames, none on odd ones."""

    def __init__(self) -> None:
        self.resets = 0
        self.stamps: list[float] = []

    def reset(self) -> None:
        self.resets += 1

    def process(self, image_rgb, intrinsics=None, stamp=0.0) -> FrameResult:
        self.stamps.append(stamp)
        bodies = [make_body()] if len(self.stamps) % 2 == 1 else []
        return FrameResult(bodies=bodies, faces=np.zeros((0, 3), int),
                           intrinsics=intrinsics or INTR, timings_ms={"detect": 1.0, "total": 2.0})


def frames(n: int):
    for i in range(n):
        yield Frame(i, i / 30.0, np.zeros((H, W, 3), np.uint8))


def test_joint_errors_known_offset():
    body = make_body()
    err = joint_errors(body.joints, body.keypoints2d, body.bbox, INTR)
    assert np.isnan(err[0])  # the unsure landmark
    np.testing.assert_allclose(err[1:], OFFSET, atol=1e-6)
    assert np.all(np.isnan(joint_errors(body.joints, None, body.bbox, INTR)))


def test_evaluate_video_rates_and_median():
    pipe = StubPipeline()
    res = evaluate_video(pipe, frames(10))
    assert pipe.resets == 1 and pipe.stamps[1] == pytest.approx(1 / 30)
    assert res.frames == 10 and res.rate_ge1 == 0.5 and res.rate_ge2 == 0.0
    assert res.people_per_frame == [5, 5] and res.bodies == 5
    assert res.joints_compared == 5 * (len(JOINT_PAIRS) - 1)
    assert res.median_rel == pytest.approx(OFFSET, abs=1e-4)
    assert res.within_5pct == 1.0
    assert res.per_joint_median_rel["left_shoulder"] is None
    assert res.per_joint_median_rel["right_ankle"] == pytest.approx(OFFSET, abs=1e-4)
    assert res.stage_median_ms == {"detect": 1.0, "total": 2.0}
    json.dumps(res.to_dict())  # serialisable
    assert evaluate_video(StubPipeline(), frames(10), max_frames=3).frames == 3


def test_cli_eval_video_json(tmp_path, monkeypatch, capsys):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (W, H))
    for _ in range(4):
        writer.write(np.zeros((H, W, 3), np.uint8))
    writer.release()
    import refit_ros.pipeline as pipeline_pkg

    monkeypatch.setattr(pipeline_pkg, "build_pipeline", lambda cfg: StubPipeline())
    from refit_ros.cli import main

    assert main(["eval", "video", str(video), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "video" and out["frames"] == 4 and out["rate_ge1"] == 0.5
    assert out["median_rel"] == pytest.approx(OFFSET, abs=1e-4)
    assert out["intrinsics"] == "fallback"
    assert main(["eval", "video"]) == 2  # no file given
