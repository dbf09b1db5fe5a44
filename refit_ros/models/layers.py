"""Layers shared by the recurrent regressors: per-head linear maps and GRU cells.

Parameter names and shapes follow the official ReFit code so that its checkpoints load:
``MultiLinear.weight`` is ``n_head x out x in`` and ``MultiLinear.bias`` is ``n_head x out``;
a GRU cell holds three linear maps ``lz``, ``lr`` and ``lq`` over ``[h, x]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class MultiLinear(nn.Module):
    """``n_head`` independent linear maps applied to ``n_head`` input vectors.

    ``out[b, k, i] = sum_j weight[k, i, j] * x[b, k, j] + bias[k, i]``.

    Parameters
    ----------
    n_head : int
        Number of heads (e.g. 24 joints, 67 markers).
    in_features, out_features : int
        Sizes of each head's input and output.
    bias : bool
        Whether each head has a bias.
    """

    def __init__(self, n_head: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.n_head = n_head
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(n_head, out_features, in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(n_head, out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as nn.Linear's default: uniform(+-1/sqrt(fan_in)) with fan_in = in.
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """Apply every head to its own input.

        Parameters
        ----------
        x : Tensor
            ``B x n_head x in_features``.

        Returns
        -------
        Tensor
            ``B x n_head x out_features``.
        """
        out = torch.einsum("kij,bkj->bki", self.weight, x)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return (f"n_head={self.n_head}, in_features={self.in_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


def gru_update(h: Tensor, x: Tensor, lz: nn.Module, lr: nn.Module, lq: nn.Module) -> Tensor:
    """One GRU update with separate gate maps (shared by :class:`GRU` and :class:`MultiGRU`).

    ``z = sigmoid(lz[h, x])``, ``r = sigmoid(lr[h, x])``, ``q = tanh(lq[r * h, x])`` and
    ``h' = (1 - z) * h + z * q``.

    Parameters
    ----------
    h : Tensor
        ``... x H`` hidden state.
    x : Tensor
        ``... x D`` input (same leading shape as ``h``).

    Returns
    -------
    Tensor
        ``... x H`` new hidden state.
    """
    hx = torch.cat([h, x], dim=-1)
    z = torch.sigmoid(lz(hx))
    r = torch.sigmoid(lr(hx))
    q = torch.tanh(lq(torch.cat([r * h, x], dim=-1)))
    return (1 - z) * h + z * q


class GRU(nn.Module):
    """A GRU cell over one stream (``B x H`` hidden, ``B x D`` input)."""

    def __init__(self, hidden_dim: int, input_dim: int):
        super().__init__()
        self.lz = nn.Linear(hidden_dim + input_dim, hidden_dim)
        self.lr = nn.Linear(hidden_dim + input_dim, hidden_dim)
        self.lq = nn.Linear(hidden_dim + input_dim, hidden_dim)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        """``h``: ``B x H``, ``x``: ``B x D`` -> ``B x H``."""
        return gru_update(h, x, self.lz, self.lr, self.lq)


class MultiGRU(nn.Module):
    """``n_head`` GRU cells with their own weights (``B x n_head x H`` hidden)."""

    def __init__(self, n_head: int, hidden_dim: int, input_dim: int):
        super().__init__()
        self.lz = MultiLinear(n_head, hidden_dim + input_dim, hidden_dim)
        self.lr = MultiLinear(n_head, hidden_dim + input_dim, hidden_dim)
        self.lq = MultiLinear(n_head, hidden_dim + input_dim, hidden_dim)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        """``h``: ``B x n_head x H``, ``x``: ``B x n_head x D`` -> ``B x n_head x H``."""
        return gru_update(h, x, self.lz, self.lr, self.lq)
