"""RefitNode's ROS wiring, in-process with real rclpy/DDS and the BoxPipeline test double.

Header passthrough, field sizes, markers, CameraInfo vs fallback intrinsics, each bad
input (the node keeps answering afterwards), load failures, latest-only frame handling.
The real pipeline runs in tests/ros/test_node_process.py.
"""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from conftest import require_ros

pytestmark = pytest.mark.ros
_ids = itertools.count()


@pytest.fixture(scope="module")
def executor():
    require_ros()
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    rclpy.init()
    ex = MultiThreadedExecutor(num_threads=4)
    thread = threading.Thread(target=ex.spin, daemon=True)
    thread.start()
    yield ex
    ex.shutdown()
    rclpy.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def rig(executor):
    """Factory: (RefitNode with BoxPipeline, probe) on a private namespace."""
    from ros_harness import cfg_for, make_probe, wait_until

    from refit_ros.ros.node import RefitNode

    made = []

    def build(pipeline=None, factory=None, compressed=False, **overrides):
        ns = f"/t{next(_ids)}"
        cfg = cfg_for(ns, **{"ros.compressed": compressed, **overrides})
        pipe = pipeline if pipeline is not None else _box()
        node = RefitNode(cfg, pipeline_factory=factory or (lambda c: pipe),
                         node_name=f"refit_{ns[1:]}")
        probe = make_probe(f"probe_{ns[1:]}", ns, compressed=compressed)
        made.extend([node, probe])
        executor.add_node(node)
        executor.add_node(probe)
        ok = node.autostart()
        if ok:
            wait_until(lambda: probe.inputs_matched() and probe.outputs_matched(),
                       what="discovery")
        return node, probe, pipe, ok

    yield build
    for n in made:
        executor.remove_node(n)
    time.sleep(0.1)  # let callbacks already handed to the executor finish
    for n in made:
        n.destroy_node()


def _box(**kw):
    from ros_harness import BoxPipeline

    return BoxPipeline(**kw)


def _send(probe, rgb, stamp_ns, info=True, encoding="rgb8", f=600.0):
    from ros_harness import camera_info_msg, image_msg

    msg = image_msg(rgb, stamp_ns, encoding=encoding)
    if info:
        probe.info_pub.publish(camera_info_msg(msg.header, msg.width, msg.height, f))
        time.sleep(0.05)
    probe.image_pub.publish(msg)
    return msg


def _same_stamp(stamp_ns):
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    return lambda m: (m.header.stamp.sec, m.header.stamp.nanosec) == (sec, nsec)


def test_bodies_and_markers_with_header_passthrough(rig):
    from visualization_msgs.msg import Marker
    from ros_harness import BOX_FACES, astronaut

    from refit_ros.ros.messages import joints_from_msg

    node, probe, pipe, ok = rig()
    assert ok
    rgb = astronaut()
    sent = _send(probe, rgb, 1_700_000_000_123_456_789, encoding="bgr8")
    out = probe.smpl.wait(_same_stamp(1_700_000_000_123_456_789))
    assert out.header == sent.header and len(out.bodies) == 1
    b = out.bodies[0]
    assert (len(b.pose), len(b.betas), len(b.transl), len(b.bbox), len(b.joints)) == (72, 10, 3, 4, 24)
    assert b.track_id == 0 and b.body_model == "box" and 0 <= b.score <= 1
    # CameraInfo intrinsics were used: joints project inside the bbox with the sent K.
    K = np.array([[600, 0, 256 + 7], [0, 600, 256 - 5], [0, 0, 1.0]])
    uv = (joints_from_msg(b) @ K.T)
    uv = uv[:, :2] / uv[:, 2:]
    x0, y0, x1, y1 = b.bbox
    assert ((uv[:, 0] >= x0 - 1) & (uv[:, 0] <= x1 + 1) & (uv[:, 1] >= y0 - 1) & (uv[:, 1] <= y1 + 1)).all()
    assert pipe.calls[-1][1] is not None and not pipe.calls[-1][1].is_fallback
    np.testing.assert_array_equal(pipe.calls[-1][0], rgb.shape[:2])
    markers = probe.markers.wait(lambda m: m.markers and m.markers[0].header == sent.header)
    mesh = markers.markers[0]
    assert mesh.type == Marker.TRIANGLE_LIST and mesh.action == Marker.ADD
    assert mesh.header.frame_id == sent.header.frame_id and len(mesh.points) == 3 * len(BOX_FACES)


def test_stale_markers_are_deleted(rig):
    from visualization_msgs.msg import Marker
    from ros_harness import astronaut

    node, probe, pipe, ok = rig()
    _send(probe, astronaut(), 10_000_000_000)
    probe.markers.wait(lambda m: any(x.action == Marker.ADD for x in m.markers))
    _send(probe, np.zeros((48, 64, 3), np.uint8), 11_000_000_000)
    empty = probe.smpl.wait(_same_stamp(11_000_000_000))
    assert empty.bodies == []
    gone = probe.markers.wait(lambda m: any(x.action == Marker.DELETE for x in m.markers))
    assert [(x.id, x.action) for x in gone.markers] == [(0, Marker.DELETE)]


def test_fallback_intrinsics_without_camera_info(rig):
    from ros_harness import astronaut

    from refit_ros.geometry.intrinsics import Intrinsics

    node, probe, pipe, ok = rig()
    _send(probe, astronaut(), 5_000_000_000, info=False)
    probe.smpl.wait(_same_stamp(5_000_000_000))
    used = pipe.calls[-1][1]
    assert used == Intrinsics.fallback(512, 512)


def test_zero_focal_camera_info_warns_and_falls_back(rig):
    from ros_harness import astronaut, diag_status

    from refit_ros.ros.diagnostics import WARN

    node, probe, pipe, ok = rig()
    _send(probe, astronaut(), 6_000_000_000, f=0.0)
    probe.smpl.wait(_same_stamp(6_000_000_000))
    assert pipe.calls[-1][1].is_fallback
    msg = probe.diag.wait(lambda m: (s := diag_status(m, node.get_name(), "camera_info")) is not None
                          and s.level == bytes([WARN]))
    assert "focal length must be > 0" in diag_status(msg, node.get_name(), "camera_info").message


def _bad(kind):
    from ros_harness import image_msg

    msg = image_msg(np.full((8, 10, 3), 90, np.uint8), 7_000_000_000)
    if kind == "encoding":
        msg.encoding = "bayer_grbg8"
    elif kind == "zero":
        msg.width = msg.height = msg.step = 0
        msg.data = b""
    elif kind == "step":
        msg.step = 12
    elif kind == "truncated":
        msg.data = bytes(msg.data)[:100]
    elif kind == "depth":
        msg.encoding, msg.step = "32FC1", 40
        msg.data = bytes(320)
    return msg


@pytest.mark.parametrize("kind,text", [
    ("encoding", "unsupported image encoding 'bayer_grbg8'"), ("zero", "zero-size image"),
    ("step", "step 12 is smaller than width"), ("truncated", "truncated"),
    ("depth", "not a camera picture"),
])
def test_bad_image_reported_and_node_keeps_answering(rig, kind, text):
    from ros_harness import astronaut, diag_status

    from refit_ros.ros.diagnostics import ERROR

    node, probe, pipe, ok = rig()
    probe.image_pub.publish(_bad(kind))
    msg = probe.diag.wait(lambda m: (s := diag_status(m, node.get_name(), "input image")) is not None
                          and s.level == bytes([ERROR]))
    assert text in diag_status(msg, node.get_name(), "input image").message
    assert node.stats["rejected"] == 1 and not pipe.calls
    _send(probe, astronaut(), 8_000_000_000)
    assert len(probe.smpl.wait(_same_stamp(8_000_000_000)).bodies) == 1


def test_pipeline_exception_is_reported_and_node_recovers(rig):
    from ros_harness import astronaut, diag_status

    node, probe, pipe, ok = rig(pipeline=_box(fail_on=lambda im: im.shape[0] == 32))
    _send(probe, np.full((32, 32, 3), 99, np.uint8), 9_000_000_000)
    msg = probe.diag.wait(lambda m: (s := diag_status(m, node.get_name(), "processing")) is not None
                          and "asked to fail" in s.message)
    assert diag_status(msg, node.get_name(), "processing").level == b"\x02"
    _send(probe, astronaut(), 9_500_000_000)
    assert probe.smpl.wait(_same_stamp(9_500_000_000)).bodies


def test_missing_model_file_is_named_and_node_stays_up(rig):
    from ros_harness import diag_status

    def factory(cfg):
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/refit_weights.pt")

    node, probe, pipe, ok = rig(factory=factory)
    assert not ok
    msg = probe.diag.wait(lambda m: (s := diag_status(m, node.get_name(), "pipeline")) is not None
                          and s.level == b"\x02", timeout=5)
    text = diag_status(msg, node.get_name(), "pipeline").message
    assert "/nowhere/refit_weights.pt" in text and "model.weights" in text
    probe.diag.clear()
    probe.diag.wait(lambda m: diag_status(m, node.get_name(), "pipeline") is not None, timeout=3)


def test_invalid_parameter_fails_configure_with_key_name(rig, executor):
    from ros_harness import cfg_for

    from refit_ros.ros.node import RefitNode

    import rclpy.parameter

    node = RefitNode(cfg_for("/tparam"), pipeline_factory=lambda c: _box(),
                     node_name="refit_tparam",
                     parameter_overrides=[rclpy.parameter.Parameter("model.iterations", value=-2)])
    try:
        assert not node.autostart()
        assert "model.iterations" in node.diag.to_msg(node.get_clock().now().to_msg()).status[0].message
    finally:
        node.destroy_node()


def test_slow_pipeline_drops_stale_frames(rig):
    from ros_harness import astronaut

    node, probe, pipe, ok = rig(pipeline=_box(delay_s=0.25))
    rgb = astronaut()[::4, ::4]
    stamps = [20_000_000_000 + i * 10_000_000 for i in range(12)]
    for s in stamps:
        _send(probe, rgb, s, info=False)
        time.sleep(0.03)
    last = probe.smpl.wait(_same_stamp(stamps[-1]), timeout=10)
    got = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in probe.smpl.items]
    assert last is not None and got == sorted(got) and len(got) < len(stamps) / 2
    assert node._frames.dropped >= len(stamps) / 2


def test_compressed_input(rig):
    from ros_harness import astronaut

    from refit_ros.ros.image_conversion import rgb8_to_compressed
    from std_msgs.msg import Header

    node, probe, pipe, ok = rig(compressed=True)
    header = Header(frame_id="cam_c")
    header.stamp.sec = 33
    probe.image_pub.publish(rgb8_to_compressed(astronaut(), "jpeg", header))
    out = probe.smpl.wait(lambda m: m.header.frame_id == "cam_c")
    assert out.header.stamp.sec == 33 and len(out.bodies) == 1


def test_decompression_bomb_is_refused_and_node_keeps_answering(rig):
    """A crafted PNG declaring 100000 x 100000 pixels in a few bytes, as a CompressedImage:
    refused from its header (never decoded), reported, and the next frame is processed."""
    from ros_harness import astronaut, diag_status, png_declaring
    from sensor_msgs.msg import CompressedImage

    from refit_ros.ros.diagnostics import ERROR
    from refit_ros.ros.image_conversion import rgb8_to_compressed
    from std_msgs.msg import Header

    node, probe, pipe, ok = rig(compressed=True)
    bomb = CompressedImage(format="png", data=png_declaring(100_000, 100_000))
    bomb.header.stamp.sec = 40
    probe.image_pub.publish(bomb)
    msg = probe.diag.wait(lambda m: (s := diag_status(m, node.get_name(), "input image")) is not None
                          and s.level == bytes([ERROR]))
    text = diag_status(msg, node.get_name(), "input image").message
    assert "100000x100000" in text and "ros.max_image_pixels" in text
    assert node.stats["rejected"] == 1 and not pipe.calls
    header = Header(frame_id="cam_b")
    header.stamp.sec = 41
    probe.image_pub.publish(rgb8_to_compressed(astronaut(), "jpeg", header))
    assert len(probe.smpl.wait(lambda m: m.header.frame_id == "cam_b").bodies) == 1


def test_stamps_going_backwards_reset_tracking(rig):
    from ros_harness import astronaut

    node, probe, pipe, ok = rig()
    _send(probe, astronaut(), 50_000_000_000, info=False)
    probe.smpl.wait(_same_stamp(50_000_000_000))
    _send(probe, astronaut(), 40_000_000_000, info=False)
    probe.smpl.wait(_same_stamp(40_000_000_000))
    assert pipe.resets == 1
