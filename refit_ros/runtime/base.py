"""The backend interface: ``load`` a network's stage graphs, ``run`` them by name.

As ultralytics' ``nn/backends``: one small base class, one file per runtime, a lookup table
from name to class (:data:`refit_ros.runtime.BACKENDS`). Pre- and post-processing are not a
backend's business: they are done once per network family, outside
(:class:`refit_ros.pipeline.models.FittingModel` with
:class:`refit_ros.export.families.ModelFamily`). Adding a runtime = one class here below
:class:`Backend` + one table entry.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

if TYPE_CHECKING:  # only annotations: reading the config must not import torch
    import torch
    from torch import Tensor

    from refit_ros.export.families import ModelFamily
    from refit_ros.export.onnx import ExportManifest


class BackendError(RuntimeError):
    """A backend cannot be built; the message names the setting or package and the fix."""


@dataclass
class ModelSource:
    """What a backend may load a network from; each backend asks for what it needs.

    Attributes
    ----------
    family : ModelFamily
    network : callable, optional
        ``() -> nn.Module``: the torch network with its weights (torch backend).
    export : callable, optional
        ``() -> (export_dir, manifest)``: the exported stage graphs, validated (ONNX
        Runtime, TensorRT); may export on first use (the per-user export cache).
    """

    family: ModelFamily
    network: Callable[[], torch.nn.Module] | None = None
    export: Callable[[], tuple[Path, ExportManifest]] | None = None

    def require_network(self, backend: str) -> torch.nn.Module:
        if self.network is None:
            raise BackendError(f"the {backend} backend runs a torch network; none was given")
        return self.network()

    def require_export(self, backend: str) -> tuple[Path, ExportManifest]:
        if self.export is None:
            raise BackendError(f"the {backend} backend runs an ONNX export; none was given")
        return self.export()


class Backend(abc.ABC):
    """Runs the four stage graphs of one network (``encoder``, ``init``, ``step``, ``body``).

    Attributes
    ----------
    name : str
        ``runtime.backend`` value.
    device : torch.device
        Where the tensors :meth:`run` returns live.
    feature_names : tuple of str
        Encoder outputs the loop reads, in graph order.
    architecture : dict
        The network's architecture facts (``export.yaml``'s ``architecture``; at least
        ``crop_size``).
    """

    name: ClassVar[str]
    device: torch.device
    feature_names: tuple[str, ...]
    architecture: dict[str, Any]

    @classmethod
    @abc.abstractmethod
    def load(cls, source: ModelSource, device: str | torch.device | None = None,
             **options: Any) -> Backend:
        """The backend for the network of ``source`` on ``device`` (``model.device``);
        ``options``: the runtime's own settings (:meth:`options_from_config`)."""

    @classmethod
    def options_from_config(cls, cfg: Any, **overrides: Any) -> dict[str, Any]:
        """This runtime's ``load`` options from the config (``runtime.*``); a non-None
        override replaces its key."""
        return {k: v for k, v in overrides.items() if v is not None}

    @abc.abstractmethod
    def run(self, stage: str, feeds: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Run ``stage`` on the tensors it needs from ``feeds`` (extra entries are ignored)
        and return its outputs by name."""

    def describe(self) -> dict[str, Any]:
        """Facts for logs and benchmark JSON (providers, precision, ...)."""
        return {"device": str(self.device)}


#: ``runtime.backend`` -> backend class (``auto`` is decided by the pipeline). Built-ins are
#: named as ``module:Class`` and imported on first use, so that reading the config (which
#: checks ``runtime.backend`` against these names) imports no runtime.
BACKENDS: dict[str, type[Backend] | str] = {
    "torch": "refit_ros.runtime.torch_backend:TorchRunner",
    "onnxruntime": "refit_ros.runtime.onnxruntime_backend:OrtRunner",
    "tensorrt": "refit_ros.runtime.tensorrt_backend:TensorRTRunner",
}


def backend_class(name: str) -> type[Backend]:
    """The backend class of ``runtime.backend`` ``name``.

    Raises
    ------
    BackendError
        Unknown name (the message lists the known ones).
    """
    if name not in BACKENDS:
        raise BackendError(f"runtime.backend={name!r} is not one of {list(BACKENDS)}")
    entry = BACKENDS[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry
