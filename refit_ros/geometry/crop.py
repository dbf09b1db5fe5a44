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


def antialias_kernel(k: float) -> np.ndarray:
    """1-D low-pass kernel for a resize by ``k < 1``: the tent of half-width ``1/k`` source
    pixels (the kernel of antialiased bilinear resampling in PIL and in torch's
    ``interpolate(..., antialias=True)``), normalised. It is symmetric (no shift) and, at
    ``k = 1/2``, removes the Nyquist frequency exactly, which a Gaussian of skimage's
    ``(1/k - 1)/2`` does not when samples land on whole pixels, as in this crop's convention.
    """
    r = 1.0 / k
    d = np.arange(-int(np.ceil(r)), int(np.ceil(r)) + 1, dtype=np.float64)
    w = np.clip(1.0 - np.abs(d) * k, 0.0, None)
    return (w / w.sum()).astype(np.float32)


def _window(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` with zeros where the window leaves the image."""
    h, w = image.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def crop_images(image_rgb: np.ndarray, center: np.ndarray, side: np.ndarray,
                size: int = 256) -> np.ndarray:
    """Cut square crops (zero padded outside the image), resized to ``size``, normalised.

    Full-image pixel ``p`` maps to crop pixel ``(p - (c - s/2)) * size / s`` (the official
    convention). When the crop shrinks the image (``s > size``) the region is first
    low-pass filtered with :func:`antialias_kernel` (the official crop also anti-aliases:
    skimage ``resize`` prefilters), only over the window the crop reads (zero padded like
    the crop), then sampled bilinearly; the filter is symmetric, so the geometry is unchanged.
    (``cv2.warpAffine`` ignores ``INTER_AREA``: without the prefilter a downscaled crop
    aliases fine texture.)

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
    h, w = image_rgb.shape[:2]
    for i, (c, s) in enumerate(zip(center, side)):
        k = size / float(s)
        ox, oy = float(c[0]) - s / 2, float(c[1]) - s / 2  # full-image pixel of crop pixel 0
        src = image_rgb
        if k < 1:
            kernel = antialias_kernel(k)
            margin = len(kernel) // 2 + 2
            # the source window the bilinear samples read, plus the filter's reach; parts
            # further outside the image are zero anyway (the warp's constant border)
            x0 = max(int(np.floor(ox)) - margin, -margin)
            y0 = max(int(np.floor(oy)) - margin, -margin)
            x1 = min(int(np.ceil(ox + s)) + margin + 1, w + margin)
            y1 = min(int(np.ceil(oy + s)) + margin + 1, h + margin)
            if x1 > x0 and y1 > y0:
                src = cv2.sepFilter2D(_window(image_rgb, x0, y0, x1, y1), -1, kernel, kernel,
                                      borderType=cv2.BORDER_REPLICATE)
                ox, oy = ox - x0, oy - y0
            else:  # the crop lies wholly outside the image: all zeros
                src = np.zeros((1, 1) + image_rgb.shape[2:], image_rgb.dtype)
                ox, oy = ox + 1e9, oy + 1e9
        m = np.array([[k, 0, -ox * k], [0, k, -oy * k]], dtype=np.float64)
        crop = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out[i] = ((crop.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return out
