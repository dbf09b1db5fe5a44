"""Test helpers for the ROS tests: a probe node, image/CameraInfo builders and BoxPipeline.

BoxPipeline is a deterministic test double of ``FramePipeline`` used only to test the ROS
wiring in-process (it runs no network): one 0.5 x 1.7 x 0.3 m box "person" 4 m in front of
the camera, projected with the intrinsics the node passes in, so the tests can tell which
intrinsics were used. The real pipeline is tested through ``refit-ros node`` subprocesses.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Callable

import numpy as np

from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.pipeline.types import Body, FrameResult

BOX_CENTRE = np.array([0.0, 0.0, 4.0])
BOX_SIZE = np.array([0.5, 1.7, 0.3])
BOX_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


class BoxPipeline:
    """FramePipeline test double (see module docstring); black images hold nobody."""

    def __init__(self, delay_s: float = 0.0, fail_on: Callable[[np.ndarray], bool] | None = None):
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.calls: list[tuple[tuple[int, int], Intrinsics | None, float]] = []
        self.resets = 0

    def process(self, image_rgb, intrinsics=None, stamp=0.0) -> FrameResult:
        h, w = image_rgb.shape[:2]
        intr = intrinsics or Intrinsics.fallback(w, h)
        self.calls.append(((h, w), intrinsics, stamp))
        if self.fail_on is not None and self.fail_on(image_rgb):
            raise RuntimeError("BoxPipeline asked to fail on this frame")
        time.sleep(self.delay_s)
        bodies = []
        if image_rgb.mean() > 5:
            corners = np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)])
            verts = BOX_CENTRE + corners * BOX_SIZE
            joints = BOX_CENTRE + np.stack([np.zeros(24), np.linspace(-0.8, 0.8, 24), np.zeros(24)], 1)
            uv = intr.project(verts)
            bodies.append(Body(track_id=0, body_model="box", gender="neutral", pose=np.zeros(72),
                               betas=np.zeros(10), transl=BOX_CENTRE.copy(), joints=joints,
                               vertices=verts, bbox=np.r_[uv.min(0), uv.max(0)], score=0.9))
        return FrameResult(bodies=bodies, faces=BOX_FACES, intrinsics=intr, timings_ms={})

    def reset(self) -> None:
        self.resets += 1


@functools.lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def astronaut() -> np.ndarray:
    """scikit-image's astronaut (512 x 512 RGB, public domain); a fresh copy each call."""
    return _astronaut().copy()


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = "test_optical_frame",
              encoding: str = "rgb8"):
    from std_msgs.msg import Header

    from refit_ros.ros.image_conversion import numpy_to_image

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    arr = rgb[..., ::-1] if encoding == "bgr8" else rgb
    return numpy_to_image(np.ascontiguousarray(arr), encoding, header)


def camera_info_msg(header, width: int, height: int, f: float = 600.0):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    info.k = [f, 0.0, width / 2 + 7.0, 0.0, f, height / 2 - 5.0, 0.0, 0.0, 1.0]
    return info


class Inbox:
    """Messages of one subscription, with a blocking wait."""

    def __init__(self) -> None:
        self.items: list = []
        self._cond = threading.Condition()

    def __call__(self, msg) -> None:
        with self._cond:
            self.items.append(msg)
            self._cond.notify_all()

    def wait(self, pred: Callable[[object], bool] = lambda m: True, timeout: float = 10.0):
        """First message (oldest first) satisfying ``pred``; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.items:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message within {timeout} s "
                                         f"({len(self.items)} received)")
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self.items.clear()


def make_probe(node_name: str, ns: str = "", compressed: bool = False, context=None):
    """A node publishing images / CameraInfo and recording outputs and diagnostics.

    Topics are ``<ns>/camera/image_raw`` etc., matching ``cfg_for(ns)``.
    """
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from visualization_msgs.msg import MarkerArray

    from refit_ros.msg import SMPLArray

    node = Node(node_name, context=context)
    rel = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    img_type, img_topic = ((CompressedImage, f"{ns}/camera/image_raw/compressed") if compressed
                           else (Image, f"{ns}/camera/image_raw"))
    node.image_pub = node.create_publisher(img_type, img_topic, rel)
    node.info_pub = node.create_publisher(CameraInfo, f"{ns}/camera/camera_info", rel)
    node.smpl, node.markers, node.diag = Inbox(), Inbox(), Inbox()
    subs = [node.create_subscription(SMPLArray, f"{ns}/human/smpl", node.smpl, rel),
            node.create_subscription(MarkerArray, f"{ns}/human/mesh_markers", node.markers, rel)]
    node.create_subscription(DiagnosticArray, "/diagnostics", node.diag, rel)
    node.outputs_matched = lambda: all(s.get_publisher_count() > 0 for s in subs)
    node.inputs_matched = lambda: (node.image_pub.get_subscription_count() > 0
                                   and node.info_pub.get_subscription_count() > 0)
    return node


def cfg_for(ns: str, **overrides):
    """Default config with every topic under ``ns`` (isolates tests sharing one process)."""
    from refit_ros.config import load_config

    base = {"ros.image_topic": f"{ns}/camera/image_raw",
            "ros.camera_info_topic": f"{ns}/camera/camera_info",
            "ros.smpl_topic": f"{ns}/human/smpl", "ros.markers_topic": f"{ns}/human/mesh_markers"}
    base.update(overrides)
    return load_config(None, base)


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def diag_status(msg, node_name: str, part: str):
    """The status ``<node_name>: <part>`` in a DiagnosticArray, or None."""
    for st in msg.status:
        if st.name == f"{node_name}: {part}":
            return st
    return None


def png_declaring(width: int, height: int) -> bytes:
    """A PNG that declares ``width x height`` RGB pixels in a few dozen bytes (IHDR, a tiny
    IDAT, IEND): a decompression bomb when a decoder allocates what the header says."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
