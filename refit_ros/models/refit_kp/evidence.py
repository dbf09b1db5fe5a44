"""What ReFit-KP looks at: 2D keypoints with confidences, expressed in the person crop.

The detector gives landmarks in full-image pixels; the pipeline's square crop box
(:class:`~refit_ros.geometry.camera.CropCamera`) maps them into the virtual 256 x 256 crop,
so the network sees the same normalised geometry as the image-based ReFit, and the CLIFF
bbox feature tells it where that crop sits in the full frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from refit_ros.geometry.camera import CropCamera, full_to_crop


@dataclass
class KeypointEvidence:
    """Keypoints of ``B`` people in crop pixels.

    Attributes
    ----------
    keypoints : Tensor
        ``B x L x 2`` landmark positions in crop pixels (L = 33 BlazePose landmarks).
    confidence : Tensor
        ``B x L`` in ``[0, 1]``; 0 marks a missing landmark (its position is ignored).
    """

    keypoints: Tensor
    confidence: Tensor

    @classmethod
    def from_full_image(cls, keypoints2d: Tensor, camera: CropCamera) -> "KeypointEvidence":
        """From detector output in full-image pixels.

        Parameters
        ----------
        keypoints2d : Tensor
            ``B x L x 3``: x, y in full-image pixels and a confidence (BlazePose
            visibility/presence) in ``[0, 1]``.
        camera : CropCamera
            The ``B`` crop boxes.

        Returns
        -------
        KeypointEvidence
        """
        if keypoints2d.dim() != 3 or keypoints2d.shape[-1] != 3:
            raise ValueError(f"keypoints2d must be B x L x 3 (x, y, confidence), got "
                             f"{tuple(keypoints2d.shape)}")
        xy = full_to_crop(keypoints2d[..., :2], camera.center, camera.box_size, camera.crop_size)
        conf = keypoints2d[..., 2].clamp(0.0, 1.0)
        # A non-finite landmark is treated as missing rather than poisoning the batch.
        bad = ~torch.isfinite(xy).all(-1) | ~torch.isfinite(keypoints2d[..., 2])
        xy = torch.where(bad[..., None], torch.zeros_like(xy), xy)
        conf = torch.where(bad, torch.zeros_like(conf), conf)
        return cls(xy, conf)

    @property
    def batch_size(self) -> int:
        return self.keypoints.shape[0]

    def to(self, device=None, dtype=None) -> "KeypointEvidence":
        return KeypointEvidence(self.keypoints.to(device, dtype), self.confidence.to(device, dtype))


@dataclass
class KpFeatures:
    """ReFit-KP's per-frame encoding of the evidence (computed once, read every step).

    Attributes
    ----------
    landmarks : Tensor
        ``B x M x 2`` the landmark of each marker in feedback-map cells (crop / stride).
    confidence : Tensor
        ``B x M`` its confidence (0 = missing).
    z : Tensor
        ``B x Z`` global keypoint embedding (drives the initial estimate).
    g : Tensor or None
        ``B x G`` projection of ``z`` fed to every step (None when the config has none).
    """

    landmarks: Tensor
    confidence: Tensor
    z: Tensor
    g: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.landmarks.shape[0]
