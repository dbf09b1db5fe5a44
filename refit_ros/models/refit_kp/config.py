"""Architecture of ReFit-KP (saved beside its weights, so a checkpoint rebuilds itself)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping


@dataclass(frozen=True)
class RefitKpConfig:
    """Sizes of the keypoint-driven ReFit loop.

    Attributes
    ----------
    crop_size : int
        Side of the (virtual) square person crop in pixels; keypoints are expressed in it.
    stride : int
        Feedback-map stride: maps are ``crop_size / stride`` cells wide (ReFit: 4 -> 64).
    radius : int
        Window radius of the lookup (3 -> 7x7 taps per marker).
    sigmas : tuple of float
        Gaussian widths (feedback-map cells) of the landmark heatmaps mixed by the
        per-marker 1x1 head.
    flow_dim : int
        Per-marker feature size after the multi-linear layer.
    local_dim : int
        Size of the local feature pooled over all markers.
    global_dim : int
        Size of the keypoint embedding ``z`` (drives the initial estimate).
    step_global_dim : int
        Size of the projection of ``z`` fed to every step (0 = none, as in ReFit).
    hidden_dim : int
        GRU hidden size per stream (26 streams: 24 joints, shape, camera).
    residual_clip : float
        Marker-to-landmark residuals (in crop widths) are clipped to +- this value.
    min_cam_scale : float
        Lower bound of the crop-camera scale ``s`` (keeps the translation finite).
    """

    crop_size: int = 256
    stride: int = 4
    radius: int = 3
    sigmas: tuple[float, ...] = (2.0,)
    flow_dim: int = 8
    local_dim: int = 128
    global_dim: int = 256
    step_global_dim: int = 64
    hidden_dim: int = 32
    residual_clip: float = 1.0
    min_cam_scale: float = 0.05

    @property
    def map_size(self) -> int:
        """Feedback-map side in cells."""
        return self.crop_size // self.stride

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sigmas"] = list(self.sigmas)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RefitKpConfig":
        """Build from a mapping; unknown keys are an error naming the key."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ReFit-KP config keys {sorted(unknown)}; known: {sorted(names)}")
        d = dict(d)
        if "sigmas" in d:
            d["sigmas"] = tuple(float(s) for s in d["sigmas"])
        return cls(**d)
