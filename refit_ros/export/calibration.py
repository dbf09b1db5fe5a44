"""INT8 calibration data: real person crops (or keypoints) cut the way the pipeline cuts them.

TensorRT's entropy calibrator needs encoder inputs distributed like the ones the engine
will see. They come from real frames through the pipeline's own preprocessing: the
configured detector finds people, the boxes become square crops
(:func:`refit_ros.geometry.crop.square_boxes`), and the family's ``preprocess`` produces the
encoder inputs (normalised 256x256 crops for ReFit, crop-pixel keypoints for ReFit-KP).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.crop import square_boxes
from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.export.families import ModelFamily

log = logging.getLogger(__name__)


def collect_calibration_inputs(frames: Iterable[Any], detector: Any, family: ModelFamily,
                               limit: int = 512, every: int = 1,
                               crop_size: int = 256) -> dict[str, np.ndarray]:
    """Encoder inputs of the people in a video / image folder / image.

    Parameters
    ----------
    frames : iterable of Frame
        ``index``, ``stamp``, ``image`` (RGB), e.g. :func:`refit_ros.io.frames.open_source`
        of a video / image folder / image.
    detector
        ``detect(image_rgb, stamp) -> list[Detection]`` (e.g. ``build_detector(cfg)``).
    family : ModelFamily
        Whose ``preprocess`` makes the encoder inputs.
    limit : int
        Stop after this many people.
    every : int
        Use every ``every``-th frame (consecutive frames are nearly identical).
    crop_size : int

    Returns
    -------
    dict[str, numpy.ndarray]
        ``N x ...`` float32 per encoder input name.

    Raises
    ------
    ValueError
        No person found in the whole source.
    """

    parts: dict[str, list[np.ndarray]] = {}
    count = 0
    for frame in frames:
        if frame.index % max(every, 1):
            continue
        dets = list(detector.detect(frame.image, frame.stamp))
        if not dets:
            continue
        h, w = frame.image.shape[:2]
        center, side = square_boxes(np.array([d.bbox for d in dets]))
        camera = CropCamera.from_intrinsics(torch.as_tensor(center, dtype=torch.float32),
                                            torch.as_tensor(side, dtype=torch.float32),
                                            [Intrinsics.fallback(w, h)] * len(dets), crop_size)
        for name, arr in family.preprocess(frame.image, dets, camera, crop_size).items():
            parts.setdefault(name, []).append(np.asarray(arr, np.float32))
        count += len(dets)
        if count >= limit:
            break
    if not count:
        raise ValueError(f"{getattr(frames, 'path', 'the source')}: the detector found no "
                         "person; calibration needs frames with people in them")
    out = {k: np.concatenate(v)[:limit] for k, v in parts.items()}
    log.info("calibration set: %d people", len(next(iter(out.values()))))
    return out


def save_calibration(inputs: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write a calibration set as ``.npz`` (one array per encoder input name)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savez(p, **inputs)
    return p
