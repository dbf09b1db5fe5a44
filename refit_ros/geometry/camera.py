"""Square person crops and ReFit's CLIFF-style full-frame camera, as tensor functions.

Intrinsics themselves (CameraInfo, the ``sqrt(W^2 + H^2)`` fallback) live in
:mod:`refit_ros.geometry.intrinsics`; this module turns them into per-crop tensors.

Conventions: pixels with x right, y down; the camera optical frame has x right, y down,
z forward (REP 103 ``*_optical_frame``); lengths in metres.

A person crop is the square box of side ``b`` pixels centred at ``center`` in the full
image, resized to ``crop_size`` (256) pixels. ReFit predicts a weak-perspective camera
``(s, tx, ty)`` relative to the crop; with focal length ``f`` and principal point
``(icx, icy)`` it becomes the full-frame translation

    ``t = (tx + 2 (cx - icx) / (b s),  ty + 2 (cy - icy) / (b s),  2 f / (b s))``.

**Anisotropic focal length (fx != fy).** The official network assumes one focal length
(its demo uses ``f = sqrt(W^2 + H^2)`` and the image centre). With a calibrated camera we
use ``f = fx`` for the depth ``2 f / (b s)`` and the size term of the bbox feature, ``fx``
for every x quantity and ``fy`` for every y quantity: ``ty`` becomes
``ty + 2 (cy - icy) / (b s) * fx / fy`` and the bbox feature's y term ``(cy - icy) / fy``,
and points are projected with ``(fx, fy)``. The crop centre then still projects onto the
box centre, and the body's vertical extent in the image is stretched by ``fy / fx`` as the
pixels are. For ``fx == fy`` every formula is exactly the official one; for real cameras
``|fx/fy - 1|`` is usually below 1%, a deviation far below the network's own error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

if TYPE_CHECKING:
    from refit_ros.geometry.intrinsics import Intrinsics

#: Side of the network input crop in pixels.
CROP_SIZE = 256
#: Official box convention: ``scale = side / 200``.
PIXELS_PER_SCALE = 200.0


@dataclass
class CropCamera:
    """Where a batch of crops sits in its full images, and those images' intrinsics.

    Attributes
    ----------
    center : Tensor
        ``B x 2`` box centre ``(cx, cy)`` in full-image pixels.
    box_size : Tensor
        ``B`` box side ``b`` in full-image pixels (``200 * scale``).
    focal : Tensor
        ``B x 2`` focal lengths ``(fx, fy)`` in pixels.
    principal : Tensor
        ``B x 2`` principal point ``(icx, icy)`` in pixels.
    crop_size : int
        Side of the network crop in pixels.
    """

    center: Tensor
    box_size: Tensor
    focal: Tensor
    principal: Tensor
    crop_size: int = CROP_SIZE

    @classmethod
    def from_scale(cls, center: Tensor, scale: Tensor, focal: Tensor, principal: Tensor,
                   crop_size: int = CROP_SIZE) -> "CropCamera":
        """From the official batch fields: ``center`` ``B x 2``, ``scale`` ``B``
        (box side / 200), ``img_focal`` ``B`` or ``B x 2`` and ``img_center`` ``B x 2``."""
        focal = focal[:, None].expand(-1, 2) if focal.dim() == 1 else focal
        return cls(center, scale * PIXELS_PER_SCALE, focal, principal, crop_size)

    @classmethod
    def from_intrinsics(cls, center: Tensor, box_size: Tensor,
                        intrinsics: Sequence["Intrinsics"],
                        crop_size: int = CROP_SIZE) -> "CropCamera":
        """One :class:`~refit_ros.geometry.intrinsics.Intrinsics` per crop (``center``
        ``B x 2``, ``box_size`` ``B``); their ``fx, fy, cx, cy`` are used."""
        k = torch.tensor([[i.fx, i.fy, i.cx, i.cy] for i in intrinsics],
                         dtype=center.dtype, device=center.device)
        return cls(center, box_size, k[:, :2], k[:, 2:], crop_size)

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> "CropCamera":
        """Move all tensors (e.g. to the model's device)."""
        return CropCamera(self.center.to(device, dtype), self.box_size.to(device, dtype),
                          self.focal.to(device, dtype), self.principal.to(device, dtype),
                          self.crop_size)

    def bbox_info(self) -> Tensor:
        """CLIFF bbox feature, ``B x 3`` (see :func:`cliff_bbox_info`)."""
        return cliff_bbox_info(self.center, self.box_size, self.focal, self.principal)

    def translation(self, cam: Tensor) -> Tensor:
        """Full-frame translation ``B x 3`` of a crop camera ``B x 3``."""
        return crop_cam_to_translation(cam, self.center, self.box_size, self.focal,
                                       self.principal)

    def project_to_crop(self, points: Tensor, cam: Tensor) -> Tensor:
        """Project model-frame points ``B x N x 3`` placed by ``cam`` to crop pixels
        ``B x N x 2``."""
        full = project(points + self.translation(cam)[:, None], self.focal, self.principal)
        return full_to_crop(full, self.center, self.box_size, self.crop_size)


def cliff_bbox_info(center: Tensor, box_size: Tensor, focal: Tensor, principal: Tensor) -> Tensor:
    """CLIFF bounding-box feature fed to ReFit's regressor.

    ``[(cx - icx) / fx * 2.8, (cy - icy) / fy * 2.8, (b - 0.24 fx) / (0.06 fx)]``.

    Parameters
    ----------
    center : Tensor
        ``B x 2`` box centre in pixels.
    box_size : Tensor
        ``B`` box side in pixels.
    focal : Tensor
        ``B x 2`` ``(fx, fy)``.
    principal : Tensor
        ``B x 2`` ``(icx, icy)``.

    Returns
    -------
    Tensor
        ``B x 3``.
    """
    xy = (center - principal) / focal * 2.8
    f = focal[:, 0]
    size = (box_size - 0.24 * f) / (0.06 * f)
    return torch.cat([xy, size[:, None]], dim=-1)


def crop_cam_to_translation(cam: Tensor, center: Tensor, box_size: Tensor, focal: Tensor,
                            principal: Tensor) -> Tensor:
    """Weak-perspective crop camera to a translation in the camera optical frame.

    Parameters
    ----------
    cam : Tensor
        ``B x 3`` ``(s, tx, ty)``.
    center, box_size, focal, principal : Tensor
        ``B x 2``, ``B``, ``B x 2``, ``B x 2`` as in :func:`cliff_bbox_info`.

    Returns
    -------
    Tensor
        ``B x 3`` translation (metres when the body is in metres).
    """
    s, tx, ty = cam.unbind(-1)
    bs = box_size * s
    fx, fy = focal.unbind(-1)
    tx_full = tx + 2 * (center[:, 0] - principal[:, 0]) / bs
    # fx / fy is exactly 1 for a single focal length, keeping the official arithmetic.
    ty_full = ty + 2 * (center[:, 1] - principal[:, 1]) / bs * (fx / fy)
    tz_full = 2 * fx / bs
    return torch.stack([tx_full, ty_full, tz_full], dim=-1)


def project(points: Tensor, focal: Tensor, principal: Tensor) -> Tensor:
    """Pinhole projection of camera-frame points.

    Parameters
    ----------
    points : Tensor
        ``B x N x 3`` in the camera optical frame (z > 0 in front).
    focal : Tensor
        ``B x 2`` ``(fx, fy)``.
    principal : Tensor
        ``B x 2``.

    Returns
    -------
    Tensor
        ``B x N x 2`` pixels.
    """
    uv = points[..., :2] / points[..., 2:3]
    return uv * focal[:, None] + principal[:, None]


def full_to_crop(points2d: Tensor, center: Tensor, box_size: Tensor,
                 crop_size: int = CROP_SIZE) -> Tensor:
    """Full-image pixels ``B x N x 2`` to crop pixels ``B x N x 2``."""
    corner = center - box_size[:, None] / 2
    return (points2d - corner[:, None]) * (crop_size / box_size)[:, None, None]


def crop_to_full(points2d: Tensor, center: Tensor, box_size: Tensor,
                 crop_size: int = CROP_SIZE) -> Tensor:
    """Inverse of :func:`full_to_crop`."""
    corner = center - box_size[:, None] / 2
    return points2d * (box_size / crop_size)[:, None, None] + corner[:, None]
