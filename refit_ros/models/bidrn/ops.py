"""Parameters and operations in BiDRN's convention: ``OPs = BOPs / 64 + FLOPs``.

BOPs are the binary multiply-accumulates of binarized layers (one XNOR-popcount lane each; a
64-bit word does 64); FLOPs are the real-valued multiply-accumulates of every other layer,
plus each binarized layer's real-valued per-element work (threshold, scale, bias). Counted
per call by forward hooks, so a layer run 5 times in a loop counts 5 times.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from torch import nn

from refit_ros.models.bidrn.binary import BinaryLinear
from refit_ros.models.layers import MultiLinear


@dataclasses.dataclass
class OpCount:
    """Per-sample counts of one forward run."""

    binary_params: int = 0
    float_params: int = 0
    bops: int = 0
    flops: int = 0

    @property
    def ops(self) -> float:
        """BiDRN's OPs: ``bops / 64 + flops``."""
        return self.bops / 64 + self.flops

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "ops": self.ops}


def count_parameters(model: nn.Module) -> OpCount:
    """Binary (1-bit weights of BinaryLinear) vs real-valued parameters."""
    count = OpCount()
    binary = {id(m.weight) for m in model.modules() if isinstance(m, BinaryLinear)}
    for p in model.parameters():
        if id(p) in binary:
            count.binary_params += p.numel()
        else:
            count.float_params += p.numel()
    return count


def count_ops(model: nn.Module, run: Callable[[], object], batch: int = 1) -> OpCount:
    """Count the operations of ``run()`` (a call of ``model`` on ``batch`` samples), per sample."""
    count = count_parameters(model)

    def hook(module, inputs, output) -> None:
        rows = inputs[0].numel() // inputs[0].shape[-1]
        if isinstance(module, BinaryLinear):
            count.bops += rows * module.in_features * module.out_features
            count.flops += rows * (module.in_features + 2 * module.out_features)
        elif isinstance(module, nn.Linear):
            count.flops += rows * module.in_features * module.out_features
        elif isinstance(module, MultiLinear):
            # inputs: B x n_head x in -> rows already counts the heads
            count.flops += rows * module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (BinaryLinear, nn.Linear, MultiLinear))]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    count.bops //= batch
    count.flops //= batch
    return count
