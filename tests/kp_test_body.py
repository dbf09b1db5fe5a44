"""A small body with all 33 BlazePose landmarks for ReFit-KP tests (synthetic SMPL)."""

from __future__ import annotations

from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES, LandmarkMap
from refit_ros.body.skinned import SkinnedBody
from refit_ros.body.smpl import smpl_arrays
from refit_ros.body.synthetic import synthetic_smpl_arrays

_JOINTS = {"left_shoulder": 16, "right_shoulder": 17, "left_elbow": 18, "right_elbow": 19,
           "left_wrist": 20, "right_wrist": 21, "left_hip": 1, "right_hip": 2,
           "left_knee": 4, "right_knee": 5, "left_ankle": 7, "right_ankle": 8}


def kp_test_body() -> SkinnedBody:
    """Synthetic SMPL (an ellipsoid, not a body) with arbitrary vertices as the 21
    non-joint landmarks: enough for shapes, gradients and plumbing."""
    lmap = LandmarkMap(
        names=BLAZEPOSE_LANDMARK_NAMES,
        vertex_ids=tuple(-1 if n in _JOINTS else 100 + 37 * i
                         for i, n in enumerate(BLAZEPOSE_LANDMARK_NAMES)),
        joint_ids=tuple(_JOINTS.get(n, -1) for n in BLAZEPOSE_LANDMARK_NAMES))
    return SkinnedBody(smpl_arrays(synthetic_smpl_arrays()), "synthetic_kp_test",
                       marker_ids=list(range(67)), landmark_map=lmap)
