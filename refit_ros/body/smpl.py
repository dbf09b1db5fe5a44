"""Official SMPL (users bring their own files) as a :class:`BodyModel`, without chumpy.

SMPL is licensed: refit_ros never ships, downloads or commits it. Users register at
https://smpl.is.tue.mpg.de, accept the SMPL licence, download the model and point the
config key ``body.smpl_dir`` at the folder holding ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl``
(smplx's file names; the original download names are accepted too).
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES, LandmarkMap
from refit_ros.body.skinned import SkinnedBody, SkinningArrays
from refit_ros.body.smpl_pickle import read_smpl_pickle

log = logging.getLogger(__name__)

GENDERS = ("neutral", "male", "female")
SMPL_URL = "https://smpl.is.tue.mpg.de"
CONFIG_KEY = "body.smpl_dir"

#: Other names under which the same files are distributed (SMPL 1.0 / SMPLify downloads).
_ALIASES = {
    "neutral": ("basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
                "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"),
    "male": ("basicmodel_m_lbs_10_207_0_v1.0.0.pkl", "basicmodel_m_lbs_10_207_0_v1.1.0.pkl"),
    "female": ("basicModel_f_lbs_10_207_0_v1.0.0.pkl", "basicmodel_f_lbs_10_207_0_v1.1.0.pkl"),
}

#: ReFit's 67 feedback markers on SMPL (its ``smpl_ssm.npy``: SSM mocap-marker vertices).
SMPL_MARKER_IDS: tuple[int, ...] = (
    0, 183, 239, 601, 630, 706, 857, 874, 1053, 1058, 1112, 1306, 1368, 1396, 1454, 1504,
    1666, 1725, 1741, 1863, 2108, 2112, 2174, 2224, 3015, 3076, 3078, 3116, 3123, 3233, 3284,
    3327, 3336, 3346, 3387, 3503, 3512, 3695, 3749, 4118, 4222, 4343, 4360, 4538, 4544, 4598,
    4722, 4841, 4871, 4927, 5135, 5194, 5210, 5299, 5414, 5568, 5635, 5686, 6306, 6540, 6543,
    6633, 6683, 6728, 6736, 6747, 6786,
)


class SmplFileError(FileNotFoundError):
    """An SMPL model file is missing or unreadable; the message says how to fix it."""


def smpl_file_name(gender: str) -> str:
    """``SMPL_NEUTRAL.pkl`` / ``SMPL_MALE.pkl`` / ``SMPL_FEMALE.pkl``."""
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    return f"SMPL_{gender.upper()}.pkl"


def _help(folder: str | Path) -> str:
    names = ", ".join(smpl_file_name(g) for g in GENDERS)
    return (f"Expected {names} in folder '{folder}'. SMPL is licensed and not shipped with "
            f"refit_ros: register at {SMPL_URL}, accept the SMPL model licence, download "
            "SMPL for Python, rename the .pkl files to these names and set "
            f"{CONFIG_KEY} (config/refit.yaml, or --set {CONFIG_KEY}=/path/to/folder). "
            "Or use the shipped open body (body.model: open).")


def find_smpl_file(folder: str | Path, gender: str = "neutral") -> Path:
    """Locate the SMPL file of ``gender`` in ``folder``.

    Raises
    ------
    SmplFileError
        No such file; the message names the expected files, the folder searched, where
        SMPL comes from and the config key to set.
    """
    name = smpl_file_name(gender)
    if not str(folder):
        raise SmplFileError(f"{CONFIG_KEY} is not set, so {name} cannot be found. "
                            + _help("<unset>"))
    root = Path(folder).expanduser()
    for cand in (name, *_ALIASES[gender]):
        if (root / cand).is_file():
            return root / cand
    raise SmplFileError(f"SMPL model file {name} not found. " + _help(root))


def read_smpl_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read an official (chumpy) or plain-numpy SMPL pickle into plain arrays.

    Nothing but numpy / scipy.sparse / chumpy data is unpickled (see
    :mod:`refit_ros.body.smpl_pickle`), so a hostile file cannot run code.

    Parameters
    ----------
    path : str or Path
        ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl``.

    Returns
    -------
    dict of str to np.ndarray
        smplx's key names: ``v_template`` (6890, 3), ``f`` (13776, 3), ``shapedirs``
        (6890, 3, K), ``posedirs`` (6890, 3, 207), ``J_regressor`` (24, 6890) dense,
        ``weights`` (6890, 24), ``kintree_table`` (2, 24), plus any other array entries.

    Raises
    ------
    SmplFileError
        Missing, unreadable or incomplete file (message explains the fix).
    """
    path = Path(path)
    if not path.is_file():
        raise SmplFileError(f"SMPL model file '{path}' not found. " + _help(path.parent))
    try:
        data = read_smpl_pickle(path)
    except (pickle.UnpicklingError, OSError, ValueError, EOFError) as exc:
        raise SmplFileError(f"SMPL model file '{path}' is corrupt or not an SMPL pickle "
                            f"({exc}). " + _help(path.parent)) from exc
    missing = [k for k in ("v_template", "f", "shapedirs", "posedirs", "J_regressor",
                           "weights", "kintree_table") if k not in data]
    if missing:
        raise SmplFileError(f"SMPL model file '{path}' lacks {missing}. " + _help(path.parent))
    return data


def smpl_arrays(data: dict[str, np.ndarray], num_betas: int = 10) -> SkinningArrays:
    """Convert :func:`read_smpl_file`'s dict to :class:`SkinningArrays` (first K betas)."""
    parents = np.asarray(data["kintree_table"][0]).astype(np.int64)
    parents[0] = -1  # stored as uint32 max in the official files
    return SkinningArrays(
        v_template=data["v_template"], shapedirs=data["shapedirs"][:, :, :num_betas],
        posedirs=data["posedirs"], J_regressor=data["J_regressor"], weights=data["weights"],
        parents=parents, faces=data["f"])


def smpl_landmark_map() -> LandmarkMap:
    """BlazePose landmarks on SMPL: limb joints, plus smplx's named face/hand/foot vertices.

    Eye corners and mouth corners have no published SMPL vertex and stay undefined; the
    hand points use smplx's fingertip vertices (BlazePose puts them nearer the knuckles).
    """
    vid = SMPLX_VERTEX_IDS["smplh"]
    vertices = {
        "nose": vid["nose"], "left_eye": vid["leye"], "right_eye": vid["reye"],
        "left_ear": vid["lear"], "right_ear": vid["rear"],
        "left_pinky": vid["lpinky"], "right_pinky": vid["rpinky"],
        "left_index": vid["lindex"], "right_index": vid["rindex"],
        "left_thumb": vid["lthumb"], "right_thumb": vid["rthumb"],
        "left_heel": vid["LHeel"], "right_heel": vid["RHeel"],
        "left_foot_index": vid["LBigToe"], "right_foot_index": vid["RBigToe"],
    }
    joints = {"left_shoulder": 16, "right_shoulder": 17, "left_elbow": 18, "right_elbow": 19,
              "left_wrist": 20, "right_wrist": 21, "left_hip": 1, "right_hip": 2,
              "left_knee": 4, "right_knee": 5, "left_ankle": 7, "right_ankle": 8}
    return LandmarkMap(
        names=BLAZEPOSE_LANDMARK_NAMES,
        vertex_ids=tuple(int(vertices.get(n, -1)) for n in BLAZEPOSE_LANDMARK_NAMES),
        joint_ids=tuple(int(joints.get(n, -1)) for n in BLAZEPOSE_LANDMARK_NAMES))


class SmplBody(SkinnedBody):
    """Official SMPL from the user's files, posed with smplx's kinematics.

    Parameters
    ----------
    smpl_dir : str or Path
        Folder holding ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` (config ``body.smpl_dir``).
    gender : str
        ``"neutral"``, ``"male"`` or ``"female"``.
    num_betas : int
        Shape coefficients to use (10 for SMPL 1.0 files; up to 300 for 1.1).
    """

    def __init__(self, smpl_dir: str | Path, gender: str = "neutral", num_betas: int = 10):
        path = find_smpl_file(smpl_dir, gender)
        data = read_smpl_file(path)
        available = data["shapedirs"].shape[-1]
        if num_betas > available:
            raise ValueError(f"{path} has {available} shape components, {num_betas} requested")
        super().__init__(smpl_arrays(data, num_betas), name="smpl",
                         marker_ids=SMPL_MARKER_IDS, landmark_map=smpl_landmark_map())
        self.gender = gender
        self.path = path
        log.info("loaded SMPL %s from %s (%d betas)", gender, path, num_betas)
