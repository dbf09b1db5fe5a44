"""Write a checkpoint byte-for-byte in the layout of the official ReFit trainer.

The official trainer (yufu-wang/ReFit ``lib/core/base_trainer.py`` ``save_checkpoint``, run
by ``train.py`` with torch 2.0, numpy 1.23, on CUDA) saves::

    {'epoch': int, 'batch': int, 'global_step': int,
     'model': model.state_dict(),            # OrderedDict with _metadata, cuda:0 storages
     'optimizer': optimizer.state_dict(),     # AdamW over the trainable parameters
     'lr_scheduler': lr_scheduler.state_dict(),
     'dataperm': train_loader.sampler.dataset_perm,   # a list of ints (CheckpointSampler)
     'performance': numpy.float64,            # validation MPJPE, a NumPy scalar
     'best_performance': numpy.float64}

What this module reproduces of those bytes, with the torch/numpy installed here:

* pickle protocol 2 (torch's default) in the zip format, ``data.pkl`` + ``data/N`` records;
* the storages' location tag ``cuda:0`` (``torch.save`` on CUDA tensors), written from CPU
  tensors by substituting the tag (no GPU needed);
* NumPy scalars under the numpy 1.x global names: ``numpy.core.multiarray scalar`` and
  ``numpy dtype`` (numpy 2 would write ``numpy._core.multiarray``), via a pickler that
  writes the 1.x module name for globals of ``numpy._core.multiarray``. The bytes are those
  numpy 1.23 writes (``pickletools`` on ``data.pkl`` shows ``GLOBAL 'numpy.core.multiarray scalar'``).
"""

from __future__ import annotations

import io
import pickle
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping
from unittest import mock

import numpy as np
import torch

_NUMPY2_CORE = "numpy._core."


class _Numpy1Pickler(pickle._Pickler):  # the Python pickler: save_global can be overridden
    """Writes globals of ``numpy._core.*`` under their numpy 1.x name ``numpy.core.*``."""

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None) or ""
        if module.startswith(_NUMPY2_CORE) and self.proto < 4:
            qual = name or obj.__qualname__
            old = "numpy.core." + module[len(_NUMPY2_CORE):]
            self.write(pickle.GLOBAL + old.encode() + b"\n" + qual.encode() + b"\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


_numpy1_pickle = types.SimpleNamespace(Pickler=_Numpy1Pickler, __name__="pickle")


def official_checkpoint_dict(state_dict: Mapping[str, torch.Tensor], *, epoch: int = 3,
                             batch: int = 1249, global_step: int = 90000,
                             n_samples: int = 64) -> dict[str, Any]:
    """The dict ``save_checkpoint`` builds, around ``state_dict`` (the model's, in order).

    The optimizer is AdamW over the trainable (non-buffer, non-SMPL) parameters, with its
    state (``step``, ``exp_avg``, ``exp_avg_sq``) for the regression head only, to keep the
    file small (the backbone entries are the same structure, just more of them).
    """
    sd = state_dict if isinstance(state_dict, OrderedDict) else OrderedDict(state_dict)
    # The parameters share the state dict's memory (no copy of a 300 MB model).
    params = [torch.nn.Parameter(v.detach()) for k, v in sd.items()
              if v.is_floating_point() and not k.startswith(("smpl", "init_"))
              and not k.endswith(("running_mean", "running_var"))]
    opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 1000))
    for p in params[-12:]:  # the head: a few real Adam states
        opt.state[p] = {"step": torch.tensor(float(global_step)),
                        "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
    for _ in range(3):
        opt.step()  # no gradients: a no-op that lets the scheduler step in order
        sched.step()
    return {
        "epoch": epoch,
        "batch": batch,
        "global_step": global_step,
        "model": sd,
        "optimizer": opt.state_dict(),
        "lr_scheduler": sched.state_dict(),
        "dataperm": torch.randperm(n_samples, generator=torch.Generator().manual_seed(0)).tolist(),
        "performance": np.float64(71.83469),
        "best_performance": np.float64(70.2210693359375),
    }


def save_official_checkpoint(path: str | Path, obj: Mapping[str, Any],
                             location: str = "cuda:0") -> Path:
    """``torch.save`` as torch 2.0 + numpy 1.23 on ``location`` would have written ``obj``."""
    path = Path(path)
    with mock.patch.object(torch.serialization, "location_tag", lambda storage: location):
        torch.save(dict(obj), path, pickle_module=_numpy1_pickle, pickle_protocol=2)
    return path


def pickle_globals(path: str | Path) -> set[str]:
    """``module name`` of every GLOBAL opcode in the checkpoint's ``data.pkl``."""
    import pickletools

    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        data = zf.read(name)
    return {str(arg) for op, arg, _ in pickletools.genops(io.BytesIO(data))
            if op.name == "GLOBAL"}


def storage_locations(path: str | Path) -> set[str]:
    """The location tags of the storages (persistent ids) in ``data.pkl``."""
    seen: set[str] = set()

    class _Any:
        def __init__(self, *args, **kwargs):
            pass

        def __setstate__(self, state):
            pass

    class _Peek(pickle.Unpickler):
        def persistent_load(self, pid):
            seen.add(pid[3])
            return _Any()

        def find_class(self, module, name):
            return super().find_class(module, name) if module == "collections" else _Any

    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        _Peek(io.BytesIO(zf.read(name))).load()
    return seen
