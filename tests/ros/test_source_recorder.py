"""CameraSource (folder / video / camera_info YAML / loop) and Recorder -> MCAP read back."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from conftest import require_ros

pytestmark = pytest.mark.ros


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
def spinning(executor):
    nodes = []

    def add(node):
        nodes.append(node)
        executor.add_node(node)
        return node

    yield add
    for n in nodes:
        executor.remove_node(n)
    time.sleep(0.1)  # let callbacks already handed to the executor finish
    for n in nodes:
        n.destroy_node()


def _listener(name, ns):
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from ros_harness import Inbox
    from sensor_msgs.msg import CameraInfo, Image

    node = Node(name)
    node.images, node.infos = Inbox(), Inbox()
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, f"{ns}/camera/image_raw", node.images, qos)
    node.create_subscription(CameraInfo, f"{ns}/camera/camera_info", node.infos, qos)
    return node


def _folder(tmp_path, n=3):
    from ros_harness import astronaut

    rgb = astronaut()[::8, ::8]
    for i in range(n):
        cv2.imwrite(str(tmp_path / f"frame_{i:02d}.png"), np.roll(rgb, i * 5, axis=1)[..., ::-1])
    return rgb


def test_source_publishes_folder_with_camera_info(tmp_path, spinning):
    from ros_harness import cfg_for, wait_until

    from refit_ros.ros.camera_info import write_calibration
    from refit_ros.ros.image_conversion import image_msg_to_rgb8
    from refit_ros.ros.source import CameraSource

    rgb = _folder(tmp_path)
    calib = tmp_path / "cam.yaml"
    write_calibration(calib, 64, 64, [[80, 0, 32], [0, 81, 30], [0, 0, 1]])
    listener = spinning(_listener("listen_src", "/s1"))
    cfg = cfg_for("/s1", **{"source.input": str(tmp_path), "source.rate": 20.0,
                            "source.camera_info": str(calib), "source.frame_id": "cam_opt"})
    wait_until(lambda: True)
    src = CameraSource(cfg, node_name="src_s1")
    wait_until(lambda: src.count_subscribers("/s1/camera/image_raw") > 0, what="discovery")
    spinning(src)
    assert src.finished.wait(10) and src.published == 3
    wait_until(lambda: len(listener.images.items) == 3 and len(listener.infos.items) == 3)
    img, info = listener.images.items[0], listener.infos.items[0]
    assert img.header == info.header and img.header.frame_id == "cam_opt"
    np.testing.assert_array_equal(image_msg_to_rgb8(img), rgb)
    assert list(info.k) == [80, 0, 32, 0, 81, 30, 0, 0, 1] and (info.width, info.height) == (64, 64)
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in listener.images.items]
    assert 0.06 < stamps[2] - stamps[0] < 0.5  # ~20 fps


def test_source_video_at_file_rate_and_loop(tmp_path, spinning):
    from ros_harness import cfg_for, wait_until

    from refit_ros.ros.source import CameraSource

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for i in range(4):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    listener = spinning(_listener("listen_vid", "/s2"))
    src = CameraSource(cfg_for("/s2", **{"source.input": str(video), "source.loop": True}),
                       node_name="src_s2")
    assert src.fps == pytest.approx(25.0)
    wait_until(lambda: src.count_subscribers("/s2/camera/image_raw") > 0, what="discovery")
    spinning(src)
    wait_until(lambda: len(listener.images.items) >= 7, what="looping frames")
    assert not src.finished.is_set() and not listener.infos.items  # no YAML: no CameraInfo


def test_source_errors_name_the_problem(tmp_path):
    require_ros()
    import rclpy
    from ros_harness import cfg_for

    from refit_ros.config import ConfigError
    from refit_ros.io.frames import FrameSourceError
    from refit_ros.ros.camera_info import CameraInfoError
    from refit_ros.ros.source import CameraSource

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        with pytest.raises(ConfigError, match="source.input is empty"):
            CameraSource(cfg_for("/s3"), node_name="s3a", context=ctx)
        with pytest.raises(FrameSourceError, match="does not exist"):
            CameraSource(cfg_for("/s3", **{"source.input": str(tmp_path / "nope.mp4")}),
                         node_name="s3b", context=ctx)
        _folder(tmp_path, 1)
        bad = tmp_path / "bad.yaml"
        bad.write_text("image_width: 64\nimage_height: 64\ncamera_matrix: {data: [1, 2]}\n")
        with pytest.raises(CameraInfoError, match="camera_matrix has 2 values"):
            CameraSource(cfg_for("/s3", **{"source.input": str(tmp_path),
                                           "source.camera_info": str(bad)}),
                         node_name="s3c", context=ctx)
    finally:
        rclpy.shutdown(context=ctx)


def test_recorder_writes_mcap_that_reads_back(tmp_path, spinning):
    from geometry_msgs.msg import Point
    from mcap_ros2.reader import read_ros2_messages
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from ros_harness import astronaut, camera_info_msg, cfg_for, image_msg, wait_until
    from visualization_msgs.msg import Marker, MarkerArray

    from refit_ros.msg import SMPL, SMPLArray
    from refit_ros.ros.recorder import Recorder

    cfg = cfg_for("/r1")
    path = tmp_path / "out" / "rec.mcap"
    rec = spinning(Recorder(cfg, path, node_name="rec_r1"))
    pub_node = spinning(Node("rec_pub"))
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {t: pub_node.create_publisher(c, t, qos) for t, c in [
        ("/r1/camera/image_raw", type(image_msg(np.zeros((2, 2, 3), np.uint8), 0))),
        ("/r1/camera/camera_info", type(camera_info_msg(None or image_msg(np.zeros((2, 2, 3), np.uint8), 0).header, 2, 2))),
        ("/r1/human/smpl", SMPLArray), ("/r1/human/mesh_markers", MarkerArray)]}
    wait_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), what="discovery")
    img = image_msg(astronaut()[::4, ::4], 1_234_000_000)
    body = SMPL(track_id=7, body_model="box", gender="neutral",
                joints=[Point(x=float(i), y=0.0, z=3.0) for i in range(24)])
    body.transl = np.array([0.1, 0.2, 3.0], np.float32)
    marker = Marker(type=Marker.TRIANGLE_LIST, points=[Point(x=1.0), Point(y=1.0), Point(z=1.0)])
    for _ in range(2):
        pubs["/r1/camera/image_raw"].publish(img)
        pubs["/r1/camera/camera_info"].publish(camera_info_msg(img.header, 128, 128))
        pubs["/r1/human/smpl"].publish(SMPLArray(header=img.header, bodies=[body]))
        pubs["/r1/human/mesh_markers"].publish(MarkerArray(markers=[marker]))
        time.sleep(0.05)
    wait_until(lambda: all(n == 2 for n in rec.counts.values()), what="recorded messages")
    rec.close()
    got = {}
    for m in read_ros2_messages(str(path)):
        got.setdefault(m.channel.topic, []).append(m.ros_msg)
    assert {t: len(v) for t, v in got.items()} == {t: 2 for t in pubs}
    image = got["/r1/camera/image_raw"][0]
    assert (image.width, image.height, image.encoding) == (128, 128, "rgb8")
    assert bytes(image.data) == bytes(img.data) and image.header.stamp.nanosec == 234_000_000
    smpl = got["/r1/human/smpl"][0].bodies[0]
    assert smpl.track_id == 7 and smpl.joints[5].x == 5.0 and abs(smpl.transl[2] - 3.0) < 1e-6
    assert len(got["/r1/human/mesh_markers"][0].markers[0].points) == 3
    assert got["/r1/camera/camera_info"][0].k[0] == 600.0


def test_offline_recording_matches_the_live_topics(tmp_path):
    require_ros()
    from mcap_ros2.reader import read_ros2_messages
    from ros_harness import BOX_FACES, BoxPipeline, astronaut, cfg_for

    from refit_ros.geometry.intrinsics import Intrinsics
    from refit_ros.ros.mcap_io import OfflineRecording

    cfg = cfg_for("/off")
    rec = OfflineRecording(tmp_path / "offline.mcap", cfg)
    pipe = BoxPipeline()
    intr = Intrinsics(500.0, 500.0, 256.0, 256.0, 512, 512)
    for i, rgb in enumerate([astronaut(), np.zeros((512, 512, 3), np.uint8)]):
        rec.write_frame(10.0 + i / 30, rgb, intr, pipe.process(rgb, intr))
    rec.close()
    got = {}
    for m in read_ros2_messages(str(tmp_path / "offline.mcap")):
        got.setdefault(m.channel.topic, []).append((m.schema.name, m.ros_msg))
    assert {t: [s for s, _ in v] for t, v in got.items()} == {
        "/off/camera/image_raw": ["sensor_msgs/msg/Image"] * 2,
        "/off/camera/camera_info": ["sensor_msgs/msg/CameraInfo"] * 2,
        "/off/human/smpl": ["refit_ros/msg/SMPLArray"] * 2,
        "/off/human/mesh_markers": ["visualization_msgs/msg/MarkerArray"] * 2}
    smpl0, smpl1 = (m for _, m in got["/off/human/smpl"])
    assert len(smpl0.bodies) == 1 and smpl1.bodies == [] and smpl0.header.frame_id == "camera_optical_frame"
    assert (smpl0.header.stamp.sec, smpl0.header.stamp.nanosec) == (10, 0)
    info = got["/off/camera/camera_info"][0][1]
    assert list(info.k) == [500, 0, 256, 0, 500, 256, 0, 0, 1] and info.p[0] == 500
    (_, add), (_, delete) = got["/off/human/mesh_markers"]
    assert len(add.markers[0].points) == 3 * len(BOX_FACES) and delete.markers[0].action == 2


def test_video_command_mcap_reads_back(tmp_path, monkeypatch, capsys):
    """``refit-ros video --mcap``: every frame's messages, stamps = frame / fps, same bodies as
    ``bodies.jsonl``; a path that cannot be written is a clear error, not a crash."""
    require_ros()
    import json

    import cv2
    from mcap_ros2.reader import read_ros2_messages
    from ros_harness import BoxPipeline, astronaut

    import refit_ros.pipeline
    from refit_ros.cli import main

    monkeypatch.setattr(refit_ros.pipeline, "build_pipeline", lambda cfg: BoxPipeline())
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, rgb in enumerate([astronaut(), np.zeros((512, 512, 3), np.uint8), astronaut()]):
        assert cv2.imwrite(str(frames / f"f{i}.png"), rgb[:, :, ::-1])
    out, rec = tmp_path / "out", tmp_path / "rec" / "run.mcap"
    rc = main(["video", str(frames), "--out", str(out), "--mcap", str(rec), "--no-overlay",
               "--no-progress", "--set", "source.rate=10", "--set", "ros.smpl_topic=/v/smpl"])
    assert rc == 0 and str(rec) in capsys.readouterr().out
    lines = [json.loads(x) for x in (out / "bodies.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert str(rec) in summary["outputs"]
    got = {}
    for m in read_ros2_messages(str(rec)):
        got.setdefault(m.channel.topic, []).append(m.ros_msg)
    assert {t: len(v) for t, v in got.items()} == {
        "/camera/image_raw": 3, "/camera/camera_info": 3, "/v/smpl": 3, "/human/mesh_markers": 3}
    for line, msg, img in zip(lines, got["/v/smpl"], got["/camera/image_raw"]):
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        assert stamp == pytest.approx(line["stamp"], abs=1e-9)
        assert (img.header.stamp.sec, img.header.stamp.nanosec) == (msg.header.stamp.sec,
                                                                    msg.header.stamp.nanosec)
        assert len(msg.bodies) == len(line["bodies"])
        for body, rec_body in zip(line["bodies"], msg.bodies):
            np.testing.assert_allclose(list(rec_body.transl), body["transl"], atol=1e-6)
    assert [len(m.bodies) for m in got["/v/smpl"]] == [1, 0, 1]
    assert (got["/camera/image_raw"][0].width, got["/camera/image_raw"][0].encoding) == (512, "rgb8")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["video", str(frames), "--out", str(out), "--mcap", str(blocker / "x.mcap"),
                 "--no-overlay", "--no-progress"]) == 2
    assert "cannot write" in capsys.readouterr().err
