"""Pinhole intrinsics of the input camera, with the official ReFit fallback."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


class IntrinsicsError(ValueError):
    """Camera intrinsics are unusable (zero/negative/non-finite focal length, bad size)."""


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera of a full image (pixels; x right, y down, origin top-left pixel centre).

    Attributes
    ----------
    fx, fy : float
        Focal lengths in pixels.
    cx, cy : float
        Principal point in pixels.
    width, height : int
        Image size in pixels.
    is_fallback : bool
        True when these are the official ReFit fallback (no calibration known):
        ``f = sqrt(W^2 + H^2)``, principal point = image centre.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    is_fallback: bool = False

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise IntrinsicsError(f"image size must be positive, got {self.width}x{self.height}")
        for name in ("fx", "fy", "cx", "cy"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise IntrinsicsError(f"camera intrinsics {name}={v} is not finite")
        if self.fx <= 0 or self.fy <= 0:
            raise IntrinsicsError(
                f"camera focal length must be > 0 (fx={self.fx}, fy={self.fy}); an uncalibrated "
                "camera should publish no CameraInfo (the fallback is used) rather than K = 0"
            )

    @classmethod
    def fallback(cls, width: int, height: int) -> "Intrinsics":
        """The official ReFit convention for unknown intrinsics."""
        f = math.sqrt(float(width) ** 2 + float(height) ** 2)
        return cls(f, f, width / 2.0, height / 2.0, int(width), int(height), is_fallback=True)

    @classmethod
    def from_matrix(cls, K, width: int, height: int) -> "Intrinsics":
        """From a 3x3 camera matrix (e.g. CameraInfo.k reshaped) and the image size."""
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), int(width), int(height))

    @property
    def focal(self) -> float:
        """Single focal length used by the CLIFF camera (mean of fx and fy)."""
        return 0.5 * (self.fx + self.fy)

    def matrix(self) -> np.ndarray:
        """3x3 camera matrix (float64)."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    def scaled(self, sx: float, sy: float) -> "Intrinsics":
        """Intrinsics of the same camera after resizing the image by (sx, sy)."""
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy,
                          int(round(self.width * sx)), int(round(self.height * sy)), self.is_fallback)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project ``N x 3`` camera-frame points (metres, z forward) to ``N x 2`` pixels."""
        p = np.asarray(points, dtype=np.float64)
        z = np.maximum(p[..., 2], 1e-9)
        return np.stack([self.fx * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], -1)
