"""ROS ``camera_calibration`` YAML files: read, written, and their intrinsics (no ROS needed)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import yaml

from refit_ros.geometry.intrinsics import Intrinsics, IntrinsicsError

log = logging.getLogger(__name__)


class CameraInfoError(ValueError):
    """A camera_info YAML file is missing, malformed or physically invalid; the message
    names the file and the key."""


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Contents of a ROS ``camera_calibration`` YAML (plain arrays, no ROS types).

    The camera source node publishes it as ``sensor_msgs/CameraInfo``
    (:func:`refit_ros.ros.camera_info.to_camera_info`); the offline tools take its
    intrinsics (:func:`load_camera_info`).
    """

    width: int
    height: int
    camera_name: str
    K: np.ndarray  # 3 x 3
    distortion_model: str
    D: np.ndarray  # N
    R: np.ndarray  # 3 x 3
    P: np.ndarray  # 3 x 4


def _matrix(data: dict, key: str, shape: tuple[int, ...], path: Path, default=None) -> np.ndarray:
    if key not in data:
        if default is None:
            raise CameraInfoError(f"{path}: missing key {key!r} (ROS camera_calibration format)")
        return default
    entry = data[key]
    values = entry.get("data") if isinstance(entry, dict) else entry
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise CameraInfoError(f"{path}: {key}.data must be a list of numbers") from None
    if shape and arr.size != int(np.prod(shape)):
        raise CameraInfoError(
            f"{path}: {key} has {arr.size} values, expected {int(np.prod(shape))} {shape}")
    return arr.reshape(shape) if shape else arr.reshape(-1)


def read_calibration(path: str | Path) -> Calibration:
    """Read and check a ROS ``camera_calibration`` / ``camera_info_manager`` YAML::

        image_width: 640
        image_height: 480
        camera_name: front
        camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
        distortion_model: plumb_bob
        distortion_coefficients: {rows: 1, cols: 5, data: [...]}
        rectification_matrix: {rows: 3, cols: 3, data: [...]}
        projection_matrix: {rows: 3, cols: 4, data: [...]}

    Only the image size and ``camera_matrix`` are required; the rest default to no
    distortion, identity R and P = [K | 0].

    Raises
    ------
    CameraInfoError
        File missing / not YAML / a required key missing / wrong sizes / focal <= 0.
    """
    p = Path(path).expanduser()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CameraInfoError(f"cannot read camera_info file {p}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise CameraInfoError(f"camera_info file {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CameraInfoError(f"camera_info file {p} must hold a mapping")
    for key in ("image_width", "image_height"):
        if not isinstance(data.get(key), int) or data[key] <= 0:
            raise CameraInfoError(f"{p}: {key} must be a positive integer")
    K = _matrix(data, "camera_matrix", (3, 3), p)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraInfoError(f"{p}: camera_matrix focal lengths must be > 0, got "
                              f"{K[0, 0]}, {K[1, 1]}")
    return Calibration(
        width=data["image_width"], height=data["image_height"],
        camera_name=str(data.get("camera_name", "")), K=K,
        distortion_model=str(data.get("distortion_model", "plumb_bob")),
        D=_matrix(data, "distortion_coefficients", (), p, default=np.zeros(5)),
        R=_matrix(data, "rectification_matrix", (3, 3), p, default=np.eye(3)),
        P=_matrix(data, "projection_matrix", (3, 4), p, default=np.hstack([K, np.zeros((3, 1))])),
    )


def write_calibration(path: str | Path, width: int, height: int, K, camera_name: str = "camera") -> None:
    """Write a minimal camera_calibration YAML (no distortion), e.g. for tests and demos."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    data = {
        "image_width": int(width), "image_height": int(height), "camera_name": camera_name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": K.reshape(-1).tolist()},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.0] * 5},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": np.eye(3).reshape(-1).tolist()},
        "projection_matrix": {"rows": 3, "cols": 4,
                              "data": np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist()},
    }
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def load_camera_info(path: str | Path) -> Intrinsics:
    """The intrinsics of a calibration file (:func:`read_calibration`).

    Distortion is not modelled: images are used as they are, so non-zero coefficients
    only cause a warning (rectify the images first if the lens distorts strongly).

    Raises
    ------
    CameraInfoError
        Naming the file and the missing or invalid key.
    """
    calib = read_calibration(path)
    try:
        intr = Intrinsics.from_matrix(calib.K.reshape(-1), calib.width, calib.height)
    except (IntrinsicsError, TypeError, ValueError) as exc:
        raise CameraInfoError(f"camera_info file {path}: {exc}") from exc
    if np.any(np.abs(calib.D) > 0):
        log.warning("%s: lens distortion %s is ignored (images are used unrectified)",
                    path, np.round(calib.D, 4).tolist())
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
