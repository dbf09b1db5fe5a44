"""Save and load ReFit-KP weights with the architecture and provenance beside them.

A weights file is a ``torch.save`` dict (read back with ``weights_only=True``)::

    {"format": "refit_kp/1", "config": {...RefitKpConfig...}, "body": "<body name>",
     "marker_names": [...], "state_dict": {...}, "meta": {...training provenance...}}

Floating-point tensors may be stored as float16 to keep the committed file small; they
are restored to float32 on load (the evaluation numbers shipped with the weights are
measured on the stored file).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from refit_ros.body.base import BodyModel
from refit_ros.models.refit_kp.config import RefitKpConfig
from refit_ros.models.refit_kp.model import RefitKp

log = logging.getLogger(__name__)

FORMAT = "refit_kp/1"
#: The weights shipped with refit_ros (trained here on the open body).
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "refit_kp_open_body_v1.pt"


def save_refit_kp(model: RefitKp, path: str | Path, meta: dict[str, Any] | None = None,
                  half: bool = False) -> Path:
    """Write ``model``'s weights, config and ``meta`` (provenance) to ``path``."""
    sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
          for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "config": model.config.to_dict(), "body": model.body.name,
            "marker_names": list(model.marker_names), "state_dict": sd, "meta": meta or {}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def read_refit_kp(path: str | Path) -> dict[str, Any]:
    """Read a weights file (no code execution: ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ReFit-KP weights '{path}' not found; set model.weights to a "
                                "file written by `refit-ros train`, or leave it empty for the "
                                "shipped weights")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"'{path}' is not a ReFit-KP weights file (format {FORMAT!r})")
    return blob


def load_refit_kp(body: BodyModel, path: str | Path | None = None) -> RefitKp:
    """Build ReFit-KP for ``body`` from a weights file (default: the shipped weights).

    Raises
    ------
    ValueError
        The weights were trained for another body model or another marker set.
    """
    path = DEFAULT_WEIGHTS if path in (None, "") else Path(path)
    blob = read_refit_kp(path)
    if blob["body"] != body.name:
        raise ValueError(f"ReFit-KP weights '{path}' were trained for body model "
                         f"{blob['body']!r}, not {body.name!r}; use body.model=open or "
                         "train weights for this body with `refit-ros train`")
    model = RefitKp(body, RefitKpConfig.from_dict(blob["config"]))
    if list(model.marker_names) != list(blob["marker_names"]):
        raise ValueError(f"ReFit-KP weights '{path}' use markers {blob['marker_names']}, the "
                         f"body defines {list(model.marker_names)}")
    sd = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    model.load_state_dict(sd, strict=True)
    model.meta = blob.get("meta", {})
    log.info("loaded ReFit-KP weights %s (%d parameters)", path, model.num_parameters())
    return model.eval()
