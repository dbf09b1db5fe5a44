"""Adapters that give each network the pipeline's :class:`FittingModel` interface."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from refit_ros.body.base import BodyModel
from refit_ros.geometry.camera import CropCamera
from refit_ros.pipeline.crop import crop_images


class RefitImageModel:
    """The official ReFit (HRNet on 256x256 crops) behind the pipeline interface.

    Parameters
    ----------
    net : refit_ros.models.refit.refit.Refit
    body : BodyModel
        The SMPL body the network's parameters belong to (same SMPL files).
    """

    name = "refit"

    def __init__(self, net, body: BodyModel) -> None:
        self.net = net.eval()
        self.body = body
        self.device = next(net.parameters()).device

    def encode(self, image_rgb: np.ndarray, detections: Sequence[Any], camera: CropCamera):
        crops = crop_images(image_rgb, camera.center.cpu().numpy(), camera.box_size.cpu().numpy(),
                            size=self.net.config.crop_size)
        return self.net.encode(torch.from_numpy(crops).to(self.device))

    def init_state(self, features, camera: CropCamera):
        return self.net.init_state(features, camera)

    def step(self, state, features, camera: CropCamera):
        return self.net.step(state, features, camera)

    def rotmat(self, state) -> Tensor:
        return state.rotmat


class RefitKpModel:
    """The default ReFit-KP (keypoint evidence -> feedback maps) behind the pipeline interface.

    Parameters
    ----------
    net : refit_ros.models.refit_kp.model.RefitKp
    body : BodyModel
        The open body it was trained on.
    """

    name = "refit_kp"

    def __init__(self, net, body: BodyModel) -> None:
        self.net = net.eval()
        self.body = body
        self.device = next(net.parameters()).device

    def encode(self, image_rgb: np.ndarray, detections: Sequence[Any], camera: CropCamera):
        from refit_ros.models.refit_kp.evidence import KeypointEvidence

        if any(getattr(d, "keypoints2d", None) is None for d in detections):
            raise ValueError("model.name=refit_kp needs 2D keypoints from the detector; "
                             "use detector.name=blazepose (box-only detectors suit model.name=refit)")
        kp = torch.as_tensor(np.stack([d.keypoints2d for d in detections]), dtype=torch.float32,
                             device=self.device)
        return self.net.encode(KeypointEvidence.from_full_image(kp, camera))

    def init_state(self, features, camera: CropCamera):
        return self.net.init_state(features, camera)

    def step(self, state, features, camera: CropCamera):
        return self.net.step(state, features, camera)

    def fit_error(self, state, features, camera: CropCamera) -> Tensor:
        """How far each fit is from its evidence: ``N`` mean distances between the fitted
        landmark points and the detected landmarks with confidence > 0.5, as a fraction of
        the crop side (0 when none is confident)."""
        net = self.net
        markers = state.joints[:, -net.num_markers:] if state.joints is not None else \
            net.pose_body(state.pose6d, state.betas)[2]
        p = camera.project_to_crop(markers, state.cam)
        d = (p - features.landmarks * net.config.stride).norm(dim=-1) / camera.crop_size
        w = (features.confidence > 0.5).to(d.dtype)
        return (d * w).sum(-1) / w.sum(-1).clamp(min=1.0)

    def rotmat(self, state) -> Tensor:
        return state.rotmat


class BackendModel:
    """A runtime backend (ONNX Runtime, TensorRT) as the pipeline's fitting model.

    ``encode`` / ``init_state`` / ``step`` run on the backend's graphs; the final body is
    posed by the pipeline with ``body`` (torch). When ``reference`` (the torch adapter of
    the same weights) has a fit-quality check (``fit_error``, ReFit-KP), the warm-start
    check uses it on the backend's states, so warm starts behave as on torch.

    Parameters
    ----------
    backend : refit_ros.runtime.backends.FittingBackend
    reference : FittingModel, optional
    """

    def __init__(self, backend, reference=None) -> None:
        self.backend = backend
        self.name = backend.name
        self.body = backend.body
        self.device = backend.device
        if reference is not None and hasattr(reference, "fit_error"):
            self.fit_error = reference.fit_error

    def encode(self, image_rgb: np.ndarray, detections: Sequence[Any], camera: CropCamera):
        return self.backend.encode(image_rgb, detections, camera)

    def init_state(self, features, camera: CropCamera):
        return self.backend.init_state(features, camera)

    def step(self, state, features, camera: CropCamera):
        return self.backend.step(state, features, camera)

    def rotmat(self, state) -> Tensor:
        return self.backend.rotmat(state)

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()
