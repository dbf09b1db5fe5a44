"""SMPL inside the ReFit network: smplx's SMPL layer plus SPIN's 49 joints.

The official ReFit model holds three SMPL layers (neutral, male, female) whose arrays are
persistent buffers of its state_dict, so this module keeps exactly smplx 0.1.28's buffer
names (``shapedirs``, ``faces_tensor``, ``v_template``, ``J_regressor``, ``posedirs``,
``parents``, ``lbs_weights``, ``vertex_joint_selector.extra_joints_idxs``) plus
``J_regressor_extra`` (9 extra joints regressed from the posed mesh).

It is built from plain arrays (no pickle, no chumpy): whoever reads the user's official
SMPL files (``refit_ros/body/smpl.py``) or a test fixture passes a mapping with smplx's
key names ``v_template f shapedirs posedirs J_regressor weights kintree_table``.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import smplx
import torch
from smplx.lbs import vertices2joints
from smplx.utils import Struct
from torch import Tensor

#: Keys an SMPL model mapping must hold (smplx names).
SMPL_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights",
             "kintree_table")

#: SPIN's 49 joints (25 OpenPose + 24 ground-truth joints) as indices into the 54 joints
#: [24 SMPL skeleton joints, 21 smplx vertex joints, 9 J_regressor_extra joints].
JOINT_MAP_49 = (24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30,
                31, 32, 33, 34, 8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50,
                51, 52, 53, 24, 26, 25, 28, 27)


@dataclass
class BodyJoints:
    """Posed SMPL body in the SMPL model frame (metres, no translation).

    Attributes
    ----------
    vertices : Tensor
        ``B x 6890 x 3``.
    joints : Tensor
        ``B x 49 x 3`` (SPIN order, see :data:`JOINT_MAP_49`).
    """

    vertices: Tensor
    joints: Tensor


def _check_arrays(arrays: Mapping[str, np.ndarray], what: str) -> None:
    missing = [k for k in SMPL_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{what}: SMPL arrays lack {missing}; expected smplx keys {SMPL_KEYS}")


class SmplJoints49(smplx.SMPLLayer):
    """smplx ``SMPLLayer`` (rotation-matrix input) that returns SPIN's 49 joints.

    Parameters
    ----------
    arrays : Mapping[str, numpy.ndarray]
        SMPL model arrays under smplx key names (see :data:`SMPL_KEYS`).
    j_regressor_extra : numpy.ndarray
        ``9 x 6890`` extra joint regressor (``J_regressor_extra.npy`` from SPIN/ReFit).
    extra_joints_idxs : numpy.ndarray, optional
        ``21`` vertex ids of smplx's vertex joints; smplx's own SMPL-H ids by default.
    joint_map : sequence of int, optional
        49 indices into the 54 joints; :data:`JOINT_MAP_49` by default.
    name : str
        Used in error messages (e.g. ``"smpl_male"``).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], j_regressor_extra: np.ndarray,
                 extra_joints_idxs: np.ndarray | None = None,
                 joint_map: tuple[int, ...] | np.ndarray | None = None, name: str = "smpl"):
        _check_arrays(arrays, name)
        struct = Struct(**{k: np.asarray(arrays[k]) for k in SMPL_KEYS})
        # smplx prints a warning about 10 shape coefficients to stdout; keep stdout clean.
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(model_path="", data_struct=struct, num_betas=10)
        n_vertices = self.v_template.shape[0]
        extra = np.asarray(j_regressor_extra)
        if extra.ndim != 2 or extra.shape[1] != n_vertices:
            raise ValueError(f"{name}: J_regressor_extra must be K x {n_vertices}, "
                             f"got {extra.shape}")
        self.register_buffer("J_regressor_extra", torch.tensor(extra, dtype=torch.float32))
        if extra_joints_idxs is not None:
            idx = torch.tensor(np.asarray(extra_joints_idxs), dtype=torch.long)
            self.vertex_joint_selector.extra_joints_idxs = idx
        jmap = JOINT_MAP_49 if joint_map is None else tuple(int(i) for i in joint_map)
        n_all = 24 + self.vertex_joint_selector.extra_joints_idxs.numel() + extra.shape[0]
        if max(jmap) >= n_all:
            raise ValueError(f"{name}: joint_map refers to joint {max(jmap)} of {n_all}")
        # Not part of the official state_dict, hence non-persistent.
        self.register_buffer("joint_map", torch.tensor(jmap, dtype=torch.long), persistent=False)

    def forward(self, rotmat: Tensor, betas: Tensor) -> BodyJoints:  # type: ignore[override]
        """Pose the body.

        Parameters
        ----------
        rotmat : Tensor
            ``B x 24 x 3 x 3`` joint rotations (global orientation first).
        betas : Tensor
            ``B x 10`` shape coefficients.

        Returns
        -------
        BodyJoints
            Vertices and 49 joints in the SMPL model frame.
        """
        out = super().forward(global_orient=rotmat[:, :1], body_pose=rotmat[:, 1:],
                              betas=betas, pose2rot=False)
        extra = vertices2joints(self.J_regressor_extra, out.vertices)
        joints = torch.cat([out.joints, extra], dim=1)[:, self.joint_map]
        return BodyJoints(vertices=out.vertices, joints=joints)
