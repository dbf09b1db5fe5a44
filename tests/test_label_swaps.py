"""Left/right label swaps of the detector are undone for tracked people (tracking/label_swaps.py)."""

from __future__ import annotations

import numpy as np

from refit_ros.detect.base import LANDMARK_INDEX
from refit_ros.tracking.label_swaps import LabelSwapGuard, mirror_labels


def _pose(x: float = 100.0, half_width: float = 40.0) -> np.ndarray:
    """An upright person facing the camera (their left side on the image's right)."""
    kp = np.zeros((33, 3))
    kp[:, 2] = 0.9
    for name, (dx, y) in {"shoulder": (1.0, 100), "elbow": (1.3, 160), "wrist": (1.4, 220),
                          "hip": (0.6, 220), "knee": (0.6, 320), "ankle": (0.6, 420),
                          "heel": (0.6, 430), "foot_index": (0.7, 440), "pinky": (1.4, 235),
                          "index": (1.4, 240), "thumb": (1.3, 235)}.items():
        kp[LANDMARK_INDEX[f"left_{name}"], :2] = (x + dx * half_width, y)
        kp[LANDMARK_INDEX[f"right_{name}"], :2] = (x - dx * half_width, y)
    return kp


def test_mirror_labels_exchanges_twins():
    kp = _pose()
    m = mirror_labels(kp)
    assert np.allclose(m[LANDMARK_INDEX["left_shoulder"]], kp[LANDMARK_INDEX["right_shoulder"]])
    assert np.allclose(m[LANDMARK_INDEX["nose"]], kp[LANDMARK_INDEX["nose"]])
    assert np.array_equal(mirror_labels(m), kp)
    assert mirror_labels(None) is None


def _trusted(g: LabelSwapGuard, track: int = 1, x: float = 100.0, t0: float = 0.0) -> float:
    """Four clean frames (the memory needs min_trust=3 clear confirmations); returns the time."""
    for k in range(4):
        assert not g.check(track, _pose(x - 2 * (3 - k)), t0 + k / 60)
    return t0 + 3 / 60


def test_a_mirrored_run_is_swapped_back_then_the_detector_is_believed_again():
    g = LabelSwapGuard()
    t = _trusted(g)
    for k in range(1, 18):                              # 17 mirrored frames, walking right
        assert g.check(1, mirror_labels(_pose(100 + 2 * k)), t + k / 60), k
    assert not g.check(1, _pose(136), t + 18 / 60)      # correct again: left alone
    assert not g.check(1, _pose(138), t + 19 / 60)
    assert not g.check(2, mirror_labels(_pose(100)), 0.0)   # other tracks are independent


def test_a_run_longer_than_max_swap_s_is_given_up():
    g = LabelSwapGuard(max_swap_s=0.2)
    t = _trusted(g)
    got = [g.check(1, mirror_labels(_pose()), t + k / 60) for k in range(1, 30)]
    assert got[0] and not got[-1]
    # once given up, the detector's labelling is the reference
    assert not g.check(1, mirror_labels(_pose()), t + 30 / 60)


def test_a_track_that_started_mirrored_is_not_swapped_when_the_detector_gets_it_right():
    g = LabelSwapGuard()
    assert not g.check(1, mirror_labels(_pose(100)), 0.0)    # first frame mirrored
    for k in range(1, 10):
        assert not g.check(1, _pose(100 + k), k / 60)


def test_motion_and_profile_views_are_not_swaps():
    g = LabelSwapGuard()
    _trusted(g, x=100, t0=-4 / 60)
    assert not g.check(1, _pose(115), 1 / 30)           # moving: labels as given are closer
    # profile: both labellings alike, unclear: no swap, and the memory is not updated
    assert not g.check(1, mirror_labels(_pose(115, half_width=3)), 2 / 30)
    assert g.check(1, mirror_labels(_pose(117)), 3 / 30)   # still judged against frame 1
    g = LabelSwapGuard(max_gap_s=0.25)
    _trusted(g)
    assert not g.check(1, mirror_labels(_pose()), 2.0)  # stale memory: not compared
