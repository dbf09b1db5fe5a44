"""ROS 2 MCAP files (readable by Foxglove, ``ros2 bag`` and ``mcap-ros2-support``).

:class:`McapTopicWriter` writes CDR messages with ``ros2msg`` schemas: the live
:class:`~refit_ros.ros.recorder.Recorder` hands it the raw bytes it receives, and
:class:`OfflineRecording` serialises what an offline run (``refit-ros video``) computed, so
both produce the same topics and types.
"""

from __future__ import annotations

import threading
from pathlib import Path

from refit_ros.ros.msgdefs import schema_text, type_name_of


class McapTopicWriter:
    """An MCAP file (lz4 chunks) with one channel per registered topic. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        from mcap.writer import CompressionType, Writer

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        # lz4: ~5x faster than zstd; a 30 fps 1080p camera is ~180 MB/s of raw images.
        self._writer = Writer(self._file, compression=CompressionType.LZ4)
        self._writer.start(profile="ros2", library="refit_ros")
        self._lock = threading.Lock()
        self._channels: dict[str, int] = {}
        self._schemas: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.closed = False

    def add_topic(self, topic: str, msg_class) -> None:
        """Register ``topic`` carrying ``msg_class`` (e.g. ``sensor_msgs.msg.Image``)."""
        type_name = type_name_of(msg_class)
        with self._lock:
            if type_name not in self._schemas:
                self._schemas[type_name] = self._writer.register_schema(
                    type_name, "ros2msg", schema_text(type_name).encode())
            self._channels[topic] = self._writer.register_channel(topic, "cdr",
                                                                  self._schemas[type_name])
            self.counts[topic] = 0

    def write_raw(self, topic: str, data: bytes, log_time_ns: int,
                  publish_time_ns: int | None = None) -> None:
        """Write one CDR-serialised message (ignored once closed)."""
        with self._lock:
            if self.closed:
                return
            self._writer.add_message(self._channels[topic], log_time=log_time_ns,
                                     publish_time=publish_time_ns or log_time_ns, data=data,
                                     sequence=self.counts[topic])
            self.counts[topic] += 1

    def write(self, topic: str, msg, log_time_ns: int) -> None:
        """Serialise a message object and write it."""
        from rclpy.serialization import serialize_message

        self.write_raw(topic, serialize_message(msg), log_time_ns)

    def close(self) -> None:
        """Write the summary and close the file (idempotent)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._writer.finish()
            self._file.close()


class OfflineRecording:
    """Image, CameraInfo, SMPLArray and MarkerArray of an offline run, on the node's topics.

    Parameters
    ----------
    path : str or Path
    cfg : refit_ros.config.Config
        Topic names (``ros.*``) and the frame id (``source.frame_id``).
    """

    def __init__(self, path: str | Path, cfg) -> None:
        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import MarkerArray

        from refit_ros.msg import SMPLArray
        from refit_ros.ros.markers import MeshMarkers

        self.cfg = cfg
        self.writer = McapTopicWriter(path)
        ros = cfg.ros
        self._topics = {"image": ros.image_topic, "info": ros.camera_info_topic,
                        "smpl": ros.smpl_topic, "markers": ros.markers_topic}
        for key, cls in (("image", Image), ("info", CameraInfo), ("smpl", SMPLArray),
                         ("markers", MarkerArray)):
            self.writer.add_topic(self._topics[key], cls)
        self._markers = MeshMarkers()

    def write_frame(self, stamp_s: float, rgb, intrinsics, result) -> None:
        """One frame: ``rgb`` (H x W x 3 uint8), the intrinsics used and its FrameResult."""
        from sensor_msgs.msg import CameraInfo
        from std_msgs.msg import Header

        from refit_ros.ros.image_conversion import numpy_to_image
        from refit_ros.ros.messages import frame_result_to_msg

        ns = int(round(stamp_s * 1e9))
        header = Header(frame_id=self.cfg.source.frame_id)
        header.stamp.sec, header.stamp.nanosec = divmod(ns, 1_000_000_000)
        info = CameraInfo(header=header, width=int(intrinsics.width), height=int(intrinsics.height),
                          distortion_model="plumb_bob")
        info.k = intrinsics.matrix().reshape(-1).tolist()
        info.d = [0.0] * 5
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [info.k[0], 0.0, info.k[2], 0.0, 0.0, info.k[4], info.k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
        w = self.writer
        w.write(self._topics["image"], numpy_to_image(rgb, "rgb8", header), ns)
        w.write(self._topics["info"], info, ns)
        w.write(self._topics["smpl"], frame_result_to_msg(result, header), ns)
        w.write_raw(self._topics["markers"], self._markers.frame_cdr(result, header), ns)

    def close(self) -> None:
        self.writer.close()
