"""Unit tests of ReFit's building blocks: multi-head layers, GRUs, lookup, rotations, camera."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from refit_ros.geometry import rotation as rot
from refit_ros.geometry.camera import (CropCamera, cliff_bbox_info, crop_cam_to_translation,
                                       crop_to_full, full_to_crop, project)
from refit_ros.models.layers import GRU, MultiGRU, MultiLinear
from refit_ros.models.refit.lookup import window_lookup

torch.manual_seed(0)


def test_multilinear_is_one_linear_per_head():
    ml = MultiLinear(4, 7, 3)
    assert ml.weight.shape == (4, 3, 7) and ml.bias.shape == (4, 3)
    x = torch.randn(5, 4, 7)
    y = ml(x)
    for k in range(4):
        torch.testing.assert_close(y[:, k], F.linear(x[:, k], ml.weight[k], ml.bias[k]))


def test_gru_formula_and_multigru_heads():
    gru = GRU(hidden_dim=6, input_dim=5)
    assert {n for n, _ in gru.named_parameters()} == {
        "lz.weight", "lz.bias", "lr.weight", "lr.bias", "lq.weight", "lq.bias"}
    h, x = torch.randn(3, 6), torch.randn(3, 5)
    hx = torch.cat([h, x], -1)
    z, r = torch.sigmoid(gru.lz(hx)), torch.sigmoid(gru.lr(hx))
    q = torch.tanh(gru.lq(torch.cat([r * h, x], -1)))
    torch.testing.assert_close(gru(h, x), (1 - z) * h + z * q)

    mg = MultiGRU(n_head=2, hidden_dim=6, input_dim=5)
    assert mg.lz.weight.shape == (2, 6, 11)
    hm, xm = torch.randn(3, 2, 6), torch.randn(3, 2, 5)
    out = mg(hm, xm)
    for k in range(2):  # head k equals a GRU with head k's weights
        g = GRU(6, 5)
        for name in ("lz", "lr", "lq"):
            getattr(g, name).weight.data = getattr(mg, name).weight[k].detach()
            getattr(g, name).bias.data = getattr(mg, name).bias[k].detach()
        torch.testing.assert_close(out[:, k], g(hm[:, k], xm[:, k]))


def test_window_lookup_order_interpolation_and_zero_padding():
    h = w = 8
    corr = torch.arange(2 * h * w, dtype=torch.float32).reshape(1, 2, h, w)  # value = y*8 + x
    coords = torch.tensor([[[3.0, 4.0], [0.5, 2.25]]])
    out = window_lookup(corr, coords, radius=1)
    assert out.shape == (1, 2, 9)
    # Marker 0 at integer (3, 4): index t = (ox+1)*3 + (oy+1) -> x offset is the outer index.
    expect = [(4 + oy) * w + (3 + ox) for ox in (-1, 0, 1) for oy in (-1, 0, 1)]
    torch.testing.assert_close(out[0, 0], torch.tensor(expect, dtype=torch.float32))
    # Marker 1 reads its own map (offset 64), bilinearly; x = -0.5 is half outside -> zero tap.
    ox, oy = 0, 0
    t = (ox + 1) * 3 + (oy + 1)
    assert out[0, 1, t].item() == pytest.approx(64 + 2.25 * w + 0.5)
    x, y = -0.5, 2.25  # ox = -1: taps at x=-1 (weight 0.5, outside -> 0) and x=0 (0.5)
    v = 0.5 * (64 + y * w + 0)
    assert out[0, 1, 0 * 3 + 1].item() == pytest.approx(v)


def test_rot6d_convention_and_roundtrip():
    x = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])  # a1 = (1,0,0), a2 = (0,1,0)
    torch.testing.assert_close(rot.rot6d_to_rotmat(x)[0], torch.eye(3))
    r = rot.rot6d_to_rotmat(torch.randn(10, 6))
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(10, 3, 3), atol=1e-5,
                               rtol=0)
    assert torch.allclose(torch.linalg.det(r), torch.ones(10), atol=1e-5)
    torch.testing.assert_close(rot.rot6d_to_rotmat(rot.rotmat_to_rot6d(r)), r, atol=1e-5, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-7, 0.3, 2.0, math.pi - 1e-4, math.pi])
def test_axis_angle_roundtrip(angle):
    axis = torch.nn.functional.normalize(torch.tensor([[0.3, -0.5, 0.8]], dtype=torch.float64))
    aa = axis * angle
    r = rot.axis_angle_to_rotmat(aa)
    back = rot.rotmat_to_axis_angle(r)
    if angle > math.pi - 1e-3:  # near pi the sign of the axis is ambiguous
        torch.testing.assert_close(rot.axis_angle_to_rotmat(back), r, atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(back, aa, atol=1e-7, rtol=0)


def _official_cam(fx=2000.0, fy=None):
    fy = fx if fy is None else fy
    return CropCamera(center=torch.tensor([[700.0, 300.0]]), box_size=torch.tensor([400.0]),
                      focal=torch.tensor([[fx, fy]]), principal=torch.tensor([[640.0, 360.0]]))


def test_cliff_bbox_info_and_translation_match_the_official_formulas():
    cam = _official_cam()
    f, b, cx, cy, icx, icy = 2000.0, 400.0, 700.0, 300.0, 640.0, 360.0
    expect = [(cx - icx) / f * 2.8, (cy - icy) / f * 2.8, (b - 0.24 * f) / (0.06 * f)]
    torch.testing.assert_close(cam.bbox_info()[0], torch.tensor(expect))
    s, tx, ty = 0.9, 0.05, -0.1
    t = cam.translation(torch.tensor([[s, tx, ty]]))[0]
    expect = [tx + 2 * (cx - icx) / (b * s), ty + 2 * (cy - icy) / (b * s), 2 * f / (b * s)]
    torch.testing.assert_close(t, torch.tensor(expect))


@pytest.mark.parametrize("fy", [2000.0, 2030.0])
def test_crop_centre_projects_to_box_centre_even_when_fx_differs_from_fy(fy):
    cam = _official_cam(2000.0, fy)
    crop_cam = torch.tensor([[0.8, 0.0, 0.0]])
    origin = torch.zeros(1, 1, 3)
    p = cam.project_to_crop(origin, crop_cam)
    torch.testing.assert_close(p, torch.full((1, 1, 2), 128.0))
    # A body point 0.1 m to the side lands s*b/2*0.1 crop-scaled px away horizontally.
    q = cam.project_to_crop(torch.tensor([[[0.1, 0.1, 0.0]]]), crop_cam)
    dx, dy = (q - 128.0)[0, 0]
    assert dx.item() == pytest.approx(0.8 * 256 / 2 * 0.1, rel=1e-5)
    assert dy.item() == pytest.approx(0.8 * 256 / 2 * 0.1 * fy / 2000.0, rel=1e-5)


def test_crop_full_roundtrip_and_projection():
    center, b = torch.tensor([[100.0, 50.0]]), torch.tensor([200.0])
    pts = torch.rand(1, 5, 2) * 256
    torch.testing.assert_close(full_to_crop(crop_to_full(pts, center, b), center, b), pts)
    uv = project(torch.tensor([[[1.0, -2.0, 4.0]]]), torch.tensor([[100.0, 200.0]]),
                 torch.tensor([[10.0, 20.0]]))
    torch.testing.assert_close(uv, torch.tensor([[[35.0, -80.0]]]))
    # functions agree with the dataclass
    cam = _official_cam()
    torch.testing.assert_close(cliff_bbox_info(cam.center, cam.box_size, cam.focal, cam.principal),
                               cam.bbox_info())
    c3 = torch.tensor([[1.0, 0.0, 0.0]])
    torch.testing.assert_close(crop_cam_to_translation(c3, cam.center, cam.box_size, cam.focal,
                                                       cam.principal), cam.translation(c3))


def test_from_scale_and_from_intrinsics():
    from refit_ros.geometry.intrinsics import Intrinsics

    intr = Intrinsics.fallback(1920, 1080)
    cam = CropCamera.from_intrinsics(torch.tensor([[960.0, 540.0]]), torch.tensor([600.0]),
                                     [intr])
    assert cam.focal[0, 0].item() == pytest.approx(math.sqrt(1920**2 + 1080**2))
    assert cam.principal[0].tolist() == [960.0, 540.0]
    cam2 = CropCamera.from_scale(cam.center, torch.tensor([3.0]), cam.focal[:, 0], cam.principal)
    torch.testing.assert_close(cam2.box_size, cam.box_size)
    np.testing.assert_allclose(cam2.focal.numpy(), cam.focal.numpy())


def test_refit_state_helpers():
    from refit_ros.models.refit.state import RefitState

    def state(b):
        return RefitState(torch.randn(b, 144), torch.randn(b, 10), torch.randn(b, 3),
                          torch.randn(b, 24, 32), torch.randn(b, 32), torch.randn(b, 32))

    a, b = state(2), state(3)
    both = RefitState.cat([a, b])
    assert both.batch_size == 5 and both.vertices is None
    torch.testing.assert_close(both.select([2, 3, 4]).pose6d, b.pose6d)
    z = a.with_zero_hidden()
    assert torch.all(z.hpose == 0) and torch.equal(z.pose6d, a.pose6d)
    assert a.rotmat.shape == (2, 24, 3, 3)
    assert not a.detach().pose6d.requires_grad
