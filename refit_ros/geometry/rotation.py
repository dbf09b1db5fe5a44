"""Rotation representations: continuous 6D <-> rotation matrix <-> axis-angle.

6D convention (Zhou et al. 2019, as used by ReFit/SPIN): the 6 numbers ``x0..x5`` of a
joint are a 3x2 matrix in row-major order, so the two columns are ``a1 = (x0, x2, x4)`` and
``a2 = (x1, x3, x5)``. Gram-Schmidt gives ``b1, b2`` and ``b3 = b1 x b2``; the rotation
matrix has **columns** ``b1, b2, b3``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rot6d_to_rotmat(x: Tensor) -> Tensor:
    """6D rotations to rotation matrices.

    Parameters
    ----------
    x : Tensor
        ``... x 6k`` (e.g. ``B x 144`` for 24 joints) or ``... x 6``.

    Returns
    -------
    Tensor
        ``N x 3 x 3`` with ``N`` = total number of 6D vectors (reshape as needed).
    """
    m = x.reshape(-1, 3, 2)
    a1, a2 = m[:, :, 0], m[:, :, 1]
    b1 = F.normalize(a1, dim=1)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1)
    b3 = torch.linalg.cross(b1, b2, dim=1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(rotmat: Tensor) -> Tensor:
    """Inverse of :func:`rot6d_to_rotmat` on valid rotations.

    Parameters
    ----------
    rotmat : Tensor
        ``... x 3 x 3``.

    Returns
    -------
    Tensor
        ``... x 6`` (the first two columns, row-major).
    """
    return rotmat[..., :, :2].reshape(*rotmat.shape[:-2], 6)


def rotmat_to_quaternion(rotmat: Tensor) -> Tensor:
    """Rotation matrices to unit quaternions ``(w, x, y, z)`` with ``w >= 0``.

    Uses the largest of the four candidate denominators for numerical stability.

    Parameters
    ----------
    rotmat : Tensor
        ``... x 3 x 3``.

    Returns
    -------
    Tensor
        ``... x 4``.
    """
    r = rotmat
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    # 4*q_i^2 for i = w, x, y, z
    sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                      1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    d = torch.sqrt(torch.clamp(sq, min=0.0))
    # Each row: the quaternion scaled by 4*q_i, computed from the i-th candidate.
    cand = torch.stack([
        torch.stack([sq[..., 0], r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                     r[..., 1, 0] - r[..., 0, 1]], dim=-1),
        torch.stack([r[..., 2, 1] - r[..., 1, 2], sq[..., 1], r[..., 1, 0] + r[..., 0, 1],
                     r[..., 0, 2] + r[..., 2, 0]], dim=-1),
        torch.stack([r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] + r[..., 0, 1], sq[..., 2],
                     r[..., 2, 1] + r[..., 1, 2]], dim=-1),
        torch.stack([r[..., 1, 0] - r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0],
                     r[..., 2, 1] + r[..., 1, 2], sq[..., 3]], dim=-1),
    ], dim=-2)
    q = cand / (2.0 * d.clamp(min=1e-12)).unsqueeze(-1)
    best = sq.argmax(dim=-1)
    q = torch.gather(q, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def rotmat_to_axis_angle(rotmat: Tensor) -> Tensor:
    """Rotation matrices to axis-angle vectors (angle in ``[0, pi]`` times unit axis).

    Parameters
    ----------
    rotmat : Tensor
        ``... x 3 x 3``.

    Returns
    -------
    Tensor
        ``... x 3``.
    """
    q = rotmat_to_quaternion(rotmat)
    v = q[..., 1:]
    sin_half = torch.linalg.norm(v, dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle/2) -> 2 as the angle -> 0 (first-order Taylor).
    small = sin_half < 1e-6
    scale = torch.where(small, 2.0 + angle**2 / 12.0, angle / sin_half.clamp(min=1e-12))
    return v * scale


def axis_angle_to_rotmat(aa: Tensor) -> Tensor:
    """Axis-angle vectors to rotation matrices (Rodrigues).

    Parameters
    ----------
    aa : Tensor
        ``... x 3``.

    Returns
    -------
    Tensor
        ``... x 3 x 3``.
    """
    angle = torch.linalg.norm(aa, dim=-1, keepdim=True)
    axis = aa / angle.clamp(min=1e-12)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + s * k + (1 - c) * (k @ k)
