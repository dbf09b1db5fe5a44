"""Load official ReFit checkpoints (``checkpoint_best.pth.tar``) safely and strictly.

* The file is read with ``torch.load(..., weights_only=True, map_location="cpu")``: only
  tensors, plain containers and an explicit allow-list of NumPy globals are unpickled, so a
  checkpoint cannot run code on this machine. The allow-list (:func:`numpy_safe_globals`)
  holds what the official trainer's file needs beyond tensors: its ``performance`` /
  ``best_performance`` are NumPy float64 scalars, pickled by numpy 1.23 as
  ``numpy.core.multiarray.scalar(numpy.dtype('f8'), bytes)``. The scalar constructor is
  allowed under both its numpy 1.x and numpy 2 names, ``numpy.dtype`` and the numeric dtype
  classes (so an object-dtype value is still refused); nothing else is. Storages saved on
  ``cuda:0`` are mapped to the CPU.
* Accepted layouts: the official trainer's file (``epoch``, ``batch``, ``global_step``,
  ``model`` = the state dict, ``optimizer``, ``lr_scheduler``, ``dataperm``,
  ``performance``, ``best_performance``), or a bare state dict. A ``module.`` prefix (saved from ``DataParallel``) is removed.
* Loading is strict by name and shape for every network entry; missing and unexpected
  keys are listed by name. A checkpoint for the other backbone (W32 vs W48) is recognised
  and refused with the config key to change. NaN/inf weights are refused.
* SMPL buffers (``smpl.*``, ``smpl_male.*``, ``smpl_female.*``, 27 entries) may be present
  (the official trainer saves them) or absent (stripped checkpoints). **By default the
  locally built SMPL is kept** and the checkpoint's copies are ignored: the network's SMPL
  must be the same body the rest of refit_ros builds from the user's SMPL files, and the
  official SMPL arrays are identical anyway. If they differ, a warning names the entries.
  ``smpl_from_checkpoint=True`` reproduces the official ``strict=False`` behaviour, where
  the checkpoint's SMPL overwrites the local one (only when all its SMPL entries are present).
* ``init_pose``/``init_shape``/``init_cam`` are network buffers and come from the
  checkpoint, as in the official code.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from refit_ros.models.refit.hrnet import HRNET_WIDTHS

log = logging.getLogger(__name__)

SMPL_PREFIXES = ("smpl.", "smpl_male.", "smpl_female.")
#: An entry whose first dimension is the backbone width (48 for W48, 32 for W32).
_WIDTH_PROBE = "backbone.stage2.0.branches.0.0.conv1.weight"


class CheckpointError(ValueError):
    """A checkpoint cannot be used with this model; the message says why and what to do."""


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did.

    Attributes
    ----------
    source : str
        File name (or ``"<state_dict>"``).
    loaded : int
        Network entries taken from the checkpoint.
    smpl : str
        ``"absent"`` (checkpoint had no SMPL), ``"local"`` (present, ignored) or
        ``"checkpoint"`` (present and used).
    smpl_differs : list[str]
        SMPL entries whose checkpoint values differ from the local ones.
    extra_top_level : list[str]
        Other keys of the checkpoint file (``optimizer``, ``epoch``...), ignored.
    """

    source: str
    loaded: int
    smpl: str
    smpl_differs: list[str] = field(default_factory=list)
    extra_top_level: list[str] = field(default_factory=list)


#: NumPy scalar types whose dtype may appear in a checkpoint (numeric only: an object dtype
#: could wrap anything and stays refused).
_NUMPY_SCALAR_TYPES = ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                       "uint64", "float16", "float32", "float64")


def numpy_safe_globals() -> list:
    """The allow-list given to ``torch.serialization.safe_globals`` when reading a checkpoint.

    ``(object, "module.name")`` entries name a global as the pickle spells it: numpy 1.x
    writes ``numpy.core.multiarray.scalar``, numpy 2 ``numpy._core.multiarray.scalar``;
    both resolve to the installed numpy's constructor. Dtype instances are rebuilt with
    ``numpy.dtype(...)`` then ``__setstate__``, which the unpickler only allows on the
    listed dtype classes (numpy 2: ``numpy.dtypes.Float64DType``...).
    """
    import numpy as np

    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    scalar = multiarray.scalar
    allowed: list = [(scalar, "numpy.core.multiarray.scalar"),
                     (scalar, "numpy._core.multiarray.scalar"), (np.dtype, "numpy.dtype")]
    for name in _NUMPY_SCALAR_TYPES:
        cls = type(np.dtype(getattr(np, name)))
        if cls is not np.dtype:
            allowed.append(cls)
    return allowed


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], list[str]]:
    """Read a checkpoint file without executing code from it.

    Returns
    -------
    state_dict : dict[str, Tensor]
    other_keys : list[str]
        Top-level keys besides ``model`` (ignored).

    Raises
    ------
    CheckpointError
        Missing file, code in the pickle, or an unrecognised layout.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; set model.weights to the official "
                              "checkpoint_best.pth.tar (downloaded from the ReFit authors)")
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln.removeprefix("WeightsUnpickler error: ").split(" Please use")[0]
                       for ln in lines if "WeightsUnpickler error" in ln or
                       ln.startswith(("Unsupported", "Trying", "Can only"))),
                      lines[0] if lines else type(exc).__name__)
        raise CheckpointError(
            f"refusing to load {path}: it needs more than tensors, containers and NumPy "
            f"numbers to unpickle (it could run code), so it is not a plain checkpoint. "
            f"Re-save it as a state dict from a trusted environment. Detail: {detail}") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path} ({exc}); is the file complete "
                              "(re-download it)?") from exc
    return state_dict_of(obj, str(path))


def state_dict_of(obj: Any, source: str = "<object>") -> tuple[dict[str, Tensor], list[str]]:
    """The state dict inside a loaded checkpoint object (``{'model': sd}`` or ``sd``)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict, got {type(obj).__name__}")
    other: list[str] = []
    if "model" in obj and isinstance(obj["model"], Mapping):
        other = sorted(str(k) for k in obj if k != "model")
        obj = obj["model"]
    bad = [str(k) for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{source}: not a state dict ({len(bad)} non-tensor entries, e.g. "
                              f"{bad[:3]}); expected {{'model': state_dict}} or a state dict")
    sd = {str(k): v for k, v in obj.items()}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd, other


def _width_name(width: int) -> str:
    names = {w: n for n, w in HRNET_WIDTHS.items()}
    return names.get(width, f"HRNet width {width}")


def _alias_groups(model: nn.Module) -> dict[str, str]:
    """Map each state_dict name to the first name sharing its tensor (aliases)."""
    first: dict[tuple[int, tuple], str] = {}
    out = {}
    for name, t in model.state_dict(keep_vars=True).items():
        key = (t.data_ptr(), tuple(t.shape))
        out[name] = first.setdefault(key, name) if t.numel() else name
    return out


def _list(names: list[str], n: int = 12) -> str:
    more = f" ... (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


@torch.no_grad()
def load_checkpoint(model: nn.Module, checkpoint: str | Path | Mapping[str, Any],
                    smpl_from_checkpoint: bool = False) -> LoadReport:
    """Load an official ReFit checkpoint into ``model`` (strict; see the module docstring).

    Parameters
    ----------
    model : nn.Module
        A :class:`~refit_ros.models.refit.refit.Refit`.
    checkpoint : path or mapping
        A file, an already loaded ``{'model': ...}`` dict or a state dict.
    smpl_from_checkpoint : bool
        Use the checkpoint's SMPL buffers instead of the local ones.

    Returns
    -------
    LoadReport

    Raises
    ------
    CheckpointError
        With the missing/unexpected keys, shape mismatches, wrong backbone or NaN entries.
    """
    if isinstance(checkpoint, (str, Path)):
        source = str(checkpoint)
        sd, other = read_checkpoint(checkpoint)
    else:
        source = "<state_dict>"
        sd, other = state_dict_of(checkpoint, source)

    own = model.state_dict()
    if _WIDTH_PROBE in sd and _WIDTH_PROBE in own and sd[_WIDTH_PROBE].shape != own[_WIDTH_PROBE].shape:
        have, want = sd[_WIDTH_PROBE].shape[0], own[_WIDTH_PROBE].shape[0]
        raise CheckpointError(
            f"{source} is a {_width_name(have)} checkpoint but the model was built as "
            f"{_width_name(want)}; set model.backbone: {_width_name(have)} in the config")

    alias = _alias_groups(model)
    is_smpl = lambda n: n.startswith(SMPL_PREFIXES)  # noqa: E731
    net_names = [n for n in own if not is_smpl(n)]
    present_groups = {alias[n] for n in sd if n in alias}
    missing = [n for n in net_names if n not in sd and alias[n] not in present_groups]
    unexpected = sorted(n for n in sd if n not in own)
    wrong_shape = [f"{n} {tuple(sd[n].shape)} vs {tuple(own[n].shape)}"
                   for n in sd if n in own and sd[n].shape != own[n].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys: {_list(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys: {_list(unexpected)}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatches: {_list(wrong_shape, 6)}")
    if problems:
        raise CheckpointError(f"{source} does not match the official ReFit layout ("
                              + "; ".join(problems) + "). Is it a ReFit checkpoint "
                              "(configs/config_all.yaml) for this backbone?")

    bad = [n for n, t in sd.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"{source} has NaN/inf in {len(bad)} tensors ({_list(bad)}); the "
                              "file is corrupt or from a diverged training run; re-download it")

    smpl_keys = [n for n in sd if is_smpl(n)]
    smpl_all = [n for n in own if is_smpl(n)]
    differs = [n for n in smpl_keys if sd[n].shape != own[n].shape
               or not torch.allclose(sd[n].to(own[n].dtype), own[n], atol=1e-6, rtol=0)]
    use_smpl = smpl_from_checkpoint and set(smpl_keys) == set(smpl_all)
    if smpl_from_checkpoint and not use_smpl and smpl_keys:
        log.warning("%s holds only %d of %d SMPL entries; keeping the local SMPL",
                    source, len(smpl_keys), len(smpl_all))
    if differs and not use_smpl:
        # Only the neutral model is used by the network; gendered copies may legitimately
        # differ (the local model fills them with the neutral arrays when absent).
        used = [n for n in differs if n.startswith("smpl.")]
        (log.warning if used else log.info)(
            "%s: its SMPL buffers differ from the local SMPL in %s; keeping the local ones "
            "(smpl_from_checkpoint=True uses the checkpoint's)", source, _list(differs, 4))

    merged = dict(own)
    loaded = 0
    groups: dict[str, list[str]] = {}
    for n in own:
        groups.setdefault(alias[n], []).append(n)
    for rep, names in groups.items():
        given = [n for n in names if n in sd]
        if not given or (is_smpl(rep) and not use_smpl):
            continue
        value = sd[given[0]]
        # Aliases (one module under two names) must agree; all names get the value.
        if any(not torch.equal(sd[n], value) for n in given[1:]):
            raise CheckpointError(f"{source}: {_list(given)} are one module but hold different "
                                  "values; the checkpoint is inconsistent")
        for n in names:
            merged[n] = value
        loaded += 0 if is_smpl(rep) else len(names)
    model.load_state_dict(merged, strict=True)
    smpl_state = "absent" if not smpl_keys else ("checkpoint" if use_smpl else "local")
    log.info("loaded %s: %d network entries, SMPL %s", source, loaded, smpl_state)
    return LoadReport(source, loaded, smpl_state, differs, other)
