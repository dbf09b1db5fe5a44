"""Pipeline geometry: square crops, crop extraction, warm-start camera re-expression."""

from __future__ import annotations

import numpy as np
import torch

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.pipeline.crop import IMAGENET_MEAN, IMAGENET_STD, crop_images, square_boxes
from refit_ros.pipeline.models import concat, recentre_cam, select


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
