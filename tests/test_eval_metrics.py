"""Metrics: alignment invariances of MPJPE / PA-MPJPE / PVE."""

from __future__ import annotations

import math

import torch

from refit_ros.evaluation.metrics import mpjpe, pa_mpjpe, pve, reprojection_error
from refit_ros.geometry.rotation import axis_angle_to_rotmat


def test_mpjpe_is_translation_invariant_and_in_mm():
    gt = torch.randn(2, 24, 3)
    assert mpjpe(gt + torch.tensor([1.0, 2.0, 3.0]), gt).abs().max() < 1e-3
    moved = gt.clone()
    moved[:, 1:] += torch.tensor([0.01, 0.0, 0.0])
    torch.testing.assert_close(mpjpe(moved, gt), torch.full((2,), 10.0 * 23 / 24), rtol=1e-4,
                               atol=1e-3)


def test_pa_mpjpe_removes_similarity_transforms():
    gt = torch.randn(3, 24, 3)
    r = axis_angle_to_rotmat(torch.tensor([[0.3, -1.0, 2.0]])).expand(3, 3, 3)
    pred = 1.3 * gt @ r.transpose(1, 2) + torch.tensor([0.5, 0.1, -2.0])
    assert pa_mpjpe(pred, gt).max() < 1e-3
    assert mpjpe(pred, gt).min() > 10.0


def test_pa_mpjpe_does_not_allow_reflections():
    gt = torch.randn(1, 24, 3)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0])
    assert pa_mpjpe(mirrored, gt).item() > 1.0


def test_pve_and_reprojection():
    v = torch.randn(2, 100, 3)
    root = torch.randn(2, 3)
    assert pve(v + 1.0, v, root + 1.0, root).max() < 1e-3
    p = torch.zeros(1, 2, 2)
    g = torch.tensor([[[3.0, 4.0], [0.0, 0.0]]])
    assert math.isclose(reprojection_error(p, g).item(), 2.5)
    assert math.isclose(reprojection_error(p, g, torch.tensor([[1.0, 0.0]])).item(), 5.0)
