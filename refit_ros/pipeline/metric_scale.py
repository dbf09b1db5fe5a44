"""Body size, and with it metric depth, from the detector's metric 3D landmarks.

A monocular fit sees the person's image; how far away they are follows from how big the
fitted body is (with the camera's focal length, a body twice as large fits the same
landmarks twice as far away). The fitting network takes that size from its training prior
and from the 2D proportions, and the body's landmark points are its joint centres, whose
spacing differs from the detector's landmark convention (on the open body the
knee-to-ankle segment is ~17% longer than BlazePose's). On the real 3D dev set both put
every body too far: predicted / true depth 1.05-1.13 for a tall man.

BlazePose also returns "world" landmarks: metric, hip-centred 3D points in its own landmark
convention. This module measures the length of the person's landmark skeleton there
(upper arms, forearms, thighs, shins and both shoulder-hip sides: 10 segments), keeps the
running median of that length per tracked person (a person's size does not change; one
frame's world landmarks are noisy), and rescales the fitted body to it:

* the stature coefficient ``betas[0]`` moves so that the same 10 segments of the fitted
  body get the target length (measured on the rest-pose joints, which are linear in the
  shape: cheap, and exact for the 8 limb segments, whose length no pose changes);
* the translation is multiplied by the achieved size ratio ``k``: the body grows or shrinks
  about the camera centre, so it projects where it did and only its depth (and metric
  size) changes.

``weight`` in ``(0, 1]`` blends the two sizes geometrically
(``target = L_fit^(1 - w) * L_world^w``); 0 switches the module off. The network's own
state (and so warm starts, ``cold_blend``, the fit check) is untouched: only the published
body is rescaled.

What it cannot do: the world landmarks carry BlazePose's own size prior, so an unusually
small or large person is still sized towards the average (on the dev set the woman, ~20%
smaller than average, stays ~15% too far).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES

#: The landmark skeleton whose total length is compared (pairs of BlazePose landmarks).
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"), ("right_hip", "right_knee"),
    ("left_knee", "left_ankle"), ("right_knee", "right_ankle"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
)

_LM = {n: i for i, n in enumerate(BLAZEPOSE_LANDMARK_NAMES)}


def skeleton_length(points: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float:
    """Summed length of the segments ``pairs`` of ``N x 3`` points (NaN if any is not finite)."""
    p = np.asarray(points, dtype=np.float64)
    a = p[[i for i, _ in pairs]]
    b = p[[j for _, j in pairs]]
    return float(np.linalg.norm(a - b, axis=-1).sum())


class MetricScale:
    """Rescale fitted bodies to the metric size of the detector's world landmarks.

    Parameters
    ----------
    body : BodyModel
        The fitted body; needs a landmark map placing the 12 limb landmarks of
        :data:`SEGMENTS` on joints, rest-pose joints linear in the shape
        (``J_template + J_shapedirs @ betas``, a :class:`~refit_ros.body.skinned.SkinnedBody`),
        and ``betas[0]`` as a stature coefficient (the open body). Otherwise
        :attr:`available` is False and :meth:`apply` changes nothing.
    weight : float
        ``(0, 1]``: how far the size moves from the fit's towards the world landmarks'.
    window : int
        Frames of a track's history in its running median.
    beta0_range : tuple of float
        Bounds of the rescaled ``betas[0]``.
    """

    def __init__(self, body, weight: float = 1.0, window: int = 60,
                 beta0_range: tuple[float, float] = (-5.0, 5.0)) -> None:
        self.body = body
        self.weight = float(weight)
        self.window = int(window)
        self.beta0_range = beta0_range
        self._history: dict[int, deque] = {}
        self.landmark_pairs = [(_LM[a], _LM[b]) for a, b in SEGMENTS]
        self.joint_pairs: list[tuple[int, int]] | None = None
        lmap = getattr(body, "landmark_map", None)
        linear = hasattr(body, "J_template") and hasattr(body, "J_shapedirs")
        if lmap is not None and linear and tuple(lmap.names) == BLAZEPOSE_LANDMARK_NAMES:
            ids = [[lmap.joint_ids[i], lmap.joint_ids[j]] for i, j in self.landmark_pairs]
            if all(x >= 0 for pair in ids for x in pair):
                self.joint_pairs = [(a, b) for a, b in ids]

    @property
    def available(self) -> bool:
        return self.weight > 0 and self.joint_pairs is not None

    def reset(self) -> None:
        self._history.clear()

    def forget(self, live: set[int]) -> None:
        """Drop the history of tracks that no longer exist."""
        for k in [k for k in self._history if k not in live]:
            del self._history[k]

    def target_length(self, keypoints3d: np.ndarray | None, track_id: int | None) -> float | None:
        """This person's metric skeleton length: the running median over the track (this
        frame's value when untracked); None without usable world landmarks."""
        length = None
        if keypoints3d is not None:
            kp = np.asarray(keypoints3d, dtype=np.float64)
            if kp.ndim == 2 and kp.shape[0] == len(BLAZEPOSE_LANDMARK_NAMES) and kp.shape[1] >= 3:
                v = skeleton_length(kp[:, :3], self.landmark_pairs)
                if np.isfinite(v) and v > 0:
                    length = v
        if track_id is None:
            return length
        hist = self._history.setdefault(track_id, deque(maxlen=self.window))
        if length is not None:
            hist.append(length)
        return float(np.median(hist)) if hist else None

    def apply(self, rotmat: Tensor, betas: Tensor, transl: Tensor, dets: Sequence[Any],
              track_ids: Sequence[int | None]) -> tuple[Tensor, Tensor]:
        """Rescaled ``(betas, transl)`` of ``N`` bodies.

        ``rotmat`` (``N x 24 x 3 x 3``) is not needed by the rest-pose segment lengths; it is
        part of the signature so that a posed measure can replace them. People without
        world landmarks keep their fit.
        """
        if not self.available or betas.shape[0] == 0:
            return betas, transl
        targets = [self.target_length(getattr(d, "keypoints3d", None), t)
                   for d, t in zip(dets, track_ids)]
        rows = [i for i, v in enumerate(targets) if v is not None]
        if not rows:
            return betas, transl
        idx = torch.tensor(rows, device=betas.device)
        b0 = betas[idx]
        direction = torch.zeros_like(b0)     # the stature coefficient
        direction[:, 0] = 1.0
        b1 = b0 + direction
        with torch.no_grad():
            jd = self.body.J_shapedirs
            joints = self.body.J_template + torch.einsum("jck,bk->bjc", jd, torch.cat([b0, b1]))
        ja = torch.tensor([a for a, _ in self.joint_pairs], device=joints.device)
        jb = torch.tensor([b for _, b in self.joint_pairs], device=joints.device)
        lengths = (joints[:, ja] - joints[:, jb]).norm(dim=-1).sum(-1).double()
        l0, l1 = lengths[: len(rows)], lengths[len(rows):]
        target = torch.tensor([targets[i] for i in rows], dtype=torch.float64, device=l0.device)
        target = l0 ** (1 - self.weight) * target ** self.weight
        slope = (l1 - l0).clamp(min=1e-6)
        lo, hi = self.beta0_range
        new_b0 = (b0[:, 0].double() + (target - l0) / slope).clamp(lo, hi)
        step = new_b0 - b0[:, 0].double()
        k = (l0 + step * slope) / l0
        betas = betas.clone()
        transl = transl.clone()
        betas[idx] = b0 + step[:, None].to(b0.dtype) * direction
        transl[idx] = transl[idx] * k[:, None].to(transl.dtype)
        return betas, transl
