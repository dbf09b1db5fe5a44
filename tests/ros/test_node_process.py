"""`refit-ros node` as a subprocess with the real pipeline (default config), driven from
this process: the astronaut image + CameraInfo in, SMPLArray + MarkerArray out; every bad
input reported while the node keeps answering; missing model files named; bringup + MCAP.

The node runs the default config with the shipped weights (a missing weights file fails
the tests unless seeded, untrained weights are asked for explicitly; see
``node_process.node_test_args``); ``REFIT_NODE_TEST_ARGS`` overrides the extra arguments.
"""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from conftest import require_ros
from node_process import RefitProcess, node_test_args

pytestmark = pytest.mark.ros
STAMP = 1_700_000_123_456_789_000
K_F = 620.0


@pytest.fixture(scope="module")
def extra(tmp_path_factory):
    return node_test_args(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def domain_id():
    return random.randint(120, 200)


@pytest.fixture(scope="module")
def ros(domain_id):
    """rclpy in this process (private context on the test domain) + a spinning executor."""
    require_ros()
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    ex = MultiThreadedExecutor(num_threads=3, context=ctx)
    thread = threading.Thread(target=ex.spin, daemon=True)
    thread.start()
    yield ctx, ex
    ex.shutdown()
    rclpy.shutdown(context=ctx)
    thread.join(5)


@pytest.fixture(scope="module")
def node(ros, domain_id, extra, tmp_path_factory):
    """One `refit-ros node` (default config) for the whole module, plus the probe node."""
    from ros_harness import wait_until

    ctx, ex = ros
    proc = RefitProcess(["node", *extra], tmp_path_factory.mktemp("node") / "node.log", domain_id)
    try:
        proc.wait_log("ready:", timeout=240, fail_on=("cannot load the pipeline",))
        probe = _probe(ctx)
        ex.add_node(probe)
        wait_until(lambda: probe.inputs_matched() and probe.outputs_matched(), timeout=30,
                   what="discovery")
    except BaseException:
        proc.stop()
        raise
    yield proc, probe
    code = proc.stop()
    assert code == 0, f"refit-ros node exited with {code} on SIGINT:\n{proc.log()[-2000:]}"


def _probe(ctx):
    from ros_harness import make_probe

    return make_probe(f"probe_{random.randint(0, 10**6)}", context=ctx)


def _send(probe, rgb, stamp_ns, f=K_F, info=True, encoding="rgb8"):
    from ros_harness import camera_info_msg, image_msg

    msg = image_msg(rgb, stamp_ns, encoding=encoding)
    if info:
        probe.info_pub.publish(camera_info_msg(msg.header, msg.width, msg.height, f))
        time.sleep(0.1)
    probe.image_pub.publish(msg)
    return msg


def _wait(proc, inbox, pred, timeout):
    """``inbox.wait`` with the node's log tail in the failure message."""
    try:
        return inbox.wait(pred, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- node log ---\n{proc.log()[-3000:]}") from None


def _stamp_is(ns):
    sec, nsec = divmod(ns, 1_000_000_000)
    return lambda m: (m.header.stamp.sec, m.header.stamp.nanosec) == (sec, nsec)


def test_astronaut_bodies_markers_and_intrinsics(node):
    from ros_harness import astronaut
    from visualization_msgs.msg import Marker

    from refit_ros.ros.messages import joints_from_msg

    proc, probe = node
    rgb = astronaut()
    sent = _send(probe, rgb, STAMP)
    out = _wait(proc, probe.smpl, _stamp_is(STAMP), 60)
    assert out.header == sent.header
    assert len(out.bodies) >= 1, proc.log()[-2000:]
    b = out.bodies[0]
    assert (len(b.pose), len(b.betas), len(b.transl), len(b.bbox), len(b.joints)) == (72, 10, 3, 4, 24)
    assert b.body_model and b.gender == "neutral" and 0.0 <= b.score <= 1.0
    assert np.isfinite(b.pose).all() and np.isfinite(b.betas).all()
    x0, y0, x1, y1 = b.bbox
    assert 0 <= x0 < x1 <= rgb.shape[1] and 0 <= y0 < y1 <= rgb.shape[0]
    # Translation consistent with the CameraInfo we sent: joints project into the box.
    joints = joints_from_msg(b)
    assert (joints[:, 2] > 0.3).all() and b.transl[2] > 0.3
    K = np.array([[K_F, 0, 256 + 7], [0, K_F, 256 - 5], [0, 0, 1]])
    uv = joints @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    mx, my = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
    inside = ((uv[:, 0] > x0 - mx) & (uv[:, 0] < x1 + mx) & (uv[:, 1] > y0 - my) & (uv[:, 1] < y1 + my))
    # The astronaut is cut at the waist: knees, ankles and feet (SMPL 4, 5, 7, 8, 10, 11) are
    # outside the picture and its box, so only the joints in view must project into the box.
    in_view = np.setdiff1d(np.arange(24), [4, 5, 7, 8, 10, 11])
    assert inside[in_view].all(), (uv, b.bbox)
    assert "using CameraInfo intrinsics" in proc.log()
    markers = _wait(proc, probe.markers, lambda m: any(x.header == sent.header for x in m.markers), 60)
    mesh = [x for x in markers.markers if x.action == Marker.ADD]
    assert len(mesh) == len(out.bodies)
    m = mesh[0]
    assert m.type == Marker.TRIANGLE_LIST and m.header.frame_id == sent.header.frame_id
    assert len(m.points) % 3 == 0 and len(m.points) >= 3000
    pts = np.array([[p.x, p.y, p.z] for p in m.points[::50]])
    centre = pts.mean(0)
    u, v = K_F * centre[0] / centre[2] + 263, K_F * centre[1] / centre[2] + 251
    assert x0 - mx < u < x1 + mx and y0 - my < v < y1 + my


def _bad(kind):
    from ros_harness import image_msg

    msg = image_msg(np.full((40, 50, 3), 90, np.uint8), STAMP + 10**9)
    if kind == "encoding":
        msg.encoding = "bayer_grbg8"
    elif kind == "zero":
        msg.width = msg.height = msg.step = 0
        msg.data = b""
    elif kind == "step":
        msg.step = 100
    elif kind == "truncated":
        msg.data = bytes(msg.data)[:1000]
    return msg


@pytest.mark.parametrize("kind,text", [
    ("encoding", "unsupported image encoding 'bayer_grbg8'"), ("zero", "zero-size image"),
    ("step", "step 100 is smaller than width"), ("truncated", "image data truncated"),
])
def test_bad_image_is_reported_and_node_keeps_answering(node, kind, text):
    from ros_harness import astronaut, diag_status

    proc, probe = node
    probe.diag.clear()
    probe.image_pub.publish(_bad(kind))
    msg = _wait(proc, probe.diag, lambda m: (s := diag_status(m, "refit_node", "input image"))
                is not None and text in s.message, 20)
    assert diag_status(msg, "refit_node", "input image").level == b"\x02"
    proc.wait_log(text, timeout=5)
    stamp = STAMP + random.randint(2, 10**6) * 10**9
    _send(probe, astronaut()[::2, ::2], stamp)
    _wait(proc, probe.smpl, _stamp_is(stamp), 60)
    assert proc.alive()


def test_zero_focal_camera_info_is_reported_and_falls_back(node):
    from ros_harness import astronaut, diag_status

    proc, probe = node
    probe.diag.clear()
    stamp = STAMP + 7 * 10**9
    _send(probe, astronaut(), stamp, f=0.0)
    _wait(proc, probe.smpl, _stamp_is(stamp), 60)
    msg = _wait(proc, probe.diag, lambda m: (s := diag_status(m, "refit_node", "camera_info"))
                is not None and s.level == b"\x01", 20)
    assert "focal length must be > 0" in diag_status(msg, "refit_node", "camera_info").message
    proc.wait_log("focal length must be > 0", timeout=5)


def test_missing_weights_file_is_named(ros, domain_id, extra, tmp_path):
    from ros_harness import diag_status

    ctx, ex = ros
    probe = _probe(ctx)
    ex.add_node(probe)
    missing = "/nonexistent/refit_weights_file.pt"
    proc = RefitProcess(["node", *extra, "--name", "refit_missing", "--set", f"model.weights={missing}"],
                        tmp_path / "missing.log", domain_id)
    try:
        proc.wait_log("cannot load the pipeline", timeout=240)
        assert missing in proc.log()
        msg = probe.diag.wait(lambda m: (s := diag_status(m, "refit_missing", "pipeline")) is not None
                              and s.level == b"\x02", timeout=20)
        assert missing in diag_status(msg, "refit_missing", "pipeline").message
        assert proc.alive()
    finally:
        proc.stop()
        ex.remove_node(probe)
        probe.destroy_node()


def test_bringup_source_node_recorder_to_mcap(domain_id, extra, tmp_path):
    import cv2
    from mcap_ros2.reader import read_ros2_messages
    from ros_harness import astronaut

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.jpg"), np.roll(astronaut(), 4 * i, axis=1)[..., ::-1])
    mcap = tmp_path / "run.mcap"
    proc = RefitProcess(["bringup", *extra, "--source", str(frames), "--mcap", str(mcap),
                         "--exit-after-source", "--set", "source.rate=2"],
                        tmp_path / "bringup.log", domain_id + 1)
    try:
        proc.proc.wait(timeout=300)
    finally:
        code = proc.stop()
    assert code == 0, proc.log()[-3000:]
    topics: dict[str, list] = {}
    for m in read_ros2_messages(str(mcap)):
        topics.setdefault(m.channel.topic, []).append(m.ros_msg)
    assert len(topics["/camera/image_raw"]) == 3, proc.log()[-2000:]
    bodies = topics["/human/smpl"]
    assert bodies and any(len(b.bodies) >= 1 for b in bodies)
    stamps = {(i.header.stamp.sec, i.header.stamp.nanosec) for i in topics["/camera/image_raw"]}
    assert all((b.header.stamp.sec, b.header.stamp.nanosec) in stamps for b in bodies)


def _thread_cpu_s(pid: int, tid: int) -> float:
    import os

    fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_executor_does_not_spin_a_core_under_image_load(node):
    """Issue 14, item 9: with rclpy's MultiThreadedExecutor the node's spinning thread took a
    whole core while images kept arriving (callbacks handed to its pool are re-polled in a
    busy loop), starving inference: the processing period grew ~6x under a 2x load. The
    executor thread (the process's main thread) must stay mostly idle while images pour in
    (scripts/load_test.py has the whole effect: p95 delay 3.3-4.0 -> 1.6 periods)."""
    from ros_harness import astronaut, image_msg

    proc, probe = node
    pid = proc.proc.pid
    rgb = astronaut()
    msg = image_msg(rgb, STAMP)
    c0, t0 = _thread_cpu_s(pid, pid), time.monotonic()
    while time.monotonic() - t0 < 5.0:            # ~150 images/s, far faster than the node works
        probe.image_pub.publish(msg)
        time.sleep(0.005)
    fraction = (_thread_cpu_s(pid, pid) - c0) / (time.monotonic() - t0)
    # measured here: 31-33 % of a core with the MultiThreadedExecutor, 5-6 % single-threaded
    assert fraction < 0.15, f"the node's executor thread used {fraction:.0%} of a core"
