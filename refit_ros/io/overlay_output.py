"""``overlay.mp4`` and the first / middle / last overlay PNGs of an offline run."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


class OverlayOutput:
    """Writes overlay frames to an MP4 (mp4v) and keeps three of them as PNG snapshots.

    The snapshots are the first and last frames with bodies and the frame with bodies
    nearest the middle of the run (when the number of frames is known in advance).

    Parameters
    ----------
    out_dir : Path
    fps : float
        Frame rate of the video.
    expected_frames : int or None
        Frames the run will process, to find the middle one.
    """

    def __init__(self, out_dir: Path, fps: float, expected_frames: int | None) -> None:
        self.video_path = out_dir / "overlay.mp4"
        self.out_dir = out_dir
        self.fps = fps
        self.middle = None if expected_frames is None else (expected_frames - 1) / 2.0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0
        self._shots: dict[str, tuple[int, np.ndarray]] = {}

    def add(self, index: int, overlay_rgb: np.ndarray, has_bodies: bool) -> None:
        """Append one ``H x W x 3`` uint8 RGB overlay frame."""
        bgr = cv2.cvtColor(overlay_rgb, cv2.COLOR_RGB2BGR)
        if self._writer is None:
            self._size = (bgr.shape[1], bgr.shape[0])
            self._writer = cv2.VideoWriter(str(self.video_path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, self._size)
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot write {self.video_path} (mp4v codec unavailable?)")
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(bgr)
        self.frames_written += 1
        if has_bodies:
            self._keep(index, bgr)

    def _keep(self, index: int, bgr: np.ndarray) -> None:
        if "first" not in self._shots:
            self._shots["first"] = (index, bgr)
        self._shots["last"] = (index, bgr)
        if self.middle is not None:
            best = self._shots.get("middle")
            if best is None or abs(index - self.middle) < abs(best[0] - self.middle):
                self._shots["middle"] = (index, bgr)

    def close(self) -> dict[str, dict]:
        """Finish the video, write the PNGs; returns ``{name: {"frame", "file"}}``."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        written: dict[str, dict] = {}
        seen: set[int] = set()
        for name in ("first", "middle", "last"):
            if name not in self._shots or self._shots[name][0] in seen:
                continue
            index, bgr = self._shots[name]
            seen.add(index)
            path = self.out_dir / f"overlay_{name}.png"
            if not cv2.imwrite(str(path), bgr):
                raise OSError(f"cannot write {path}")
            written[name] = {"frame": index, "file": path.name}
        if not written:
            log.warning("no bodies in any frame: no overlay PNGs written")
        return written
