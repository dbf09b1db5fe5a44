"""The model side of the pipeline: one fitting network on one runtime backend.

Every network (the official ReFit on image crops, the default ReFit-KP on keypoints) is
a recurrent fitter with the same stages: ``encode`` once per frame, ``init_state`` for a
cold start, ``step`` to refine. :class:`FittingModel` runs them on any backend
(:data:`refit_ros.runtime.BACKENDS`: torch, ONNX Runtime, TensorRT) and does the
host-side work once, through the network's family
(:class:`~refit_ros.export.families.ModelFamily`): preprocessing, the fit check
(``fit_error``) and the warm-start maths. States are
:class:`~refit_ros.models.refit.state.RefitState` whatever the backend, so the batching
helpers below and the tracker's warm starts work unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from refit_ros.export.families import (CAMERA_NAMES, STATE_NAMES, ModelFamily, camera_tensors,
                                       check_camera_values)
from refit_ros.export.graphs import NEXT
from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.rotation import rot6d_to_rotmat
from refit_ros.models.refit.state import RefitState
from refit_ros.runtime import backend_class
from refit_ros.runtime.base import Backend, ModelSource

if TYPE_CHECKING:
    from refit_ros.export.onnx import ExportManifest


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


class FittingModel:
    """A fitting network on a runtime backend, as the pipeline uses it.

    Parameters
    ----------
    family : ModelFamily
        Host-side pre/post-processing of the network.
    runner : Backend
        Runs the stage graphs (``encoder``, ``init``, ``step``, ``body``).
    backend : str
        ``runtime.backend`` name (reported, not interpreted).
    feature_names : sequence of str
        Feature tensors passed from the encoder to init/step.
    body : BodyModel, optional
        The body model the pipeline poses final results with.
    crop_size : int
    device : str or torch.device, optional
        The pipeline's device (``model.device``): every tensor the model returns lives
        there, whatever device its runner computes on (TensorRT: a CUDA device). Default:
        the runner's device.
    architecture : dict, optional
        The network's architecture facts (``export.yaml``'s ``architecture``), read by
        the family (e.g. ReFit-KP's feedback-map stride for the fit check).
    """

    def __init__(self, family: ModelFamily, runner: Backend, backend: str,
                 feature_names: Sequence[str], body=None, crop_size: int = 256,
                 device: str | torch.device | None = None,
                 architecture: Mapping[str, Any] | None = None) -> None:
        self.family = family
        self.runner = runner
        self.backend = backend
        self.feature_names = tuple(feature_names)
        self.body = body
        self.crop_size = crop_size
        self.architecture = dict(architecture or {})
        self._device = torch.device(device) if device is not None else None
        self._checked: CropCamera | None = None

    @classmethod
    def load(cls, backend: str, source: ModelSource, body=None,
             device: str | torch.device | None = None, **options: Any) -> FittingModel:
        """The network of ``source`` on the backend named ``backend``
        (:data:`refit_ros.runtime.BACKENDS`); ``options`` go to its ``load``."""
        runner = backend_class(backend).load(source, device=device, **options)
        return cls.from_runner(runner, source.family, backend, body)

    @classmethod
    def from_runner(cls, runner: Backend, family: ModelFamily, backend: str,
                    body=None) -> FittingModel:
        """A loaded backend as the pipeline's model (outputs on the runner's device)."""
        return cls(family, runner, backend, runner.feature_names, body,
                   int(runner.architecture["crop_size"]), architecture=runner.architecture)

    @classmethod
    def from_network(cls, net: torch.nn.Module, device: str | torch.device = "cpu", body=None,
                     cuda_graphs: bool = True) -> FittingModel:
        """The torch backend over ``net`` (``Refit`` / ``RefitKp``); on CUDA the stages run
        as captured CUDA graphs per batch size when ``cuda_graphs`` is true."""
        from refit_ros.export.families import family_of

        return cls.load("torch", ModelSource(family_of(net), network=lambda: net), body,
                        device, cuda_graphs=cuda_graphs)

    @classmethod
    def from_export(cls, backend: str, export_dir: str | Path,
                    expect: Mapping[str, Any] | None = None, body=None,
                    device: str | torch.device | None = None,
                    manifest: ExportManifest | None = None, **options: Any) -> FittingModel:
        """The export folder ``export_dir`` on ``backend`` (``onnxruntime``, ``tensorrt``),
        validated against ``expect`` unless its already validated ``manifest`` is given.
        ``device``: ``model.device`` (ONNX Runtime: ``cuda`` asks for its CUDA provider;
        TensorRT: the CUDA device; default ``cpu`` / ``cuda``)."""
        from refit_ros.export.families import family_for
        from refit_ros.export.onnx import load_export

        runner_cls = backend_class(backend)
        if backend == "tensorrt":
            from refit_ros.runtime.tensorrt_backend import require_tensorrt

            require_tensorrt()  # before loading anything: the message says how to install it
        manifest = manifest or load_export(export_dir, expect)
        source = ModelSource(family_for(manifest.model),
                             export=lambda: (Path(export_dir), manifest))
        return cls.from_runner(runner_cls.load(source, device=device, **options), source.family,
                               backend, body)

    @property
    def name(self) -> str:
        """``model.name`` of the network."""
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
        return self.family.preprocess(image_rgb, detections, camera, self.crop_size)

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
        """Per-frame features of the ``N`` people: preprocess + encoder."""
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

    # ------------------------------------------------------------------ family maths
    @property
    def has_fit_check(self) -> bool:
        """Whether :meth:`fit_error` can check a fit against the evidence (ReFit-KP)."""
        return self.family.has_fit_check

    def fit_error(self, state: RefitState, features: Any, camera: CropCamera) -> Tensor:
        """``N`` distances of the fits to their evidence (the family's fit check)."""
        return self.family.fit_error(state, features, camera, self.body, self.architecture)

    def warm_start(self, prev: RefitState, old: CropCamera, new: CropCamera,
                   betas: Tensor | None = None, reset_hidden: bool = False) -> RefitState:
        """Last frame's state as the start of this frame's fit (the family's warm start)."""
        return self.family.warm_start(prev, old, new, betas, reset_hidden)

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


def _state(out: Mapping[str, Tensor]) -> RefitState:
    return RefitState(**{n: out[n + NEXT] for n in STATE_NAMES})


# ----------------------------------------------------------------- batch helpers
def select(obj: Any, index: Sequence[int]) -> Any:
    """Rows ``index`` of every tensor field of a dataclass (others copied as they are)."""
    idx = torch.as_tensor(list(index), dtype=torch.long)
    vals = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        vals[f.name] = v[idx.to(v.device)] if isinstance(v, Tensor) and v.dim() > 0 else v
    return dataclasses.replace(obj, **vals) if not isinstance(obj, CropCamera) else CropCamera(**vals)


def concat(objs: Sequence[Any]) -> Any:
    """Concatenate dataclasses of tensors along the batch; a field that is None in any is None."""
    first = objs[0]
    vals = {}
    for f in dataclasses.fields(first):
        parts = [getattr(o, f.name) for o in objs]
        if all(isinstance(p, Tensor) for p in parts):
            vals[f.name] = torch.cat(parts)
        elif any(p is None for p in parts):
            vals[f.name] = None
        else:
            vals[f.name] = parts[0]
    return dataclasses.replace(first, **vals) if not isinstance(first, CropCamera) else CropCamera(**vals)
