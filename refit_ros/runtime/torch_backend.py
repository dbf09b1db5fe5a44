"""The torch runtime: the stage graphs run as PyTorch modules, on CPU or CUDA.

On CUDA a ReFit step is a few hundred small kernels (26 GRU streams, the lookup, SMPL), so
launch overhead dominates at 1-8 people. With ``cuda_graphs`` each stage is captured
once per batch size into a ``torch.cuda.CUDAGraph`` and replayed: inputs are copied into
the graph's static buffers (skipped for features already bound, which is what happens on
every step of a frame after the first), the graph is replayed and its outputs are cloned.
Capture needs graph-friendly code (no host syncs, no data-dependent branches): that is
why the stages wrap :meth:`ModelFamily.graph_copy` and why camera values are checked on
the host (:class:`refit_ros.pipeline.models.FittingModel`). If capture fails anyway,
the stage runs eagerly and a warning says so.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from refit_ros.export.families import ModelFamily, family_of
from refit_ros.export.graphs import build_stage_graphs, stage_io_names
from refit_ros.runtime.base import Backend, ModelSource

log = logging.getLogger(__name__)

#: Stages captured as CUDA graphs (the encoder is one large network: little to gain).
CAPTURED_STAGES = ("init", "step", "body")


def _version(t: Tensor) -> int:
    """In-place modification counter (inference tensors, e.g. features encoded under
    ``torch.inference_mode``, have none: identity alone decides for them)."""
    return -1 if t.is_inference() else t._version


class _CapturedStage:
    """One stage captured per batch size; replays with static input/output buffers."""

    def __init__(self, module: nn.Module, input_names: tuple[str, ...], device: torch.device,
                 warmup: int = 2):
        self.module = module
        self.input_names = input_names
        self.device = device
        self.warmup = warmup
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, dict[str, Tensor], tuple[Tensor, ...]]] = {}
        # Last source tensor copied into each static input (held, so its memory cannot be
        # reused by another tensor while we compare identities), and its version counter.
        self._bound: dict[int, dict[str, tuple[Tensor, int]]] = {}
        self.pool = None

    def _capture(self, feeds: Mapping[str, Tensor]) -> None:
        batch = int(feeds[self.input_names[0]].shape[0])
        static = {n: feeds[n].detach().clone() for n in self.input_names}
        args = [static[n] for n in self.input_names]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(self.warmup):  # allocator and cuBLAS/cuDNN warm-up off-graph
                self.module(*args)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph, pool=self.pool):
            outputs = self.module(*args)
        self.pool = graph.pool()
        self.graphs[batch] = (graph, static, tuple(outputs))
        self._bound[batch] = {n: (feeds[n], _version(feeds[n])) for n in self.input_names}

    def __call__(self, feeds: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        batch = int(feeds[self.input_names[0]].shape[0])
        if batch not in self.graphs:
            self._capture(feeds)
        graph, static, outputs = self.graphs[batch]
        bound = self._bound[batch]
        for n in self.input_names:
            src = feeds[n]
            prev = bound.get(n)
            if prev is None or prev[0] is not src or prev[1] != _version(src):
                static[n].copy_(src)
                bound[n] = (src, _version(src))
        graph.replay()
        return tuple(o.clone() for o in outputs)


class TorchRunner(Backend):
    """Runs the stage graphs of ``net`` with PyTorch (``runtime.backend=torch``).

    The pipeline's torch path on every device: eager stage graphs on the CPU, captured
    CUDA graphs on CUDA (the path ``refit-ros bench network`` and scripts/gpu_check.sh time).

    Parameters
    ----------
    net : nn.Module
        ``Refit`` or ``RefitKp`` with weights loaded.
    family : ModelFamily
    device : str or torch.device
    cuda_graphs : bool
        On CUDA, capture ``init``/``step``/``body`` per batch size (see module doc).
    """

    name = "torch"

    def __init__(self, net: nn.Module, family: ModelFamily, device: str | torch.device = "cpu",
                 cuda_graphs: bool = True):
        self.device = torch.device(device)
        self.feature_names = tuple(family.feature_names(net))
        self.architecture = dict(family.describe(net))
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("model.device is cuda but torch sees no CUDA device "
                               "(torch.cuda.is_available() is False); set model.device=cpu")
        self.graphs = build_stage_graphs(net.to(self.device), family)
        self.io = stage_io_names(net, family)
        self.cuda_graphs = bool(cuda_graphs and self.device.type == "cuda")
        self._captured: dict[str, _CapturedStage] = {}
        if self.cuda_graphs:
            for stage in CAPTURED_STAGES:
                self._captured[stage] = _CapturedStage(self.graphs[stage], self.io[stage][0],
                                                       self.device)

    @classmethod
    def load(cls, source: ModelSource, device: str | torch.device | None = None,
             cuda_graphs: bool = True) -> TorchRunner:
        net = source.require_network(cls.name)
        return cls(net, family_of(net), device if device is not None else "cpu",
                   cuda_graphs=cuda_graphs)

    def run(self, stage: str, feeds: Mapping[str, Tensor]) -> dict[str, Tensor]:
        names, outputs = self.io[stage]
        missing = [n for n in names if n not in feeds]
        if missing:
            raise ValueError(f"stage {stage} needs {missing}")
        cap = self._captured.get(stage)
        if cap is not None:
            try:
                result = cap(feeds)
                return dict(zip(outputs, result))
            except RuntimeError as exc:  # capture is picky; eager always works
                log.warning("CUDA graph capture of the %s stage failed (%s); running it eagerly",
                            stage, str(exc).splitlines()[0])
                del self._captured[stage]
        with torch.inference_mode():
            result = self.graphs[stage](*[feeds[n] for n in names])
        return dict(zip(outputs, result))

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"device": str(self.device), "torch": torch.__version__,
                             "cuda_graphs": sorted(self._captured) if self.cuda_graphs else []}
        if self.device.type == "cuda":
            d["gpu"] = torch.cuda.get_device_name(self.device)
        else:
            d["threads"] = torch.get_num_threads()
        return d
