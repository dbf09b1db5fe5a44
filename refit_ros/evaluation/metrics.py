"""3D human mesh recovery metrics (millimetres / pixels), batched.

MPJPE: mean joint error after aligning the pelvis joints. PA-MPJPE: after the optimal
similarity transform (Procrustes: rotation, uniform scale, translation). PVE: mean vertex
error after pelvis alignment. All take ``B x N x 3`` arrays in metres and return ``B``
per-sample values in millimetres.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mpjpe(pred: Tensor, gt: Tensor, root: int = 0) -> Tensor:
    """Pelvis-aligned mean per-joint position error.

    Parameters
    ----------
    pred, gt : Tensor
        ``B x J x 3`` metres.
    root : int
        Index of the alignment joint (SMPL pelvis = 0).

    Returns
    -------
    Tensor
        ``B`` millimetres.
    """
    p = pred - pred[:, root:root + 1]
    g = gt - gt[:, root:root + 1]
    return (p - g).norm(dim=-1).mean(-1) * 1000.0


def procrustes_align(pred: Tensor, gt: Tensor) -> Tensor:
    """Similarity transform of ``pred`` that best fits ``gt`` (least squares).

    Parameters
    ----------
    pred, gt : Tensor
        ``B x J x 3``.

    Returns
    -------
    Tensor
        ``B x J x 3`` aligned ``pred``.
    """
    p, g = pred.double(), gt.double()
    mp, mg = p.mean(1, keepdim=True), g.mean(1, keepdim=True)
    x, y = p - mp, g - mg
    var = (x ** 2).sum((1, 2))
    k = x.transpose(1, 2) @ y                                   # B x 3 x 3
    u, s, vt = torch.linalg.svd(k)
    d = torch.sign(torch.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
    z = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    r = vt.transpose(1, 2) @ z @ u.transpose(1, 2)              # maps x to y
    scale = (s * torch.diagonal(z, dim1=1, dim2=2)).sum(-1) / var.clamp(min=1e-12)
    aligned = scale[:, None, None] * (x @ r.transpose(1, 2)) + mg
    return aligned.to(pred.dtype)


def pa_mpjpe(pred: Tensor, gt: Tensor) -> Tensor:
    """Procrustes-aligned MPJPE, ``B`` millimetres."""
    return (procrustes_align(pred, gt) - gt).norm(dim=-1).mean(-1) * 1000.0


def pve(pred_verts: Tensor, gt_verts: Tensor, pred_root: Tensor, gt_root: Tensor) -> Tensor:
    """Per-vertex error after aligning the pelvis joints.

    Parameters
    ----------
    pred_verts, gt_verts : Tensor
        ``B x V x 3``.
    pred_root, gt_root : Tensor
        ``B x 3`` pelvis joints.

    Returns
    -------
    Tensor
        ``B`` millimetres.
    """
    return ((pred_verts - pred_root[:, None]) - (gt_verts - gt_root[:, None])).norm(dim=-1).mean(-1) * 1000.0


def reprojection_error(pred2d: Tensor, gt2d: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean 2D distance in pixels, optionally weighted per point.

    Parameters
    ----------
    pred2d, gt2d : Tensor
        ``B x J x 2``.
    weight : Tensor, optional
        ``B x J`` (e.g. 1 where a detection is confident).

    Returns
    -------
    Tensor
        ``B`` pixels (NaN for a sample whose weights are all zero).
    """
    d = (pred2d - gt2d).norm(dim=-1)
    if weight is None:
        return d.mean(-1)
    return (d * weight).sum(-1) / weight.sum(-1)
