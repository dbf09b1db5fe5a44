"""Body models in a form that ONNX export and CUDA-graph capture accept.

smplx's forward kinematics index a Python list with entries of the ``parents`` *tensor*
(``transform_chain[parents[i]]``) and size their temporaries from ``max(batch sizes)``:
an exporter either fails on the data-dependent index (``torch.export``) or freezes the
batch size into the graph (the TorchScript tracer), and on CUDA every index is a
device-to-host copy, which stream capture forbids. The modules here compute the same
linear blend skinning with the kinematic tree held as Python integers and every shape
taken from the inputs. They share the buffers of the module they are built from (no copy
of the SMPL arrays), so weights and body stay one set of tensors.

Numerically they equal smplx up to float32 rounding order (1e-7 relative), which the
parity checks measure.
"""

from __future__ import annotations

import copy
import types
from typing import Sequence

import torch
from torch import Tensor, nn

from refit_ros.models.refit.smpl_head import BodyJoints

__all__ = ["GraphSmplJoints49", "forward_kinematics", "graph_skinned_body", "skin_vertices"]


def forward_kinematics(rotmat: Tensor, joints_rest: Tensor,
                       parents: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Pose a kinematic tree.

    Parameters
    ----------
    rotmat : Tensor
        ``B x J x 3 x 3`` joint rotations relative to the parent (root first).
    joints_rest : Tensor
        ``B x J x 3`` rest-pose joint positions.
    parents : sequence of int
        ``J`` parent ids, ``-1`` for the root; each parent precedes its children.

    Returns
    -------
    posed_joints : Tensor
        ``B x J x 3``.
    skinning : Tensor
        ``B x J x 3 x 4`` per-joint transforms from the rest pose to the posed body
        (``[R | t - R j_rest]``), what linear blend skinning mixes.
    """
    n = len(parents)
    if rotmat.shape[1] != n or joints_rest.shape[1] != n:
        raise ValueError(f"rotmat {tuple(rotmat.shape)} and joints {tuple(joints_rest.shape)} "
                         f"must both have {n} joints")
    # Offsets of each joint from its parent (the root keeps its absolute position).
    # (Python-int indexing: a list index would be a host tensor copied to the device, which
    # a CUDA graph capture refuses.)
    parent_pos = torch.stack([joints_rest[:, max(p, 0)] for p in parents[1:]], dim=1)
    offsets = torch.cat([joints_rest[:, :1], joints_rest[:, 1:] - parent_pos], dim=1)
    top = torch.cat([rotmat, offsets[..., None]], dim=-1)                  # B x J x 3 x 4
    bottom = torch.zeros_like(top[:, :, :1])                              # B x J x 1 x 4
    bottom = torch.cat([bottom[..., :3], torch.ones_like(bottom[..., 3:])], dim=-1)
    local = torch.cat([top, bottom], dim=-2)                              # B x J x 4 x 4
    world = [local[:, 0]]
    for i in range(1, n):
        world.append(torch.matmul(world[parents[i]], local[:, i]))
    world_t = torch.stack(world, dim=1)                                   # B x J x 4 x 4
    rot, trans = world_t[:, :, :3, :3], world_t[:, :, :3, 3]
    # t - R j_rest, written as a sum of products (no tiny batched matmuls).
    moved = trans - (rot * joints_rest[:, :, None, :]).sum(-1)
    return trans, torch.cat([rot, moved[..., None]], dim=-1)


def skin_vertices(skinning: Tensor, weights: Tensor, vertices_rest: Tensor) -> Tensor:
    """Linear blend skinning.

    Parameters
    ----------
    skinning : Tensor
        ``B x J x 3 x 4`` from :func:`forward_kinematics`.
    weights : Tensor
        ``V x J`` skinning weights.
    vertices_rest : Tensor
        ``B x V x 3`` shaped and pose-corrected rest vertices.

    Returns
    -------
    Tensor
        ``B x V x 3``.
    """
    b, j = skinning.shape[:2]
    v = weights.shape[0]
    mixed = torch.matmul(weights, skinning.reshape(b, j, 12)).reshape(b, v, 3, 4)
    return (mixed[..., :3] * vertices_rest[:, :, None, :]).sum(-1) + mixed[..., 3]


class GraphSmplJoints49(nn.Module):
    """Graph-friendly twin of :class:`refit_ros.models.refit.smpl_head.SmplJoints49`.

    Parameters
    ----------
    src : SmplJoints49
        The smplx-based layer whose buffers are used (shared, not copied).
    """

    def __init__(self, src: nn.Module):
        super().__init__()
        for name in ("v_template", "shapedirs", "J_regressor", "posedirs", "lbs_weights",
                     "J_regressor_extra", "joint_map"):
            self.register_buffer(name, getattr(src, name), persistent=False)
        self.register_buffer("extra_joints_idxs", src.vertex_joint_selector.extra_joints_idxs,
                             persistent=False)
        self.parents = tuple(int(p) for p in src.parents.tolist())
        self.parents = (-1,) + self.parents[1:]

    def forward(self, rotmat: Tensor, betas: Tensor) -> BodyJoints:
        """Pose the body.

        Parameters
        ----------
        rotmat : Tensor
            ``B x 24 x 3 x 3``.
        betas : Tensor
            ``B x 10``.

        Returns
        -------
        BodyJoints
            ``B x 6890 x 3`` vertices and ``B x 49 x 3`` joints (SPIN order).
        """
        b, v = rotmat.shape[0], self.v_template.shape[0]
        k = betas.shape[1]
        shape_offsets = torch.matmul(betas, self.shapedirs[..., :k].reshape(v * 3, k).t())
        v_shaped = self.v_template + shape_offsets.reshape(b, v, 3)
        joints_rest = torch.matmul(self.J_regressor, v_shaped)
        eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
        pose_feature = (rotmat[:, 1:] - eye).reshape(b, -1)
        v_posed = v_shaped + torch.matmul(pose_feature, self.posedirs).reshape(b, v, 3)
        posed_joints, skinning = forward_kinematics(rotmat, joints_rest, self.parents)
        vertices = skin_vertices(skinning, self.lbs_weights, v_posed)
        extra = torch.matmul(self.J_regressor_extra, vertices)
        joints = torch.cat([posed_joints, vertices[:, self.extra_joints_idxs], extra], dim=1)
        return BodyJoints(vertices=vertices, joints=joints[:, self.joint_map])


def _graph_kinematics(self, rotmat: Tensor, betas: Tensor):
    """``SkinnedBody._kinematics`` with the tree as Python integers (see module doc)."""
    k = betas.shape[1]
    b = betas.shape[0]
    jdirs = self.J_shapedirs[..., :k]
    joints_rest = self.J_template + torch.matmul(
        betas, jdirs.reshape(-1, k).t()).reshape(b, -1, 3)
    joints, skinning = forward_kinematics(rotmat, joints_rest, self._graph_parents)
    # SkinnedBody's skinning step expects B x J x 4 x 4 relative transforms.
    bottom = torch.zeros_like(skinning[:, :, :1])
    rel = torch.cat([skinning, bottom], dim=-2)
    pose_feature = None
    if self.posedirs is not None:
        eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
        pose_feature = (rotmat[:, 1:] - eye).flatten(1)
    return rel, joints, pose_feature


def graph_skinned_body(body: nn.Module) -> nn.Module:
    """A copy of a :class:`refit_ros.body.skinned.SkinnedBody` whose forward kinematics are
    graph-friendly (same buffers, shared).

    Parameters
    ----------
    body : SkinnedBody

    Returns
    -------
    SkinnedBody
        A shallow copy whose ``_kinematics`` uses :func:`forward_kinematics`.
    """
    twin = copy.copy(body)
    # Own module dicts (so moving the twin never moves the original), same tensors.
    for attr in ("_parameters", "_buffers", "_modules"):
        object.__setattr__(twin, attr, dict(getattr(body, attr)))
    parents = tuple(int(p) for p in body.parents.tolist())
    object.__setattr__(twin, "_graph_parents", (-1,) + parents[1:])
    object.__setattr__(twin, "_kinematics", types.MethodType(_graph_kinematics, twin))
    return twin
