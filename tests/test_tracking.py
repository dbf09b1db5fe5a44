"""Tracker association, life cycle (hysteresis) and the One-Euro baseline."""

from __future__ import annotations

import numpy as np
import pytest

from refit_ros.tracking import OneEuroFilter, Tracker, TrackerParams
from refit_ros.tracking.tracker import Track, box_iou


def _box(cx, cy, w=100, h=200):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0])


def test_two_people_keep_ids_while_moving_and_listed_in_any_order():
    tr = Tracker(TrackerParams(max_age=3))
    ids_a, ids_b = set(), set()
    for k in range(30):
        a, b = _box(200 + 5 * k, 300), _box(600 - 5 * k, 300)
        order = [a, b] if k % 2 == 0 else [b, a]
        out = tr.update(np.array(order), [0.9, 0.9])
        ta, tb = (out[0], out[1]) if k % 2 == 0 else (out[1], out[0])
        ids_a.add(ta.track_id)
        ids_b.add(tb.track_id)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_birth_hysteresis_and_death():
    tr = Tracker(TrackerParams(birth_score=0.6, keep_score=0.3, max_age=2))
    assert tr.update(np.array([_box(100, 100)]), [0.5]) == [None]  # too weak to be born
    t = tr.update(np.array([_box(100, 100)]), [0.7])[0]
    assert t is not None
    assert tr.update(np.array([_box(102, 100)]), [0.4])[0] is t  # kept at a lower score
    for _ in range(3):
        tr.update(np.zeros((0, 4)), [])
    assert tr.tracks == []
    t2 = tr.update(np.array([_box(102, 100)]), [0.9])[0]
    assert t2.track_id != t.track_id  # a dead track is not resurrected


def test_warm_start_only_when_continuous_and_no_jump():
    tr = Tracker(TrackerParams(iou_threshold=0.1, warm_min_iou=0.5, max_age=5))
    t = tr.update(np.array([_box(100, 100)]), [0.9])[0]
    assert not t.continuous  # new track: cold
    assert tr.update(np.array([_box(103, 100)]), [0.9])[0].continuous
    # a big jump (IoU < 0.5 but > gate) -> cold
    assert not tr.update(np.array([_box(160, 100)]), [0.9])[0].continuous
    tr.update(np.zeros((0, 4)), [])  # lost for a frame
    assert not tr.update(np.array([_box(160, 100)]), [0.9])[0].continuous  # re-found -> cold


def test_tracker_owns_identity_only():
    """The fit a warm start continues is the pipeline's, keyed by track id."""
    fields = set(Track.__dataclass_fields__)
    assert fields == {"track_id", "bbox", "keypoints", "misses", "hits", "continuous"}


def test_shape_accumulates():
    from refit_ros.pipeline.frame import TrackFit

    f = TrackFit()
    f.add_betas(np.ones(10), 1.0)
    np.testing.assert_allclose(f.add_betas(np.zeros(10), 1.0), 0.5)


def test_one_euro_smooths_noise_and_follows_steps():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    t = np.arange(200) / 30.0
    noisy = 1.0 + 0.05 * rng.standard_normal(200)
    out = np.array([f(np.array([x]), ti)[0] for x, ti in zip(noisy, t)])
    assert out[50:].std() < 0.5 * noisy[50:].std()
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)
