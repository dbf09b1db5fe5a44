"""BiDRN building blocks: 1-bit layers, their gradients, packed storage, XNOR-popcount, OPs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from refit_ros.models.bidrn.binary import (BinaryBlock, BinaryLinear, BinaryResidualLinear,
                                           binary_sign, resize_features, sign_ste)
from refit_ros.models.bidrn.ops import count_ops, count_parameters
from refit_ros.models.bidrn.packing import (binary_linear_numpy, load_packed, pack_signs,
                                            pack_words, packed_bytes, save_packed,
                                            unpack_signs, xnor_popcount_matmul)


def test_sign_is_a_bit_and_its_gradient_is_clipped_straight_through():
    x = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.5, 1.0, 3.0], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]
    assert torch.equal(binary_sign(torch.zeros(3)), torch.ones(3))


def _random_layer(in_f: int, out_f: int, seed: int, move: float) -> BinaryLinear:
    """A BinaryLinear with nonzero thresholds and biases (both start at zero)."""
    torch.manual_seed(seed)
    layer = BinaryLinear(in_f, out_f)
    with torch.no_grad():
        layer.move.uniform_(-move, move)
        layer.bias.uniform_(-1, 1)
    return layer


def test_binary_linear_is_an_integer_product_rescaled_and_trains_every_part():
    layer = _random_layer(37, 11, seed=0, move=0.2)
    x = torch.randn(5, 37)
    y = layer(x)
    a = torch.where(x - layer.move >= 0, 1.0, -1.0)
    w = torch.where(layer.weight >= 0, 1.0, -1.0)
    dot = a @ w.T
    assert torch.equal(dot, dot.round()) and dot.abs().max() <= 37
    assert torch.allclose(y, dot * layer.scale + layer.bias, atol=1e-6)
    y.square().sum().backward()
    for p in (layer.weight, layer.scale, layer.move, layer.bias):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_from_linear_keeps_signs_and_row_scales():
    lin = nn.Linear(8, 3)
    b = BinaryLinear.from_linear(lin)
    assert torch.equal(b.weight_signs(), torch.where(lin.weight >= 0, 1.0, -1.0))
    assert torch.allclose(b.scale, lin.weight.abs().mean(1)) and torch.equal(b.bias, lin.bias)


def test_residual_shortcut_tiles_or_averages_without_parameters():
    x = torch.arange(6, dtype=torch.float32)[None]
    assert resize_features(x, 6) is x
    assert resize_features(x, 14).tolist() == [[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1]]
    assert resize_features(x, 3).tolist() == [[0.5, 2.5, 4.5]]
    assert resize_features(x, 4).tolist() == [[0.5, 2.5, 4.5, 0.0]]  # zero-padded group
    layer = BinaryResidualLinear(6, 14)
    with torch.no_grad():
        layer.binary.scale.zero_()
    assert torch.equal(layer(x), resize_features(x, 14))
    assert sum(p.numel() for p in layer.parameters()) == sum(
        p.numel() for p in layer.binary.parameters())


def test_block_residual_is_identity_when_the_binary_layers_are_silent():
    block = BinaryBlock(16, depth=3)
    for layer in block.layers:
        with torch.no_grad():
            layer.binary.scale.zero_()
    x = torch.randn(4, 16)
    # each silent layer passes its (hardtanh'd) input on; the block adds its input back
    h = x
    for i in range(3):
        h = h if i == 0 else torch.nn.functional.hardtanh(h)
    assert torch.allclose(block(x), x + h)


@pytest.mark.parametrize("k", [1, 7, 8, 63, 64, 65, 200])
def test_bits_round_trip_and_xnor_popcount_is_exact(k):
    rng = np.random.default_rng(k)
    w = np.where(rng.standard_normal((9, k)) >= 0, 1.0, -1.0).astype(np.float32)
    a = np.where(rng.standard_normal((4, k)) >= 0, 1.0, -1.0).astype(np.float32)
    assert np.array_equal(unpack_signs(pack_signs(w), k), w)
    assert pack_signs(w).shape == (9, -(-k // 8))
    got = xnor_popcount_matmul(pack_words(a), pack_words(w), k)
    assert got.dtype == np.int32 and np.array_equal(got, (a @ w.T).astype(np.int32))


def test_numpy_popcount_layer_equals_the_torch_layer():
    layer = _random_layer(130, 40, seed=1, move=0.3)
    x = torch.randn(6, 130)
    with torch.no_grad():
        ref = layer(x).numpy()
    assert np.allclose(binary_linear_numpy(layer, x.numpy()), ref, atol=1e-5)


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(10, 20)
        self.mid = BinaryResidualLinear(20, 30)
        self.block = BinaryBlock(30, depth=2)
        self.last = nn.Linear(30, 4)

    def forward(self, x):
        return self.last(self.block(self.mid(self.first(x))))


def test_packed_file_loads_back_bit_exact_and_is_small(tmp_path):
    torch.manual_seed(2)
    model = _Toy()
    for m in model.modules():
        if isinstance(m, BinaryLinear):
            with torch.no_grad():
                m.move.uniform_(-0.1, 0.1)
    path = save_packed(model, tmp_path / "toy.npz")
    fresh = load_packed(_Toy(), path)
    x = torch.randn(3, 10)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        if name.endswith("binary.weight"):
            assert torch.equal(binary_sign(a), b)  # signs kept, magnitudes dropped
        else:
            assert torch.equal(a, b), name
    binary = count_parameters(model).binary_params
    assert binary == 20 * 30 + 2 * 30 * 30
    full = sum(p.numel() * 4 for p in model.state_dict().values())
    bits = 30 * 3 + 2 * 30 * 4  # rows padded to whole bytes: 20 -> 3, 30 -> 4 bytes
    assert packed_bytes(model) == full - binary * 4 + bits
    assert path.stat().st_size < full


def test_ops_follow_bidrns_convention_and_count_every_call():
    model = _Toy()
    x = torch.randn(2, 10)
    c = count_ops(model, lambda: model(x), batch=2)
    assert c.bops == 20 * 30 + 2 * 30 * 30
    binary_extra = (20 + 2 * 30) + 2 * (30 + 2 * 30)
    assert c.flops == 10 * 20 + 30 * 4 + binary_extra
    assert c.ops == c.bops / 64 + c.flops
    twice = count_ops(model, lambda: (model(x), model(x)), batch=2)
    assert twice.bops == 2 * c.bops
