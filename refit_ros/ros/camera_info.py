"""A ROS camera_calibration YAML (read by :mod:`refit_ros.io.camera_info`) as
``sensor_msgs/CameraInfo``."""

from __future__ import annotations

from refit_ros.io.camera_info import Calibration, CameraInfoError, read_calibration, write_calibration

__all__ = ["Calibration", "CameraInfoError", "read_calibration", "to_camera_info",
           "write_calibration"]


def to_camera_info(calib: Calibration, header=None):
    """:class:`~refit_ros.io.camera_info.Calibration` -> ``sensor_msgs/CameraInfo``."""
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
