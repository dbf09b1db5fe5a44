"""CameraSource: a video file, an image folder or one image -> Image (+ CameraInfo).

Frames are published at the input's own rate (``source.rate: 0``; images: 10 fps) or at
``source.rate``, stamped with the publishing time, in ``source.frame_id``. CameraInfo (same
header) is published only when ``source.camera_info`` names a calibration YAML: without a
calibration the node downstream uses its documented fallback, which a made-up CameraInfo
would hide.
"""

from __future__ import annotations

import threading

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from refit_ros.config import Config, ConfigError
from refit_ros.ros.camera_info import read_calibration, to_camera_info
from refit_ros.ros.image_conversion import numpy_to_image, rgb8_to_compressed
from refit_ros.ros.parameters import config_from_parameters, declare_config_parameters

#: Reliable publishers match both reliable and best-effort subscribers.
SOURCE_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)


class CameraSource(Node):
    """Publishes frames of ``source.input`` on ``ros.image_topic`` (+ ``ros.camera_info_topic``).

    Attributes
    ----------
    finished : threading.Event
        Set once the last frame is out (never when ``source.loop`` is true).
    published : int
        Frames published so far.

    Raises
    ------
    refit_ros.config.ConfigError, refit_ros.io.frames.FrameSourceError,
    refit_ros.io.camera_info.CameraInfoError
        No input given, input unreadable, or a bad calibration file (messages name it).
    """

    def __init__(self, cfg: Config, node_name: str = "camera_source", **kwargs) -> None:
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        from refit_ros.io.frames import open_source

        super().__init__(node_name, **kwargs)
        names = declare_config_parameters(self, cfg, ["source", "ros"])
        self.cfg = config_from_parameters(self, cfg, names)
        src = self.cfg.source
        if not src.input:
            raise ConfigError("source.input is empty: give a video file, an image folder or an "
                              "image (--set source.input=PATH or -p source.input:=PATH)")
        self.frames = open_source(src.input, src.rate)
        self.fps = self.frames.fps
        self.calibration = read_calibration(src.camera_info) if src.camera_info else None
        ros = self.cfg.ros
        self._compressed = ros.compressed
        topic = ros.image_topic + ("/compressed" if self._compressed else "")
        self._image_pub = self.create_publisher(CompressedImage if self._compressed else Image,
                                                topic, SOURCE_QOS)
        self._info_pub = (self.create_publisher(CameraInfo, ros.camera_info_topic, SOURCE_QOS)
                          if self.calibration is not None else None)
        self.finished = threading.Event()
        self.published = 0
        self._iter = iter(self.frames)
        self._timer = self.create_timer(1.0 / self.fps, self._tick)
        self.get_logger().info(
            f"publishing {self.frames} on {topic} at {self.fps:g} fps"
            + (f" with CameraInfo from {src.camera_info}" if self.calibration else
               " (no camera_info YAML: no CameraInfo, the node uses its fallback intrinsics)")
            + (", looping" if src.loop else ""))

    def _next_frame(self):
        try:
            return next(self._iter)
        except StopIteration:
            if not self.cfg.source.loop:
                return None
            self._iter = iter(self.frames)
            return next(self._iter, None)

    def _tick(self) -> None:
        frame = self._next_frame()
        if frame is None:
            self._timer.cancel()
            self.get_logger().info(f"end of input after {self.published} frames")
            self.finished.set()
            return
        header = self._header()
        if self._compressed:
            self._image_pub.publish(rgb8_to_compressed(frame.image, "jpeg", header))
        else:
            self._image_pub.publish(numpy_to_image(frame.image, "rgb8", header))
        if self._info_pub is not None:
            self._info_pub.publish(to_camera_info(self.calibration, header))
        self.published += 1

    def _header(self):
        from std_msgs.msg import Header

        return Header(stamp=self.get_clock().now().to_msg(), frame_id=self.cfg.source.frame_id)
