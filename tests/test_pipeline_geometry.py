"""Pipeline geometry: square crops, crop extraction, warm-start camera re-expression."""

from __future__ import annotations

import numpy as np
import torch

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.geometry.crop import IMAGENET_MEAN, IMAGENET_STD, crop_images, square_boxes
from refit_ros.models.refit.warm import recentre_cam
from refit_ros.pipeline.models import concat, select


def _camera(center, side, intr):
    return CropCamera.from_intrinsics(torch.tensor(center, dtype=torch.float64),
                                      torch.tensor(side, dtype=torch.float64), [intr] * len(side))


def test_square_boxes_official_convention():
    c, s = square_boxes(np.array([[100, 50, 200, 450]]))
    np.testing.assert_allclose(c, [[150, 250]])
    np.testing.assert_allclose(s, [400 * 1.2])


def test_crop_maps_box_to_crop_and_pads_with_zero():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 90:110] = 255  # white square centred at (100, 50) (pixel centres 99.5, 49.5)
    crops = crop_images(img, np.array([[99.5, 49.5], [0.0, 0.0]]), np.array([40.0, 40.0]), size=64)
    rgb = crops[0].transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    assert rgb[32, 32].min() > 0.99  # centre of the box is the centre of the crop
    assert rgb[2, 2].max() < 0.01  # black background
    # a box hanging over the image corner: the outside is zero-padded (black)
    rgb1 = crops[1].transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    assert np.abs(rgb1[:20, :20]).max() < 1e-5


def _rgb(crop: np.ndarray) -> np.ndarray:
    """A normalised crop back to RGB in [0, 255]."""
    return (crop.transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN) * 255.0


def test_downscaled_crop_is_anti_aliased():
    """A 1-px checkerboard shrunk ~2.7x must average to grey (as the official crop,
    skimage ``resize`` with anti-aliasing, does), not alias into a pattern of 0s and 255s."""
    yy, xx = np.mgrid[:800, :800]
    img = np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    for side in (700.0, 512.0):  # k = 0.366 and exactly 0.5 (the worst case for aliasing)
        rgb = _rgb(crop_images(img, np.array([[400.0, 400.0]]), np.array([side]), size=256)[0])
        inner = rgb[16:-16, 16:-16]
        assert abs(inner.mean() - 127.5) < 3.0, inner.mean()
        assert np.abs(inner - 127.5).max() < 12.0, np.abs(inner - 127.5).max()


def test_downscaled_crop_keeps_the_crop_convention():
    """A bright dot at full-image pixel p lands at (p - (c - s/2)) * size / s in the crop."""
    c, s, size = np.array([510.3, 402.7]), 813.0, 256
    k = size / s
    for p in (np.array([300.0, 200.0]), np.array([611.0, 487.0]), np.array([150.0, 777.0])):
        img = np.zeros((1000, 1100, 3), np.uint8)
        img[int(p[1]) - 1:int(p[1]) + 2, int(p[0]) - 1:int(p[0]) + 2] = 255  # 3x3 dot at p
        rgb = _rgb(crop_images(img, c[None], np.array([s]), size=size)[0]).mean(axis=2)
        w = np.clip(rgb - 0.5, 0.0, None)
        qy, qx = np.mgrid[:size, :size]
        got = np.array([(w * qx).sum(), (w * qy).sum()]) / w.sum()
        np.testing.assert_allclose(got, (p - (c - s / 2)) * k, atol=0.1)
        assert rgb.max() > 10.0  # the dot is not lost between samples


def test_recentre_cam_keeps_translation():
    intr = Intrinsics(1000.0, 1010.0, 640.0, 350.0, 1280, 720)
    old = _camera([[500.0, 300.0]], [400.0], intr)
    new = _camera([[530.0, 310.0]], [380.0], intr)
    cam = torch.tensor([[0.9, 0.05, -0.1]], dtype=torch.float64)
    t_old = old.translation(cam)
    cam_new = recentre_cam(cam, old, new)
    torch.testing.assert_close(new.translation(cam_new), t_old, rtol=0, atol=1e-9)
    # identity when the box does not move
    torch.testing.assert_close(recentre_cam(cam, old, old), cam, rtol=0, atol=1e-12)


def test_select_and_concat_round_trip():
    intr = Intrinsics.fallback(640, 480)
    cam = _camera([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [10.0, 20.0, 30.0], intr)
    parts = [select(cam, [2]), select(cam, [0, 1])]
    back = concat(parts)
    torch.testing.assert_close(back.box_size, torch.tensor([30.0, 10.0, 20.0], dtype=torch.float64))
    assert back.crop_size == cam.crop_size
