"""The data files the official ReFit network is built from, as plain arrays.

These are the licensed SMPL models (read elsewhere, without chumpy) and the small MIT
files of ReFit's ``data/`` folder: mean parameters, the 67 marker vertex ids and SPIN's
extra joint regressor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass
class RefitAssets:
    """Arrays needed to build :class:`~refit_ros.models.refit.refit.Refit`.

    Attributes
    ----------
    smpl_neutral : Mapping[str, numpy.ndarray]
        Neutral SMPL under smplx key names (``v_template f shapedirs posedirs J_regressor
        weights kintree_table``).
    j_regressor_extra : numpy.ndarray
        ``9 x 6890`` (``J_regressor_extra.npy``).
    markers : numpy.ndarray
        ``M`` marker vertex ids (``smpl_ssm.npy``, M = 67).
    mean_pose : numpy.ndarray
        ``144`` mean pose in 6D (``smpl_mean_params.npz['pose']``).
    mean_shape : numpy.ndarray
        ``10``.
    mean_cam : numpy.ndarray
        ``3`` (``[0.9, 0, 0]``).
    smpl_male, smpl_female : Mapping or None
        Gendered SMPL. The official model stores them but never uses them in ``forward``;
        when absent the neutral arrays stand in so that the state_dict keeps its names.
    extra_joints_idxs : numpy.ndarray or None
        ``21`` vertex ids of smplx's vertex joints (smplx's SMPL-H ids when None).
    joint_map : numpy.ndarray or None
        ``49`` joint indices (SPIN's map when None).
    """

    smpl_neutral: Mapping[str, np.ndarray]
    j_regressor_extra: np.ndarray
    markers: np.ndarray
    mean_pose: np.ndarray
    mean_shape: np.ndarray
    mean_cam: np.ndarray
    smpl_male: Mapping[str, np.ndarray] | None = None
    smpl_female: Mapping[str, np.ndarray] | None = None
    extra_joints_idxs: np.ndarray | None = None
    joint_map: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, arr, size in (("mean_pose", self.mean_pose, 144),
                                ("mean_shape", self.mean_shape, 10),
                                ("mean_cam", self.mean_cam, 3)):
            if np.asarray(arr).size != size:
                raise ValueError(f"{name} must have {size} values, got shape "
                                 f"{np.asarray(arr).shape} (smpl_mean_params.npz)")
        n_vertices = np.asarray(self.smpl_neutral["v_template"]).shape[0]
        markers = np.asarray(self.markers)
        if markers.ndim != 1 or markers.min() < 0 or markers.max() >= n_vertices:
            raise ValueError(f"markers must be vertex ids in [0, {n_vertices}), "
                             f"got shape {markers.shape} (smpl_ssm.npy)")

    @classmethod
    def synthetic(cls, seed: int = 0) -> "RefitAssets":
        """Stand-in assets built from :mod:`refit_ros.body.synthetic` (tests, benchmarks).

        Same shapes as the official files (6890-vertex SMPL, 67 markers, 9 extra joints);
        the values mean nothing.
        """
        from refit_ros.body.synthetic import synthetic_smpl_arrays

        rng = np.random.default_rng(seed)
        extra = rng.random((9, 6890))
        return cls(smpl_neutral=synthetic_smpl_arrays("neutral"),
                   smpl_male=synthetic_smpl_arrays("male"),
                   smpl_female=synthetic_smpl_arrays("female"),
                   j_regressor_extra=extra / extra.sum(1, keepdims=True),
                   markers=np.sort(rng.choice(6890, 67, replace=False)),
                   mean_pose=np.tile([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], 24),
                   mean_shape=np.zeros(10), mean_cam=np.array([0.9, 0.0, 0.0]))
