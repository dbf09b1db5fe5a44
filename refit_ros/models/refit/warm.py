"""Warm starts: last frame's fitting state as the start of this frame's fit.

The maths every fitting family shares (they all carry a
:class:`~refit_ros.models.refit.state.RefitState`-like state with a crop camera, a 6D pose
and GRU hidden states); :meth:`refit_ros.export.families.ModelFamily.warm_start` is the
entry point the pipeline and warm-start training use.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.rotation import rot6d_to_rotmat, rotmat_to_rot6d


def recentre_cam(cam: Tensor, old: CropCamera, new: CropCamera) -> Tensor:
    """Re-express crop cameras ``N x 3`` for new boxes, keeping the same 3D translation.

    A warm start keeps last frame's body where it was in the camera frame; only the crop
    it is described relative to moves: ``s' = 2 fx / (b' tz)``, ``tx' = Tx - 2 (c'x - px) /
    (b' s')``, ``ty' = Ty - 2 (c'y - py) / (b' s') * fx / fy`` (inverse of
    :func:`refit_ros.geometry.camera.crop_cam_to_translation`).
    """
    t = old.translation(cam)
    fx, fy = new.focal.unbind(-1)
    s = 2 * fx / (new.box_size * t[:, 2].clamp(min=1e-6))
    bs = new.box_size * s
    tx = t[:, 0] - 2 * (new.center[:, 0] - new.principal[:, 0]) / bs
    ty = t[:, 1] - 2 * (new.center[:, 1] - new.principal[:, 1]) / bs * (fx / fy)
    return torch.stack([s, tx, ty], dim=-1)


def normalise_pose6d(pose6d: Tensor) -> Tensor:
    """The canonical 6D form (first two columns of the rotation) of ``N x 6J`` 6D poses.

    A step adds its update to the raw 6D vectors; only their Gram-Schmidt rotation has a
    meaning, so their length and skew are free. Within one cold fit (a few steps) that is
    harmless, but a warm start chains a step per frame for as long as a person is tracked:
    unnormalised, the vectors drift without bound (on the demo clip, fit check off, the
    mean absolute difference to the cold fit's 6D values grew by ~0.4 per frame, to ~70
    after 170 warm frames) and the network, trained on unit-scale inputs, stops fitting the
    evidence. The rotations are unchanged by this, so a cached body stays valid.
    """
    n = pose6d.shape[0]
    rot = rot6d_to_rotmat(pose6d.reshape(-1, 6))
    return rotmat_to_rot6d(rot).reshape(n, -1).to(pose6d)


def warm_start_state(prev: Any, old: CropCamera, new: CropCamera, betas: Tensor | None = None,
                     reset_hidden: bool = False) -> Any:
    """Last frame's state as the start of this frame's fit (the tracker's warm start).

    The crop camera is re-expressed for the new boxes (:func:`recentre_cam`), the 6D pose is
    re-orthonormalised (:func:`normalise_pose6d`), the shape may be replaced by the track's
    accumulated one, and the GRU hidden states are kept. Body caches (``vertices``,
    ``joints``) are dropped when the shape changes, so the first step recomputes the body. Training (:mod:`refit_ros.training.warm_finetune`) uses the same
    function, so the warm starts it learns from are the ones the pipeline makes.

    Parameters
    ----------
    prev : state dataclass
        ``N`` people (``pose6d``, ``betas``, ``cam`` and hidden states).
    old, new : CropCamera
        The crops ``prev`` was expressed in, and this frame's.
    betas : Tensor, optional
        ``N x K`` shape to start from (default: ``prev.betas``).
    reset_hidden : bool
        Zero the GRU hidden states (``tracking.warm_hidden=reset``): the regime the
        official loop trains in after its initial step (estimate given, hidden states 0).
    """
    changes: dict[str, Any] = {"cam": recentre_cam(prev.cam, old, new),
                               "pose6d": normalise_pose6d(prev.pose6d)}
    if betas is not None:
        changes["betas"] = betas.to(prev.betas)
        for cache in ("vertices", "joints"):
            if getattr(prev, cache, None) is not None:
                changes[cache] = None
    if reset_hidden:
        for h in ("hpose", "hshape", "hcam"):
            changes[h] = torch.zeros_like(getattr(prev, h))
    return dataclasses.replace(prev, **changes)
