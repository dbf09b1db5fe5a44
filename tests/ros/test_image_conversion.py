"""Image <-> NumPy conversions with real sensor_msgs classes (no ROS process needed)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import require_ros

pytestmark = pytest.mark.ros


@pytest.fixture(autouse=True)
def _ros():
    require_ros()


def _msg(arr, encoding, step=None, bigendian=None, pad_value=7):
    from sensor_msgs.msg import Image

    arr = np.asarray(arr)
    h, w = arr.shape[:2]
    big = (sys.byteorder == "big") if bigendian is None else bigendian
    typed = arr.astype(arr.dtype.newbyteorder(">" if big else "<"))
    rows = typed.reshape(h, -1).view(np.uint8)
    step = rows.shape[1] if step is None else step
    data = np.full((h, step), pad_value, np.uint8)
    data[:, : rows.shape[1]] = rows
    return Image(height=h, width=w, encoding=encoding, step=step, is_bigendian=int(big),
                 data=data.tobytes())


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("encoding,shape,dtype", [
    ("rgb8", (5, 7, 3), np.uint8), ("bgr8", (5, 7, 3), np.uint8), ("rgba8", (4, 6, 4), np.uint8),
    ("bgra8", (4, 6, 4), np.uint8), ("mono8", (3, 9), np.uint8), ("mono16", (3, 5), np.uint16),
    ("16UC1", (6, 2), np.uint16), ("32FC1", (4, 3), np.float32), ("yuv422", (2, 4, 2), np.uint8),
])
@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 5])
def test_roundtrip_padding_and_byte_order(encoding, shape, dtype, bigendian, pad):
    from refit_ros.ros.image_conversion import image_to_numpy

    arr = (RNG.random(shape) * 1000).astype(dtype)
    item = np.dtype(dtype).itemsize
    step = shape[1] * (shape[2] if len(shape) == 3 else 1) * item + pad * item
    out = image_to_numpy(_msg(arr, encoding, step=step, bigendian=bigendian))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_numpy_to_image_roundtrip_and_checks():
    from refit_ros.ros.image_conversion import ImageConversionError, image_to_numpy, numpy_to_image

    arr = (RNG.random((4, 5)) * 60000).astype(np.uint16)
    msg = numpy_to_image(arr, "mono16")
    assert msg.step == 10 and len(msg.data) == 40
    np.testing.assert_array_equal(image_to_numpy(msg), arr)
    with pytest.raises(ImageConversionError, match="channel"):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), "mono8")
    with pytest.raises(ImageConversionError, match="dtype"):
        numpy_to_image(np.zeros((2, 2), np.float64), "32FC1")


def test_last_row_without_padding_is_accepted():
    from refit_ros.ros.image_conversion import image_to_numpy

    arr = RNG.integers(0, 255, (3, 4, 3), dtype=np.uint8)
    msg = _msg(arr, "rgb8", step=16)
    msg.data = bytes(msg.data)[: 16 * 2 + 12]
    np.testing.assert_array_equal(image_to_numpy(msg), arr)


def test_rgb8_from_each_picture_encoding():
    from refit_ros.ros.image_conversion import image_msg_to_rgb8

    rgb = RNG.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_msg_to_rgb8(_msg(rgb, "rgb8")), rgb)
    np.testing.assert_array_equal(image_msg_to_rgb8(_msg(rgb[..., ::-1], "bgr8")), rgb)
    rgba = np.concatenate([rgb, np.full((4, 6, 1), 9, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_msg_to_rgb8(_msg(rgba, "rgba8")), rgb)
    np.testing.assert_array_equal(image_msg_to_rgb8(_msg(rgba[..., [2, 1, 0, 3]], "bgra8")), rgb)
    grey = rgb[..., 0]
    assert (image_msg_to_rgb8(_msg(grey, "mono8")) == grey[..., None]).all()
    mono16 = grey.astype(np.uint16) << 8
    assert (image_msg_to_rgb8(_msg(mono16, "mono16", bigendian=True)) == grey[..., None]).all()


def test_yuv422_grey_decodes_to_grey():
    from refit_ros.ros.image_conversion import image_msg_to_rgb8

    uyvy = np.zeros((2, 4, 2), np.uint8)
    uyvy[..., 0] = 128  # U/V neutral
    uyvy[..., 1] = 200  # Y
    out = image_msg_to_rgb8(_msg(uyvy, "yuv422"))
    assert out.shape == (2, 4, 3) and np.abs(out.astype(int) - out[0, 0, 0]).max() <= 1
    assert abs(int(out[0, 0, 0]) - 200) < 20


@pytest.mark.parametrize("mutate,match", [
    (lambda m: setattr(m, "encoding", "bayer_rggb8"), "unsupported image encoding 'bayer_rggb8'"),
    (lambda m: (setattr(m, "width", 0), setattr(m, "step", 0)), "zero-size image"),
    (lambda m: setattr(m, "height", 0), "zero-size image"),
    (lambda m: setattr(m, "step", 11), "step 11 is smaller than width"),
    (lambda m: setattr(m, "data", bytes(m.data)[:-20]), "truncated"),
    (lambda m: setattr(m, "data", b""), "truncated"),
])
def test_bad_images_raise_clear_errors(mutate, match):
    from refit_ros.ros.image_conversion import ImageConversionError, image_msg_to_rgb8

    msg = _msg(np.zeros((4, 5, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=match):
        image_msg_to_rgb8(msg)


def test_depth_image_is_not_a_picture():
    from refit_ros.ros.image_conversion import ImageConversionError, image_msg_to_rgb8

    with pytest.raises(ImageConversionError, match="not a camera picture"):
        image_msg_to_rgb8(_msg(np.zeros((2, 2), np.float32), "32FC1"))


def test_odd_step_for_16bit_is_rejected():
    from refit_ros.ros.image_conversion import ImageConversionError, image_to_numpy

    msg = _msg(np.zeros((2, 2), np.uint16), "mono16", step=5)
    with pytest.raises(ImageConversionError, match="multiple"):
        image_to_numpy(msg)


def test_compressed_roundtrip_and_errors():
    from skimage import data

    from refit_ros.ros.image_conversion import (ImageConversionError, compressed_to_rgb8,
                                                rgb8_to_compressed)

    rgb = data.astronaut()[::4, ::4]
    png = rgb8_to_compressed(rgb, "png")
    np.testing.assert_array_equal(compressed_to_rgb8(png), rgb)
    jpg = rgb8_to_compressed(rgb, "jpeg")
    assert np.abs(compressed_to_rgb8(jpg).astype(int) - rgb).mean() < 6
    jpg.data = bytes(jpg.data)[:40]
    with pytest.raises(ImageConversionError, match="cannot decode"):
        compressed_to_rgb8(jpg)
    jpg.data = b""
    with pytest.raises(ImageConversionError, match="zero-size"):
        compressed_to_rgb8(jpg)


# --- pixel caps checked from the header, before any decoding (issue 14, item 5) ---

from ros_harness import png_declaring  # noqa: E402

def _jpeg_with_sof(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is rewritten to ``width x height``."""
    import cv2

    ok, enc = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(enc.tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_compressed_image_size_reads_png_and_jpeg_headers():
    import cv2

    from refit_ros.ros.image_conversion import compressed_image_size

    img = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg"):
        ok, enc = cv2.imencode(ext, img)
        assert compressed_image_size(enc.tobytes()) == (53, 37)
    assert compressed_image_size(png_declaring(100_000, 100_000)) == (100_000, 100_000)
    assert compressed_image_size(_jpeg_with_sof(60_000, 50_000)) == (60_000, 50_000)


def test_decompression_bomb_png_is_refused_before_decoding(monkeypatch):
    import cv2
    from sensor_msgs.msg import CompressedImage

    from refit_ros.ros import image_conversion as ic

    bomb = png_declaring(100_000, 100_000)
    assert len(bomb) < 100  # 10^10 pixels (30 GB decoded) declared in a few dozen bytes

    def no_decode(*args, **kwargs):
        raise AssertionError("cv2.imdecode called on an image over the pixel cap")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    msg = CompressedImage(format="png", data=bomb)
    with pytest.raises(ic.ImageConversionError,
                       match=r"100000x100000 = 10000000000 pixels .* ros.max_image_pixels = "
                             r"50000000"):
        ic.compressed_to_rgb8(msg, max_pixels=50_000_000)
    msg = CompressedImage(format="jpeg", data=_jpeg_with_sof(60_000, 50_000))
    with pytest.raises(ic.ImageConversionError, match="60000x50000"):
        ic.compressed_to_rgb8(msg, max_pixels=50_000_000)


def test_compressed_formats_other_than_jpeg_png_are_refused():
    """Only PNG and JPEG are decoded (what image_transport's compressed plugin sends):
    other formats OpenCV would decode have headers this check does not read."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    from refit_ros.ros.image_conversion import ImageConversionError, compressed_to_rgb8

    ok, bmp = cv2.imencode(".bmp", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageConversionError, match="neither PNG nor JPEG"):
        compressed_to_rgb8(CompressedImage(format="bmp", data=bmp.tobytes()))


def test_raw_image_over_the_pixel_cap_is_refused_from_width_and_height():
    from refit_ros.ros.image_conversion import ImageConversionError, image_msg_to_rgb8

    msg = _msg(np.zeros((4, 6, 3), np.uint8), "rgb8")
    assert image_msg_to_rgb8(msg, max_pixels=24).shape == (4, 6, 3)
    with pytest.raises(ImageConversionError, match=r"6x4 = 24 pixels .* ros.max_image_pixels = 23"):
        image_msg_to_rgb8(msg, max_pixels=23)
    # A header that claims a huge image is refused on its numbers, before the data is read.
    msg.width, msg.height, msg.step = 100_000, 100_000, 300_000
    with pytest.raises(ImageConversionError, match="max_image_pixels"):
        image_msg_to_rgb8(msg, max_pixels=50_000_000)
