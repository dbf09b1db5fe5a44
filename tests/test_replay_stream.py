"""Replaying a recording streams it (issue 14, item 6): memory stays flat while the
recording grows 10x, only the image / CameraInfo / SMPLArray topics are decoded, and
images are paired with their bodies and intrinsics as before. The recordings are written
here with mcap_ros2 (no ROS needed) on the node's topics and message types."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from mcap.writer import CompressionType
from mcap_ros2.writer import Writer

from refit_ros.io.replay import read_recording
from refit_ros.ros.msgdefs import schema_text

H, W = 120, 160
IMAGE, INFO, SMPL, MARKERS = "/camera/image_raw", "/camera/camera_info", "/human/smpl", "/markers"


def _header(k: int) -> dict:
    return {"stamp": {"sec": 1000 + k // 10, "nanosec": (k % 10) * 100_000_000},
            "frame_id": "camera_optical_frame"}


def write_recording(path: Path, frames: int, undecodable: bool = True) -> None:
    """``frames`` images (the node answered every second one; one CameraInfo arrives after
    its SMPLArray) plus, when ``undecodable``, a big channel on another topic whose schema
    cannot be decoded."""
    with open(path, "wb") as fh:
        w = Writer(fh, compression=CompressionType.LZ4)
        schemas = {t: w.register_msgdef(t, schema_text(t)) for t in
                   ("sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo",
                    "refit_ros/msg/SMPLArray")}
        raw = w._writer  # the underlying mcap.writer.Writer, for the undecodable channel
        bogus = raw.register_channel(MARKERS, "cdr", raw.register_schema(
            "bogus/msg/Undecodable", "ros2msg", b"not a message definition !!!"))
        for k in range(frames):
            t = 1_000_000_000 + k * 33_000_000
            rgb = np.full((H, W, 3), k % 251, np.uint8)
            image = {"header": _header(k), "height": H, "width": W, "encoding": "rgb8",
                     "is_bigendian": 0, "step": W * 3, "data": rgb.tobytes()}
            info = {"header": _header(k), "width": W, "height": H,
                    "k": [500.0 + k, 0, 80, 0, 500.0 + k, 60, 0, 0, 1]}
            body = {"track_id": 7, "body_model": "fake", "gender": "neutral",
                    "pose": [0.0] * 72, "betas": [0.0] * 10, "transl": [0.0, 0.0, float(k)],
                    "bbox": [0.0, 0.0, 1.0, 1.0], "score": 0.9}
            smpl = {"header": _header(k), "bodies": [body] if k % 20 == 0 else []}
            w.write_message(IMAGE, schemas["sensor_msgs/msg/Image"], image, t, t)
            late_info = k % 10 == 4
            if not late_info:
                w.write_message(INFO, schemas["sensor_msgs/msg/CameraInfo"], info, t, t)
            if undecodable:
                raw.add_message(bogus, log_time=t, publish_time=t, data=b"\0" * 20000,
                                sequence=k)
            if k % 2 == 0:  # the node skipped the other frames
                w.write_message(SMPL, schemas["refit_ros/msg/SMPLArray"], smpl, t + 1, t + 1)
            if late_info:
                w.write_message(INFO, schemas["sensor_msgs/msg/CameraInfo"], info, t + 2, t + 2)
        w.finish()


class FakeBody:
    """Stands in for the body model: a 3-vertex mesh at the origin."""

    num_betas = 10
    faces = torch.tensor([[0, 1, 2]])

    def __call__(self, rotmat, betas):
        from types import SimpleNamespace

        return SimpleNamespace(vertices=torch.zeros(1, 3, 3))


def _replay(path: Path) -> tuple[int, int, int]:
    """(images recorded, frames replayed, peak traced bytes while replaying)."""
    tracemalloc.start()
    try:
        published, frames = read_recording(path, FakeBody(), IMAGE, SMPL, INFO)
        n = 0
        for k, fr in enumerate(frames):
            frame_index = 2 * k
            assert fr.image_rgb.shape == (H, W, 3) and fr.image_rgb[0, 0, 0] == frame_index % 251
            assert fr.result.intrinsics.fx == pytest.approx(500.0 + frame_index)
            assert len(fr.result.bodies) == (frame_index % 20 == 0)
            if fr.result.bodies:
                assert fr.result.bodies[0].transl[2] == frame_index
            n += 1
        return published, n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_replay_of_a_long_recording_keeps_memory_flat(tmp_path):
    """Before streaming, the peak grew with the recording (7.0 MB for 100 frames, 61.8 MB
    for 1000); now it is ~2.7 MB for both (MCAP chunk buffers, a few images)."""
    t0 = time.perf_counter()
    short, long = tmp_path / "short.mcap", tmp_path / "long.mcap"
    write_recording(short, 100, undecodable=False)
    write_recording(long, 1000, undecodable=False)
    pub_s, n_s, peak_s = _replay(short)
    pub_l, n_l, peak_l = _replay(long)
    assert (pub_s, n_s, pub_l, n_l) == (100, 50, 1000, 500)
    image = H * W * 3
    # Keeping the images would hold >= 1000 x 57.6 kB = 57.6 MB; streaming holds a few.
    assert peak_l < 1.5 * peak_s + 5 * image, (peak_s, peak_l)
    assert peak_l < 100 * image, peak_l
    assert time.perf_counter() - t0 < 60


def test_replay_decodes_only_the_image_info_and_smpl_topics(tmp_path):
    """Another topic (the mesh markers in a real recording) is skipped undecoded: here its
    schema is not even a message definition, which decoding would reject."""
    path = tmp_path / "rec.mcap"
    write_recording(path, 40, undecodable=True)
    assert _replay(path)[:2] == (40, 20)


@pytest.mark.ros
def test_a_recording_written_by_the_node_serialisation_replays(tmp_path):
    """OfflineRecording (rclpy CDR, mesh markers included) -> read_recording."""
    from conftest import require_ros

    require_ros()
    from refit_ros.config import load_config
    from refit_ros.geometry.intrinsics import Intrinsics
    from refit_ros.pipeline.types import FrameResult
    from refit_ros.ros.mcap_io import OfflineRecording

    cfg = load_config()
    intr = Intrinsics.from_matrix(np.array([[400.0, 0, 80], [0, 400, 60], [0, 0, 1]]), W, H)
    rec = OfflineRecording(tmp_path / "r.mcap", cfg)
    for k in range(5):
        rec.write_frame(1.0 + 0.1 * k, np.full((H, W, 3), k, np.uint8), intr,
                        FrameResult([], np.zeros((1, 3), np.int32), intr, {}))
    rec.close()
    ros = cfg.ros
    n, frames = read_recording(tmp_path / "r.mcap", FakeBody(), ros.image_topic, ros.smpl_topic,
                               ros.camera_info_topic)
    got = list(frames)
    assert n == 5 and [f.stamp for f in got] == pytest.approx([1.0, 1.1, 1.2, 1.3, 1.4])
    assert [int(f.image_rgb[0, 0, 0]) for f in got] == [0, 1, 2, 3, 4]
    assert all(f.result.intrinsics.fx == 400.0 for f in got)
