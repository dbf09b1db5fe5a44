"""``runtime.backend`` in the pipeline: auto choice, the export cache, and ORT == torch.

The export logic tests replace the (25 s) ONNX export by a recorder; the equality test
uses the real export of the shipped weights in the per-user cache (made by ``make setup``,
else here on first use).
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import yaml
from conftest import require_module, require_ros

from refit_ros.config import ConfigError, load_config
from refit_ros.export import cache as auto_export
from refit_ros.pipeline import build_backend, resolve_backend
from refit_ros.runtime.base import BackendError
from refit_ros.export.onnx import (STAGES, ExportManifest, StageFile, sha256_file,
                                      write_manifest)


def _cfg(*overrides):
    return load_config(None, list(overrides))


def test_auto_backend_is_onnxruntime_for_refit_kp_on_cpu_only():
    require_module("onnxruntime")
    assert resolve_backend(_cfg()) == "onnxruntime"
    assert resolve_backend(_cfg("model.name=refit")) == "torch"
    assert resolve_backend(_cfg("model.device=cuda")) == "torch"
    assert resolve_backend(_cfg("runtime.backend=torch")) == "torch"
    assert resolve_backend(_cfg("model.name=refit", "runtime.backend=onnxruntime")) == "onnxruntime"
    with pytest.raises(ConfigError, match="runtime.backend"):
        _cfg("runtime.backend=tflite")
    with pytest.raises(ConfigError, match="runtime.threads"):
        _cfg("runtime.threads=-1")


def test_default_export_dir_is_per_model_under_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("REFIT_ROS_CACHE", str(tmp_path / "c"))
    assert auto_export.default_export_dir(_cfg()) == tmp_path / "c/export/refit_kp-open"
    assert auto_export.default_export_dir(_cfg("model.name=refit", "body.model=smpl",
                                               "model.backbone=hrnet_w32")) == \
        tmp_path / "c/export/refit-smpl-hrnet_w32"
    monkeypatch.delenv("REFIT_ROS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert auto_export.cache_root() == tmp_path / "xdg/refit_ros"


def _fake_export(calls):
    """Stands in for export_onnx: writes a manifest-only 'export' (no stage files)."""

    def fake(net, out, *, body, iterations, weights, **kw):
        calls.append({"out": out, "weights": dict(weights), "iterations": iterations})
        stages = {}
        for stage in STAGES:
            path = out / f"{stage}.onnx"
            path.write_bytes(stage.encode())
            stages[stage] = StageFile(path.name, sha256_file(path), [], [])
        m = ExportManifest(model="refit_kp", backbone="keypoints", body=body,
                           iterations=iterations, opset=18, exporter="dynamo",
                           weights=dict(weights), feature_names=["landmarks"], stages=stages,
                           architecture={"crop_size": 256}, max_persons=8)
        write_manifest(m, out)

    return fake


def test_cache_exports_once_then_reuses_and_refreshes_on_new_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("REFIT_ROS_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(auto_export, "export_onnx", _fake_export(calls))
    built = []

    def net():
        built.append(1)
        return object()

    cfg = _cfg()
    out, m = auto_export.ensure_export(cfg, net)
    assert out == tmp_path / "export/refit_kp-open" and len(calls) == 1 and len(built) == 1
    assert m.weights["sha256"] == auto_export.weights_record(cfg)["sha256"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".refit_kp-open-")]  # tmp gone
    auto_export.ensure_export(cfg, net)
    assert len(calls) == 1 and len(built) == 1  # current: reused, network not even built

    # Same bytes elsewhere: same sha256, reused. Other bytes: re-exported.
    same = tmp_path / "same.pt"
    shutil.copy(auto_export.weights_path(cfg), same)
    auto_export.ensure_export(_cfg(f"model.weights={same}"), net)
    assert len(calls) == 1
    other = tmp_path / "other.pt"
    other.write_bytes(same.read_bytes() + b"\0")
    auto_export.ensure_export(_cfg(f"model.weights={other}"), net)
    assert len(calls) == 2 and calls[1]["weights"]["source"] == str(other)
    # ... and a changed iteration count too (export.yaml records it).
    auto_export.ensure_export(_cfg(f"model.weights={other}", "model.iterations=3"), net)
    assert len(calls) == 3 and calls[2]["iterations"] == 3


def test_a_user_export_dir_from_other_weights_is_refused_not_overwritten(monkeypatch, tmp_path):
    require_module("onnxruntime")
    calls = []
    monkeypatch.setattr(auto_export, "export_onnx", _fake_export(calls))
    auto_export.ensure_export(_cfg(), lambda: None, tmp_path)
    manifest = tmp_path / "export.yaml"
    raw = yaml.safe_load(manifest.read_text())
    raw["weights"]["sha256"] = "0" * 64
    manifest.write_text(yaml.safe_dump(raw))
    with pytest.raises(BackendError, match="exported from .* --force"):
        build_backend(_cfg(f"runtime.export_dir={tmp_path}", "runtime.backend=onnxruntime"))
    assert len(calls) == 1 and yaml.safe_load(manifest.read_text())["weights"]["sha256"] == "0" * 64


def test_pipeline_on_onnxruntime_equals_torch_on_a_real_person():
    """The default pipeline (auto -> ONNX Runtime, real export of the shipped weights)
    recovers the same bodies as torch, cold and warm, fit check included."""
    require_module("onnxruntime")
    from skimage import data

    from refit_ros.pipeline import build_pipeline

    image = data.astronaut()
    shifted = np.ascontiguousarray(np.roll(image, 6, axis=1))
    results = {}
    for backend in ("auto", "torch"):
        pipe = build_pipeline(_cfg(f"runtime.backend={backend}"))
        assert pipe.model.describe()["backend"] == ("onnxruntime" if backend == "auto" else "torch")
        assert pipe.model.has_fit_check  # the warm-start check works on every backend
        results[backend] = [pipe.process(img, stamp=k / 30) for k, img in
                            enumerate([image, shifted, image])]
    for r_ort, r_torch in zip(results["auto"], results["torch"]):
        assert len(r_ort.bodies) == len(r_torch.bodies) == 1
        b_o, b_t = r_ort.bodies[0], r_torch.bodies[0]
        assert b_o.track_id == b_t.track_id
        np.testing.assert_allclose(b_o.joints, b_t.joints, atol=2e-4)  # metres
        np.testing.assert_allclose(b_o.transl, b_t.transl, atol=2e-4)


def test_bench_pipeline_json_on_a_real_clip(tmp_path, capsys):
    require_ros()  # the serialised messages are part of each frame's time
    from skimage import data

    from refit_ros.cli import main

    clip = tmp_path / "clip.mp4"
    rgb = data.astronaut()
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (512, 512))
    for k in range(4):
        writer.write(np.ascontiguousarray(np.roll(rgb, 4 * k, axis=1)[:, :, ::-1]))
    writer.release()
    rc = main(["bench", "pipeline", str(clip), "--size", "320x240", "--crop", "0,64,512,448",
               "--frames", "6", "--warmup", "1", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == [320, 240] and report["crop"] == [0, 64, 512, 448]
    assert set(report["modes"]) == {"cold", "warm"}
    for mode in report["modes"].values():
        assert mode["frames"] == 6 and mode["people_per_frame"] == {"1": 6}
        assert mode["one_person"]["frames"] == 6
        # FPS is frames over the summed decode + pipeline + messages time
        assert mode["fps"] == pytest.approx(1e3 / mode["frame"]["mean_ms"], rel=0.02)
        assert mode["messages"] is not None and mode["messages"]["median_ms"] > 0
        assert {"detect", "encode", "iterate", "body"} <= set(mode["pipeline_stages_median_ms"])
    assert main(["bench", "pipeline", str(clip), "--size", "640"]) == 2
    assert "--size must be WxH" in capsys.readouterr().err
    assert main(["bench", "pipeline", str(clip), "--crop", "0,0,900,900"]) == 2
    assert "outside the 512x512 frames" in capsys.readouterr().err
    assert main(["bench", "pipeline", str(tmp_path / "none.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err
