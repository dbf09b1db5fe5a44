"""Recorder: camera images, CameraInfo, bodies and mesh markers -> a ROS 2 MCAP file.

Subscriptions are ``raw`` (the CDR bytes as received), so nothing is deserialised and
re-encoded; schemas are the ``.msg`` definitions (see :mod:`refit_ros.ros.mcap_io`), so
Foxglove, ``ros2 bag`` (MCAP storage) and ``mcap-ros2-support`` can read the file.
"""

from __future__ import annotations

import time
from pathlib import Path

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from refit_ros.config import Config
from refit_ros.ros.mcap_io import McapTopicWriter
from refit_ros.ros.parameters import config_from_parameters, declare_config_parameters

#: Best effort accepts both reliable and best-effort publishers; depth absorbs bursts.
RECORD_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT,
                        history=HistoryPolicy.KEEP_LAST)
RELIABLE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          history=HistoryPolicy.KEEP_LAST)


def recorded_topics(cfg: Config) -> list[tuple[str, type, QoSProfile]]:
    """``(topic, message class, QoS)`` of everything the recorder keeps."""
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from visualization_msgs.msg import MarkerArray

    from refit_ros.msg import SMPLArray

    ros = cfg.ros
    image = (ros.image_topic + "/compressed", CompressedImage) if ros.compressed else (ros.image_topic, Image)
    topics = [(image[0], image[1], RECORD_QOS), (ros.camera_info_topic, CameraInfo, RECORD_QOS),
              (ros.smpl_topic, SMPLArray, RELIABLE_QOS)]
    if ros.publish_markers:
        topics.append((ros.markers_topic, MarkerArray, RELIABLE_QOS))
    return topics


class Recorder(Node):
    """Writes every message of :func:`recorded_topics` to ``path`` (MCAP, lz4 chunks).

    Parameters
    ----------
    cfg : Config
    path : str or Path
        Output ``.mcap`` file (its folder is created).
    """

    def __init__(self, cfg: Config, path: str | Path, node_name: str = "refit_recorder",
                 **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        names = declare_config_parameters(self, cfg, ["ros"])
        self.cfg = config_from_parameters(self, cfg, names)
        self.writer = McapTopicWriter(path)
        self.path = self.writer.path
        self.counts = self.writer.counts
        for topic, msg_class, qos in recorded_topics(self.cfg):
            self.writer.add_topic(topic, msg_class)
            # One callback group per topic: a stream of big images must not starve the
            # bodies (a shared group ran only the image callback while images kept coming).
            self.create_subscription(msg_class, topic, self._writer_for(topic), qos, raw=True,
                                     callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f"recording {', '.join(self.counts)} to {self.path}")

    def _writer_for(self, topic: str):
        def write(data: bytes) -> None:
            self.writer.write_raw(topic, data, time.time_ns())

        return write

    def close(self) -> None:
        """Finish the MCAP file (summary + index); later messages are ignored."""
        if self.writer.closed:
            return
        self.writer.close()
        self.get_logger().info(f"wrote {self.path}: " + ", ".join(
            f"{t} {n}" for t, n in self.counts.items()))

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()
