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
    """The body model the config names (``body.model``, ``.smpl_dir``, ``.gender``): the one
    body factory (:func:`refit_ros.pipeline.build_body` passes it the config's section).

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
        from refit_ros.paths import ModelFileError

        if not str(smpl_dir):
            raise ModelFileError(
                "body.model=smpl needs your SMPL files: download SMPL (https://smpl.is.tue.mpg.de, "
                "licence required), put SMPL_NEUTRAL.pkl (and SMPL_MALE.pkl, SMPL_FEMALE.pkl) in "
                "a folder and set body.smpl_dir to it (e.g. --set body.smpl_dir=/path/to/smpl)")
        return SmplBody(smpl_dir, gender)
    if model == "open":
        from refit_ros.body.open_body import OpenBody
        return OpenBody()
    raise ValueError(f"body.model must be 'open' or 'smpl', got {model!r}")
