"""Camera intrinsics from a ROS ``camera_calibration`` YAML file (no ROS needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import yaml

from refit_ros.geometry.intrinsics import Intrinsics, IntrinsicsError

log = logging.getLogger(__name__)


class CameraInfoError(ValueError):
    """A camera_info YAML file is missing, malformed or physically invalid."""


def load_camera_info(path: str | Path) -> Intrinsics:
    """Read ``image_width``, ``image_height`` and ``camera_matrix`` of a calibration file.

    The format is the one written by ROS ``camera_calibration`` /
    ``camera_info_manager``::

        image_width: 640
        image_height: 480
        camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
        distortion_coefficients: {rows: 1, cols: 5, data: [...]}

    Distortion is not modelled: images are used as they are, so non-zero coefficients
    only cause a warning (rectify the images first if the lens distorts strongly).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Intrinsics

    Raises
    ------
    CameraInfoError
        Naming the file and the missing or invalid key.
    """
    p = Path(path).expanduser()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CameraInfoError(f"cannot read camera_info file {p}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CameraInfoError(f"camera_info file {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CameraInfoError(f"camera_info file {p} must hold a mapping")
    for key in ("image_width", "image_height", "camera_matrix"):
        if key not in data:
            raise CameraInfoError(
                f"camera_info file {p} has no '{key}' (ROS camera_calibration format)")
    matrix = data["camera_matrix"]
    values = matrix.get("data") if isinstance(matrix, dict) else None
    try:
        K = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        K = np.zeros(0)
    if K.size != 9:
        raise CameraInfoError(f"camera_info file {p}: camera_matrix.data must hold 9 numbers")
    try:
        intr = Intrinsics.from_matrix(K, int(data["image_width"]), int(data["image_height"]))
    except (IntrinsicsError, TypeError, ValueError) as exc:
        raise CameraInfoError(f"camera_info file {p}: {exc}") from exc
    dist = (data.get("distortion_coefficients") or {})
    coeffs = np.asarray(dist.get("data") or [], dtype=np.float64) if isinstance(dist, dict) else []
    if np.any(np.abs(coeffs) > 0):
        log.warning("%s: lens distortion %s is ignored (images are used unrectified)",
                    p, np.round(coeffs, 4).tolist())
    return intr


def intrinsics_for_size(intr: Intrinsics, width: int, height: int) -> Intrinsics:
    """The calibration rescaled to an image of another resolution (same aspect ratio).

    Raises
    ------
    CameraInfoError
        The aspect ratios differ by more than 1% (the calibration is for another camera
        or a cropped stream).
    """
    if (intr.width, intr.height) == (width, height):
        return intr
    sx, sy = width / intr.width, height / intr.height
    if abs(sx / sy - 1.0) > 0.01:
        raise CameraInfoError(
            f"camera_info is for {intr.width}x{intr.height} but the images are {width}x{height} "
            "(another aspect ratio); give the calibration of this stream")
    log.warning("camera_info is for %dx%d, images are %dx%d: scaling the intrinsics",
                intr.width, intr.height, width, height)
    return Intrinsics(intr.fx * sx, intr.fy * sy, (intr.cx + 0.5) * sx - 0.5,
                      (intr.cy + 0.5) * sy - 0.5, width, height, intr.is_fallback)
