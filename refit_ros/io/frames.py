"""Frames from a video file, a folder of images or a single image (no ROS).

Every source yields :class:`Frame` ``(index, stamp, image)`` with ``image`` an
``H x W x 3`` uint8 RGB array and ``stamp = index / fps`` seconds. ``refit-ros video`` and
the ROS camera source node both read their input through :func:`open_source`.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: Image file extensions read from folders (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Frame rate of image inputs when ``source.rate`` is 0.
DEFAULT_IMAGE_FPS = 10.0
#: Frame rate assumed for a video whose container does not state one.
DEFAULT_VIDEO_FPS = 30.0


class FrameSourceError(ValueError):
    """The input cannot be opened or read; the message names the path."""


class Frame(NamedTuple):
    """One input frame.

    Attributes
    ----------
    index : int
        0-based frame number.
    stamp : float
        ``index / fps``, seconds from the first frame.
    image : ndarray, (H, W, 3) uint8
        RGB pixels.
    """

    index: int
    stamp: float
    image: np.ndarray


class FrameSource:
    """Base class: iterate to get :class:`Frame` s, from the first frame every time.

    Attributes
    ----------
    path : Path
    fps : float
        Frames per second used for the stamps.
    count : int or None
        Number of frames if known in advance (a video's header may be approximate).
    """

    kind = "frames"

    def __init__(self, path: Path, fps: float, count: int | None) -> None:
        self.path = path
        self.fps = float(fps)
        self.count = count

    def __iter__(self) -> Iterator[Frame]:
        for index, image in enumerate(self._images()):
            yield Frame(index, index / self.fps, image)

    def _images(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, fps={self.fps:g}, count={self.count})"


class VideoSource(FrameSource):
    """Frames of a video file decoded by OpenCV (FFmpeg)."""

    kind = "video"

    def __init__(self, path: Path, rate: float = 0.0) -> None:
        cap = _open_capture(path)
        native = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        if not (math.isfinite(native) and native > 0):
            log.warning("%s states no frame rate; assuming %g fps", path, DEFAULT_VIDEO_FPS)
            native = DEFAULT_VIDEO_FPS
        self.native_fps = float(native)
        super().__init__(path, rate if rate > 0 else native, count if count > 0 else None)

    def _images(self) -> Iterator[np.ndarray]:
        cap = _open_capture(self.path)
        try:
            n = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                n += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if n == 0:
                raise FrameSourceError(f"no frame could be decoded from video {self.path}")
        finally:
            cap.release()


class ImageFilesSource(FrameSource):
    """A sorted list of image files (a folder, or one image)."""

    kind = "images"

    def __init__(self, path: Path, files: list[Path], rate: float = 0.0) -> None:
        self.files = files
        super().__init__(path, rate if rate > 0 else DEFAULT_IMAGE_FPS, len(files))

    def _images(self) -> Iterator[np.ndarray]:
        for file in self.files:
            yield read_image(file)


def open_source(path: str | Path, rate: float = 0.0) -> FrameSource:
    """Open a video file, an image folder or a single image.

    Parameters
    ----------
    path : str or Path
    rate : float
        Frames per second for the stamps; 0 = the video's own rate (images:
        :data:`DEFAULT_IMAGE_FPS`). This is ``source.rate`` of the config.

    Returns
    -------
    FrameSource

    Raises
    ------
    FrameSourceError
        Missing path, empty folder, or a file OpenCV cannot open.
    """
    p = Path(path).expanduser()
    if rate < 0 or not math.isfinite(rate):
        raise FrameSourceError(f"frame rate must be >= 0 (0 = the input's own), got {rate}")
    if not p.exists():
        raise FrameSourceError(
            f"input {p} does not exist (give a video file, image folder or image)")
    if p.is_dir():
        files = sorted((f for f in p.iterdir() if f.is_file() and is_image_file(f)),
                       key=_natural_key)
        if not files:
            raise FrameSourceError(
                f"folder {p} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
        return ImageFilesSource(p, files, rate)
    if is_image_file(p):
        return ImageFilesSource(p, [p], rate)
    return VideoSource(p, rate)


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS`."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as ``H x W x 3`` uint8 RGB (grey and alpha are converted).

    Raises
    ------
    FrameSourceError
        The file is missing or not a readable image.
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FrameSourceError(f"cannot read image {path} (missing, unreadable or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _open_capture(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise FrameSourceError(
            f"cannot open {path} as a video (OpenCV/FFmpeg could not decode it); "
            f"image inputs need one of {', '.join(IMAGE_EXTENSIONS)}")
    return cap


def _natural_key(path: Path) -> list:
    """Sort ``frame2.png`` before ``frame10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]
