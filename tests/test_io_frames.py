"""Offline frame sources and the camera_info YAML reader."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from refit_ros.io.camera_info import CameraInfoError, intrinsics_for_size, load_camera_info
from refit_ros.io.frames import (DEFAULT_IMAGE_FPS, FrameSourceError, ImageFilesSource,
                                 VideoSource, open_source)


def _image(value: int, h=24, w=32) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = value  # red channel, to catch BGR/RGB swaps
    return img


def _write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_image_folder_natural_order_rgb_and_rate(tmp_path):
    for i in (10, 2, 1):
        _write_png(tmp_path / f"frame{i}.png", _image(i * 10))
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(tmp_path)
    assert isinstance(src, ImageFilesSource) and src.count == 3 and src.fps == DEFAULT_IMAGE_FPS
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 100]
    assert frames[0].image[0, 0, 2] == 0 and frames[0].image.dtype == np.uint8
    assert frames[2].stamp == pytest.approx(2 / DEFAULT_IMAGE_FPS)
    assert open_source(tmp_path, rate=4.0).fps == 4.0


def test_single_image(tmp_path):
    _write_png(tmp_path / "one.JPG", _image(50))
    frames = list(open_source(tmp_path / "one.JPG"))
    assert len(frames) == 1 and frames[0].image.shape == (24, 32, 3)


def test_video_file_fps_count_and_colour(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), (0, 0, 40 * i), np.uint8))  # BGR: red grows
    writer.release()
    src = open_source(path)
    assert isinstance(src, VideoSource) and src.fps == pytest.approx(25.0) and src.count == 6
    frames = list(src)
    assert len(frames) == 6 and frames[3].stamp == pytest.approx(3 / 25)
    assert abs(int(frames[3].image[24, 32, 0]) - 120) < 8  # red stays red in RGB
    assert open_source(path, rate=5.0).fps == 5.0


def test_clear_errors(tmp_path):
    with pytest.raises(FrameSourceError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")
    with pytest.raises(FrameSourceError, match="holds no images"):
        open_source(tmp_path)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(FrameSourceError, match="bad.mp4"):
        list(open_source(bad))
    broken = tmp_path / "imgs"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"garbage")
    with pytest.raises(FrameSourceError, match="a.png"):
        list(open_source(broken))


CALIB = """\
image_width: 640
image_height: 480
camera_name: cam
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 320.5, 0.0, 505.0, 240.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [DIST]
"""


def test_camera_info_yaml(tmp_path, caplog):
    path = tmp_path / "cam.yaml"
    path.write_text(CALIB.replace("DIST", "0, 0, 0, 0, 0"))
    with caplog.at_level(logging.WARNING):
        intr = load_camera_info(path)
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (500, 505, 320.5, 240.5, 640, 480)
    assert not intr.is_fallback and not caplog.records
    path.write_text(CALIB.replace("DIST", "-0.2, 0.05, 0, 0, 0"))
    with caplog.at_level(logging.WARNING):
        load_camera_info(path)
    assert "distortion" in caplog.text


@pytest.mark.parametrize("text, match", [
    (CALIB.replace("image_width: 640\n", ""), "image_width"),
    (CALIB.replace("500.0, 0.0, ", ""), "camera_matrix has 7 values, expected 9"),
    (CALIB.replace("500.0", "0.0"), "focal length"),
    ("[1, 2", "not valid YAML"),
])
def test_camera_info_errors_name_the_problem(tmp_path, text, match):
    path = tmp_path / "cam.yaml"
    path.write_text(text.replace("DIST", "0"))
    with pytest.raises(CameraInfoError, match=match):
        load_camera_info(path)
    with pytest.raises(CameraInfoError, match="cannot read"):
        load_camera_info(tmp_path / "none.yaml")


def test_intrinsics_rescaled_to_image_size(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text(CALIB.replace("DIST", "0"))
    intr = load_camera_info(path)
    half = intrinsics_for_size(intr, 320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (250, 252.5, 160.0, 120.0)
    with pytest.raises(CameraInfoError, match="aspect"):
        intrinsics_for_size(intr, 640, 360)
