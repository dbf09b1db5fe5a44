"""FrameResult -> SMPLArray / MarkerArray and CameraInfo -> Intrinsics (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_ros

pytestmark = pytest.mark.ros


@pytest.fixture(autouse=True)
def _ros():
    require_ros()


def _body(track_id=3, vertices=True):
    from refit_ros.pipeline.types import Body

    rng = np.random.default_rng(track_id + 10)
    joints = rng.normal(size=(24, 3)) * 0.3 + [0, 0, 3]
    return Body(track_id=track_id, body_model="test_body", gender="neutral",
                pose=rng.normal(size=72), betas=rng.normal(size=10), transl=np.array([0.1, 0.2, 3.0]),
                joints=joints, vertices=joints.copy() if vertices else None,
                bbox=np.array([10, 20, 110, 220.0]), score=0.8)


def _result(bodies):
    from refit_ros.geometry.intrinsics import Intrinsics
    from refit_ros.pipeline.types import FrameResult

    faces = np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7]])
    return FrameResult(bodies=bodies, faces=faces, intrinsics=Intrinsics.fallback(640, 480),
                       timings_ms={})


def _header(sec=12, frame="cam"):
    from std_msgs.msg import Header

    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = sec, 345
    return h


def test_frame_result_to_smpl_array():
    from refit_ros.ros.messages import frame_result_to_msg, joints_from_msg

    bodies = [_body(3), _body(-1)]
    header = _header()
    msg = frame_result_to_msg(_result(bodies), header)
    assert msg.header == header and len(msg.bodies) == 2
    b = msg.bodies[0]
    assert b.track_id == 3 and msg.bodies[1].track_id == -1
    assert (b.body_model, b.gender) == ("test_body", "neutral")
    assert len(b.pose) == 72 and len(b.betas) == 10 and len(b.transl) == 3 and len(b.bbox) == 4
    np.testing.assert_allclose(b.pose, bodies[0].pose, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(joints_from_msg(b), bodies[0].joints, atol=1e-12)
    assert b.score == pytest.approx(0.8)
    from rclpy.serialization import serialize_message

    assert len(serialize_message(msg)) > 2 * (72 + 10 + 3 + 4) * 4


def test_empty_frame_and_bad_bodies():
    from refit_ros.ros.messages import body_to_msg, frame_result_to_msg

    assert frame_result_to_msg(_result([]), _header()).bodies == []
    bad = _body()
    bad.betas = np.zeros(6)
    with pytest.raises(ValueError, match="betas has 6 values"):
        body_to_msg(bad)
    bad = _body()
    bad.joints = np.zeros((17, 3))
    with pytest.raises(ValueError, match="joints"):
        body_to_msg(bad)
    bad = _body()
    bad.transl = np.array([0, np.nan, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        body_to_msg(bad)


def test_mesh_markers_geometry_colour_and_stale_removal():
    from visualization_msgs.msg import Marker

    from refit_ros.ros.markers import UNTRACKED_ID_BASE, MeshMarkers, track_color

    mm = MeshMarkers()
    header = _header()
    res = _result([_body(3), _body(5), _body(-1), _body(8, vertices=False)])
    arr = mm.frame(res, header)
    adds = [m for m in arr.markers if m.action == Marker.ADD]
    assert [m.id for m in adds] == [3, 5, UNTRACKED_ID_BASE + 2]
    for m in adds:
        assert m.type == Marker.TRIANGLE_LIST and m.header == header
        assert len(m.points) == 3 * len(res.faces)
        assert m.pose.orientation.w == 1.0 and m.color.a > 0
    p = adds[0].points[3]  # face 1, first corner = vertex 2
    np.testing.assert_allclose([p.x, p.y, p.z], res.bodies[0].vertices[2])
    assert (adds[0].color.r, adds[0].color.g, adds[0].color.b) != (adds[1].color.r, adds[1].color.g, adds[1].color.b)
    assert track_color(3) == track_color(3) != track_color(4)
    from refit_ros.render.annotate import track_color as overlay_color
    assert [round(255 * c) for c in track_color(3)] == list(overlay_color(3))  # same as videos

    arr2 = mm.frame(_result([_body(5)]), _header(13))
    actions = {(m.id, m.action) for m in arr2.markers}
    assert actions == {(5, Marker.ADD), (3, Marker.DELETE), (UNTRACKED_ID_BASE + 2, Marker.DELETE)}
    arr3 = mm.frame(_result([]), _header(14))
    assert {(m.id, m.action) for m in arr3.markers} == {(5, Marker.DELETE)}
    assert mm.frame(_result([]), _header(15)).markers == []


def _info(k, width=640, height=480):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=width, height=height)
    info.k = [float(v) for v in k]
    return info


def test_intrinsics_from_camera_info():
    from refit_ros.geometry.intrinsics import IntrinsicsError
    from refit_ros.ros.messages import intrinsics_from_camera_info

    K = [500, 0, 320, 0, 510, 240, 0, 0, 1]
    intr = intrinsics_from_camera_info(_info(K), 640, 480)
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.is_fallback) == (500, 510, 320, 240, False)
    half = intrinsics_from_camera_info(_info(K), 320, 240)
    assert (half.fx, half.cx, half.width, half.height) == (250, 160, 320, 240)
    assert intrinsics_from_camera_info(_info(K, 0, 0), 800, 600).fx == 500
    with pytest.raises(IntrinsicsError, match="focal length must be > 0"):
        intrinsics_from_camera_info(_info([0] * 9), 640, 480)
    with pytest.raises(IntrinsicsError, match="non-finite"):
        intrinsics_from_camera_info(_info([np.nan] + K[1:]), 640, 480)


def test_serialised_markers_equal_the_message_path():
    from rclpy.serialization import deserialize_message, serialize_message
    from visualization_msgs.msg import MarkerArray

    from refit_ros.pipeline.types import FrameResult
    from refit_ros.geometry.intrinsics import Intrinsics
    from refit_ros.ros.markers import MeshMarkers

    rng = np.random.default_rng(1)
    verts, faces = rng.normal(size=(500, 3)), rng.integers(0, 500, (900, 3))

    def frame(ids):
        bodies = []
        for t in ids:
            b = _body(t)
            b.vertices = verts + t
            bodies.append(b)
        return FrameResult(bodies=bodies, faces=faces, intrinsics=Intrinsics.fallback(8, 8),
                           timings_ms={})

    slow, fast = MeshMarkers(), MeshMarkers()
    for k, ids in enumerate([[3, -1, 7], [7], [], [2, 5]]):
        header = _header(20 + k, frame="f" * (k + 1))  # vary string lengths (alignment)
        # (round trip: float32 colours compare equal only after serialisation)
        want = deserialize_message(serialize_message(slow.frame(frame(ids), header)), MarkerArray)
        got = deserialize_message(fast.frame_cdr(frame(ids), header), MarkerArray)
        assert got == want
