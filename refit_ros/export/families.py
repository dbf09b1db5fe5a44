"""What the exporter and the backends need to know about each fitting network.

Both networks share the loop state (:class:`~refit_ros.models.refit.state.RefitState`)
and the crop camera; they differ in what they encode (an image crop for ``refit``, 2D
keypoints for ``refit_kp``), in the features the loop reads, and in the body model inside
the loop. A :class:`ModelFamily` names those differences once, so the stage graphs
(:mod:`refit_ros.export.graphs`), the ONNX export and every backend stay generic.
"""

from __future__ import annotations

import abc
import copy
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.crop import crop_images

log = logging.getLogger(__name__)

#: Loop state tensors crossing every graph boundary, in this order.
STATE_NAMES: tuple[str, ...] = ("pose6d", "betas", "cam", "hpose", "hshape", "hcam")
#: Crop-camera tensors (:class:`CropCamera` fields), in this order.
CAMERA_NAMES: tuple[str, ...] = ("center", "box_size", "focal", "principal")
#: Outputs of the body stage.
BODY_OUTPUT_NAMES: tuple[str, ...] = ("vertices", "joints", "translation", "joints2d")
#: Name of the dynamic (people) axis in every graph.
BATCH_AXIS = "persons"


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one graph input or output.

    Attributes
    ----------
    name : str
    shape : tuple
        Dimensions; the string :data:`BATCH_AXIS` marks the dynamic people axis.
    dtype : str
        NumPy dtype name.
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def example(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """A random tensor of this spec with ``batch`` people."""
        shape = tuple(batch if d == BATCH_AXIS else int(d) for d in self.shape)
        return torch.randn(shape, generator=generator, dtype=getattr(torch, self.dtype))


def camera_specs() -> tuple[TensorSpec, ...]:
    """Specs of the crop-camera inputs (``B x 2``, ``B``, ``B x 2``, ``B x 2`` pixels)."""
    b = BATCH_AXIS
    return (TensorSpec("center", (b, 2)), TensorSpec("box_size", (b,)),
            TensorSpec("focal", (b, 2)), TensorSpec("principal", (b, 2)))


def camera_tensors(camera: CropCamera) -> tuple[Tensor, ...]:
    """The crop camera as the tuple of :data:`CAMERA_NAMES` tensors."""
    return (camera.center, camera.box_size, camera.focal, camera.principal)


def example_camera(batch: int, device: torch.device | str = "cpu") -> CropCamera:
    """A plausible crop camera (a person in a 1280x720 image) for tracing and benchmarks."""
    k = torch.arange(batch, dtype=torch.float32, device=device)
    center = torch.stack([400.0 + 60.0 * k, 380.0 + 5.0 * k], dim=-1)
    return CropCamera(center=center, box_size=torch.full((batch,), 420.0, device=device) + 10 * k,
                      focal=torch.full((batch, 2), 1468.6, device=device),
                      principal=torch.tensor([[640.0, 360.0]], device=device).repeat(batch, 1))


def check_camera_values(camera: CropCamera) -> None:
    """The value checks graphs cannot do (they cannot branch on data), done on the host.

    Raises
    ------
    ValueError
        A non-finite camera value, or a non-positive box size or focal length.
    """
    for name, t in zip(CAMERA_NAMES, camera_tensors(camera)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"camera.{name} contains NaN or inf; check the detection box "
                             "and CameraInfo")
    if not bool((camera.box_size > 0).all()) or not bool((camera.focal > 0).all()):
        raise ValueError("camera.box_size and camera.focal must be positive; check the "
                         "detection box and CameraInfo")


class ModelFamily(abc.ABC):
    """One fitting network's encoder inputs, features and graph-friendly copy.

    Attributes
    ----------
    name : str
        ``model.name`` in the config.
    """

    name: str

    # ------------------------------------------------------------------ description
    @abc.abstractmethod
    def encoder_inputs(self, net: nn.Module) -> tuple[TensorSpec, ...]:
        """Inputs of the encoder graph."""

    @abc.abstractmethod
    def feature_names(self, net: nn.Module) -> tuple[str, ...]:
        """Fields of the feature dataclass the loop reads, in graph order."""

    @abc.abstractmethod
    def describe(self, net: nn.Module) -> dict[str, Any]:
        """Architecture facts saved in ``export.yaml`` (e.g. ``backbone``, ``body``)."""

    # ------------------------------------------------------------------ graphs
    @abc.abstractmethod
    def graph_copy(self, net: nn.Module) -> nn.Module:
        """A copy of ``net`` (sharing its tensors) that export and CUDA-graph capture
        accept: graph-friendly body model, no data-dependent value checks."""

    @abc.abstractmethod
    def encode_graph(self, net: nn.Module, *inputs: Tensor) -> Any:
        """The encoder on graph inputs; returns the feature dataclass."""

    @abc.abstractmethod
    def make_features(self, named: dict[str, Tensor]) -> Any:
        """The feature dataclass from its tensors (missing optional fields -> None)."""

    # ------------------------------------------------------------------ host side
    @abc.abstractmethod
    def preprocess(self, image_rgb: np.ndarray, detections: Sequence[Any], camera: CropCamera,
                   crop_size: int = 256) -> dict[str, np.ndarray]:
        """Frame + detections -> encoder inputs (float32 arrays, ``N x ...``)."""

    #: Whether :meth:`fit_error` can check a fit against the evidence.
    has_fit_check: bool = False

    def fit_error(self, state: Any, features: Any, camera: CropCamera, body: Any,
                  architecture: dict[str, Any]) -> Tensor:
        """``N`` distances of the fits in ``state`` to their evidence in ``features`` (the
        pipeline's warm-start check); only where :attr:`has_fit_check`."""
        raise NotImplementedError(f"model.name={self.name} has no fit check")

    def warm_start(self, prev: Any, old: CropCamera, new: CropCamera, betas: Tensor | None = None,
                   reset_hidden: bool = False) -> Any:
        """Last frame's state as the start of this frame's fit
        (:func:`refit_ros.models.refit.warm.warm_start_state`)."""
        from refit_ros.models.refit.warm import warm_start_state

        return warm_start_state(prev, old, new, betas, reset_hidden)

    def feature_tensors(self, features: Any, names: Sequence[str]) -> dict[str, Tensor]:
        """The named fields of a feature dataclass."""
        return {n: getattr(features, n) for n in names}

    def example_inputs(self, net: nn.Module, batch: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Random encoder inputs of ``batch`` people (tracing, benchmarks)."""
        g = torch.Generator().manual_seed(seed)
        return tuple(s.example(batch, g) for s in self.encoder_inputs(net))


def _shallow_module_copy(net: nn.Module) -> nn.Module:
    """A copy with its own submodule table (so a submodule can be swapped), same tensors."""
    twin = copy.copy(net)
    for attr in ("_parameters", "_buffers", "_modules"):
        object.__setattr__(twin, attr, dict(getattr(net, attr)))
    return twin


def _no_value_checks(camera: CropCamera, batch: int) -> None:
    """Replaces ``Refit._check_camera`` inside graphs: shape checks only (static)."""
    if tuple(camera.center.shape[1:]) != (2,) or camera.box_size.dim() != 1:
        raise ValueError("camera tensors must be B x 2 (center) and B (box_size)")


class RefitFamily(ModelFamily):
    """The official ReFit: a ``B x 3 x 256 x 256`` normalised crop -> ``corr`` and ``z``."""

    name = "refit"

    def encoder_inputs(self, net):
        s = net.config.crop_size
        return (TensorSpec("image", (BATCH_AXIS, 3, s, s)),)

    def feature_names(self, net):
        return ("corr", "z")

    def describe(self, net):
        return {"backbone": net.config.backbone, "crop_size": net.config.crop_size,
                "markers": int(net.marker_ids.numel()), "body_in_graph": "smpl (49 joints)"}

    def graph_copy(self, net):
        from refit_ros.export.graph_body import GraphSmplJoints49

        twin = _shallow_module_copy(net)
        twin.smpl = GraphSmplJoints49(net.smpl)
        # Value checks (NaN, positive sizes) would need data-dependent branches; the
        # backends run check_camera_values on the host instead.
        object.__setattr__(twin, "_check_camera", _no_value_checks)
        return twin

    def encode_graph(self, net, image):
        from refit_ros.models.refit.state import RefitFeatures

        # Refit.encode without its host-side NaN check (a data-dependent branch).
        feature, z = net.backbone(image.contiguous())
        return RefitFeatures(corr=net.corr_layer(feature), z=z)

    def make_features(self, named):
        from refit_ros.models.refit.state import RefitFeatures

        return RefitFeatures(corr=named["corr"], z=named["z"])

    def preprocess(self, image_rgb, detections, camera, crop_size=256):
        crops = crop_images(image_rgb, camera.center.cpu().numpy(),
                            camera.box_size.cpu().numpy(), size=crop_size)
        return {"image": crops}


class RefitKpFamily(ModelFamily):
    """ReFit-KP: ``B x 33`` keypoints (crop pixels) + confidences -> landmarks, ``z``, ``g``."""

    name = "refit_kp"

    def encoder_inputs(self, net):
        from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES

        n = len(BLAZEPOSE_LANDMARK_NAMES)
        # Not "confidence": that name is a feature (an encoder output) too.
        return (TensorSpec("keypoints", (BATCH_AXIS, n, 2)),
                TensorSpec("keypoint_confidence", (BATCH_AXIS, n)))

    def feature_names(self, net):
        names = ("landmarks", "confidence", "z")
        return names + (("g",) if net.step_global is not None else ())

    def describe(self, net):
        return {"backbone": "keypoints", "crop_size": net.config.crop_size,
                "markers": int(net.num_markers), "body_in_graph": net.body.name,
                "architecture": net.config.to_dict()}

    def graph_copy(self, net):
        from refit_ros.export.graph_body import graph_skinned_body

        twin = _shallow_module_copy(net)
        # The body is not a submodule of RefitKp (it is held in __dict__), so moving the net
        # (TorchRunner: net.to(device)) leaves it where it was: the twin's body follows the
        # net's device (its own buffer dict: the caller's body is not moved).
        device = next(net.parameters()).device
        object.__setattr__(twin, "body", graph_skinned_body(net.body).to(device))
        return twin

    def encode_graph(self, net, keypoints, keypoint_confidence):
        from refit_ros.models.refit_kp.evidence import KeypointEvidence

        return net.encode(KeypointEvidence(keypoints, keypoint_confidence))

    def make_features(self, named):
        from refit_ros.models.refit_kp.evidence import KpFeatures

        return KpFeatures(landmarks=named["landmarks"], confidence=named["confidence"],
                          z=named["z"], g=named.get("g"))

    def example_inputs(self, net, batch, seed=0):
        g = torch.Generator().manual_seed(seed)
        (kp_spec, conf_spec) = self.encoder_inputs(net)
        s = net.config.crop_size
        kp = 0.25 * s + 0.5 * s * torch.rand((batch,) + tuple(kp_spec.shape[1:]), generator=g)
        conf = torch.rand((batch,) + tuple(conf_spec.shape[1:]), generator=g)
        return kp, conf

    def preprocess(self, image_rgb, detections, camera, crop_size=256):
        from refit_ros.models.refit_kp.evidence import KeypointEvidence

        if any(getattr(d, "keypoints2d", None) is None for d in detections):
            raise ValueError("model.name=refit_kp needs 2D keypoints from the detector; use "
                             "detector.name=blazepose (box-only detectors suit model.name=refit)")
        kp = torch.as_tensor(np.stack([np.asarray(d.keypoints2d, np.float32) for d in detections]))
        ev = KeypointEvidence.from_full_image(kp, camera.to("cpu"))
        return {"keypoints": ev.keypoints.numpy(), "keypoint_confidence": ev.confidence.numpy()}

    has_fit_check = True

    def fit_error(self, state, features, camera, body, architecture):
        """How far each fit is from its evidence: ``N`` mean distances between the fitted
        landmark points and the detected landmarks with confidence > 0.5, as a fraction of
        the crop side (0 when none is confident). The markers are posed with ``body`` (the
        open body the network was trained on) exactly as the network's loop poses them."""
        from refit_ros.models.refit_kp.model import pose_markers

        markers = state.joints[:, -features.landmarks.shape[1]:] \
            if getattr(state, "joints", None) is not None \
            else pose_markers(body, state.pose6d, state.betas)
        stride = architecture["architecture"]["stride"]
        p = camera.project_to_crop(markers, state.cam)
        d = (p - features.landmarks * stride).norm(dim=-1) / camera.crop_size
        w = (features.confidence > 0.5).to(d.dtype)
        return (d * w).sum(-1) / w.sum(-1).clamp(min=1.0)


FAMILIES: dict[str, type[ModelFamily]] = {"refit": RefitFamily, "refit_kp": RefitKpFamily}


def family_for(model_name: str) -> ModelFamily:
    """The family of ``model.name``.

    Raises
    ------
    ValueError
        Unknown model name (the message lists the known ones).
    """
    if model_name not in FAMILIES:
        raise ValueError(f"model.name={model_name!r} has no export/runtime support; "
                         f"known: {sorted(FAMILIES)}")
    return FAMILIES[model_name]()


def family_of(net: nn.Module) -> ModelFamily:
    """The family of a network instance (by class)."""
    from refit_ros.models.refit.refit import Refit

    if isinstance(net, Refit):
        return RefitFamily()
    if type(net).__name__ == "RefitKp":
        return RefitKpFamily()
    raise ValueError(f"no runtime family for {type(net).__name__}")
