"""Adding a runtime touches one file (issue 15): this one.

A toy runtime -- the stage graphs run as plain PyTorch modules in float64, counting its
calls -- is a :class:`~refit_ros.runtime.base.Backend` subclass registered in the lookup
table. The config accepts its name, the pipeline builds on it, and the whole frame
(preprocessing, fit check, warm starts: the family's) runs through it.
"""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
import torch

from refit_ros import runtime
from refit_ros.config import load_config
from refit_ros.export.families import family_of
from refit_ros.export.graphs import build_stage_graphs, stage_io_names
from refit_ros.runtime.base import Backend, ModelSource


class ToyBackend(Backend):
    """The stage graphs in float64 (outputs back in float32)."""

    name = "toy"
    calls: Counter = Counter()

    def __init__(self, net, device):
        net = copy.deepcopy(net)  # its own float64 weights; the caller's stay float32
        family = family_of(net)
        self.device = torch.device(device)
        self.feature_names = tuple(family.feature_names(net))
        self.architecture = dict(family.describe(net))
        self.graphs = {k: g.double() for k, g in build_stage_graphs(net, family).items()}
        self.io = stage_io_names(net, family)

    @classmethod
    def load(cls, source: ModelSource, device=None, **options):
        return cls(source.require_network(cls.name), device or "cpu")

    def run(self, stage, feeds):
        ToyBackend.calls[stage] += 1
        names, outputs = self.io[stage]
        with torch.inference_mode():
            out = self.graphs[stage](*[feeds[n].double() for n in names])
        return {n: t.float() for n, t in zip(outputs, out)}


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(runtime.BACKENDS, "toy", ToyBackend)
    ToyBackend.calls.clear()
    return ToyBackend.calls


def test_a_registered_runtime_runs_the_pipeline(toy):
    from refit_ros.bench.network import synthetic_frame
    from refit_ros.pipeline import build_pipeline

    cfg = load_config(None, ["runtime.backend=toy", "tracking.warm_max_error=0.01"])
    pipe = build_pipeline(cfg)
    assert pipe.model.describe()["backend"] == "toy" and pipe.model.has_fit_check
    image, dets = synthetic_frame(2)

    class Stub:
        def detect(self, image_rgb, stamp=0.0):
            return dets

    pipe.detector = Stub()
    for k in range(3):  # one cold frame, then warm frames with the fit check
        result = pipe.process(image, stamp=k / 30)
        assert len(result.bodies) == 2
        assert all(np.isfinite(b.vertices).all() for b in result.bodies)
    assert toy["encoder"] == 3 and toy["init"] >= 1 and toy["step"] > 3


def test_the_toy_runtime_agrees_with_torch(toy):
    from refit_ros.pipeline import build_backend, build_network

    cfg = load_config(None, ["runtime.backend=toy"])
    net = build_network(cfg)
    toy_model = build_backend(cfg, net)
    torch_model = build_backend(cfg, net, backend="torch")
    from refit_ros.bench.network import synthetic_frame
    from refit_ros.geometry.camera import CropCamera
    from refit_ros.geometry.crop import square_boxes
    from refit_ros.geometry.intrinsics import Intrinsics

    image, dets = synthetic_frame(2)
    c, s = square_boxes(np.array([d.bbox for d in dets]))
    cam = CropCamera.from_intrinsics(torch.tensor(c, dtype=torch.float32),
                                     torch.tensor(s, dtype=torch.float32),
                                     [Intrinsics.fallback(1280, 720)] * 2)
    states = []
    for m in (toy_model, torch_model):
        f = m.encode(image, dets, cam)
        s_ = m.init_state(f, cam)
        for _ in range(3):
            s_ = m.step(s_, f, cam)
        states.append(s_)
    torch.testing.assert_close(states[0].pose6d, states[1].pose6d, atol=1e-4, rtol=0)
