"""The one body-model interface used by the fitting loop, the networks and the ROS layer.

A body model maps per-joint rotations (SMPL's 24-joint tree and joint order) and shape
coefficients to a mesh, its 24 joints and a set of surface markers. Concrete models:
official SMPL (:mod:`refit_ros.body.smpl`) and the shipped open body
(:mod:`refit_ros.body.open_body`), both linear-blend-skinned bodies
(:class:`refit_ros.body.skinned.SkinnedBody`).

Coordinates follow SMPL: metres, +y up, +z towards the front of the body, the body's left
along +x, in the zero pose (T-pose, palms down).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import Tensor

#: SMPL's 24 joints, in SMPL order (the order of every ``B x 24`` axis in refit_ros).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)

#: Parent of each SMPL joint (-1 for the root), i.e. SMPL's ``kintree_table[0]``.
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

#: The 33 BlazePose (MediaPipe Pose) landmarks, in MediaPipe's order.
BLAZEPOSE_LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb",
    "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

NUM_JOINTS = 24


@dataclass
class BodyOutput:
    """A posed body (no global translation applied).

    Attributes
    ----------
    vertices : Tensor
        B x V x 3 mesh vertices (metres, body-model frame).
    joints : Tensor
        B x 24 x 3 joints in SMPL order.
    """

    vertices: Tensor
    joints: Tensor


@dataclass(frozen=True)
class LandmarkMap:
    """Where each named landmark (e.g. BlazePose's 33) lies on a body model.

    Each landmark is a mesh vertex, a body joint, or undefined on this model.

    Attributes
    ----------
    names : tuple of str
        L landmark names.
    vertex_ids : tuple of int
        L vertex ids; -1 where the landmark is a joint or undefined.
    joint_ids : tuple of int
        L joint ids (SMPL order); -1 where the landmark is a vertex or undefined.
    """

    names: tuple[str, ...]
    vertex_ids: tuple[int, ...]
    joint_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.vertex_ids) != n or len(self.joint_ids) != n:
            raise ValueError("LandmarkMap: names, vertex_ids and joint_ids differ in length")
        for name, v, j in zip(self.names, self.vertex_ids, self.joint_ids, strict=True):
            if v >= 0 and j >= 0:
                raise ValueError(f"landmark {name!r} is both vertex {v} and joint {j}")

    @property
    def defined(self) -> tuple[bool, ...]:
        """L flags: True where the landmark is defined on this model."""
        return tuple(v >= 0 or j >= 0 for v, j in zip(self.vertex_ids, self.joint_ids, strict=True))

    def combine(self, landmark_vertices: Tensor, joints: Tensor) -> Tensor:
        """Assemble the landmarks from their vertices and the joints.

        Parameters
        ----------
        landmark_vertices : Tensor
            B x L x 3: for each landmark l, the posed vertex ``vertex_ids[l]`` (any value
            where the landmark is not a vertex).
        joints : Tensor
            B x 24 x 3 posed joints.

        Returns
        -------
        Tensor
            B x L x 3; undefined landmarks are NaN.
        """
        dev = landmark_vertices.device
        is_v = torch.tensor(self.vertex_ids, device=dev) >= 0
        jid = torch.tensor(self.joint_ids, device=dev)
        from_joints = joints[:, jid.clamp(min=0)]
        nan = torch.full_like(from_joints, float("nan"))
        out = torch.where((jid >= 0)[None, :, None], from_joints, nan)
        return torch.where(is_v[None, :, None], landmark_vertices, out)

    def gather(self, vertices: Tensor, joints: Tensor) -> Tensor:
        """Pick the landmarks from a full posed mesh.

        Parameters
        ----------
        vertices : Tensor
            B x V x 3 full mesh.
        joints : Tensor
            B x 24 x 3.

        Returns
        -------
        Tensor
            B x L x 3; undefined landmarks are NaN.
        """
        vid = torch.tensor(self.vertex_ids, device=vertices.device).clamp(min=0)
        return self.combine(vertices[:, vid], joints)


class BodyModel(torch.nn.Module, abc.ABC):
    """Rotations + shape -> mesh, joints and markers (batched, float32, CPU or CUDA).

    Subclasses hold their arrays as buffers, so ``.to(device)`` moves them and the device
    of the inputs decides where the computation runs.
    """

    #: Gender of this body's mesh, published in ``SMPL.gender``: ``"neutral"`` for
    #: genderless bodies (the open body) and neutral SMPL; ``SmplBody`` sets its own.
    gender: str = "neutral"

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Model name published in ``SMPL.body_model`` (e.g. ``"smpl"``)."""

    @property
    @abc.abstractmethod
    def num_betas(self) -> int:
        """K, the number of shape coefficients."""

    @property
    @abc.abstractmethod
    def num_vertices(self) -> int:
        """V, the number of mesh vertices."""

    @property
    @abc.abstractmethod
    def faces(self) -> Tensor:
        """F x 3 int64 triangle vertex ids (counter-clockwise seen from outside)."""

    @property
    @abc.abstractmethod
    def parents(self) -> Tensor:
        """24 int64 parent joint ids (-1 for the root)."""

    @property
    @abc.abstractmethod
    def marker_ids(self) -> Tensor:
        """M int64 vertex ids of the markers ReFit reprojects (M = 67)."""

    @property
    def landmark_map(self) -> LandmarkMap | None:
        """BlazePose's 33 landmarks on this model, or None where not defined."""
        return None

    @abc.abstractmethod
    def forward(self, rotmat: Tensor, betas: Tensor) -> BodyOutput:
        """Pose the full mesh.

        Parameters
        ----------
        rotmat : Tensor
            B x 24 x 3 x 3 rotations: joint 0 is the global orientation, joints 1..23 are
            relative to their parent.
        betas : Tensor
            B x K shape coefficients (K <= ``num_betas``; missing ones are zero).

        Returns
        -------
        BodyOutput
            vertices B x V x 3, joints B x 24 x 3.
        """

    @abc.abstractmethod
    def skin(self, rotmat: Tensor, betas: Tensor, vertex_ids: Tensor) -> BodyOutput:
        """Pose only some vertices (the fast path the fitting loop and training use).

        Parameters
        ----------
        rotmat : Tensor
            B x 24 x 3 x 3.
        betas : Tensor
            B x K.
        vertex_ids : Tensor
            N int64 vertex ids (N may be 0).

        Returns
        -------
        BodyOutput
            vertices B x N x 3, equal to ``forward(rotmat, betas).vertices[:, vertex_ids]``;
            joints B x 24 x 3.
        """

    def skin_vertices(self, rotmat: Tensor, betas: Tensor, vertex_ids: Tensor) -> Tensor:
        """B x N x 3 posed vertices ``vertex_ids``, skinning only those (see :meth:`skin`)."""
        return self.skin(rotmat, betas, vertex_ids).vertices

    def joints(self, rotmat: Tensor, betas: Tensor) -> Tensor:
        """B x 24 x 3 posed joints, without skinning any vertex."""
        empty = torch.zeros(0, dtype=torch.long, device=rotmat.device)
        return self.skin(rotmat, betas, empty).joints

    def markers(self, rotmat: Tensor, betas: Tensor) -> Tensor:
        """B x M x 3 posed markers (``marker_ids``), skinning only those vertices."""
        return self.skin_vertices(rotmat, betas, self.marker_ids)

    def landmarks(self, rotmat: Tensor, betas: Tensor) -> Tensor:
        """B x 33 x 3 posed BlazePose landmarks (NaN where undefined on this model)."""
        lmap = self.landmark_map
        if lmap is None:
            raise NotImplementedError(f"body model {self.name!r} defines no landmark map")
        vid = torch.tensor(lmap.vertex_ids, device=rotmat.device).clamp(min=0)
        out = self.skin(rotmat, betas, vid)
        return lmap.combine(out.vertices, out.joints)
