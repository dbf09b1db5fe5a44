"""Person boxes -> square crops in ReFit's convention (no rotation)."""

from __future__ import annotations

import cv2
import numpy as np

#: ImageNet statistics the official network was trained with (RGB, on [0, 1] pixels).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
#: The official crop: square box of side max(w, h) x 1.2 around the detection centre.
BOX_EXPANSION = 1.2


def square_boxes(bboxes: np.ndarray, expansion: float = BOX_EXPANSION) -> tuple[np.ndarray, np.ndarray]:
    """Detection boxes -> square crop boxes.

    Parameters
    ----------
    bboxes : ndarray, N x 4
        x_min, y_min, x_max, y_max in pixels.

    Returns
    -------
    center : ndarray, N x 2
        Box centres in pixels.
    side : ndarray, N
        Square side ``max(w, h) * expansion`` in pixels (ReFit ``scale = side / 200``).
    """
    b = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    center = 0.5 * (b[:, :2] + b[:, 2:])
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * expansion
    return center, np.maximum(side, 1.0)


def crop_images(image_rgb: np.ndarray, center: np.ndarray, side: np.ndarray,
                size: int = 256) -> np.ndarray:
    """Cut square crops (zero padded outside the image), resized to ``size``, normalised.

    Parameters
    ----------
    image_rgb : ndarray, H x W x 3 uint8
    center : ndarray, N x 2
    side : ndarray, N

    Returns
    -------
    ndarray, N x 3 x size x size float32
        RGB / 255, ImageNet mean/std normalised (the official network's input).
    """
    out = np.empty((len(side), 3, size, size), dtype=np.float32)
    for i, (c, s) in enumerate(zip(center, side)):
        k = size / float(s)
        # full-image pixel p -> crop pixel (p - (c - s/2)) * k (the official convention)
        m = np.array([[k, 0, -(c[0] - s / 2) * k], [0, k, -(c[1] - s / 2) * k]], dtype=np.float64)
        interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
        crop = cv2.warpAffine(image_rgb, m, (size, size), flags=interp,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out[i] = ((crop.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return out
