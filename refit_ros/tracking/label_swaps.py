"""Left/right label swaps of a tracked person's landmarks, undone before fitting.

BlazePose sometimes labels a whole person mirrored for a run of frames: a person facing the
camera gets the labels of a person seen from behind (left and right exchanged), and its own
3D "world" landmarks follow the same belief, so nothing in one frame tells. A 2D fitter then
fits a body turned by 180 degrees (on the dev set: one person, 17 consecutive frames of one
view). Between two frames a body moves little, while a swap moves every labelled point to
where its twin was: so each tracked detection is compared, as labelled and with left and
right exchanged, with the same person's landmarks of the previous frame (as used, i.e.
after any swap back), and the labelling that is clearly closer wins. A swapped run longer
than ``max_swap_s`` is given up (the detector is believed again), so a track that started
mirrored does not stay mirrored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from refit_ros.detect.base import LANDMARK_INDEX, LANDMARK_NAMES

#: Index of each landmark's left/right twin (itself for the nose).
MIRROR_LANDMARKS: tuple[int, ...] = tuple(
    LANDMARK_INDEX[n.replace("left", "@").replace("right", "left").replace("@", "right")]
    for n in LANDMARK_NAMES)
def mirror_labels(points: np.ndarray | None) -> np.ndarray | None:
    """The same landmarks with left and right labels exchanged (``33 x C``)."""
    if points is None:
        return None
    return np.asarray(points)[list(MIRROR_LANDMARKS)].copy()


@dataclasses.dataclass
class _Labels:
    keypoints: np.ndarray
    stamp: float
    swap_since: float | None = None
    trust: int = 0          # clear decisions in a row that kept the labelling


#: Landmarks compared, upper and lower body (the face is small and often unconfident).
_UPPER = np.arange(LANDMARK_INDEX["left_shoulder"], LANDMARK_INDEX["left_hip"])
_LOWER = np.arange(LANDMARK_INDEX["left_hip"], len(LANDMARK_NAMES))
_SHOULDERS = [LANDMARK_INDEX["left_shoulder"], LANDMARK_INDEX["right_shoulder"]]
_HIPS = [LANDMARK_INDEX["left_hip"], LANDMARK_INDEX["right_hip"]]


def torso_width(keypoints2d: np.ndarray) -> float:
    """Shoulder separation in the image over the shoulder-to-hip length (about 0.7 for an
    adult seen from the front or the back, near 0 in profile)."""
    kp = np.asarray(keypoints2d, dtype=np.float64)
    across = np.linalg.norm(kp[_SHOULDERS[0], :2] - kp[_SHOULDERS[1], :2])
    length = np.linalg.norm(kp[_SHOULDERS, :2].mean(0) - kp[_HIPS, :2].mean(0))
    return float(across / length) if length > 1e-9 else 0.0


class LabelSwapGuard:
    """Per-track label continuity: swaps back the labels of a detection mirrored by the detector.

    Parameters
    ----------
    ratio : float
        A labelling is clearly closer to the remembered landmarks when its distance (median
        over confident body landmarks) is below ``ratio`` x the other's ...
    min_gain : float
        ... and below it by at least this fraction of the person's height (profile views,
        where both labellings are alike, are unclear).
    max_gap_s : float
        The remembered landmarks are only compared when at most this old; older, the
        detection is taken as labelled (after a long unclear stretch, e.g. a real turn).
    max_swap_s : float
        A run of swapped frames longer than this is given up (the detector is believed).
    min_trust : int
        A swap is only made against a memory confirmed by this many clear frames in a row
        (a track whose first frames were mirrored must not swap the correct ones after).
    min_width : float
        ... and only when the torso is seen wide in both (:func:`torso_width`, e.g. 0.35:
        turned at most ~60 degrees from the camera or from its back): near profile the
        twins nearly coincide and noise can make either labelling look closer, while a
        mirrored detection of a person facing the camera (or away) is what this undoes.
    min_conf : float
        Landmarks below this confidence are not compared.
    """

    def __init__(self, ratio: float = 0.6, min_gain: float = 0.04, max_gap_s: float = 0.25,
                 max_swap_s: float = 1.0, min_conf: float = 0.5, min_trust: int = 3,
                 min_width: float = 0.35):
        self.ratio, self.min_gain = float(ratio), float(min_gain)
        self.max_gap_s, self.max_swap_s = float(max_gap_s), float(max_swap_s)
        self.min_conf = float(min_conf)
        self.min_trust = int(min_trust)
        self.min_width = float(min_width)
        self._tracks: dict[int, _Labels] = {}

    def reset(self) -> None:
        self._tracks.clear()

    def forget(self, live_ids: set[int]) -> None:
        """Drop the memory of tracks that no longer exist."""
        for k in [k for k in self._tracks if k not in live_ids]:
            del self._tracks[k]

    def check(self, track_id: int, keypoints2d: np.ndarray, stamp: float) -> bool:
        """Whether this detection's labels should be swapped back (remembers what is used).

        The memory is the labelling of the last frame where the choice was clear: frames
        where neither labelling is clearly closer (a garbled detection while the detector
        switches, a profile view) neither swap nor update it.

        Parameters
        ----------
        track_id : int
        keypoints2d : ndarray, (33, 3)
            ``x, y, confidence`` in pixels.
        stamp : float
            Seconds (frame time).
        """
        kp = np.asarray(keypoints2d, dtype=np.float64)
        mem = self._tracks.get(track_id)
        if mem is None or not 0.0 <= stamp - mem.stamp <= self.max_gap_s:
            self._tracks[track_id] = _Labels(kp, stamp)
            return False
        choice = self._choose(kp, mem.keypoints)
        if choice == "swap":
            start = mem.swap_since if mem.swap_since is not None else stamp
            if mem.trust >= self.min_trust and stamp - start <= self.max_swap_s:
                self._tracks[track_id] = _Labels(mirror_labels(kp), stamp, start, mem.trust)
                return True
            # an unconfirmed memory, or a run too long: believe the detector again
            self._tracks[track_id] = _Labels(kp, stamp)
        elif choice == "same":
            self._tracks[track_id] = _Labels(kp, stamp, None, mem.trust + 1)
        return False

    def _choose(self, kp: np.ndarray, ref: np.ndarray) -> str:
        """``"same"``, ``"swap"`` or ``"unclear"``: which labelling is closer to ``ref``.

        Judged separately on the upper body (shoulders, arms, hands) and the lower body
        (hips, legs, feet); only a verdict both agree on counts (a detector that swaps the
        legs alone, or an outlier or two, must not flip the whole person). A part with too
        few confident landmarks abstains.
        """
        mirrored = mirror_labels(kp)
        conf = ref[:, 2] >= self.min_conf
        pts = ref[conf, :2] if conf.sum() >= 2 else ref[:, :2]
        gain = self.min_gain * (float(np.ptp(pts[:, 1])) or 1.0)
        verdicts = []
        for part in (_UPPER, _LOWER):
            ok_same = (kp[part, 2] >= self.min_conf) & (ref[part, 2] >= self.min_conf)
            ok_swap = (mirrored[part, 2] >= self.min_conf) & (ref[part, 2] >= self.min_conf)
            if ok_same.sum() < 3 or ok_swap.sum() < 3:
                continue
            i_same, i_swap = part[ok_same], part[ok_swap]
            d_same = float(np.median(np.linalg.norm(kp[i_same, :2] - ref[i_same, :2], axis=1)))
            d_swap = float(np.median(np.linalg.norm(mirrored[i_swap, :2] - ref[i_swap, :2], axis=1)))
            if d_swap < self.ratio * d_same and d_same - d_swap > gain:
                verdicts.append("swap")
            elif d_same < self.ratio * d_swap and d_swap - d_same > gain:
                verdicts.append("same")
            else:
                verdicts.append("unclear")
        if not verdicts or any(v != verdicts[0] for v in verdicts) or verdicts[0] == "unclear":
            return "unclear"
        if verdicts[0] == "swap" and min(torso_width(kp), torso_width(ref)) < self.min_width:
            return "unclear"
        return verdicts[0]
