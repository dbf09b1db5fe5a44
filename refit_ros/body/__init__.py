"""Body models: one interface (:class:`BodyModel`), official SMPL and the shipped open body."""

from __future__ import annotations

from pathlib import Path

from refit_ros.body.base import (BLAZEPOSE_LANDMARK_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS,
                                 BodyModel, BodyOutput, LandmarkMap)

__all__ = [
    "BLAZEPOSE_LANDMARK_NAMES", "SMPL_JOINT_NAMES", "SMPL_PARENTS", "BodyModel", "BodyOutput",
    "LandmarkMap", "create_body_model",
]


def create_body_model(model: str, smpl_dir: str | Path = "",
                      gender: str = "neutral") -> BodyModel:
    """Build the body model the config names (``body.model``, ``.smpl_dir``, ``.gender``).

    Parameters
    ----------
    model : str
        ``"open"`` (the shipped open body; gender-neutral) or ``"smpl"`` (user's files).
    smpl_dir : str or Path
        Folder of ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` (only for ``"smpl"``).
    gender : str
        ``"neutral"``, ``"male"`` or ``"female"`` (only for ``"smpl"``).

    Returns
    -------
    BodyModel
    """
    if model == "smpl":
        from refit_ros.body.smpl import SmplBody
        return SmplBody(smpl_dir, gender)
    if model == "open":
        from refit_ros.body.open_body import OpenBody
        return OpenBody()
    raise ValueError(f"body.model must be 'open' or 'smpl', got {model!r}")
