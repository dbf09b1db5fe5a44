"""Recorder: camera images, CameraInfo, bodies and mesh markers -> a ROS 2 MCAP file.

Subscriptions are ``raw`` (the CDR bytes as received), so nothing is deserialised and
re-encoded; schemas are the ``.msg`` definitions (see :mod:`refit_ros.ros.msgdefs`), so
Foxglove, ``ros2 bag`` (MCAP storage) and ``mcap-ros2-support`` can read the file.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from refit_ros.config import Config
from refit_ros.ros.msgdefs import schema_text, type_name_of
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
    """Writes every message of :func:`recorded_topics` to ``path`` (MCAP, zstd chunks).

    Parameters
    ----------
    cfg : Config
    path : str or Path
        Output ``.mcap`` file (its folder is created).
    """

    def __init__(self, cfg: Config, path: str | Path, node_name: str = "refit_recorder",
                 **kwargs) -> None:
        from mcap.writer import CompressionType, Writer

        super().__init__(node_name, **kwargs)
        names = declare_config_parameters(self, cfg, ["ros"])
        self.cfg = config_from_parameters(self, cfg, names)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile="ros2", library="refit_ros recorder")
        self._closed = False
        self.counts: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        for topic, msg_class, qos in recorded_topics(self.cfg):
            type_name = type_name_of(msg_class)
            schema = self._writer.register_schema(type_name, "ros2msg",
                                                  schema_text(type_name).encode())
            self._channels[topic] = self._writer.register_channel(topic, "cdr", schema)
            self.counts[topic] = 0
            self.create_subscription(msg_class, topic, self._writer_for(topic), qos, raw=True)
        self.get_logger().info(f"recording {', '.join(self._channels)} to {self.path}")

    def _writer_for(self, topic: str):
        channel = self._channels[topic]

        def write(data: bytes) -> None:
            now = time.time_ns()
            with self._lock:
                if self._closed:
                    return
                self._writer.add_message(channel, log_time=now, publish_time=now, data=data,
                                         sequence=self.counts[topic])
                self.counts[topic] += 1

        return write

    def close(self) -> None:
        """Finish the MCAP file (summary + index); later messages are ignored."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.finish()
            self._file.close()
        self.get_logger().info(f"wrote {self.path}: " + ", ".join(
            f"{t} {n}" for t, n in self.counts.items()))

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()
