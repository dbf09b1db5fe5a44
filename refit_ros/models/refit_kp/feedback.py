"""Feedback maps of ReFit-KP: confidence-weighted Gaussian heatmaps of the landmarks.

ReFit reads a 7x7 window of a learned per-marker map around each reprojected marker. Here
each marker's maps are Gaussian heatmaps (one per width in ``sigmas``) of its own detected
landmark, scaled by the landmark's confidence, on the stride-4 grid of the crop. They are
smooth closed-form functions, so the window is evaluated exactly at its taps instead of
rendering ``B x M x 64 x 64`` maps and interpolating them (:func:`render_heatmaps` renders
them for inspection; sampling the rendered maps with ReFit's
:func:`~refit_ros.models.refit.lookup.window_lookup` gives the same numbers up to the
bilinear interpolation). The per-marker multi-linear layer that follows mixes the widths,
i.e. it is the 1x1 head of the maps folded into ReFit's flow layer.
"""

from __future__ import annotations

import torch
from torch import Tensor


def window_offsets(radius: int, dtype=torch.float32, device=None) -> Tensor:
    """Tap offsets of a ``(2r+1)^2`` window in ReFit's order.

    Returns
    -------
    Tensor
        ``T x 2`` ``(ox, oy)`` with the x offset as the outer index (``t = (ox + r)(2r+1) +
        (oy + r)``), as :func:`refit_ros.models.refit.lookup.window_lookup` orders taps.
    """
    off = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    ox, oy = torch.meshgrid(off, off, indexing="ij")
    return torch.stack([ox.reshape(-1), oy.reshape(-1)], dim=-1)


def gaussian_windows(markers: Tensor, landmarks: Tensor, confidence: Tensor,
                     sigmas: tuple[float, ...], radius: int) -> Tensor:
    """Sample each marker's heatmaps in a window around the marker.

    ``w[b, m, s, t] = c[b, m] * exp(-|p[b, m] + o[t] - l[b, m]|^2 / (2 sigma_s^2))``.

    Parameters
    ----------
    markers : Tensor
        ``B x M x 2`` reprojected markers ``p`` in map cells.
    landmarks : Tensor
        ``B x M x 2`` detected landmarks ``l`` in map cells.
    confidence : Tensor
        ``B x M`` confidences ``c``.
    sigmas : tuple of float
        Heatmap widths in cells.
    radius : int
        Window radius.

    Returns
    -------
    Tensor
        ``B x M x (S * T)`` with ``T = (2r+1)^2`` (width-major).
    """
    off = window_offsets(radius, markers.dtype, markers.device)
    d = (markers - landmarks)[:, :, None, :] + off            # B x M x T x 2
    d2 = (d * d).sum(-1)                                        # B x M x T
    # One exp per width with Python-float scales: no host-built tensor (a host-to-device
    # copy is not allowed inside a CUDA graph capture).
    w = torch.stack([torch.exp(d2 * (-0.5 / (s * s))) for s in sigmas], dim=2)
    w = w * confidence[:, :, None, None]
    return w.flatten(2)


def render_heatmaps(landmarks: Tensor, confidence: Tensor, sigma: float, size: int) -> Tensor:
    """Render the confidence-weighted Gaussian heatmaps (inspection and tests).

    Parameters
    ----------
    landmarks : Tensor
        ``B x M x 2`` positions in map cells (pixel ``i`` is centred at coordinate ``i``).
    confidence : Tensor
        ``B x M``.
    sigma : float
        Width in cells.
    size : int
        Map side in cells.

    Returns
    -------
    Tensor
        ``B x M x size x size``.
    """
    g = torch.arange(size, dtype=landmarks.dtype, device=landmarks.device)
    dx = g.view(1, 1, 1, size) - landmarks[..., 0, None, None]
    dy = g.view(1, 1, size, 1) - landmarks[..., 1, None, None]
    return confidence[..., None, None] * torch.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))


def marker_residuals(markers: Tensor, landmarks: Tensor, confidence: Tensor, map_size: int,
                     clip: float) -> Tensor:
    """Long-range feedback: where each landmark is relative to its marker.

    A window only sees a landmark within ``radius`` cells; the residual tells the loop
    where it is when it is farther (early iterations, wrong facing).

    Parameters
    ----------
    markers, landmarks : Tensor
        ``B x M x 2`` in map cells.
    confidence : Tensor
        ``B x M``.
    map_size : int
        Map side in cells (residuals are expressed in crop widths).
    clip : float
        Residuals are clipped to ``+-clip`` crop widths.

    Returns
    -------
    Tensor
        ``B x M x 3``: ``c * dx``, ``c * dy`` and ``c``.
    """
    r = ((landmarks - markers) / map_size).clamp(-clip, clip) * confidence[..., None]
    return torch.cat([r, confidence[..., None]], dim=-1)
