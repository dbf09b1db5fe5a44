"""The ONNX Runtime runtime: one ``InferenceSession`` per exported stage graph.

CPU by default (``CPUExecutionProvider``); ``device='cuda'`` asks for
``CUDAExecutionProvider`` (onnxruntime-gpu) and refuses to fall back silently. Tensors
cross as host arrays (``torch`` CPU tensors share memory with them); on CUDA that means a
host round trip per stage call, which the TensorRT and torch backends avoid.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from refit_ros.export.onnx import ExportError, ExportManifest
from refit_ros.runtime.base import Backend, BackendError, ModelSource

log = logging.getLogger(__name__)


def providers_for(device: str) -> list[str]:
    """Execution providers for ``device`` (``cpu`` or ``cuda[:N]``).

    Raises
    ------
    RuntimeError
        ``cuda`` asked for but this onnxruntime build has no CUDA provider.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError(f"ONNX Runtime on CUDA needs onnxruntime-gpu (this build offers "
                               f"{available}); pip install onnxruntime-gpu, or set model.device=cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OrtRunner(Backend):
    """Runs the four stage graphs of an export folder with ONNX Runtime.

    Parameters
    ----------
    export_dir : path
    manifest : ExportManifest
        From :func:`refit_ros.export.onnx.load_export` (already validated).
    device : str
        ``cpu`` or ``cuda[:N]``; returned tensors live there.
    threads : int
        Intra-op threads (0 = ONNX Runtime's default, all cores).
    """

    name = "onnxruntime"

    def __init__(self, export_dir: str | Path, manifest: ExportManifest, device: str = "cpu",
                 threads: int = 0):
        import onnxruntime as ort

        self.device = torch.device(device)
        self.feature_names = tuple(manifest.feature_names)
        self.architecture = dict(manifest.architecture)
        self.providers = providers_for(device)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
        # The graphs are small and run between torch ops, BlazePose and ROS callbacks: ONNX
        # Runtime's default busy-waiting of idle intra-op threads after each run steals the
        # cores from them (measured on a 2-core CPU: torch's body/postprocess after an ORT
        # step went from 0.8 to 9 ms).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = threads
        self.sessions: dict[str, Any] = {}
        self.io: dict[str, tuple[list[str], list[str]]] = {}
        provider_options = None
        if self.device.type == "cuda":
            provider_options = [{"device_id": self.device.index or 0}, {}]
        for stage, s in manifest.stages.items():
            path = os.fspath(Path(export_dir) / s.file)
            sess = ort.InferenceSession(path, sess_options=opts, providers=self.providers,
                                        provider_options=provider_options)
            ins = [i.name for i in sess.get_inputs()]
            outs = [o.name for o in sess.get_outputs()]
            if ins != s.input_names or outs != s.output_names:
                raise ExportError(f"{path}: graph inputs/outputs {ins} -> {outs} differ from "
                                  f"export.yaml ({s.input_names} -> {s.output_names}); re-export")
            self.sessions[stage] = sess
            self.io[stage] = (ins, outs)
        log.info("ONNX Runtime %s, providers %s, export %s", ort.__version__,
                 self.sessions["encoder"].get_providers(), export_dir)

    @classmethod
    def load(cls, source: ModelSource, device: str | torch.device | None = None,
             threads: int = 0) -> OrtRunner:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise BackendError("runtime.backend=onnxruntime needs the onnxruntime package: "
                               "pip install onnxruntime==1.31.1 (or onnxruntime-gpu for the "
                               "CUDA provider)") from exc
        export_dir, manifest = source.require_export(cls.name)
        return cls(export_dir, manifest, device=str(device or "cpu"), threads=threads)

    @classmethod
    def options_from_config(cls, cfg, **overrides):
        return {"threads": cfg.runtime.threads, **super().options_from_config(cfg, **overrides)}

    def run(self, stage: str, feeds: Mapping[str, Tensor]) -> dict[str, Tensor]:
        ins, outs = self.io[stage]
        missing = [n for n in ins if n not in feeds]
        if missing:
            raise ValueError(f"stage {stage} needs {missing}")
        arrays = {n: np.ascontiguousarray(feeds[n].detach().to("cpu", torch.float32).numpy())
                  for n in ins}
        result = self.sessions[stage].run(outs, arrays)
        return {n: torch.from_numpy(r).to(self.device) for n, r in zip(outs, result)}

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"device": str(self.device), "onnxruntime": ort.__version__,
                "providers": self.sessions["encoder"].get_providers(),
                "threads": self.threads or os.cpu_count()}
