"""sensor_msgs Image / CompressedImage <-> NumPy without cv_bridge.

Supported raw encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1, 32FC1, yuv422
(UYVY byte order, as in ROS) and yuv422_yuy2 (YUYV). ``is_bigendian`` and padded ``step``
(row stride larger than ``width * bytes_per_pixel``) are honoured. Every rejection raises
:class:`ImageConversionError` with a message that says what is wrong and what was expected.

Pixel caps (``ros.max_image_pixels``): a raw image is refused from its ``width * height``
before its data is touched, a compressed one from the size its PNG IHDR / JPEG SOF header
declares, before any decoding (a few bytes of PNG can declare 10^10 pixels, which
``cv2.imdecode`` would try to allocate). Compressed images must be PNG or JPEG (what
image_transport's ``compressed`` plugin sends): other formats OpenCV decodes are refused.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np


class ImageConversionError(ValueError):
    """An image message cannot be converted; the message says why."""


@dataclasses.dataclass(frozen=True)
class _Encoding:
    dtype: str  # NumPy base type (byte order applied separately)
    channels: int

    @property
    def bytes_per_pixel(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels


ENCODINGS: dict[str, _Encoding] = {
    "rgb8": _Encoding("u1", 3),
    "bgr8": _Encoding("u1", 3),
    "rgba8": _Encoding("u1", 4),
    "bgra8": _Encoding("u1", 4),
    "mono8": _Encoding("u1", 1),
    "8UC1": _Encoding("u1", 1),
    "mono16": _Encoding("u2", 1),
    "16UC1": _Encoding("u2", 1),
    "32FC1": _Encoding("f4", 1),
    "yuv422": _Encoding("u1", 2),
    "yuv422_yuy2": _Encoding("u1", 2),
}

#: Encodings that hold a camera picture (usable as pipeline input).
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "mono16", "yuv422",
                    "yuv422_yuy2")


def _encoding(name: str) -> _Encoding:
    try:
        return ENCODINGS[name]
    except KeyError:
        raise ImageConversionError(
            f"unsupported image encoding {name!r}; supported: {', '.join(ENCODINGS)}"
        ) from None


def image_to_numpy(msg) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` into an array (a copy, native byte order).

    Parameters
    ----------
    msg : sensor_msgs.msg.Image

    Returns
    -------
    ndarray
        ``H x W`` for single-channel encodings, ``H x W x C`` otherwise (C = 2 for yuv422),
        dtype uint8, uint16 or float32.

    Raises
    ------
    ImageConversionError
        Unsupported encoding, zero size, ``step`` smaller than a row, odd 16-bit/float
        ``step``, or data shorter than ``step * height``.
    """
    enc = _encoding(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"zero-size image ({width}x{height}, encoding {msg.encoding})")
    row = width * enc.bytes_per_pixel
    if step < row:
        raise ImageConversionError(
            f"step {step} is smaller than width*bytes_per_pixel = {width}*{enc.bytes_per_pixel}"
            f" = {row} (encoding {msg.encoding})"
        )
    item = np.dtype(enc.dtype).itemsize
    if step % item:
        raise ImageConversionError(
            f"step {step} is not a multiple of the {item}-byte sample size of {msg.encoding}"
        )
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    needed = step * (height - 1) + row  # the last row may come without its padding
    if buf.size < needed:
        raise ImageConversionError(
            f"image data truncated: {buf.size} bytes, {msg.encoding} {width}x{height} with "
            f"step {step} needs {step * height}"
        )
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1))
    order = ">" if msg.is_bigendian else "<"
    pixels = np.ascontiguousarray(rows).view(np.dtype(enc.dtype).newbyteorder(order))
    pixels = pixels.astype(np.dtype(enc.dtype).newbyteorder("="), copy=False)
    shape = (height, width) if enc.channels == 1 else (height, width, enc.channels)
    return pixels.reshape(shape)


def numpy_to_image(array: np.ndarray, encoding: str, header=None):
    """Build a ``sensor_msgs/Image`` (tight rows, native byte order).

    Parameters
    ----------
    array : ndarray
        ``H x W`` or ``H x W x C`` matching ``encoding``'s channels and sample type.
    encoding : str
        One of :data:`ENCODINGS`.
    header : std_msgs.msg.Header, optional
    """
    from sensor_msgs.msg import Image

    enc = _encoding(encoding)
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] != enc.channels:
        raise ImageConversionError(
            f"array of shape {np.shape(array)} does not fit {encoding} ({enc.channels} channel(s))"
        )
    if arr.dtype.kind != np.dtype(enc.dtype).kind or arr.dtype.itemsize != np.dtype(enc.dtype).itemsize:
        raise ImageConversionError(f"array dtype {arr.dtype} does not fit {encoding} ({enc.dtype})")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == "big")
    msg.step = msg.width * enc.bytes_per_pixel
    msg.data = np.ascontiguousarray(arr, dtype=np.dtype(enc.dtype).newbyteorder("=")).tobytes()
    return msg


def _require_picture(encoding: str) -> None:
    _encoding(encoding)
    if encoding not in COLOUR_ENCODINGS:
        raise ImageConversionError(
            f"encoding {encoding!r} is not a camera picture (depth or float data); "
            f"refit_node needs one of {', '.join(COLOUR_ENCODINGS)}"
        )


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """Turn a decoded camera image into the pipeline's ``H x W x 3`` uint8 RGB.

    Raises
    ------
    ImageConversionError
        For depth/float encodings (16UC1, 32FC1), which hold no picture of the person.
    """
    _require_picture(encoding)
    if encoding == "rgb8":
        return np.ascontiguousarray(array)
    if encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(array[..., 2::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(array[..., :3])
    if encoding in ("mono8", "8UC1"):
        return np.repeat(array[..., None], 3, axis=2)
    if encoding == "mono16":
        return np.repeat((array >> 8).astype(np.uint8)[..., None], 3, axis=2)
    import cv2

    code = cv2.COLOR_YUV2RGB_UYVY if encoding == "yuv422" else cv2.COLOR_YUV2RGB_YUY2
    return cv2.cvtColor(np.ascontiguousarray(array), code)


def check_pixel_count(width: int, height: int, max_pixels: int | None, what: str) -> None:
    """Refuse an image of ``width x height`` over ``max_pixels`` (None: no cap)."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageConversionError(
            f"{what} of {width}x{height} = {width * height} pixels is over the cap "
            f"ros.max_image_pixels = {max_pixels}; refused without decoding (raise the cap "
            "if such images are expected)")


def image_msg_to_rgb8(msg, max_pixels: int | None = None) -> np.ndarray:
    """``sensor_msgs/Image`` -> ``H x W x 3`` uint8 RGB (see :func:`to_rgb8`); images over
    ``max_pixels`` (``width * height``) are refused before their data is read."""
    _require_picture(msg.encoding)  # before decoding: a depth image fails with the clear reason
    check_pixel_count(int(msg.width), int(msg.height), max_pixels, f"{msg.encoding} image")
    return to_rgb8(image_to_numpy(msg), msg.encoding)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic...):
#: all but DHT (C4), JPG (C8) and DAC (CC) in C0..CF.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def compressed_image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` declared by a PNG (IHDR) or JPEG (first SOF) header, read from
    the header bytes alone; None when ``data`` is neither PNG nor JPEG.

    Raises
    ------
    ImageConversionError
        A PNG/JPEG whose header is truncated or malformed (no size can be read).
    """
    data = bytes(data)
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageConversionError("PNG without a complete IHDR header (truncated?)")
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ImageConversionError(f"JPEG header malformed at byte {i} (no marker)")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _JPEG_SOF:
            if i + 9 > len(data) or length < 7:
                break
            height = int.from_bytes(data[i + 5:i + 7], "big")
            width = int.from_bytes(data[i + 7:i + 9], "big")
            if height == 0 or width == 0:
                raise ImageConversionError(
                    f"JPEG frame header declares {width}x{height} pixels (a zero height defined "
                    "later by a DNL marker is not supported)")
            return width, height
        if length < 2:
            raise ImageConversionError(f"JPEG segment of length {length} at byte {i}")
        i += 2 + length
    raise ImageConversionError("JPEG without a frame (SOF) header before its image data "
                               "(truncated?)")


def compressed_to_rgb8(msg, max_pixels: int | None = None) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg / png) to ``H x W x 3`` uint8 RGB.

    The size its header declares is checked against ``max_pixels`` before decoding
    (:func:`compressed_image_size`); data that is neither PNG nor JPEG is refused.
    """
    import cv2

    fmt = (msg.format or "").lower()
    if "compresseddepth" in fmt:
        raise ImageConversionError(
            f"CompressedImage format {msg.format!r} is a depth image; refit_node needs a camera picture"
        )
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError(f"zero-size CompressedImage (format {msg.format!r}, no data)")
    try:
        size = compressed_image_size(msg.data)
    except ImageConversionError as exc:
        raise ImageConversionError(f"cannot decode CompressedImage (format {msg.format!r}, "
                                   f"{data.size} bytes): {exc}") from None
    if size is None:
        raise ImageConversionError(
            f"CompressedImage (format {msg.format!r}, {data.size} bytes) is neither PNG nor "
            "JPEG (by its first bytes); refit_node decodes only those")
    check_pixel_count(size[0], size[1], max_pixels, f"CompressedImage ({msg.format or '?'})")
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise ImageConversionError(
            f"cannot decode CompressedImage (format {msg.format!r}, {data.size} bytes): "
            "truncated or not jpeg/png"
        )
    if decoded.dtype == np.uint16:
        decoded = (decoded >> 8).astype(np.uint8)
    if decoded.ndim == 2:
        return np.repeat(decoded[..., None], 3, axis=2)
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def rgb8_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", header=None, quality: int = 90):
    """Encode ``H x W x 3`` uint8 RGB as a ``sensor_msgs/CompressedImage`` (jpeg or png)."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    if fmt not in ("jpeg", "png"):
        raise ImageConversionError(f"compressed format {fmt!r} is not one of jpeg, png")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, data = cv2.imencode("." + ("jpg" if fmt == "jpeg" else "png"),
                            cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageConversionError(f"cannot encode a {np.shape(rgb)} image as {fmt}")
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = fmt
    msg.data = data.tobytes()
    return msg
