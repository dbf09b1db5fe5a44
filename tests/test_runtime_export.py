"""ONNX export of the official ReFit and ONNX Runtime parity on the reference fixture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import require_module

pytestmark = pytest.mark.slow  # one HRNet-W48 export (~2-4 min on 2 cores), then reused

onnx = require_module("onnx")
require_module("onnxruntime")


@pytest.fixture(scope="module")
def export_dir(reference_fixture_dir, tmp_path_factory):
    from runtime_support import fixture_export

    return fixture_export(reference_fixture_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def manifest(export_dir):
    from refit_ros.export.onnx import load_export

    return load_export(export_dir, {"model": "refit", "backbone": "hrnet_w48"})


def test_four_stage_graphs_pass_the_checker_with_a_dynamic_persons_axis(export_dir, manifest):
    from refit_ros.export.onnx import STAGES, sha256_file

    assert manifest.opset >= 16 and manifest.model == "refit" and manifest.body == "smpl"
    assert manifest.feature_names == ["corr", "z"]
    for stage in STAGES:
        s = manifest.stages[stage]
        model = onnx.load(str(export_dir / s.file))
        onnx.checker.check_model(model, full_check=True)
        assert sha256_file(export_dir / s.file) == s.sha256
        for t in s.inputs + s.outputs:
            assert t.shape[0] == "persons", (stage, t)
            assert all(isinstance(d, int) and d > 0 for d in t.shape[1:]), (stage, t)
    st = manifest.stages
    assert st["encoder"].input_names == ["image"]
    assert st["encoder"].inputs[0].shape == ["persons", 3, 256, 256]
    assert st["encoder"].output_names == ["corr", "z"]
    state = ["pose6d", "betas", "cam", "hpose", "hshape", "hcam"]
    camera = ["center", "box_size", "focal", "principal"]
    # The state crosses the step boundary explicitly, in and out.
    assert [n for n in st["step"].input_names if n in state] == state
    assert st["step"].output_names == [n + "_next" for n in state]
    assert st["init"].output_names == [n + "_next" for n in state]
    assert all(n in st["step"].input_names for n in camera + ["corr"])
    assert st["body"].output_names == ["vertices", "joints", "translation", "joints2d"]


def test_marker_reprojection_is_inside_the_step_graph(export_dir, manifest):
    from refit_ros.export.onnx import onnx_ops

    ops = onnx_ops(export_dir / manifest.stages["step"].file)
    assert ops.get("GridSample") == 1          # the window lookup
    assert ops.get("MatMul", 0) >= 20          # SMPL's kinematic chain (24 joints)
    # SMPL's arrays travel inside the step graph (posedirs alone are 207 x 20670 floats).
    assert (export_dir / manifest.stages["step"].file).stat().st_size > 17_000_000


def test_parity_cli_onnxruntime_passes_against_reference_and_torch(reference_fixture_dir,
                                                                   export_dir, capsys):
    from refit_ros.cli import main
    from refit_ros.parity.official import REQUIRED, TOLERANCES

    rc = main(["parity", str(reference_fixture_dir), "--backend", "onnxruntime",
               "--export-dir", str(export_dir), "--json"])
    report = json.loads(capsys.readouterr().out)
    s = report["summary"]
    assert rc == 0 and report["ok"], s
    assert report["seconds"]["export"] < 60  # the session export was reused, not redone
    vs_torch = s["max_abs_vs_torch_per_output"]
    for name in REQUIRED + ("z", "corr", "vertices", "hpose", "hshape", "hcam", "trans_full",
                            "final_pred_pose"):
        assert name in vs_torch, name
        bound = 5e-4 if name == "pred_j2d" else 1e-4
        assert vs_torch[name] <= bound, (name, vs_torch[name])
        out = report["outputs"][name]
        assert out["ok"] and out["max_abs"] <= out["atol"], (name, out)
    assert s["max_abs_vs_torch_without_overrides"] <= 1e-5  # in practice ~3e-6 (z)
    assert set(TOLERANCES) & set(s["not_compared"]) <= {
        "lookup", "lookup_iter0", "lookup_coords", "marker_p2d", "init_h_pretanh",
        "backbone_feature_ch_mean", "backbone_feature_ch_std", "backbone_feature_f16"}


def test_onnxruntime_backend_any_batch_and_warm_start_equal_torch(reference_fixture_dir,
                                                                  export_dir):
    from refit_ros.parity.fixture import load_fixture
    from refit_ros.geometry.camera import CropCamera
    from refit_ros.parity.official import _inputs, build_fixture_model
    from refit_ros.pipeline.models import select
    from refit_ros.pipeline.models import FittingModel

    fx = load_fixture(reference_fixture_dir)
    model, _ = build_fixture_model(fx)
    img, camera, _ = _inputs(fx, torch.device("cpu"))
    ort_be = FittingModel.from_export("onnxruntime", export_dir, {"model": "refit"})
    tb = FittingModel.from_network(model, "cpu")
    # 1 and 3 people (the export was traced with 2).
    for idx in ([1], [0, 1, 0]):
        cam = select(camera, idx)
        crops = img[idx].numpy()
        states = []
        for be in (ort_be, tb):
            f = be.encode_arrays({"image": crops})
            s = be.init_state(f, cam)
            s = be.step(s, f, cam)
            warm = be.step(s, f, cam)  # the state fed back in, as a tracker does
            states.append((s, warm, be.pose(warm, cam)))
        (s_o, w_o, p_o), (s_t, w_t, p_t) = states
        for a, b in ((s_o.pose6d, s_t.pose6d), (w_o.hpose, w_t.hpose), (w_o.cam, w_t.cam),
                     (p_o.vertices, p_t.vertices), (p_o.translation, p_t.translation)):
            assert a.shape[0] == len(idx)
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, rtol=0)
    assert isinstance(camera, CropCamera)


def test_onnxruntime_backend_is_a_pipeline_fitting_model(export_dir):
    """The pipeline's batch helpers and warm-start path work on its features and states."""
    from refit_ros.pipeline.models import concat, select
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.export.families import example_camera

    be = FittingModel.from_export("onnxruntime", export_dir, {"model": "refit"})
    cam = example_camera(2)
    image = np.zeros((720, 1280, 3), np.uint8)
    image[200:600, 300:500] = 180
    feats = be.encode(image, [None, None], cam)
    state = be.init_state(feats, cam)
    one = select(state, [1])
    both = concat([select(state, [0]), one])
    torch.testing.assert_close(both.pose6d, state.pose6d)
    nxt = be.step(select(state, [1]), select(feats, [1]), select(cam, [1]))
    assert nxt.pose6d.shape == (1, 144) and be.rotmat(nxt).shape == (1, 24, 3, 3)
    assert be.name == "refit" and be.describe()["backend"] == "onnxruntime"


def test_export_command_reuses_a_matching_export(reference_fixture_dir, export_dir, capsys):
    from refit_ros.cli import main

    rc = main(["export", "--format", "onnx", "--out", str(export_dir), "--fixture",
               str(reference_fixture_dir)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["export_seconds"] == {}  # nothing re-exported
    assert set(out["files"]) == {"encoder", "init", "step", "body"}
