"""The node's torch path: eager on the CPU, the CUDA-graph runner on CUDA (issue 14, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from refit_ros.config import load_config
from refit_ros.detect.base import Detection
from refit_ros.evaluation.temporal import ReplayDetector
from refit_ros.geometry.intrinsics import Intrinsics


def _frames(n: int) -> dict:
    rng = np.random.default_rng(3)
    base = np.concatenate([rng.uniform(520, 680, (33, 2)), rng.uniform(0.8, 1, (33, 1))], -1)
    out = {}
    for k in range(n):
        kp = base.copy()
        kp[:, :2] += rng.normal(0.0, 3.0, (33, 2)) + 3.0 * k
        out[ReplayDetector.key(k / 30)] = [Detection(
            bbox=np.array([480 + 3 * k, 380 + 3 * k, 720 + 3 * k, 820 + 3 * k], np.float32),
            score=0.9, keypoints2d=kp.astype(np.float32))]
    return out


def _run(cfg, frames) -> list[np.ndarray]:
    from refit_ros.pipeline import build_pipeline

    detector = ReplayDetector()
    detector.load(frames)
    pipe = build_pipeline(cfg, detector=detector)
    image = np.zeros((1080, 1280, 3), np.uint8)
    intr = Intrinsics(1200.0, 1200.0, 640.0, 540.0, 1280, 1080)
    return [pipe.process(image, intr, k / 30).bodies[0].joints for k in range(len(frames))], pipe


def test_torch_backend_on_the_cpu_is_the_torch_runner_without_cuda_graphs():
    from refit_ros.pipeline import build_fitting_model
    from refit_ros.runtime.torch_backend import TorchRunner

    model = build_fitting_model(load_config(None, ["runtime.backend=torch"]))
    assert isinstance(model.runner, TorchRunner) and model.describe()["cuda_graphs"] == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_backend_on_cuda_runs_the_cuda_graph_runner_and_agrees_with_the_cpu():
    from refit_ros.runtime.torch_backend import TorchRunner

    frames = _frames(5)
    cpu, _ = _run(load_config(None, ["runtime.backend=torch"]), frames)
    gpu, pipe = _run(load_config(None, ["runtime.backend=torch", "model.device=cuda"]), frames)
    assert isinstance(pipe.model.runner, TorchRunner)
    described = pipe.model.runner.describe()
    assert described["device"].startswith("cuda")
    assert {"init", "step"} <= set(described["cuda_graphs"]), described
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a, b, atol=2e-3)   # metres; TF32/cuBLAS vs CPU float32
