"""TensorRT: what can be checked without it (op support, shapes, cache key, calibration
data) and, where ``tensorrt`` and a GPU exist, engine build + parity (skipped here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

from refit_ros.runtime.tensorrt_backend import (Profile, calibration_batches, calibration_sha256,
                                                engine_cache_key, engine_file_name,
                                                load_calibration_inputs, stage_precision)

OPS_FILE = Path(__file__).resolve().parents[1] / "refit_ros/runtime/data/tensorrt_onnx_ops.tsv"


def tensorrt_ops() -> dict[str, tuple[bool, str]]:
    """operator -> (supported, restriction) from the committed onnx-tensorrt table."""
    table = {}
    for line in OPS_FILE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        op, sup, *rest = line.split("\t")
        table[op] = (sup == "Y", rest[0] if rest else "")
    return table


def test_op_table_names_its_source_and_is_plausible():
    head = OPS_FILE.read_text().splitlines()[:5]
    assert any("onnx-tensorrt" in h and "docs/operators.md" in h for h in head)
    table = tensorrt_ops()
    assert len(table) > 150
    assert table["GridSample"][0] and table["Conv"][0] and table["MatMul"][0]
    assert not table["SequenceAt"][0] and not table["Unique"][0]


# ---------------------------------------------------------------------- exported graphs
@pytest.fixture(scope="module")
def export_dir(reference_fixture_dir, tmp_path_factory):
    require_module("onnx")
    from runtime_support import fixture_export

    return fixture_export(reference_fixture_dir, tmp_path_factory)


def _constant_names(graph) -> set[str]:
    names = {i.name for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            names.update(node.output)
    return names


@pytest.mark.slow
def test_every_op_of_the_exported_graphs_is_supported_by_tensorrt(export_dir):
    import onnx

    from refit_ros.export.onnx import STAGES, load_export, onnx_ops

    table = tensorrt_ops()
    manifest = load_export(export_dir)
    assert 9 <= manifest.opset <= 20  # the opset range the table is documented for
    used = {}
    for stage in STAGES:
        ops = onnx_ops(export_dir / manifest.stages[stage].file)
        used[stage] = sorted(ops)
        unknown = [op for op in ops if op not in table]
        unsupported = [op for op in ops if op in table and not table[op][0]]
        assert not unknown and not unsupported, (stage, unknown, unsupported)
    # The list the test looked at, for the record (pytest -rA shows it).
    print({k: v for k, v in used.items()})
    for stage in STAGES:
        model = onnx.load(str(export_dir / manifest.stages[stage].file))
        consts = _constant_names(model.graph)
        for node in model.graph.node:
            # "`axes` must be an initializer" (Slice, Squeeze, ReduceL2) / "a constant" (Unsqueeze)
            if node.op_type in ("Slice",) and len(node.input) > 3 and node.input[3]:
                assert node.input[3] in consts, (stage, node.name)
            if node.op_type in ("Squeeze", "Unsqueeze", "ReduceL2") and len(node.input) > 1:
                assert node.input[1] in consts, (stage, node.name, node.op_type)
            if node.op_type == "Resize":
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                assert attrs.get("mode", b"nearest") in (b"nearest", b"linear"), attrs
                assert attrs.get("antialias", 0) == 0
            if node.op_type == "GridSample":  # "Input must be 4D"
                assert stage == "step"


@pytest.mark.slow
def test_only_the_persons_axis_is_dynamic(export_dir):
    """TensorRT profiles cover the batch; every other dimension must be static (and the
    HRNet input exactly 256x256), including inside the graph after shape inference."""
    import onnx

    from refit_ros.export.onnx import STAGES, load_export

    manifest = load_export(export_dir)
    for stage in STAGES:
        model = onnx.shape_inference.infer_shapes(
            onnx.load(str(export_dir / manifest.stages[stage].file)), strict_mode=True)
        for vi in list(model.graph.input) + list(model.graph.output):
            dims = vi.type.tensor_type.shape.dim
            assert dims[0].dim_param == "persons", (stage, vi.name)
            assert all(d.dim_value > 0 and not d.dim_param for d in dims[1:]), (stage, vi.name)
        for vi in model.graph.value_info:  # intermediates: no symbol but persons
            for d in vi.type.tensor_type.shape.dim:
                assert not d.dim_param or "persons" in d.dim_param, (stage, vi.name, d.dim_param)


# ---------------------------------------------------------------------- pure helpers
def test_engine_cache_key_changes_with_every_input_and_only_with_them():
    base = dict(onnx_sha256="a" * 64, trt_version="10.3.0", gpu_name="NVIDIA H100 80GB HBM3",
                precision="fp16", profile=Profile(1, 1, 8), compute_capability="9.0")
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base) and len(key) == 64
    variants = [dict(onnx_sha256="b" * 64), dict(trt_version="10.4.0"),
                dict(gpu_name="NVIDIA H200"), dict(precision="fp32"), dict(precision="int8"),
                dict(profile=Profile(1, 4, 8)), dict(profile=Profile(1, 1, 16)),
                dict(compute_capability="8.9"), dict(calibration_sha256="c" * 64)]
    keys = {engine_cache_key(**{**base, **v}) for v in variants}
    assert key not in keys and len(keys) == len(variants)
    name = engine_file_name("step", "fp16", key)
    assert name.startswith("step-fp16-") and name.endswith(".engine") and key[:16] in name


def test_profile_shapes_and_stage_precisions():
    p = Profile(1, 2, 8)
    assert p.shapes([67, 64, 64]) == ((1, 67, 64, 64), (2, 67, 64, 64), (8, 67, 64, 64))
    with pytest.raises(ValueError):
        Profile(2, 1, 8)
    assert stage_precision("encoder", "int8") == "int8"
    assert {stage_precision(s, "int8") for s in ("init", "step", "body")} == {"fp16"}
    assert stage_precision("step", "fp32") == "fp32"
    with pytest.raises(ValueError):
        stage_precision("step", "bf16")


def test_calibration_set_io(tmp_path):
    crops = np.random.default_rng(0).normal(size=(10, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", image=crops)
    loaded = load_calibration_inputs(tmp_path / "calib.npz", ["image"])
    batches = calibration_batches(loaded, 4)
    assert len(batches) == 2 and batches[0]["image"].shape == (4, 3, 8, 8)
    assert calibration_sha256(batches) != calibration_sha256(batches[:1])
    with pytest.raises(ValueError, match="missing calibration arrays"):
        load_calibration_inputs(tmp_path / "calib.npz", ["keypoints"])
    with pytest.raises(ValueError, match="at least"):
        calibration_batches(loaded, 32)


def test_calibration_crops_come_from_detections_through_the_pipeline_crop(tmp_path):
    import cv2

    from refit_ros.export.calibration import collect_calibration_inputs
    from refit_ros.export.families import RefitFamily

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        img = np.zeros((240, 320, 3), np.uint8)
        img[40:200, 100 + 10 * i:160 + 10 * i] = 200
        cv2.imwrite(str(frames / f"{i:03d}.png"), img)

    class Boxes:
        def detect(self, image, stamp=0.0):
            from types import SimpleNamespace

            return [SimpleNamespace(bbox=np.array([90, 30, 180, 210], np.float32), score=0.9,
                                    keypoints2d=None)]

    from refit_ros.io.frames import open_source

    out = collect_calibration_inputs(open_source(frames), Boxes(), RefitFamily(), limit=2)
    assert set(out) == {"image"} and out["image"].shape == (2, 3, 256, 256)
    assert np.isfinite(out["image"]).all() and out["image"].std() > 0.1


# ---------------------------------------------------------------------- with TensorRT
@pytest.mark.tensorrt
@pytest.mark.slow
def test_tensorrt_engines_build_cache_and_match_torch(reference_fixture_dir, export_dir,
                                                      tmp_path, monkeypatch):
    pytest.importorskip("tensorrt")
    monkeypatch.setenv("REFIT_ROS_CACHE", str(tmp_path))  # engines go to the per-user cache
    import torch

    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs an NVIDIA GPU")
    from refit_ros.parity.backends import run_backend_parity

    report = run_backend_parity(reference_fixture_dir, "tensorrt", "cuda", export_dir,
                                vs_torch_atol=1e-3, precision="fp32")
    assert report.vs_torch and max(report.vs_torch.values()) < 5e-3
    engines = list((tmp_path / "engines").glob("*-fp32-*.engine"))
    assert len(engines) == 4 and all(e.with_suffix(".json").is_file() for e in engines)
