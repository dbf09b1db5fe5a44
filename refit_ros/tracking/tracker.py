"""Detection-to-track association with a life cycle: who is who, frame to frame.

Association, in two stages, each solved globally with SciPy's Hungarian solver:

1. overlap: cost = 1 - IoU of boxes (averaged with 1 - OKS-style keypoint similarity when
   both have keypoints); a pair is admissible when its IoU reaches ``iou_threshold`` *or*
   its keypoint similarity reaches ``keypoint_gate`` (raising or lowering the arms changes a
   person's box far more than their torso and legs, so boxes alone lose people who wave);
2. re-acquisition: a track left unmatched may take a left-over detection whose box centre
   is within ``reacquire_distance`` box heights per frame elapsed since the track's last
   match (fast motion, a flip, a detector glitch, a few missed frames); such a match keeps
   the id but restarts the fit cold.

Life cycle with hysteresis: a track is born only from a detection scoring at least
``birth_score``; a live track keeps matching down to ``keep_score``; it dies after
``max_age`` frames without a match.

The tracker owns identity only (ids, boxes, continuity); what the pipeline remembers of a
person's fit (last state, accumulated shape, fit-check count) is the pipeline's, keyed by
track id (:class:`refit_ros.pipeline.frame.TrackFit`).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from refit_ros.detect.base import box_iou  # noqa: F401  (re-exported for callers)


@dataclasses.dataclass(frozen=True)
class TrackerParams:
    """Tracker settings (all from config ``tracking.*``)."""

    iou_threshold: float = 0.2
    birth_score: float = 0.6
    keep_score: float = 0.3
    max_age: int = 10
    #: A matched box whose IoU with its previous box is below this is a "jump" (cold restart)
    #: unless its keypoints match (``keypoint_gate``). A detection scoring below
    #: ``birth_score`` also restarts cold (low confidence).
    warm_min_iou: float = 0.3
    #: Keypoint similarity (OKS-like, in [0, 1]) that admits a pair whatever the box IoU.
    keypoint_gate: float = 0.25
    #: Re-acquisition reach in box heights per elapsed frame (0 = off).
    reacquire_distance: float = 0.35

    @classmethod
    def from_config(cls, tracking) -> TrackerParams:
        """The tracker's keys of the config's ``tracking`` section (``cfg.tracking``)."""
        return cls(**{f.name: getattr(tracking, f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass
class Track:
    """One tracked person.

    Attributes
    ----------
    track_id : int
    bbox : ndarray, (4,)
        Last matched box.
    misses : int
        Consecutive frames without a match (0 = matched this frame).
    hits : int
        Frames matched so far.
    continuous : bool
        Whether this frame continues the last one for this person (matched last frame, no
        box jump, scored well), so a fit may start from the last one; set by
        :meth:`Tracker.update`.
    """

    track_id: int
    bbox: np.ndarray
    keypoints: np.ndarray | None = None
    misses: int = 0
    hits: int = 1
    continuous: bool = False


def keypoint_similarity(ka: np.ndarray, kb: np.ndarray, box: np.ndarray, min_conf: float = 0.3) -> float:
    """OKS-like similarity of two ``K x 3`` keypoint sets (x, y, conf), scale = box diagonal."""
    m = (ka[:, 2] > min_conf) & (kb[:, 2] > min_conf)
    if m.sum() < 3:
        return float("nan")
    scale = max(float(np.hypot(box[2] - box[0], box[3] - box[1])), 1.0)
    d2 = ((ka[m, :2] - kb[m, :2]) ** 2).sum(-1)
    return float(np.exp(-d2 / (2 * (0.05 * scale) ** 2)).mean())


class Tracker:
    """Hungarian multi-person tracker (overlap, then re-acquisition)."""

    def __init__(self, params: TrackerParams | None = None) -> None:
        self.params = params or TrackerParams()
        self.tracks: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        self.tracks = []
        self._next_id = 0

    def update(self, boxes: np.ndarray, scores: Sequence[float],
               keypoints: Sequence[np.ndarray | None] | None = None) -> list[Track | None]:
        """Associate this frame's detections with tracks.

        Parameters
        ----------
        boxes : ndarray, (N, 4)
        scores : (N,)
        keypoints : list of (K, 3) arrays or None, optional

        Returns
        -------
        list
            For each detection its :class:`Track` (new or continued; ``continuous`` set), or
            None when the detection is too weak to start a track (publish it untracked).
        """
        p = self.params
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        kps = list(keypoints) if keypoints is not None else [None] * len(boxes)
        for t in self.tracks:
            t.misses += 1
        out: list[Track | None] = [None] * len(boxes)
        live = self.tracks
        if len(boxes) and live:
            iou = box_iou(boxes, np.stack([t.bbox for t in live]))
            oks = np.full_like(iou, np.nan)
            for i in range(len(boxes)):
                for j, t in enumerate(live):
                    if kps[i] is not None and t.keypoints is not None:
                        oks[i, j] = keypoint_similarity(kps[i], t.keypoints, t.bbox)
            known = np.isfinite(oks)
            cost = np.where(known, 0.5 * (1.0 - iou) + 0.5 * (1.0 - np.nan_to_num(oks)), 1.0 - iou)
            close = known & (np.nan_to_num(oks) >= p.keypoint_gate)
            ok = ((iou >= p.iou_threshold) | close) & (scores[:, None] >= p.keep_score)
            for i, j in _assign(cost, ok):
                t = live[j]
                t.continuous = (t.misses == 1 and (iou[i, j] >= p.warm_min_iou or close[i, j])
                                and scores[i] >= p.birth_score)
                self._match(t, boxes[i], kps[i])
                out[i] = t
            # Re-acquisition of tracks the overlap stage left alone (cold restart).
            free_d = [i for i in range(len(boxes)) if out[i] is None and scores[i] >= p.keep_score]
            free_t = [j for j, t in enumerate(live) if t.misses > 0]
            if p.reacquire_distance > 0 and free_d and free_t:
                cd = 0.5 * (boxes[free_d, None, :2] + boxes[free_d, None, 2:])
                tb = np.stack([live[j].bbox for j in free_t])
                ct = 0.5 * (tb[None, :, :2] + tb[None, :, 2:])
                h = np.maximum(tb[:, 3] - tb[:, 1], 1.0)[None]
                dist = np.linalg.norm(cd - ct, axis=-1) / h
                reach = p.reacquire_distance * np.array([live[j].misses for j in free_t])[None]
                for a, b in _assign(dist, dist <= reach):
                    i, t = free_d[a], live[free_t[b]]
                    t.continuous = False
                    self._match(t, boxes[i], kps[i])
                    out[i] = t
        for i in range(len(boxes)):
            if out[i] is None and scores[i] >= p.birth_score:
                t = Track(self._next_id, boxes[i].copy(), kps[i])
                self._next_id += 1
                self.tracks.append(t)
                out[i] = t
        self.tracks = [t for t in self.tracks if t.misses <= p.max_age]
        return out

    @staticmethod
    def _match(t: Track, box: np.ndarray, kps: np.ndarray | None) -> None:
        t.bbox, t.keypoints, t.misses, t.hits = box.copy(), kps, 0, t.hits + 1


def _assign(cost: np.ndarray, admissible: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment restricted to admissible pairs (``N x M`` each)."""
    if not admissible.any():
        return []
    big = float(np.abs(cost[admissible]).max()) * 10.0 + 1e3
    rows, cols = linear_sum_assignment(np.where(admissible, cost, big))
    return [(int(i), int(j)) for i, j in zip(rows, cols) if admissible[i, j]]
