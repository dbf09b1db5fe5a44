"""Linear-blend-skinned bodies in SMPL's array format (official SMPL and the open body).

The kinematics are smplx's own functions (``blend_shapes``, ``vertices2joints``,
``batch_rigid_transform``); only the last skinning step is composed here so that any
subset of vertices can be posed without touching the rest of the mesh (the marker fast
path). The joints do not depend on that subset: the joint regressor is folded into a joint
template and joint shape directions once, at construction (exactly what
``vertices2joints(J_regressor, v_template + shapedirs @ betas)`` computes, by linearity).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform, blend_shapes, vertices2joints
from torch import Tensor

from refit_ros.body.base import NUM_JOINTS, BodyModel, BodyOutput, LandmarkMap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkinningArrays:
    """A body model in SMPL's array format (smplx key names in the comments).

    Attributes
    ----------
    v_template : np.ndarray
        V x 3 rest (T-pose) vertices, metres (``v_template``).
    shapedirs : np.ndarray
        V x 3 x K shape directions (``shapedirs``).
    posedirs : np.ndarray or None
        V x 3 x 207 pose-corrective directions (``posedirs``), None for a model without.
    J_regressor : np.ndarray
        24 x V joint regressor, dense (``J_regressor``).
    weights : np.ndarray
        V x 24 skinning weights, rows summing to 1 (``weights``).
    parents : np.ndarray
        24 parent ids, -1 for the root (``kintree_table[0]``).
    faces : np.ndarray
        F x 3 triangle vertex ids (``f``).
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray | None
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray

    def validate(self, source: str) -> None:
        """Raise ValueError naming ``source`` if the arrays are inconsistent."""
        v = self.v_template.shape[0]
        expect = {
            "v_template": (self.v_template.shape, (v, 3)),
            "shapedirs": (self.shapedirs.shape[:2], (v, 3)),
            "J_regressor": (self.J_regressor.shape, (NUM_JOINTS, v)),
            "weights": (self.weights.shape, (v, NUM_JOINTS)),
            "parents": (self.parents.shape, (NUM_JOINTS,)),
        }
        if self.posedirs is not None:
            expect["posedirs"] = (self.posedirs.shape, (v, 3, (NUM_JOINTS - 1) * 9))
        for key, (got, want) in expect.items():
            if tuple(got) != tuple(want):
                raise ValueError(f"{source}: {key} has shape {tuple(got)}, expected {want}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"{source}: f has shape {self.faces.shape}, expected F x 3")
        if self.faces.min() < 0 or self.faces.max() >= v:
            raise ValueError(f"{source}: f holds vertex ids outside [0, {v})")
        if self.parents[0] != -1 or np.any(self.parents[1:] >= np.arange(1, NUM_JOINTS)):
            raise ValueError(f"{source}: parents must be -1 at the root and precede each joint")


class SkinnedBody(BodyModel):
    """A body posed by SMPL's linear blend skinning (+ optional pose correctives).

    Parameters
    ----------
    arrays : SkinningArrays
        The model (converted to float32 buffers).
    name : str
        Name published in ``SMPL.body_model``.
    marker_ids : sequence of int
        M vertex ids of the feedback markers.
    landmark_map : LandmarkMap, optional
        BlazePose landmarks on this model.
    """

    def __init__(self, arrays: SkinningArrays, name: str, marker_ids, landmark_map=None):
        super().__init__()
        arrays.validate(name)
        self._name = name
        self._landmark_map = landmark_map
        f32 = dict(dtype=torch.float32)
        v_template = np.asarray(arrays.v_template, np.float64)
        shapedirs = np.asarray(arrays.shapedirs, np.float64)
        jreg = np.asarray(arrays.J_regressor, np.float64)
        # Joints are linear in the shaped mesh: fold the regressor once (in float64).
        j_template = vertices2joints(torch.from_numpy(jreg), torch.from_numpy(v_template)[None])[0]
        j_dirs = vertices2joints(torch.from_numpy(jreg),
                                 torch.from_numpy(shapedirs).permute(2, 0, 1)).permute(1, 2, 0)
        self.register_buffer("v_template", torch.as_tensor(v_template, **f32))
        self.register_buffer("shapedirs", torch.as_tensor(shapedirs, **f32))
        self.register_buffer("J_regressor", torch.as_tensor(jreg, **f32))
        self.register_buffer("J_template", j_template.to(torch.float32))
        self.register_buffer("J_shapedirs", j_dirs.to(torch.float32).contiguous())
        self.register_buffer("lbs_weights", torch.as_tensor(arrays.weights, **f32))
        self.register_buffer("_parents", torch.as_tensor(arrays.parents, dtype=torch.long))
        self.register_buffer("_faces", torch.as_tensor(arrays.faces.astype(np.int64)))
        self.register_buffer("_marker_ids", torch.as_tensor(np.asarray(marker_ids, np.int64)))
        if arrays.posedirs is not None:
            # P x V x 3, so that a vertex subset keeps the layout smplx's lbs() uses.
            pd = np.ascontiguousarray(np.transpose(arrays.posedirs, (2, 0, 1)))
            self.register_buffer("posedirs", torch.as_tensor(pd, **f32))
        else:
            self.posedirs = None
        if self._marker_ids.numel() and int(self._marker_ids.max()) >= self.num_vertices:
            raise ValueError(f"{name}: marker ids exceed the {self.num_vertices} vertices")

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self._name

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def faces(self) -> Tensor:
        return self._faces

    @property
    def parents(self) -> Tensor:
        return self._parents

    @property
    def marker_ids(self) -> Tensor:
        return self._marker_ids

    @property
    def landmark_map(self) -> LandmarkMap | None:
        return self._landmark_map

    # ------------------------------------------------------------------ posing
    def forward(self, rotmat: Tensor, betas: Tensor) -> BodyOutput:
        rotmat, betas = self._check_inputs(rotmat, betas)
        rel, joints, pose_feature = self._kinematics(rotmat, betas)
        k = betas.shape[1]
        posedirs = None if self.posedirs is None else self.posedirs.flatten(1)
        verts = _skin(rel, pose_feature, betas, self.v_template, self.shapedirs[..., :k],
                      posedirs, self.lbs_weights)
        return BodyOutput(vertices=verts, joints=joints)

    def skin(self, rotmat: Tensor, betas: Tensor, vertex_ids: Tensor) -> BodyOutput:
        rotmat, betas = self._check_inputs(rotmat, betas)
        rel, joints, pose_feature = self._kinematics(rotmat, betas)
        ids = torch.as_tensor(vertex_ids, dtype=torch.long, device=rotmat.device).reshape(-1)
        if ids.numel() == 0:
            return BodyOutput(vertices=rotmat.new_zeros((rotmat.shape[0], 0, 3)), joints=joints)
        k = betas.shape[1]
        posedirs = None if self.posedirs is None else self.posedirs[:, ids].flatten(1)
        verts = _skin(rel, pose_feature, betas, self.v_template[ids],
                      self.shapedirs[ids, :, :k], posedirs, self.lbs_weights[ids])
        return BodyOutput(vertices=verts, joints=joints)

    def _check_inputs(self, rotmat: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
        if rotmat.ndim != 4 or tuple(rotmat.shape[1:]) != (NUM_JOINTS, 3, 3):
            raise ValueError(f"rotmat must be B x 24 x 3 x 3, got {tuple(rotmat.shape)}")
        if betas.ndim != 2 or betas.shape[1] > self.num_betas:
            raise ValueError(f"betas must be B x K with K <= {self.num_betas} for "
                             f"{self.name!r}, got {tuple(betas.shape)}")
        b = rotmat.shape[0]
        if betas.shape[0] != b:
            if betas.shape[0] != 1:
                raise ValueError(f"betas batch {betas.shape[0]} does not match rotmat batch {b}")
            betas = betas.expand(b, -1)
        dtype = self.v_template.dtype
        return rotmat.to(dtype), betas.to(dtype)

    def _kinematics(self, rotmat: Tensor, betas: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Relative joint transforms B x 24 x 4 x 4, posed joints, pose feature B x 207."""
        k = betas.shape[1]
        joints_rest = self.J_template + blend_shapes(betas, self.J_shapedirs[..., :k])
        joints, rel = batch_rigid_transform(rotmat, joints_rest, self._parents, dtype=rotmat.dtype)
        pose_feature = None
        if self.posedirs is not None:
            eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
            pose_feature = (rotmat[:, 1:] - eye).flatten(1)
        return rel, joints, pose_feature


def _skin(rel: Tensor, pose_feature: Tensor | None, betas: Tensor, v_template: Tensor,
          shapedirs: Tensor, posedirs: Tensor | None, weights: Tensor) -> Tensor:
    """Shape, add pose correctives and skin N vertices.

    Parameters
    ----------
    rel : Tensor
        B x 24 x 4 x 4 joint transforms relative to the rest pose.
    pose_feature : Tensor or None
        B x 207 (R - I of joints 1..23), None without pose correctives.
    betas : Tensor
        B x K.
    v_template, shapedirs, posedirs, weights : Tensor
        N x 3, N x 3 x K, 207 x 3N (or None), N x 24.

    Returns
    -------
    Tensor
        B x N x 3 posed vertices.
    """
    b, n = betas.shape[0], v_template.shape[0]
    verts = v_template + blend_shapes(betas, shapedirs)
    if posedirs is not None and pose_feature is not None:
        verts = verts + torch.matmul(pose_feature, posedirs).view(b, n, 3)
    tf = torch.matmul(weights, rel.reshape(b, NUM_JOINTS, 16)).view(b, n, 4, 4)
    return torch.einsum("bnij,bnj->bni", tf[..., :3, :3], verts) + tf[..., :3, 3]
