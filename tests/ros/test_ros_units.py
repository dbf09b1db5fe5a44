"""Small pieces of the ROS layer: latest-only slot, msg schemas, calibration YAML, CLI args."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from conftest import require_ros


def test_latest_slot_keeps_only_the_newest():
    from refit_ros.ros.latest import LatestSlot

    slot = LatestSlot()
    assert slot.take(timeout=0.01) is None
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.take() == 3 and slot.dropped == 2 and slot.take(timeout=0.01) is None
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take()))
    t.start()
    time.sleep(0.05)
    slot.put(4)
    t.join(1)
    assert got == [4]
    t = threading.Thread(target=lambda: got.append(slot.take()))
    t.start()
    slot.close()
    t.join(1)
    assert got == [4, None] and not t.is_alive()


def test_calibration_yaml_roundtrip_and_errors(tmp_path):
    from refit_ros.ros.camera_info import CameraInfoError, read_calibration, write_calibration

    path = tmp_path / "cam.yaml"
    write_calibration(path, 640, 480, [[500, 0, 320], [0, 501, 240], [0, 0, 1]], "front")
    calib = read_calibration(path)
    assert (calib.width, calib.height, calib.camera_name) == (640, 480, "front")
    np.testing.assert_array_equal(calib.P[:, :3], calib.K)
    with pytest.raises(CameraInfoError, match="cannot read"):
        read_calibration(tmp_path / "missing.yaml")
    path.write_text("image_width: 640\nimage_height: 480\n")
    with pytest.raises(CameraInfoError, match="missing key 'camera_matrix'"):
        read_calibration(path)
    path.write_text("image_width: 0\n")
    with pytest.raises(CameraInfoError, match="image_width"):
        read_calibration(path)
    path.write_text("image_width: 4\nimage_height: 4\ncamera_matrix: {data: [0,0,2,0,0,2,0,0,1]}\n")
    with pytest.raises(CameraInfoError, match="focal lengths must be > 0"):
        read_calibration(path)


@pytest.mark.ros
def test_camera_info_message_from_calibration(tmp_path):
    require_ros()
    from refit_ros.ros.camera_info import read_calibration, to_camera_info, write_calibration

    path = tmp_path / "cam.yaml"
    write_calibration(path, 64, 48, [[50, 0, 32], [0, 50, 24], [0, 0, 1]])
    msg = to_camera_info(read_calibration(path))
    assert (msg.width, msg.height, msg.distortion_model) == (64, 48, "plumb_bob")
    assert list(msg.k) == [50, 0, 32, 0, 50, 24, 0, 0, 1] and len(msg.d) == 5 and msg.p[10] == 1


@pytest.mark.ros
def test_schema_text_decodes_what_rclpy_serialises():
    require_ros()
    from mcap_ros2._dynamic import generate_dynamic
    from rclpy.serialization import serialize_message

    from refit_ros.msg import SMPL, SMPLArray
    from refit_ros.ros.msgdefs import MessageDefinitionError, schema_text

    text = schema_text("refit_ros/msg/SMPLArray")
    assert "MSG: refit_ros/SMPL" in text and "MSG: std_msgs/Header" in text
    assert text.count("MSG: geometry_msgs/Point") == 1
    decode = generate_dynamic("refit_ros/msg/SMPLArray", text)["refit_ros/msg/SMPLArray"]
    msg = SMPLArray(bodies=[SMPL(track_id=4, gender="male")])
    msg.header.frame_id = "cam"
    out = decode(serialize_message(msg))
    assert out.header.frame_id == "cam" and out.bodies[0].track_id == 4
    with pytest.raises(MessageDefinitionError, match="no .msg file"):
        schema_text("nope_msgs/msg/Nothing")


def test_cli_splits_ros_arguments(monkeypatch):
    from refit_ros import cli

    seen = {}

    class Fake:
        @staticmethod
        def add_arguments(parser):
            cli.add_config_arguments(parser)

        @staticmethod
        def run(args):
            seen.update(vars(args))
            return 0

    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake", "test"))
    monkeypatch.setattr(cli, "_load", lambda module: Fake)
    assert cli.main(["fake", "--set", "model.iterations=2", "--ros-args", "-r",
                     "__node:=x", "-p", "a.b:=1"]) == 0
    assert seen["overrides"] == ["model.iterations=2"]
    assert seen["ros_args"] == ["--ros-args", "-r", "__node:=x", "-p", "a.b:=1"]


def test_source_flags_become_overrides():
    import argparse

    from refit_ros.commands import source

    p = argparse.ArgumentParser()
    source.add_arguments(p)
    args = p.parse_args(["clip.mp4", "--rate", "5", "--loop"])
    assert source.source_overrides(args) == ["source.input=clip.mp4", "source.rate=5.0",
                                             "source.loop=true"]
    assert source.source_overrides(p.parse_args([])) == []
