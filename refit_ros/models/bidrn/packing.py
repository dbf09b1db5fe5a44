"""1-bit storage of binarized weights and the CPU XNOR-popcount product.

Packed file (``.npz``, no pickle): for every :class:`~refit_ros.models.bidrn.binary.BinaryLinear`
``<name>.bits`` (uint8, ``out x ceil(in / 8)``, bit ``j`` of a row = ``W[:, j] >= 0``, little
bit order) and its real-valued ``scale`` / ``move`` / ``bias`` in float32; every other
parameter or buffer in its own dtype; ``__manifest__`` (JSON) lists the binarized layers
and their shapes. Loading gives back the same signs and the same floats, bit for bit;
latent weight magnitudes are not kept (they only matter for further training).

XNOR-popcount: with ``a, w`` in ``{-1, +1}^K`` stored as bits (1 = +1),
``a . w = K - 2 * popcount(a XOR w)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from refit_ros.models.bidrn.binary import BinaryLinear

MANIFEST = "__manifest__"


def pack_signs(signs: np.ndarray) -> np.ndarray:
    """``N x K`` array of +-1 (or any reals: bit = ``value >= 0``) -> ``N x ceil(K/8)`` uint8."""
    return np.packbits(np.asarray(signs) >= 0, axis=-1, bitorder="little")


def unpack_signs(bits: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`pack_signs`: ``N x K`` float32 of +-1."""
    b = np.unpackbits(bits, axis=-1, count=k, bitorder="little")
    return b.astype(np.float32) * 2.0 - 1.0


def _packed_arrays(model: nn.Module) -> tuple[dict[str, np.ndarray], dict[str, list[int]]]:
    """The arrays of the packed file (BinaryLinear weights as bits) and the manifest."""
    binary = {name for name, m in model.named_modules() if isinstance(m, BinaryLinear)}
    arrays: dict[str, np.ndarray] = {}
    manifest = {}
    for name, tensor in model.state_dict().items():
        owner, _, leaf = name.rpartition(".")
        if owner in binary and leaf == "weight":
            arrays[f"{owner}.bits"] = pack_signs(tensor.detach().cpu().numpy())
            manifest[owner] = list(tensor.shape)
        else:
            arrays[name] = tensor.detach().cpu().numpy()
    return arrays, manifest


def save_packed(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s state with every BinaryLinear weight as bits; returns the path."""
    path = Path(path)
    arrays, manifest = _packed_arrays(model)
    arrays[MANIFEST] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_packed(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a :func:`save_packed` file into ``model`` (same architecture); latent weights
    become +-1 (their signs); returns ``model``."""
    with np.load(Path(path), allow_pickle=False) as data:
        manifest = json.loads(bytes(data[MANIFEST]).decode())
        state = {}
        for key in data.files:
            if key == MANIFEST:
                continue
            if key.endswith(".bits"):
                owner = key[: -len(".bits")]
                out_f, in_f = manifest[owner]
                state[f"{owner}.weight"] = torch.from_numpy(unpack_signs(data[key], in_f))
            else:
                state[key] = torch.from_numpy(np.array(data[key]))
    model.load_state_dict(state)
    return model


def packed_bytes(model: nn.Module) -> int:
    """Size of :func:`save_packed`'s arrays for ``model`` (uncompressed, manifest aside)."""
    return sum(a.nbytes for a in _packed_arrays(model)[0].values())


# ----------------------------------------------------------------- XNOR-popcount
def pack_words(signs: np.ndarray) -> np.ndarray:
    """``N x K`` +-1 -> ``N x ceil(K/64)`` uint64 words (pad bits 0 on both operands)."""
    bits = pack_signs(signs)
    pad = (-bits.shape[-1]) % 8
    if pad:
        bits = np.pad(bits, [(0, 0)] * (bits.ndim - 1) + [(0, pad)])
    return np.ascontiguousarray(bits).view(np.uint64)


def xnor_popcount_matmul(a_words: np.ndarray, w_words: np.ndarray, k: int) -> np.ndarray:
    """``(B x K) . (N x K)^T`` of +-1 matrices from their words: ``B x N`` int32.

    The padding bits are 0 in both operands, so their XOR is 0 and they count for nothing.
    """
    xor = np.bitwise_xor(a_words[:, None, :], w_words[None, :, :])
    ones = np.bitwise_count(xor).sum(axis=-1, dtype=np.int32)
    return k - 2 * ones


def binary_linear_numpy(layer: BinaryLinear, x: np.ndarray,
                        w_words: np.ndarray | None = None) -> np.ndarray:
    """:class:`BinaryLinear` on the CPU with XNOR-popcount: ``B x in`` -> ``B x out``."""
    move = layer.move.detach().cpu().numpy()
    a = pack_words(x - move)
    if w_words is None:
        w_words = pack_words(layer.weight.detach().cpu().numpy())
    dot = xnor_popcount_matmul(a, w_words, layer.in_features).astype(np.float32)
    y = dot * layer.scale.detach().cpu().numpy()
    if layer.bias is not None:
        y = y + layer.bias.detach().cpu().numpy()
    return y
