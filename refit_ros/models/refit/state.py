"""Explicit state of ReFit's recurrent fitting loop, and what the network outputs.

A :class:`RefitState` is everything the loop carries from one step to the next: the
current estimate (6D pose, shape, crop camera) and the 26 GRU hidden states. Because it is
explicit, a tracker can keep a person's state from the previous frame and run a few
steps from it (warm start) instead of starting from the mean body.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from refit_ros.geometry.rotation import rot6d_to_rotmat


@dataclass
class RefitFeatures:
    """What the backbone and correlation head extract from a batch of crops.

    Attributes
    ----------
    corr : Tensor
        ``B x M x 64 x 64`` one map per marker (M = 67), looked up every step.
    z : Tensor
        ``B x Z`` global vector (384 for HRNet-W48), drives the initial estimate.
    feature_map : Tensor or None
        ``B x C x 64 x 64`` backbone feature map (720 channels for W48); kept only when
        asked for (parity checks), since the loop needs ``corr`` alone.
    """

    corr: Tensor
    z: Tensor
    feature_map: Tensor | None = None


@dataclass
class RefitState:
    """Current estimate and GRU hidden states of the fitting loop.

    Attributes
    ----------
    pose6d : Tensor
        ``B x 144`` 24 joint rotations in 6D (global orientation first).
    betas : Tensor
        ``B x 10`` SMPL shape.
    cam : Tensor
        ``B x 3`` weak-perspective crop camera ``(s, tx, ty)``.
    hpose : Tensor
        ``B x 24 x H`` per-joint hidden states (H = 32).
    hshape : Tensor
        ``B x H``.
    hcam : Tensor
        ``B x H``.
    vertices : Tensor or None
        ``B x 6890 x 3`` body of ``pose6d``/``betas`` in the SMPL frame: a cache the next
        step reads its markers from. ``None`` for a state built by hand; the step then
        computes it.
    joints : Tensor or None
        ``B x 49 x 3`` joints of the same body (cache, like ``vertices``).
    """

    pose6d: Tensor
    betas: Tensor
    cam: Tensor
    hpose: Tensor
    hshape: Tensor
    hcam: Tensor
    vertices: Tensor | None = None
    joints: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.pose6d.shape[0]

    @property
    def rotmat(self) -> Tensor:
        """``B x 24 x 3 x 3`` joint rotations."""
        return rot6d_to_rotmat(self.pose6d).reshape(self.batch_size, 24, 3, 3)

    def with_zero_hidden(self) -> "RefitState":
        """Same estimate, GRU hidden states reset to zero (as after the initial step)."""
        return replace(self, hpose=torch.zeros_like(self.hpose),
                       hshape=torch.zeros_like(self.hshape), hcam=torch.zeros_like(self.hcam))

    def detach(self) -> "RefitState":
        """A copy cut from the autograd graph (each official step starts detached)."""
        return RefitState(**{f.name: None if getattr(self, f.name) is None
                             else getattr(self, f.name).detach() for f in fields(self)})

    def select(self, index: Tensor | list[int]) -> "RefitState":
        """The states of some batch entries (e.g. the people still tracked)."""
        return RefitState(**{f.name: None if getattr(self, f.name) is None
                             else getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def cat(states: list["RefitState"]) -> "RefitState":
        """Concatenate states along the batch (caches kept only if all have them)."""
        out = {}
        for f in fields(RefitState):
            parts = [getattr(s, f.name) for s in states]
            out[f.name] = None if any(p is None for p in parts) else torch.cat(parts)
        return RefitState(**out)


@dataclass
class RefitPrediction:
    """One estimate of the bodies in a batch of crops.

    Attributes
    ----------
    rotmat : Tensor
        ``B x 24 x 3 x 3`` joint rotations (SMPL frame, global orientation first).
    pose6d : Tensor
        ``B x 144``.
    betas : Tensor
        ``B x 10``.
    cam : Tensor
        ``B x 3`` crop camera ``(s, tx, ty)``.
    vertices : Tensor
        ``B x 6890 x 3`` in the SMPL frame (metres, root not at the origin).
    joints : Tensor
        ``B x 49 x 3`` in the SMPL frame (SPIN order).
    translation : Tensor
        ``B x 3`` SMPL frame -> camera optical frame (metres).
    joints2d_crop : Tensor
        ``B x 49 x 2`` joints projected to crop pixels.
    """

    rotmat: Tensor
    pose6d: Tensor
    betas: Tensor
    cam: Tensor
    vertices: Tensor
    joints: Tensor
    translation: Tensor
    joints2d_crop: Tensor

    @property
    def vertices_cam(self) -> Tensor:
        """``B x 6890 x 3`` vertices in the camera optical frame (metres)."""
        return self.vertices + self.translation[:, None]

    @property
    def joints_cam(self) -> Tensor:
        """``B x 49 x 3`` joints in the camera optical frame (metres)."""
        return self.joints + self.translation[:, None]


@dataclass
class StepTrace:
    """Intermediate values of one loop step (for parity checks and debugging).

    Attributes
    ----------
    marker_p2d : Tensor
        ``B x M x 2`` markers of the incoming estimate in crop pixels.
    lookup_coords : Tensor
        ``B x M x 2`` the same in feature-map pixels.
    lookup : Tensor
        ``B x M x (2r+1)^2`` sampled windows.
    flow_out : Tensor
        ``B x M x F`` per-marker features.
    local_out : Tensor
        ``B x L`` local feature.
    d_pose, d_shape, d_cam : Tensor
        ``B x 144``, ``B x 10``, ``B x 3`` regressed updates.
    """

    marker_p2d: Tensor
    lookup_coords: Tensor
    lookup: Tensor
    flow_out: Tensor
    local_out: Tensor
    d_pose: Tensor
    d_shape: Tensor
    d_cam: Tensor


@dataclass
class RefitRun:
    """Result of :meth:`Refit.run`.

    Attributes
    ----------
    predictions : list[RefitPrediction]
        Index 0 is the starting estimate (the initial step, or the given warm state), index
        ``k`` the estimate after ``k`` loop steps.
    state : RefitState
        The final state (pass it back to continue, e.g. on the next frame).
    features : RefitFeatures
        The encoded crops.
    """

    predictions: list[RefitPrediction]
    state: RefitState
    features: RefitFeatures

    @property
    def final(self) -> RefitPrediction:
        return self.predictions[-1]
