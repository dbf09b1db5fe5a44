"""What the frame -> bodies pipeline returns (no ROS types; the ROS layer converts these)."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from refit_ros.geometry.intrinsics import Intrinsics


@dataclasses.dataclass
class Body:
    """One person recovered from one image. All 3D values: metres, camera optical frame.

    Attributes
    ----------
    track_id : int
        Stable tracker id, -1 when untracked.
    body_model : str
        Name of the body model the parameters belong to (``BodyModel.name``).
    gender : str
        ``neutral`` / ``male`` / ``female``.
    pose : ndarray, (72,)
        Axis-angle, 24 joints in SMPL order, joint 0 = global orientation in the camera frame.
    betas : ndarray, (10,)
        Shape coefficients.
    transl : ndarray, (3,)
        Translation: ``vertices = body_model(pose, betas) + transl``.
    joints : ndarray, (24, 3)
        Posed and translated joints.
    vertices : ndarray, (V, 3) or None
        Posed and translated mesh vertices (faces in ``FrameResult.faces``).
    bbox : ndarray, (4,)
        x_min, y_min, x_max, y_max in image pixels.
    score : float
        Detection confidence in [0, 1].
    keypoints2d : ndarray, (K, 3) or None
        Detector keypoints (x, y, confidence) in image pixels, when the detector has them.
    """

    track_id: int
    body_model: str
    gender: str
    pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    joints: np.ndarray
    vertices: np.ndarray | None
    bbox: np.ndarray
    score: float
    keypoints2d: np.ndarray | None = None


@dataclasses.dataclass
class FrameResult:
    """Everything recovered from one frame.

    Attributes
    ----------
    bodies : list of Body
    faces : ndarray, (F, 3) int
        Triangles of the body mesh (shared by all bodies).
    intrinsics : Intrinsics
        The camera model actually used (``is_fallback`` tells whether it was guessed).
    timings_ms : dict
        Per-stage wall time in milliseconds (e.g. ``detect``, ``model``, ``body``, ``total``).
    """

    bodies: list[Body]
    faces: np.ndarray
    intrinsics: Intrinsics
    timings_ms: dict[str, float]


class FramePipeline(Protocol):
    """A frame -> bodies pipeline (see ``refit_ros.pipeline.build_pipeline``)."""

    def process(self, image_rgb: np.ndarray, intrinsics: Intrinsics | None = None,
                stamp: float = 0.0) -> FrameResult:
        """Recover the bodies in one ``H x W x 3`` uint8 RGB image.

        ``intrinsics=None`` uses the fallback of :meth:`Intrinsics.fallback`.
        """
        ...

    def reset(self) -> None:
        """Forget tracks / warm-start state (e.g. after a seek or a camera change)."""
        ...
