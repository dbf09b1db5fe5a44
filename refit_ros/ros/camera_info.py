"""ROS camera_calibration YAML (``camera_info_manager`` format) -> ``sensor_msgs/CameraInfo``.

The file holds ``image_width``, ``image_height``, ``camera_name``, ``camera_matrix``,
``distortion_model``, ``distortion_coefficients``, ``rectification_matrix`` and
``projection_matrix``; each matrix is ``{rows, cols, data}``. Only ``camera_matrix`` and the
image size are required; the rest get the usual defaults (no distortion, identity R, P = [K|0]).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml


class CameraInfoFileError(ValueError):
    """A camera_info YAML is unreadable or malformed; the message names the file and key."""


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Contents of a camera_calibration YAML (plain arrays, no ROS types)."""

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
            raise CameraInfoFileError(f"{path}: missing key {key!r}")
        return default
    entry = data[key]
    values = entry.get("data") if isinstance(entry, dict) else entry
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise CameraInfoFileError(f"{path}: {key}.data must be a list of numbers") from None
    if shape and arr.size != int(np.prod(shape)):
        raise CameraInfoFileError(
            f"{path}: {key} has {arr.size} values, expected {int(np.prod(shape))} ({shape})"
        )
    return arr.reshape(shape) if shape else arr.reshape(-1)


def read_calibration(path: str | Path) -> Calibration:
    """Read and check a camera_calibration YAML.

    Raises
    ------
    CameraInfoFileError
        File missing / not YAML / missing ``camera_matrix`` or image size / wrong sizes.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CameraInfoFileError(f"cannot read camera_info file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CameraInfoFileError(f"camera_info file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CameraInfoFileError(f"camera_info file {path} must hold a mapping")
    for key in ("image_width", "image_height"):
        if not isinstance(data.get(key), int) or data[key] <= 0:
            raise CameraInfoFileError(f"{path}: {key} must be a positive integer")
    K = _matrix(data, "camera_matrix", (3, 3), path)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraInfoFileError(f"{path}: camera_matrix focal lengths must be > 0, got {K[0, 0]}, {K[1, 1]}")
    P_default = np.hstack([K, np.zeros((3, 1))])
    return Calibration(
        width=data["image_width"], height=data["image_height"],
        camera_name=str(data.get("camera_name", "")), K=K,
        distortion_model=str(data.get("distortion_model", "plumb_bob")),
        D=_matrix(data, "distortion_coefficients", (), path, default=np.zeros(5)),
        R=_matrix(data, "rectification_matrix", (3, 3), path, default=np.eye(3)),
        P=_matrix(data, "projection_matrix", (3, 4), path, default=P_default),
    )


def to_camera_info(calib: Calibration, header=None):
    """:class:`Calibration` -> ``sensor_msgs/CameraInfo``."""
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo(width=calib.width, height=calib.height,
                     distortion_model=calib.distortion_model)
    if header is not None:
        msg.header = header
    msg.k = calib.K.reshape(-1).tolist()
    msg.d = calib.D.tolist()
    msg.r = calib.R.reshape(-1).tolist()
    msg.p = calib.P.reshape(-1).tolist()
    return msg


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
