"""Tracker gates beyond box IoU: keypoint similarity and re-acquisition after fast motion."""

from __future__ import annotations

import numpy as np

from refit_ros.tracking import Tracker, TrackerParams


def _person(cx: float, cy: float, arms_out: bool,
            h: float = 400.0) -> tuple[np.ndarray, np.ndarray]:
    """A box and 33 keypoints: torso/legs/head fixed around (cx, cy), arms out or down."""
    rng = np.random.default_rng(0)
    kp = np.zeros((33, 3))
    kp[:, 0] = cx + rng.uniform(-0.08, 0.08, 33) * h
    kp[:, 1] = cy + rng.uniform(-0.45, 0.45, 33) * h
    kp[:, 2] = 0.9
    arms = [13, 14, 15, 16, 17, 18, 19, 20, 21, 22]
    if arms_out:
        kp[arms, 0] = cx + np.where(np.arange(10) % 2 == 0, 1, -1) * 0.45 * h
        kp[arms, 1] = cy - 0.25 * h
    box = np.array([kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()])
    return box, kp


def test_arms_changing_the_box_keep_the_id_and_the_warm_start():
    tr = Tracker(TrackerParams(iou_threshold=0.2, warm_min_iou=0.3))
    ids, warm = [], []
    for k in range(6):
        box, kp = _person(600, 400, arms_out=k % 2 == 1)
        t = tr.update(box[None], [0.9], [kp])[0]
        ids.append(t.track_id)
        warm.append(t.continuous)
    b0, _ = _person(600, 400, False)
    b1, _ = _person(600, 400, True)
    from refit_ros.tracking.tracker import box_iou

    assert box_iou(b0, b1)[0, 0] < 0.2  # boxes alone would have lost the person
    assert len(set(ids)) == 1 and warm[1:] == [True] * 5


def test_reacquired_after_missed_frames_with_a_jump_keeps_id_but_restarts_cold():
    tr = Tracker(TrackerParams(reacquire_distance=0.35, max_age=10))
    box, kp = _person(600, 400, False)
    t = tr.update(box[None], [0.9], [kp])[0]
    for _ in range(3):
        tr.update(np.zeros((0, 4)), [], [])
    # 4 frames later, 1 box height away (IoU 0, keypoints far): within 0.35 * 4 heights
    box2, kp2 = _person(600 + 400, 400, False)
    t2 = tr.update(box2[None], [0.9], [kp2])[0]
    assert t2.track_id == t.track_id and not t2.continuous
    # but not when the reach is switched off
    tr = Tracker(TrackerParams(reacquire_distance=0.0))
    t = tr.update(box[None], [0.9], [kp])[0]
    tr.update(np.zeros((0, 4)), [], [])
    assert tr.update(box2[None], [0.9], [kp2])[0].track_id != t.track_id


def test_two_people_crossing_boxes_keep_their_ids():
    tr = Tracker(TrackerParams())
    seen = {}
    for k in range(20):
        a = _person(400 + 20 * k, 400, k % 3 == 0)
        b = _person(900 - 20 * k, 420, k % 4 == 0)
        dets = [a, b] if k % 2 else [b, a]
        out = tr.update(np.stack([d[0] for d in dets]), [0.9, 0.9], [d[1] for d in dets])
        ta, tb = (out[0], out[1]) if k % 2 else (out[1], out[0])
        seen.setdefault("a", set()).add(ta.track_id)
        seen.setdefault("b", set()).add(tb.track_id)
    assert len(seen["a"]) == 1 and len(seen["b"]) == 1 and seen["a"] != seen["b"]
