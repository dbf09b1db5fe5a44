"""Pure conversions between the core's results and ROS messages.

``FrameResult -> refit_ros/SMPLArray`` and ``sensor_msgs/CameraInfo -> Intrinsics``.
No node state: every function here is unit-tested with real message classes.
"""

from __future__ import annotations

import numpy as np

from refit_ros.geometry.intrinsics import Intrinsics, IntrinsicsError
from refit_ros.pipeline.types import Body, FrameResult

#: Fixed sizes of the SMPL message arrays (see msg/SMPL.msg).
FIELD_SIZES = {"pose": 72, "betas": 10, "transl": 3, "bbox": 4}
NUM_JOINTS = 24


def _fixed(body: Body, name: str) -> np.ndarray:
    value = np.asarray(getattr(body, name), dtype=np.float32).reshape(-1)
    if value.size != FIELD_SIZES[name]:
        raise ValueError(
            f"Body.{name} has {value.size} values, SMPL.{name} needs {FIELD_SIZES[name]}"
        )
    if not np.isfinite(value).all():
        raise ValueError(f"Body.{name} holds non-finite values")
    return value


def body_to_msg(body: Body):
    """One :class:`~refit_ros.pipeline.types.Body` -> ``refit_ros/SMPL``.

    Raises
    ------
    ValueError
        When a field has the wrong size (``joints`` must be ``24 x 3``) or is not finite.
    """
    from geometry_msgs.msg import Point

    from refit_ros.msg import SMPL

    joints = np.asarray(body.joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"Body.joints has shape {joints.shape}, SMPL.joints needs (24, 3)")
    msg = SMPL()
    msg.track_id = int(body.track_id)
    msg.body_model = str(body.body_model)
    msg.gender = str(body.gender)
    for name in FIELD_SIZES:
        setattr(msg, name, _fixed(body, name))
    msg.joints = [Point(x=x, y=y, z=z) for x, y, z in joints.tolist()]
    msg.score = float(body.score)
    return msg


def frame_result_to_msg(result: FrameResult, header):
    """``FrameResult`` -> ``refit_ros/SMPLArray`` carrying ``header`` unchanged.

    Parameters
    ----------
    result : FrameResult
    header : std_msgs.msg.Header
        The input image's header (stamp and optical frame), copied as is.
    """
    from refit_ros.msg import SMPLArray

    return SMPLArray(header=header, bodies=[body_to_msg(b) for b in result.bodies])


def joints_from_msg(msg) -> np.ndarray:
    """``SMPL.joints`` -> ``24 x 3`` float64 array (metres, camera frame)."""
    return np.array([[p.x, p.y, p.z] for p in msg.joints], dtype=np.float64).reshape(-1, 3)


def intrinsics_from_camera_info(info, width: int, height: int) -> Intrinsics:
    """Intrinsics of a ``width x height`` image from a ``sensor_msgs/CameraInfo``.

    ``K`` is used (the raw, unrectified camera). When the CameraInfo was calibrated at
    another resolution (its own ``width``/``height`` set and different), ``K`` is scaled
    to the image; a CameraInfo without a size is taken to match the image.

    Raises
    ------
    IntrinsicsError
        Zero / negative / non-finite focal length or principal point (e.g. the all-zero
        ``K`` of an uncalibrated driver).
    """
    K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(K).all():
        raise IntrinsicsError(f"CameraInfo K holds non-finite values: {K.ravel().tolist()}")
    intr = Intrinsics.from_matrix(K, int(info.width) or width, int(info.height) or height)
    if (intr.width, intr.height) != (width, height):
        intr = intr.scaled(width / intr.width, height / intr.height)
        intr = Intrinsics(intr.fx, intr.fy, intr.cx, intr.cy, width, height)
    return intr
