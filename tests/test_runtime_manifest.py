"""export.yaml: written beside the ONNX files, validated on load with errors that say why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import require_module

onnx = require_module("onnx")

from refit_ros.export.onnx import (MANIFEST_NAME, STAGES, ExportError,  # noqa: E402
                                      ExportManifest, StageFile, TensorInfo,
                                      expectations_from_config, load_export, sha256_file,
                                      write_manifest)


def _tiny_onnx(path: Path) -> None:
    """A valid one-node graph (Identity over a persons x 3 tensor)."""
    h = onnx.helper
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["persons", 3])
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["persons", 3])
    g = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 18)]), str(path))


@pytest.fixture
def export_dir(tmp_path) -> Path:
    stages = {}
    for s in STAGES:
        _tiny_onnx(tmp_path / f"{s}.onnx")
        stages[s] = StageFile(f"{s}.onnx", sha256_file(tmp_path / f"{s}.onnx"),
                              [TensorInfo("x", ["persons", 3])], [TensorInfo("y", ["persons", 3])])
    m = ExportManifest(model="refit", backbone="hrnet_w48", body="smpl", iterations=5, opset=18,
                       exporter="dynamo", weights={"source": "test"}, feature_names=["corr", "z"],
                       stages=stages, architecture={"crop_size": 256})
    write_manifest(m, tmp_path)
    return tmp_path


def _edit(export_dir: Path, fn) -> None:
    path = export_dir / MANIFEST_NAME
    d = yaml.safe_load(path.read_text())
    fn(d)
    path.write_text(yaml.safe_dump(d))


def test_round_trip(export_dir):
    m = load_export(export_dir, {"model": "refit", "backbone": "hrnet_w48", "body": "smpl",
                                 "iterations": 5})
    assert m.stages["step"].input_names == ["x"] and m.opset == 18
    text = (export_dir / MANIFEST_NAME).read_text()
    for key in ("model: refit", "backbone: hrnet_w48", "body: smpl", "iterations: 5",
                "opset: 18", "sha256:"):
        assert key in text


def test_not_an_export_folder(tmp_path):
    with pytest.raises(ExportError, match="no export.yaml.*refit-ros export"):
        load_export(tmp_path)


def test_changed_onnx_file_is_refused(export_dir):
    with open(export_dir / "step.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ExportError, match="step.onnx changed since export"):
        load_export(export_dir)


def test_missing_onnx_file_is_refused(export_dir):
    (export_dir / "body.onnx").unlink()
    with pytest.raises(ExportError, match="body.onnx.*missing"):
        load_export(export_dir)


@pytest.mark.parametrize("key,want,config_key", [
    ("model", "refit_kp", "model.name"), ("backbone", "hrnet_w32", "model.backbone"),
    ("body", "open", "body.model"), ("iterations", 3, "model.iterations")])
def test_config_mismatch_names_the_config_key(export_dir, key, want, config_key):
    with pytest.raises(ExportError) as exc:
        load_export(export_dir, {key: want})
    msg = str(exc.value)
    assert config_key in msg and repr(want) in msg and "refit-ros export" in msg


@pytest.mark.parametrize("edit,match", [
    (lambda d: d.update(format_version=99), "format_version"),
    (lambda d: d.update(surprise=1), "unknown keys \\['surprise'\\]"),
    (lambda d: d.pop("iterations"), "missing keys \\['iterations'\\]"),
    (lambda d: d.update(opset=13), "opset 13 < 16"),
    (lambda d: d["stages"].pop("step"), "stages must be exactly"),
    (lambda d: d["stages"]["init"].pop("sha256"), "stages.init is malformed"),
    (lambda d: d.update(iterations="five"), "iterations must be an integer"),
])
def test_malformed_manifest_errors(export_dir, edit, match):
    _edit(export_dir, edit)
    with pytest.raises(ExportError, match=match):
        load_export(export_dir)


def test_not_yaml(export_dir):
    (export_dir / MANIFEST_NAME).write_text("model: [unclosed")
    with pytest.raises(ExportError, match="not valid YAML"):
        load_export(export_dir)


def test_expectations_follow_the_config():
    from refit_ros.config import load_config

    cfg = load_config(None, ["model.name=refit", "body.model=smpl", "model.iterations=4"])
    assert expectations_from_config(cfg) == {"model": "refit", "body": "smpl", "iterations": 4,
                                             "backbone": "hrnet_w48"}
    kp = load_config(None, ["model.name=refit_kp"])
    assert "backbone" not in expectations_from_config(kp)


def test_export_refuses_low_opset_and_unknown_exporter(tmp_path):
    from refit_ros.models.refit import Refit, RefitAssets, RefitConfig
    from refit_ros.export.onnx import export_onnx

    net = Refit(RefitAssets.synthetic(), RefitConfig(backbone="hrnet_w32"))
    with pytest.raises(ExportError, match="GridSample"):
        export_onnx(net, tmp_path, body="smpl", iterations=5, weights={}, opset=15)
    with pytest.raises(ExportError, match="exporter"):
        export_onnx(net, tmp_path, body="smpl", iterations=5, weights={}, exporter="jit")
