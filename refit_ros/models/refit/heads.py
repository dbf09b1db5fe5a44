"""ReFit's small heads: the per-marker correlation head, the GRU update and the regressor.

Module and parameter names follow the official code (``corr_layer``, ``update_block``
with ``pose_gru``/``shape_gru``/``cam_gru``, ``regressor`` with ``p``/``s``/``c`` and the
``decpose``/``decshape``/``deccam`` decoders) so official checkpoints load.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from refit_ros.models.layers import GRU, MultiGRU, MultiLinear

#: SMPL joints, each with its own pose stream.
N_JOINTS = 24
#: Values of the bbox feature appended to the regressor input.
BBOX_DIM = 3


def corr_head(in_dim: int, n_maps: int, num_layers: int = 2, planes: int = 256) -> nn.Sequential:
    """``num_layers`` x [conv3x3 -> BN -> ReLU] then conv1x1 to one map per marker.

    Parameters
    ----------
    in_dim : int
        Channels of the backbone feature map.
    n_maps : int
        Output maps (markers x point_dim).
    """
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        layers += [nn.Conv2d(in_dim, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes),
                   nn.ReLU()]
        in_dim = planes
    layers.append(nn.Conv2d(in_dim, n_maps, 1, 1, 0, bias=False))
    return nn.Sequential(*layers)


class UpdateBlock(nn.Module):
    """26 GRU streams: one per joint (a 24-head MultiGRU), one for shape, one for camera."""

    def __init__(self, input_dim: int, hidden_dim: int = 32):
        super().__init__()
        self.pose_gru = MultiGRU(N_JOINTS, hidden_dim, input_dim)
        self.shape_gru = GRU(hidden_dim, input_dim)
        self.cam_gru = GRU(hidden_dim, input_dim)

    def forward(self, hpose: Tensor, hshape: Tensor, hcam: Tensor,
                x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Update the hidden states.

        Parameters
        ----------
        hpose : Tensor
            ``B x 24 x H``.
        hshape, hcam : Tensor
            ``B x H``.
        x : Tensor
            ``B x D`` step input ``[local, bbox_info, pose6d, betas, cam]``.

        Returns
        -------
        tuple of Tensor
            New ``hpose``, ``hshape``, ``hcam``.
        """
        xp = x[:, None, :].expand(-1, hpose.shape[1], -1)
        return self.pose_gru(hpose, xp), self.shape_gru(hshape, x), self.cam_gru(hcam, x)


def _mlp(num_layers: int, in_dim: int, hidden_dim: int, n_head: int | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        lin = nn.Linear(in_dim, hidden_dim) if n_head is None else MultiLinear(n_head, in_dim,
                                                                               hidden_dim)
        layers += [lin, nn.ReLU()]
        in_dim = hidden_dim
    return nn.Sequential(*layers)


class Regressor(nn.Module):
    """Decode hidden states (+ bbox feature) into pose/shape/camera updates."""

    def __init__(self, hidden_dim: int = 32, num_layers: int = 1, pose_dim: int = 6):
        super().__init__()
        in_dim = hidden_dim + BBOX_DIM
        self.p = _mlp(num_layers, in_dim, hidden_dim, N_JOINTS)
        self.s = _mlp(num_layers, in_dim, hidden_dim, None)
        self.c = _mlp(num_layers, in_dim, hidden_dim, None)
        self.decpose = MultiLinear(N_JOINTS, hidden_dim, pose_dim)
        self.decshape = nn.Linear(hidden_dim, 10)
        self.deccam = nn.Linear(hidden_dim, 3)

    def forward(self, hpose: Tensor, hshape: Tensor, hcam: Tensor,
                bbox_info: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Updates from hidden states.

        Parameters
        ----------
        hpose : Tensor
            ``B x 24 x H``.
        hshape, hcam : Tensor
            ``B x H``.
        bbox_info : Tensor
            ``B x 3``.

        Returns
        -------
        d_pose : Tensor
            ``B x 144``.
        d_shape : Tensor
            ``B x 10``.
        d_cam : Tensor
            ``B x 3``.
        """
        b = hpose.shape[0]
        hp = torch.cat([hpose, bbox_info[:, None, :].expand(-1, hpose.shape[1], -1)], dim=-1)
        d_pose = self.decpose(self.p(hp)).reshape(b, -1)
        d_shape = self.decshape(self.s(torch.cat([hshape, bbox_info], dim=-1)))
        d_cam = self.deccam(self.c(torch.cat([hcam, bbox_info], dim=-1)))
        return d_pose, d_shape, d_cam
