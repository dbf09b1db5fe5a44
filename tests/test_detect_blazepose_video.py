"""BlazePose in VIDEO mode: timestamps, tracking restarts, max_people, build_detector.

One VIDEO-mode detector for the module (the machine is small and shared).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from skimage import data

from refit_ros.config import load_config
from refit_ros.detect import build_detector
from refit_ros.detect.blazepose import BlazePoseDetector


@pytest.fixture(scope="module")
def video_detector():
    det = build_detector(load_config(overrides={"detector.max_people": 1}), video=True)
    yield det
    det.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def test_build_detector_blazepose(video_detector):
    assert isinstance(video_detector, BlazePoseDetector)
    assert video_detector.video and video_detector.max_people == 1
    assert video_detector.min_score == pytest.approx(0.5)
    assert video_detector.has_keypoints


def test_tracks_over_frames_with_any_timestamps(video_detector, astronaut, caplog):
    video_detector.reset()
    points = []
    # increasing, repeated, slightly earlier (nudged forward) and default-clock timestamps;
    # the last one (5 s) makes the jump back to 0 below certain to exceed 1 s
    for ts in (0.0, 1 / 30, 1 / 30, 0.02, 0.1, None, None, 5.0):
        dets = video_detector.detect(astronaut, timestamp_s=ts)
        assert len(dets) == 1
        points.append(dets[0].keypoints2d[[0, 11, 12], :2])  # nose, shoulders
    # The same image every frame: the visible landmarks stay within 4% of her 500-px height
    # (the first frame is cropped from the person detector's box, later ones from the
    # tracked landmarks, which moves the shoulders by ~14 px; the box moves more, with the
    # guessed positions of her out-of-view legs).
    assert np.ptp(np.stack(points), axis=0).max() < 20
    # a jump back in time (video looped) restarts tracking instead of failing
    with caplog.at_level(logging.INFO, logger="refit_ros.detect.blazepose"):
        dets = video_detector.detect(astronaut, timestamp_s=0.0)
    assert len(dets) == 1
    assert "restarting" in caplog.text


def test_max_people_caps_detections(video_detector, astronaut):
    video_detector.reset()
    two = np.concatenate([astronaut, astronaut], axis=0)
    dets = video_detector.detect(two, timestamp_s=0.0)
    assert len(dets) == 1


def test_closed_detector_raises(astronaut):
    det = BlazePoseDetector(video=False)
    det.close()
    det.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(astronaut)
