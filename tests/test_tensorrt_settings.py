"""TensorRT in the pipeline, up to the ``tensorrt`` import (issue 14, item 2): the config
refuses a CPU model.device with runtime.backend=tensorrt, the backend's outputs come back on
the pipeline's device, and the ``runtime.tensorrt`` keys (precision, persons profile,
calibration set) reach the engine builder from both the node's path and ``refit-ros
export``. TensorRT cannot be installed here: where a test replaces TensorRTRunner, the
replacement only records the arguments it was called with (no engine is built or run)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from refit_ros.config import ConfigError, load_config
from refit_ros import pipeline, runtime
from refit_ros.runtime import tensorrt_backend
from refit_ros.pipeline.models import FittingModel
from refit_ros.runtime.base import BackendError
from refit_ros.export.families import STATE_NAMES, example_camera, family_for
from refit_ros.export.graphs import NEXT

TRT = ["runtime.backend=tensorrt", "model.device=cuda"]


def test_tensorrt_backend_with_a_cpu_device_is_a_config_error_naming_both_keys():
    with pytest.raises(ConfigError, match=r"runtime\.backend=tensorrt needs model\.device=cuda.*"
                                          r"model\.device='cpu'"):
        load_config(None, ["runtime.backend=tensorrt"])
    assert load_config(None, TRT).model.device == "cuda"
    assert load_config(None, ["runtime.backend=tensorrt", "model.device=cuda:1"])
    with pytest.raises(BackendError, match="needs model.device=cuda"):  # backend= override
        pipeline.build_backend(load_config(), backend="tensorrt")


def test_runtime_tensorrt_keys_have_defaults_and_are_validated():
    t = load_config().runtime.tensorrt
    assert (t.precision, t.max_persons, t.opt_persons, t.calibration) == ("fp16", 8, 1, "")
    with pytest.raises(ConfigError, match="runtime.tensorrt.precision"):
        load_config(None, ["runtime.tensorrt.precision=bf16"])
    with pytest.raises(ConfigError, match="runtime.tensorrt.opt_persons"):
        load_config(None, ["runtime.tensorrt.opt_persons=9"])
    with pytest.raises(ConfigError, match="int8 needs runtime.tensorrt.calibration"):
        load_config(None, TRT + ["runtime.tensorrt.precision=int8"])
    with pytest.raises(ConfigError, match="detector.max_people=9 exceeds runtime.tensorrt.max_persons=8"):
        load_config(None, TRT + ["detector.max_people=9"])
    # Only the TensorRT backend needs these to agree.
    assert load_config(None, ["detector.max_people=9"]).detector.max_people == 9


class _CpuRunner:
    """A stage runner computing on the CPU (as TensorRT computes on its CUDA device)."""

    device = torch.device("cpu")

    def run(self, stage, feeds):
        n = next(iter(feeds.values())).shape[0]
        return {s + NEXT: torch.zeros(n, 3) for s in STATE_NAMES}

    def describe(self):
        return {}


def test_backend_outputs_come_back_on_the_pipelines_device():
    """The runner's device and the pipeline's may differ: what the backend returns lives on
    the pipeline's (here ``meta``, the only second device a CPU machine has)."""
    features = SimpleNamespace(feat=torch.zeros(2, 4))
    camera = example_camera(2)
    be = FittingModel(family_for("refit_kp"), _CpuRunner(), "tensorrt", ["feat"],
                        device="meta")
    assert be.device == torch.device("meta")
    state = be.init_state(features, camera)
    assert {getattr(state, n).device.type for n in STATE_NAMES} == {"meta"}
    # Without a device the runner's is used (onnxruntime, the parity path).
    be = FittingModel(family_for("refit_kp"), _CpuRunner(), "onnxruntime", ["feat"])
    assert be.device == torch.device("cpu")
    assert be.init_state(features, camera).pose6d.device.type == "cpu"


class _RecordingRunner(tensorrt_backend.TensorRTRunner):
    """Stands in for TensorRTRunner: records its arguments only (nothing is built)."""

    calls: list = []

    def __init__(self, export_dir, manifest, **kwargs):
        self.feature_names = tuple(manifest.feature_names)
        self.architecture = dict(manifest.architecture)
        _RecordingRunner.calls.append(kwargs)
        self.device = torch.device(str(kwargs.get("device", "cuda")))

    def describe(self):
        return {"recorded": True}


def _manifest():
    return SimpleNamespace(model="refit_kp", feature_names=["feat"], architecture={"crop_size": 256},
                           max_persons=8, backbone="", body="open", opset=18, exporter="dynamo",
                           stages={})


@pytest.fixture
def recording(monkeypatch):
    _RecordingRunner.calls = []
    monkeypatch.setattr(tensorrt_backend, "require_tensorrt", lambda: None)
    monkeypatch.setattr(tensorrt_backend, "TensorRTRunner", _RecordingRunner)  # export cmd
    monkeypatch.setitem(runtime.BACKENDS, "tensorrt", _RecordingRunner)  # the node's path
    return _RecordingRunner.calls


def test_node_path_passes_runtime_tensorrt_keys_and_model_device(recording, monkeypatch, tmp_path):
    from refit_ros.export import cache as auto_export

    calib = tmp_path / "calib.npz"
    monkeypatch.setattr(auto_export, "ensure_export", lambda cfg, build: (tmp_path, _manifest()))
    monkeypatch.setattr(pipeline, "build_body", lambda cfg: SimpleNamespace(to=lambda d: ("body", d)))
    cfg = load_config(None, TRT + ["model.device=cuda:1", "runtime.tensorrt.precision=int8",
                                   "runtime.tensorrt.max_persons=6",
                                   "runtime.tensorrt.opt_persons=2",
                                   f"runtime.tensorrt.calibration={calib}"])
    be = pipeline.build_backend(cfg)
    assert recording == [dict(precision="int8", max_persons=6, calibration=calib, opt_persons=2,
                              device="cuda:1")]
    assert be.device == torch.device("cuda:1") and be.body == ("body", "cuda:1")


def test_export_command_uses_the_same_keys_and_its_flags_override_them(recording, monkeypatch,
                                                                         tmp_path, capsys):
    from refit_ros.cli import main
    from refit_ros.export import onnx as export

    exported = []

    def fake_export_onnx(net, out, **kw):  # records the call; writes nothing
        exported.append(kw)
        return SimpleNamespace(manifest=_manifest(), seconds={})

    monkeypatch.setattr(export, "export_onnx", fake_export_onnx)
    monkeypatch.setattr("refit_ros.pipeline.build_network", lambda cfg, body=None: None)
    base = ["export", "--format", "tensorrt", "--out", str(tmp_path), "--set",
            "runtime.tensorrt.precision=fp32", "--set", "runtime.tensorrt.max_persons=6"]
    assert main(base) == 0
    assert main(base + ["--precision", "fp16", "--max-persons", "3", "--opt-persons", "2",
                        "--calibration", str(tmp_path / "c.npz")]) == 0
    capsys.readouterr()
    assert [(c["precision"], c["max_persons"], c["opt_persons"]) for c in recording] == \
        [("fp32", 6, 1), ("fp16", 3, 2)]
    assert recording[0]["calibration"] is None
    assert recording[1]["calibration"] == Path(tmp_path / "c.npz")
    assert [e["max_persons"] for e in exported] == [6, 3]
