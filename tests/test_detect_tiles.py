"""BlazePose on tall/wide frames: people cut by a tile edge are completed, lost people recovered."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from refit_ros.detect.base import Detection
from refit_ros.detect.blazepose import BlazePoseDetector, _cut_by_tile, tile_boxes


def _det(x0, y0, x1, y1, conf=0.9, score=0.9):
    """A pose whose 33 landmarks fill the box ``x0..x1 x y0..y1`` on a grid."""
    t = np.linspace(0, 1, 33)
    kp = np.stack([x0 + (x1 - x0) * ((t * 7) % 1), y0 + (y1 - y0) * t, np.full(33, conf)], 1)
    return Detection(bbox=np.array([x0, y0, x1, y1], np.float32), score=score,
                     keypoints2d=kp.astype(np.float32))


def test_cut_by_tile_only_at_inner_tile_edges():
    tiles = tile_boxes(1088, 1920, 1.5)
    assert len(tiles) == 2 and tiles[0] == (0, 0, 1088, 1088)
    top, bottom = tiles
    assert _cut_by_tile(_det(300, 400, 600, 1500), top, 1088, 1920)      # legs below the top tile
    assert not _cut_by_tile(_det(300, 100, 600, 1000), top, 1088, 1920)  # inside it
    assert _cut_by_tile(_det(300, 400, 600, 1500), bottom, 1088, 1920)   # head above the bottom one
    # past the image's own edge is not a cut (nothing more to see there)
    assert not _cut_by_tile(_det(-50, 1000, 600, 1990), bottom, 1088, 1920)


def test_a_person_missed_in_a_frame_is_recovered_for_a_few_frames(monkeypatch):
    det = BlazePoseDetector(video=True, recover_frames=2, recover_score=0.5)
    try:
        person, other = _det(100, 100, 300, 700), _det(600, 100, 800, 700)
        calls = []

        def redetect(rgb, prev):
            calls.append(prev)
            return _det(*(prev.keypoints2d[:, :2].min(0) + 5), *(prev.keypoints2d[:, :2].max(0) + 5),
                        score=prev.score), (0, 0, 1, 1)

        monkeypatch.setattr(det, "_redetect", redetect)
        rgb = np.zeros((800, 1000, 3), np.uint8)
        assert len(det._recover_lost(rgb, [person, other])) == 2 and not calls
        out = det._recover_lost(rgb, [other])                # person missed: looked for again
        assert len(out) == 2 and len(calls) == 1
        assert min(d.score for d in out) == pytest.approx(0.45)
        assert len(det._recover_lost(rgb, [other])) == 2      # second frame in a row
        assert len(det._recover_lost(rgb, [other])) == 1      # recover_frames reached
        assert len(calls) == 2
        # a re-detection that lands on someone already detected is dropped
        monkeypatch.setattr(det, "_redetect", lambda rgb, prev: (other, (0, 0, 1, 1)))
        det._previous = [(person, 0)]
        assert len(det._recover_lost(rgb, [other])) == 1
        det.reset()
        assert det._previous == []
    finally:
        det.close()


def test_a_tall_person_across_two_tiles_is_completed(dev_videos_dir):
    """cam01 frame 40 of the dev set: the man's feet lie below the top tile (y > 1088)."""
    cap = cv2.VideoCapture(str(dev_videos_dir / "cam01.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 40)
    ok, bgr = cap.read()
    assert ok
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    ankles = {}
    for complete in (False, True):
        with BlazePoseDetector(video=False, complete_cut=complete) as det:
            man = min(det.detect(rgb), key=lambda d: d.bbox[0])   # the man is on the left
        ankles[complete] = man.keypoints2d[27]                    # left ankle
    assert ankles[False][1] < 1088                   # the cut pose stops at the tile edge
    assert ankles[True][1] > 1090 and ankles[True][2] > 0.8
