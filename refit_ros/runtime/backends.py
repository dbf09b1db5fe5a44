"""One fitting interface over three runtimes: torch, ONNX Runtime and TensorRT.

A runtime only has to run the four stage graphs (:mod:`refit_ros.runtime.graphs`) by name
on named tensors (a :class:`StageRunner`); :class:`FittingBackend` turns any runner into
the pipeline's :class:`~refit_ros.pipeline.models.FittingModel` (``encode``,
``init_state``, ``step``, ``rotmat``, ``body``) plus the separate stages a benchmark
times (``preprocess``, ``encode_arrays``, ``pose``). States are
:class:`~refit_ros.models.refit.state.RefitState` whatever the runtime, so the tracker's
warm starts and the pipeline's batching helpers work unchanged.

:func:`build_backend` picks the runtime from ``runtime.backend``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.rotation import rot6d_to_rotmat
from refit_ros.models.refit.state import RefitState
from refit_ros.runtime.families import (CAMERA_NAMES, STATE_NAMES, ModelFamily,
                                        camera_tensors, check_camera_values, family_for)
from refit_ros.runtime.graphs import NEXT

if TYPE_CHECKING:
    from refit_ros.runtime.export import ExportManifest

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")


class BackendError(RuntimeError):
    """A backend cannot be built; the message names the setting or package and the fix."""


class StageRunner(Protocol):
    """Runs the stage graphs of one export by name.

    Attributes
    ----------
    device : torch.device
        Where the tensors it returns live.
    """

    device: torch.device

    def run(self, stage: str, feeds: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Run ``stage`` (``encoder``, ``init``, ``step``, ``body``) on the tensors it needs
        from ``feeds`` (extra entries are ignored) and return its outputs by name."""

    def describe(self) -> dict[str, Any]:
        """Facts for logs and benchmark JSON (providers, precision, ...)."""


@dataclass
class BodyPose:
    """Output of the body stage.

    Attributes
    ----------
    vertices : Tensor
        ``N x V x 3`` body-model frame (metres).
    joints : Tensor
        ``N x J x 3`` body-model frame.
    translation : Tensor
        ``N x 3`` body-model frame -> camera optical frame.
    joints2d : Tensor
        ``N x J x 2`` joints in crop pixels.
    """

    vertices: Tensor
    joints: Tensor
    translation: Tensor
    joints2d: Tensor


class FittingBackend:
    """A :class:`StageRunner` behind the pipeline's FittingModel interface.

    Parameters
    ----------
    family : ModelFamily
    runner : StageRunner
    backend : str
        ``torch``, ``onnxruntime`` or ``tensorrt`` (reported, not interpreted).
    feature_names : sequence of str
        Feature tensors passed from the encoder to init/step.
    body : BodyModel, optional
        The body model the pipeline poses final results with (``FittingModel.body``).
    crop_size : int
    device : str or torch.device, optional
        The pipeline's device (``model.device``): every tensor the backend returns lives
        there, whatever device its runner computes on (TensorRT: a CUDA device). Default:
        the runner's device.
    """

    def __init__(self, family: ModelFamily, runner: StageRunner, backend: str,
                 feature_names: Sequence[str], body=None, crop_size: int = 256,
                 device: str | torch.device | None = None) -> None:
        self.family = family
        self.runner = runner
        self.backend = backend
        self.feature_names = tuple(feature_names)
        self.body = body
        self.crop_size = crop_size
        self._device = torch.device(device) if device is not None else None
        self._checked: CropCamera | None = None

    @property
    def name(self) -> str:
        """``model.name`` of the network (FittingModel.name)."""
        return self.family.name

    @property
    def device(self) -> torch.device:
        """Where returned tensors live (the pipeline's device)."""
        return self._device if self._device is not None else self.runner.device

    def _run(self, stage: str, feeds: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The runner's stage, its outputs moved to :attr:`device` (no-op when equal)."""
        out = self.runner.run(stage, feeds)
        dev = self.device
        return {k: v if v.device == dev else v.to(dev) for k, v in out.items()}

    # ------------------------------------------------------------------ stages
    def preprocess(self, image_rgb: np.ndarray, detections: Sequence[Any],
                   camera: CropCamera) -> dict[str, np.ndarray]:
        """Frame + detections -> encoder inputs (host arrays, ``N x ...``)."""
        return self.family.preprocess(image_rgb, detections, camera,
                                      _CropSize(self.crop_size))

    def encode_arrays(self, inputs: Mapping[str, np.ndarray | Tensor]) -> Any:
        """Encoder inputs -> the feature dataclass (tensors on :attr:`device`)."""
        feeds = {}
        for k, v in inputs.items():
            t = torch.as_tensor(v, dtype=torch.float32).to(self.runner.device)
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"encoder input {k!r} contains NaN or inf; check the image "
                                 "conversion and the detector output")
            feeds[k] = t
        out = self._run("encoder", feeds)
        return self.family.make_features({n: out[n] for n in self.feature_names if n in out})

    def encode(self, image_rgb: np.ndarray, detections: Sequence[Any], camera: CropCamera) -> Any:
        """FittingModel.encode: preprocess + encoder."""
        return self.encode_arrays(self.preprocess(image_rgb, detections, camera))

    def init_state(self, features: Any, camera: CropCamera) -> RefitState:
        """Cold start (mean body + one regressor step, hidden states zero)."""
        out = self._run("init", {**self._features(features), **self._camera(camera)})
        return _state(out)

    def step(self, state: RefitState, features: Any, camera: CropCamera) -> RefitState:
        """One refinement step (markers of ``state`` reprojected inside the graph)."""
        feeds = {**self._features(features), **self._camera(camera)}
        for n in STATE_NAMES:
            feeds[n] = getattr(state, n).to(self.runner.device, torch.float32)
        return _state(self._run("step", feeds))

    def pose(self, state: RefitState, camera: CropCamera) -> BodyPose:
        """The body stage: mesh, joints, translation and crop-pixel joints of a state."""
        feeds = {n: getattr(state, n).to(self.runner.device, torch.float32)
                 for n in STATE_NAMES[:3]}
        out = self._run("body", {**feeds, **self._camera(camera)})
        return BodyPose(out["vertices"], out["joints"], out["translation"], out["joints2d"])

    def rotmat(self, state: RefitState) -> Tensor:
        """``N x 24 x 3 x 3`` joint rotations of a state."""
        return rot6d_to_rotmat(state.pose6d).reshape(state.pose6d.shape[0], 24, 3, 3)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.name, **self.runner.describe()}

    # ------------------------------------------------------------------ helpers
    def _features(self, features: Any) -> dict[str, Tensor]:
        return {n: getattr(features, n) for n in self.feature_names
                if getattr(features, n, None) is not None}

    def _camera(self, camera: CropCamera) -> dict[str, Tensor]:
        if camera.crop_size != self.crop_size:
            raise ValueError(f"camera.crop_size is {camera.crop_size} but the export expects "
                             f"{self.crop_size}")
        if camera is not self._checked:  # once per camera object: the check syncs a GPU
            check_camera_values(camera)
            self._checked = camera
        return {n: t.to(self.runner.device, torch.float32)
                for n, t in zip(CAMERA_NAMES, camera_tensors(camera))}


@dataclass(frozen=True)
class _CropSize:
    crop_size: int


def _state(out: Mapping[str, Tensor]) -> RefitState:
    return RefitState(**{n: out[n + NEXT] for n in STATE_NAMES})


# ---------------------------------------------------------------------- construction
def torch_backend(net: torch.nn.Module, device: str | torch.device = "cpu", body=None,
                  cuda_graphs: bool = True) -> FittingBackend:
    """The torch backend over ``net`` (``Refit`` / ``RefitKp``).

    On CUDA the step (and init/body) run as captured CUDA graphs per batch size when
    ``cuda_graphs`` is true (falls back to eager, with a warning, if capture fails).
    """
    from refit_ros.runtime.families import family_of
    from refit_ros.runtime.torch_backend import TorchRunner

    family = family_of(net)
    runner = TorchRunner(net, family, device, cuda_graphs=cuda_graphs)
    return FittingBackend(family, runner, "torch", family.feature_names(net), body,
                          int(net.config.crop_size))


def onnxruntime_backend(export_dir: str | Path, expect: Mapping[str, Any] | None = None,
                        body=None, device: str = "cpu", threads: int = 0,
                        manifest: ExportManifest | None = None) -> FittingBackend:
    """The ONNX Runtime backend over an export folder (validated against ``expect``, unless
    its already validated ``manifest`` is given).

    ``device='cuda'`` asks for the CUDA execution provider (error if it is missing).
    """
    from refit_ros.runtime.export import load_export
    from refit_ros.runtime.onnxruntime_backend import OrtRunner

    manifest = manifest or load_export(export_dir, expect)
    runner = OrtRunner(export_dir, manifest, device=device, threads=threads)
    return FittingBackend(family_for(manifest.model), runner, "onnxruntime",
                          manifest.feature_names, body, int(manifest.architecture["crop_size"]))


def tensorrt_backend(export_dir: str | Path, expect: Mapping[str, Any] | None = None,
                     body=None, precision: str = "fp16", max_persons: int | None = None,
                     calibration: str | Path | None = None,
                     manifest: ExportManifest | None = None, *, opt_persons: int = 1,
                     device: str | torch.device = "cuda") -> FittingBackend:
    """The TensorRT backend: engines built from the export (or taken from the per-user
    engine cache); ``manifest``: the export's, already validated (else loaded and checked
    here). ``device``: the CUDA device the engines run on and the backend's outputs live on
    (the pipeline's ``model.device``)."""
    from refit_ros.runtime.export import load_export
    from refit_ros.runtime.tensorrt_backend import TensorRTRunner, require_tensorrt

    require_tensorrt()
    manifest = manifest or load_export(export_dir, expect)
    runner = TensorRTRunner(export_dir, manifest, precision=precision,
                            max_persons=max_persons or manifest.max_persons,
                            calibration=calibration, opt_persons=opt_persons, device=device)
    return FittingBackend(family_for(manifest.model), runner, "tensorrt",
                          manifest.feature_names, body, int(manifest.architecture["crop_size"]),
                          device=runner.device)


def resolve_backend(cfg) -> str:
    """``runtime.backend`` with ``auto`` decided: ``onnxruntime`` for ReFit-KP on the CPU
    when the package is installed (its small graphs run ~3x faster than torch's eager
    ops), ``torch`` otherwise."""
    name = cfg.runtime.backend
    if name != "auto":
        return name
    if cfg.model.name == "refit_kp" and str(cfg.model.device).startswith("cpu"):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            log.warning("runtime.backend=auto: onnxruntime is not installed, using torch "
                        "(ReFit-KP ~3x slower); pip install onnxruntime==1.31.1")
            return "torch"
        return "onnxruntime"
    return "torch"


def export_dir_from_config(cfg) -> Path:
    """``runtime.export_dir`` resolved; when empty, the per-user cache folder of the
    configured model (:func:`refit_ros.runtime.auto_export.default_export_dir`)."""
    from refit_ros.config import resolve_path
    from refit_ros.runtime.auto_export import default_export_dir

    return resolve_path(cfg.runtime.export_dir) if cfg.runtime.export_dir else default_export_dir(cfg)


def build_backend(cfg, model=None, *, backend: str | None = None, precision: str | None = None,
                  max_persons: int | None = None, cuda_graphs: bool = True) -> FittingBackend:
    """The fitting model of the config on the runtime ``runtime.backend``.

    Parameters
    ----------
    cfg : Config
    model : FittingModel, optional
        For ``torch``: an already built pipeline model (``refit_ros.pipeline.build_model``)
        whose ``net`` and ``body`` are reused.
    backend : str, optional
        Overrides ``runtime.backend``.
    precision : str, optional
        Overrides ``runtime.tensorrt.precision`` (``fp32``, ``fp16``, ``int8``).
    max_persons : int, optional
        Overrides ``runtime.tensorrt.max_persons`` (the TensorRT profile's upper bound).
    cuda_graphs : bool
        torch on CUDA: capture the stage graphs.

    Raises
    ------
    BackendError
        Unknown backend, missing package, unusable export folder, TensorRT asked for with
        a CPU ``model.device``.
    """
    from refit_ros.runtime.export import ExportError, expectations_from_config, load_export

    name = backend or resolve_backend(cfg)
    if name not in BACKENDS:
        raise BackendError(f"runtime.backend={name!r} is not one of {list(BACKENDS)}")
    if name == "tensorrt" and not str(cfg.model.device).startswith("cuda"):
        # The config refuses this for runtime.backend=tensorrt; here for backend= callers.
        raise BackendError(f"the TensorRT backend needs model.device=cuda, got "
                           f"model.device={cfg.model.device!r} (the pipeline's cameras and "
                           "body model live on model.device)")
    if name == "torch":
        if model is None:
            from refit_ros.pipeline import build_model

            model = build_model(cfg)
        return torch_backend(model.net, cfg.model.device, body=model.body, cuda_graphs=cuda_graphs)
    expect = expectations_from_config(cfg)
    if name == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise BackendError("runtime.backend=onnxruntime needs the onnxruntime package: "
                               "pip install onnxruntime==1.31.1 (or onnxruntime-gpu for the "
                               "CUDA provider)") from exc
    if name == "tensorrt":
        from refit_ros.runtime.tensorrt_backend import require_tensorrt

        require_tensorrt()  # before anything slow: the message says how to install it
    try:
        from refit_ros.pipeline import build_body, build_model
        from refit_ros.runtime.auto_export import check_weights, ensure_export

        if cfg.runtime.export_dir:  # the user's export: checked, never overwritten
            export_dir = export_dir_from_config(cfg)
            manifest = load_export(export_dir, expect)
            check_weights(manifest, cfg, export_dir)
        else:  # the cache folder: exported here when missing or made from other weights
            export_dir, manifest = ensure_export(
                cfg, lambda: (model if model is not None else build_model(cfg)).net)
        body = build_body(cfg)
        if name == "onnxruntime":
            return onnxruntime_backend(export_dir, body=body.to(cfg.model.device),
                                       device=cfg.model.device, threads=cfg.runtime.threads,
                                       manifest=manifest)
        from refit_ros.runtime.tensorrt_backend import engine_options

        opts = engine_options(cfg, precision, max_persons)
        return tensorrt_backend(export_dir, body=body.to(cfg.model.device),
                                precision=opts.precision, max_persons=opts.max_persons,
                                calibration=opts.calibration, manifest=manifest,
                                opt_persons=opts.opt_persons, device=cfg.model.device)
    except ExportError as exc:
        raise BackendError(f"runtime.backend={name}: {exc}") from exc
