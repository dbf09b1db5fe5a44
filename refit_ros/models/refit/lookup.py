"""Window lookup: sample each marker's own correlation map around its reprojection."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def window_lookup(corr: Tensor, coords: Tensor, radius: int) -> Tensor:
    """Bilinearly sample a ``(2r+1) x (2r+1)`` window of each marker's map.

    Marker ``m`` at feature-map pixel ``(x, y)`` reads channel ``m`` of ``corr`` at
    ``(x + ox, y + oy)`` for ``ox, oy`` in ``-r..r``. Pixel ``i`` sits at coordinate ``i``
    (``align_corners=True``); taps outside the map contribute zero and the remaining
    weights are not renormalised.

    The output order follows the official code: window index ``t = (ox + r) * (2r+1) +
    (oy + r)``, i.e. the **x offset is the outer index** (the transpose of a row-major
    image patch). Checkpoints were trained with this order.

    Parameters
    ----------
    corr : Tensor
        ``B x M x H x W`` one map per marker.
    coords : Tensor
        ``B x M x 2`` marker positions ``(x, y)`` in feature-map pixels.
    radius : int
        Window radius ``r``.

    Returns
    -------
    Tensor
        ``B x M x (2r+1)^2``.
    """
    b, m, h, w = corr.shape
    off = torch.arange(-radius, radius + 1, dtype=coords.dtype, device=coords.device)
    n = off.numel()
    # grid[k, i, j] = (x + off[i], y + off[j]): rows of the sampled patch walk along x.
    gx = coords[..., 0].reshape(b * m, 1, 1) + off.view(1, n, 1)
    gy = coords[..., 1].reshape(b * m, 1, 1) + off.view(1, 1, n)
    grid = torch.stack([2 * gx.expand(-1, n, n) / (w - 1) - 1,
                        2 * gy.expand(-1, n, n) / (h - 1) - 1], dim=-1)
    maps = corr.reshape(b * m, 1, h, w)
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(b, m, n * n)
