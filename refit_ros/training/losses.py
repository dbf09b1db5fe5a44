"""ReFit's training losses on every estimate of the loop, for ReFit-KP.

Each of the ``N + 1`` estimates (initial + ``N`` steps) is scored and weighted
``decay^(N - j)`` so the last counts most (ReFit: 0.85). Terms, as in ReFit: 2D keypoints
(joints and landmark points projected into the crop, in half-crop units), 3D keypoints
(pelvis-aligned, metres), body parameters (rotation-matrix MSE plus a small betas MSE)
and vertices (pelvis-aligned, a vertex subset). Distances are per-point Euclidean norms,
the quantity MPJPE and PVE measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from refit_ros.geometry.camera import CropCamera, full_to_crop, project
from refit_ros.models.refit_kp.model import KpEstimate


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (ReFit's: 2D 5, 3D 5, params 1 with betas 0.001, verts 1).

    Attributes
    ----------
    keypoints2d, keypoints3d, rotmat, betas, vertices : float
    decay : float
        Per-iteration decay (``decay^(N - j)`` for estimate ``j`` of ``N``).
    """

    keypoints2d: float = 5.0
    keypoints3d: float = 5.0
    rotmat: float = 1.0
    betas: float = 0.001
    vertices: float = 1.0
    decay: float = 0.85


@dataclass
class Targets:
    """Ground truth the losses compare with (body-model frame unless stated).

    Attributes
    ----------
    rotmat : Tensor
        ``B x 24 x 3 x 3``.
    betas : Tensor
        ``B x K``.
    points3d : Tensor
        ``B x P x 3`` joints then markers (the estimate's ``cat(joints, markers)`` order).
    points2d_crop : Tensor
        ``B x P x 2`` their true projections in crop pixels.
    vertices : Tensor or None
        ``B x S x 3``.
    """

    rotmat: Tensor
    betas: Tensor
    points3d: Tensor
    points2d_crop: Tensor
    vertices: Tensor | None

    @classmethod
    def from_camera_frame(cls, rotmat: Tensor, betas: Tensor, points3d: Tensor,
                          translation: Tensor, camera: CropCamera,
                          vertices: Tensor | None = None) -> "Targets":
        """Project the true points (``+ translation`` puts them in the camera frame)."""
        full = project(points3d + translation[:, None], camera.focal, camera.principal)
        crop = full_to_crop(full, camera.center, camera.box_size, camera.crop_size)
        return cls(rotmat, betas, points3d, crop, vertices)


def _dist(a: Tensor, b: Tensor) -> Tensor:
    return torch.sqrt(((a - b) ** 2).sum(-1) + 1e-8).mean()


def estimate_losses(est: KpEstimate, tgt: Targets, camera: CropCamera) -> dict[str, Tensor]:
    """Unweighted loss terms of one estimate.

    Returns
    -------
    dict of str to Tensor
        Scalars ``keypoints2d`` (half-crop units, L1), ``keypoints3d`` (m), ``rotmat``,
        ``betas``, ``vertices`` (m; 0 when no vertices are given).
    """
    pts = torch.cat([est.joints, est.markers], dim=1)
    p2d = camera.project_to_crop(pts, est.cam)
    half = camera.crop_size / 2.0
    l2d = ((p2d - tgt.points2d_crop).abs() / half).mean()
    pel_p, pel_t = est.joints[:, :1], tgt.points3d[:, :1]
    l3d = _dist(pts - pel_p, tgt.points3d - pel_t)
    lrot = ((est.rotmat - tgt.rotmat) ** 2).mean()
    lbetas = ((est.betas - tgt.betas) ** 2).mean()
    if est.vertices is not None and tgt.vertices is not None:
        lverts = _dist(est.vertices - pel_p, tgt.vertices - pel_t)
    else:
        lverts = pts.new_zeros(())
    return {"keypoints2d": l2d, "keypoints3d": l3d, "rotmat": lrot, "betas": lbetas,
            "vertices": lverts}


def sequence_loss(estimates: list[KpEstimate], tgt: Targets, camera: CropCamera,
                  w: LossWeights) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum over all estimates of the loop.

    Returns
    -------
    total : Tensor
        Scalar to minimise.
    parts : dict of str to float
        Each term of the final estimate (for logging), plus ``total``.
    """
    n = len(estimates) - 1
    total = estimates[0].pose6d.new_zeros(())
    last = {}
    for j, est in enumerate(estimates):
        terms = estimate_losses(est, tgt, camera)
        step = (w.keypoints2d * terms["keypoints2d"] + w.keypoints3d * terms["keypoints3d"]
                + w.rotmat * terms["rotmat"] + w.betas * terms["betas"]
                + w.vertices * terms["vertices"])
        total = total + (w.decay ** (n - j)) * step
        last = terms
    parts = {k: float(v.detach()) for k, v in last.items()}
    parts["total"] = float(total.detach())
    return total, parts
