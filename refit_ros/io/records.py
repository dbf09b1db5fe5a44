"""JSON records of recovered bodies (one ``bodies.jsonl`` line per frame)."""

from __future__ import annotations

from typing import Any

import numpy as np

from refit_ros.pipeline.types import Body, FrameResult

#: Decimal places kept: 1e-5 m / rad is far below the model's accuracy.
_DECIMALS = 5


def _list(x: np.ndarray, decimals: int = _DECIMALS) -> list:
    return np.round(np.asarray(x, dtype=np.float64), decimals).tolist()


def body_record(body: Body) -> dict[str, Any]:
    """One body as plain JSON types.

    Keys: ``track_id``; ``pose`` (72, axis-angle, radians, SMPL joint order, joint 0 =
    global orientation in the camera frame); ``betas`` (10); ``transl`` (3, metres);
    ``joints`` (24 x 3, metres, camera optical frame: x right, y down, z forward);
    ``bbox`` (x_min, y_min, x_max, y_max, pixels); ``score`` (detection confidence).
    """
    return {
        "track_id": int(body.track_id),
        "pose": _list(np.reshape(body.pose, 72)),
        "betas": _list(np.reshape(body.betas, -1)),
        "transl": _list(np.reshape(body.transl, 3)),
        "joints": _list(np.reshape(body.joints, (-1, 3))),
        "bbox": _list(np.reshape(body.bbox, 4), 2),
        "score": round(float(body.score), 4),
    }


def frame_record(index: int, stamp: float, result: FrameResult) -> dict[str, Any]:
    """``{"frame", "stamp", "bodies": [body_record, ...]}`` of one frame."""
    return {"frame": int(index), "stamp": round(float(stamp), 6),
            "bodies": [body_record(b) for b in result.bodies]}
