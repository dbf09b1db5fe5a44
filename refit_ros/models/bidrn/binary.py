"""Binarized layers in BiDRN's design (arXiv 2311.14323), for fully connected networks.

A binarized linear map takes the sign of its input and the sign of its weights, so the
matrix product is an integer (``+-1 . +-1`` sums: XNOR + popcount on hardware that has it,
exact in INT8 elsewhere), then restores a real range with learnable per-output scales:

    y = (sign(hardtanh(x - move)) @ sign(W)^T) * scale + bias

- ``sign(0) = +1`` everywhere (torch.sign would give 0, which is not a bit);
- straight-through estimators: the input's gradient passes where ``|x - move| <= 1`` (the
  Hardtanh before the sign), the latent weight's where ``|W| <= 1``;
- ``move`` (per input) and ``scale`` / ``bias`` (per output) stay real-valued.

BiDRN keeps full-precision information flowing around every binarized layer (Local
Convolution Residual, LCR; here :class:`BinaryResidualLinear`, with parameter-free tiling or
group-averaging where the width changes, BiDRN's "dedicated modules") and around every block
(Block Residual, :class:`BinaryBlock`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def binary_sign(x: Tensor) -> Tensor:
    """``+1`` where ``x >= 0``, ``-1`` elsewhere (same dtype as ``x``)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class _SignSTE(torch.autograd.Function):
    """Forward :func:`binary_sign`; backward passes the gradient where ``|x| <= 1``."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D401 - autograd signature
        ctx.save_for_backward(x)
        return binary_sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def sign_ste(x: Tensor) -> Tensor:
    """Binarize with a straight-through (clipped identity) gradient."""
    return _SignSTE.apply(x)


class BinaryLinear(nn.Module):
    """``in_features -> out_features`` with 1-bit weights and 1-bit inputs.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool

    Attributes
    ----------
    weight : Parameter, out x in
        Latent real-valued weights; only their signs are used.
    scale : Parameter, out
        Real-valued output scale (initialised to the mean ``|W|`` of each row).
    move : Parameter, in
        Learnable threshold subtracted from the input before its sign.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.scale = nn.Parameter(torch.empty(out_features))
        self.move = nn.Parameter(torch.zeros(in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        with torch.no_grad():
            self.scale.copy_(self.weight.abs().mean(dim=1))
            if self.bias is not None:
                self.bias.zero_()

    def input_signs(self, x: Tensor) -> Tensor:
        """``sign(hardtanh(x - move))`` as +-1 floats, ``... x in``."""
        return sign_ste(x - self.move)

    def weight_signs(self) -> Tensor:
        """``sign(W)`` as +-1 floats, ``out x in`` (gradient: clipped straight-through)."""
        return sign_ste(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        y = F.linear(self.input_signs(x), self.weight_signs()) * self.scale
        return y if self.bias is None else y + self.bias

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "BinaryLinear":
        """A binarized copy of ``linear`` (latent weights = its weights, scale = mean |W|)."""
        out = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            out.weight.copy_(linear.weight)
            out.scale.copy_(linear.weight.abs().mean(dim=1))
            if linear.bias is not None:
                out.bias.copy_(linear.bias)
        return out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, 1-bit"


def resize_features(x: Tensor, width: int) -> Tensor:
    """Parameter-free width change of the shortcut (BiDRN's dedicated LCR modules).

    Wider: the input tiled (``[x, x, ...]`` cut to ``width``); narrower: the mean of
    consecutive groups (the input zero-padded to a multiple of ``width`` first).
    """
    n = x.shape[-1]
    if width == n:
        return x
    if width > n:
        reps = -(-width // n)
        return x.repeat(*([1] * (x.dim() - 1)), reps)[..., :width]
    group = -(-n // width)
    padded = F.pad(x, (0, group * width - n))
    return padded.reshape(*x.shape[:-1], width, group).mean(dim=-1)


class BinaryResidualLinear(nn.Module):
    """A binarized linear map with its Local Residual: ``y = binary(x) + resize(x)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.binary = BinaryLinear(in_features, out_features, bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.binary(x) + resize_features(x, self.binary.out_features)


class BinaryBlock(nn.Module):
    """``depth`` binarized residual layers of width ``width`` with a Block Residual around
    them: ``y = x + layers(x)``; Hardtanh between layers keeps activations in the range the
    next sign reads."""

    def __init__(self, width: int, depth: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(BinaryResidualLinear(width, width) for _ in range(depth))

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h if i == 0 else F.hardtanh(h))
        return x + h
