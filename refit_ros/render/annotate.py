"""2D annotations over an overlay: per-track colours, SMPL skeleton, boxes and track ids."""

from __future__ import annotations

import cv2
import numpy as np

from refit_ros.geometry.intrinsics import Intrinsics

#: Parent of each of the 24 SMPL joints (-1: the pelvis, the root of the kinematic tree).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

#: RGB colours cycled by track id; chosen to stay distinct from skin and from each other.
PALETTE = (
    (66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40),
)
#: Colour of untracked bodies (track id -1).
UNTRACKED = (180, 180, 180)


def track_color(track_id: int) -> tuple[int, int, int]:
    """RGB colour of a track: the same id always gets the same colour."""
    return UNTRACKED if track_id < 0 else PALETTE[track_id % len(PALETTE)]


def line_width(image: np.ndarray) -> int:
    """Line thickness in pixels that reads well at this image size."""
    return max(1, int(round(min(image.shape[:2]) / 360)))


def draw_skeleton(image: np.ndarray, joints: np.ndarray, intrinsics: Intrinsics,
                  color: tuple[int, int, int], near: float = 0.05) -> None:
    """Draw the 24 SMPL joints and their parent links in place.

    Parameters
    ----------
    image : ndarray, (H, W, 3) uint8
        RGB image, modified in place.
    joints : ndarray, (24, 3)
        Camera-frame joints, metres; joints nearer than ``near`` are skipped.
    intrinsics : Intrinsics
    color : (3,) int
        RGB colour of the links.
    """
    joints = np.asarray(joints, dtype=np.float64)
    uv = np.round(intrinsics.project(joints)).astype(np.int64)
    ok = joints[:, 2] > near
    t = line_width(image)
    for j, parent in enumerate(SMPL_PARENTS):
        if parent >= 0 and ok[j] and ok[parent]:
            cv2.line(image, tuple(map(int, uv[parent])), tuple(map(int, uv[j])), color, t,
                     cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(image, tuple(map(int, uv[j])), t + 1, (255, 255, 255), -1, cv2.LINE_AA)


def draw_box(image: np.ndarray, bbox: np.ndarray, track_id: int,
             color: tuple[int, int, int]) -> None:
    """Draw a person box and its track-id label in place.

    Parameters
    ----------
    image : ndarray, (H, W, 3) uint8
        RGB image, modified in place.
    bbox : ndarray, (4,)
        x_min, y_min, x_max, y_max in pixels.
    track_id : int
        Shown as ``id N`` (``id ?`` when untracked).
    color : (3,) int
        RGB colour.
    """
    x0, y0, x1, y1 = (int(round(float(c))) for c in bbox)
    t = line_width(image)
    cv2.rectangle(image, (x0, y0), (x1, y1), color, t)
    text = f"id {track_id}" if track_id >= 0 else "id ?"
    scale = 0.5 * t
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, t)
    ty = max(y0, th + base + 2)
    cv2.rectangle(image, (x0, ty - th - base - 2), (x0 + tw + 4, ty), color, -1)
    cv2.putText(image, text, (x0 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), t, cv2.LINE_AA)
