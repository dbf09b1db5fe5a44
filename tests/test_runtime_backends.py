"""Backends behind one interface: selection errors, graph-friendly body models, the torch
backend against the eager networks, ReFit-KP through the same export, the benchmark."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import require_module

from refit_ros.pipeline import build_backend
from refit_ros.runtime.base import BackendError


def _cfg(*overrides):
    from refit_ros.config import load_config

    return load_config(None, list(overrides))


# ---------------------------------------------------------------------- selection errors
def test_unknown_backend_is_a_clear_error():
    from refit_ros.config import ConfigError

    with pytest.raises(BackendError, match="runtime.backend='tvm' is not one of"):
        build_backend(_cfg(), backend="tvm")
    with pytest.raises(ConfigError, match="runtime.backend"):
        _cfg("runtime.backend=tvm")


def test_tensorrt_missing_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorrt(name, *a, **k):
        if name == "tensorrt" or name.startswith("tensorrt."):
            raise ImportError("No module named 'tensorrt'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tensorrt)
    with pytest.raises(BackendError) as exc:
        build_backend(_cfg("runtime.backend=tensorrt", "model.device=cuda"))
    msg = str(exc.value)
    assert "pip install tensorrt" in msg and "runtime.backend=onnxruntime" in msg


def test_tensorrt_export_command_fails_fast_without_tensorrt(capsys, tmp_path):
    require_module("onnx")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    from refit_ros.cli import main

    assert main(["export", "--format", "tensorrt", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "tensorrt" in err and "pip install tensorrt" in err
    assert not list(tmp_path.iterdir())  # failed before exporting anything


def test_onnxruntime_without_an_export_names_the_command(tmp_path):
    require_module("onnxruntime")
    cfg = _cfg("runtime.backend=onnxruntime", f"runtime.export_dir={tmp_path}")
    with pytest.raises(BackendError, match="refit-ros export --format onnx"):
        build_backend(cfg)


def test_onnxruntime_cuda_without_the_provider_is_refused():
    ort = require_module("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu installed")
    from refit_ros.runtime.onnxruntime_backend import providers_for

    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        providers_for("cuda")
    assert providers_for("cpu") == ["CPUExecutionProvider"]


# ---------------------------------------------------------------------- graph-friendly bodies
def test_graph_smpl_equals_smplx_layer():
    from refit_ros.geometry.rotation import rot6d_to_rotmat
    from refit_ros.models.refit import Refit, RefitAssets, RefitConfig
    from refit_ros.export.graph_body import GraphSmplJoints49

    net = Refit(RefitAssets.synthetic(), RefitConfig(backbone="hrnet_w32"))
    g = GraphSmplJoints49(net.smpl)
    torch.manual_seed(0)
    rot = rot6d_to_rotmat(net.init_pose + 0.3 * torch.randn(3, 144)).reshape(3, 24, 3, 3)
    betas = torch.randn(3, 10)
    a, b = net.smpl(rot, betas), g(rot, betas)
    torch.testing.assert_close(b.vertices, a.vertices, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.joints, a.joints, atol=2e-6, rtol=0)
    assert g.parents[0] == -1 and len(g.parents) == 24


def test_graph_skinned_body_equals_the_body_and_leaves_it_alone():
    from refit_ros.body.open_body import OpenBody
    from refit_ros.geometry.rotation import axis_angle_to_rotmat
    from refit_ros.export.graph_body import graph_skinned_body

    body = OpenBody()
    twin = graph_skinned_body(body)
    torch.manual_seed(0)
    rot = axis_angle_to_rotmat(0.4 * torch.randn(2 * 24, 3)).reshape(2, 24, 3, 3)
    betas = torch.randn(2, body.num_betas)
    torch.testing.assert_close(twin(rot, betas).vertices, body(rot, betas).vertices,
                               atol=1e-6, rtol=0)
    ids = body.marker_ids
    torch.testing.assert_close(twin.skin(rot, betas, ids).vertices,
                               body.skin(rot, betas, ids).vertices, atol=1e-6, rtol=0)
    assert "_kinematics" not in vars(body)  # the original keeps smplx's kinematics


# ---------------------------------------------------------------------- torch backend
@pytest.fixture(scope="module")
def kp_net():
    from refit_ros.body.open_body import OpenBody
    from refit_ros.models.refit_kp import RefitKp

    torch.manual_seed(0)
    return RefitKp(OpenBody()).eval()


def _kp_frame(n: int):
    from refit_ros.bench.network import synthetic_frame
    from refit_ros.geometry.camera import CropCamera
    from refit_ros.geometry.intrinsics import Intrinsics
    from refit_ros.geometry.crop import square_boxes

    image, dets = synthetic_frame(n)
    c, s = square_boxes(np.array([d.bbox for d in dets]))
    cam = CropCamera.from_intrinsics(torch.tensor(c, dtype=torch.float32),
                                     torch.tensor(s, dtype=torch.float32),
                                     [Intrinsics.fallback(1280, 720)] * n)
    return image, dets, cam


def test_torch_backend_equals_the_eager_refit_kp(kp_net):
    from refit_ros.models.refit_kp import KeypointEvidence
    from refit_ros.pipeline.models import FittingModel

    image, dets, cam = _kp_frame(3)
    be = FittingModel.from_network(kp_net, "cpu", body=kp_net.body)
    f = be.encode(image, dets, cam)
    s = be.init_state(f, cam)
    for _ in range(5):
        s = be.step(s, f, cam)
    pose = be.pose(s, cam)
    ev = KeypointEvidence.from_full_image(torch.tensor(np.stack([d.keypoints2d for d in dets])), cam)
    with torch.no_grad():
        run = kp_net.run(ev, cam, iters=5)
    for name in ("pose6d", "betas", "cam", "hpose", "hshape", "hcam"):
        torch.testing.assert_close(getattr(s, name), getattr(run.state, name), atol=1e-6, rtol=0)
    torch.testing.assert_close(pose.vertices, run.final.vertices, atol=1e-6, rtol=0)
    torch.testing.assert_close(pose.translation, run.final.translation)
    assert be.name == "refit_kp" and be.describe()["backend"] == "torch"


def test_backend_refuses_bad_camera_values(kp_net):
    from refit_ros.pipeline.models import FittingModel

    image, dets, cam = _kp_frame(1)
    be = FittingModel.from_network(kp_net, "cpu")
    f = be.encode(image, dets, cam)
    cam.box_size[0] = float("nan")
    with pytest.raises(ValueError, match="camera.box_size contains NaN"):
        be.init_state(f, cam)


def test_torch_backend_on_refit_equals_eager():
    from refit_ros.models.refit import Refit, RefitAssets, RefitConfig
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.export.families import example_camera

    torch.manual_seed(0)
    net = Refit(RefitAssets.synthetic(), RefitConfig(backbone="hrnet_w32")).eval()
    cam = example_camera(2)
    img = torch.randn(2, 3, 256, 256)
    be = FittingModel.from_network(net, "cpu")
    f = be.encode_arrays({"image": img.numpy()})
    s = be.step(be.init_state(f, cam), f, cam)
    with torch.no_grad():
        ref = net.run(img, cam, iters=1)
    torch.testing.assert_close(f.corr, ref.features.corr)
    for name in ("pose6d", "betas", "cam", "hpose"):
        torch.testing.assert_close(getattr(s, name), getattr(ref.state, name), atol=2e-6, rtol=0)
    torch.testing.assert_close(be.pose(s, cam).vertices, ref.final.vertices, atol=2e-6, rtol=0)


@pytest.mark.gpu
def test_cuda_graph_step_equals_eager_on_gpu(kp_net):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from refit_ros.body.open_body import OpenBody
    from refit_ros.models.refit_kp import RefitKp
    from refit_ros.pipeline.models import FittingModel

    torch.manual_seed(0)
    net = RefitKp(OpenBody()).eval()
    image, dets, cam = _kp_frame(2)
    cam = cam.to("cuda")
    graphs = FittingModel.from_network(net, "cuda", cuda_graphs=True)
    eager = FittingModel.from_network(net, "cuda", cuda_graphs=False)
    out = []
    for be in (graphs, eager):
        with torch.inference_mode():  # as the pipeline calls it (inference tensors)
            f = be.encode(image, dets, cam)
            s = be.init_state(f, cam)
            for _ in range(3):
                s = be.step(s, f, cam)
        out.append(s)
    torch.testing.assert_close(out[0].pose6d, out[1].pose6d, atol=1e-5, rtol=0)
    assert graphs.describe()["cuda_graphs"] == ["body", "init", "step"]  # none fell back


# ---------------------------------------------------------------------- ReFit-KP export
@pytest.mark.slow
def test_refit_kp_exports_and_runs_on_onnxruntime(kp_net, tmp_path):
    require_module("onnxruntime")
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.export.onnx import export_onnx

    r = export_onnx(kp_net, tmp_path, body="open", iterations=5, weights={"source": "random"})
    assert r.manifest.model == "refit_kp" and r.manifest.backbone == "keypoints"
    assert r.manifest.stages["encoder"].input_names == ["keypoints", "keypoint_confidence"]
    image, dets, cam = _kp_frame(3)
    outs = []
    for be in (FittingModel.from_export("onnxruntime", tmp_path, {"model": "refit_kp", "body": "open"}),
               FittingModel.from_network(kp_net, "cpu")):
        f = be.encode(image, dets, cam)
        s = be.init_state(f, cam)
        for _ in range(5):
            s = be.step(s, f, cam)
        outs.append((s, be.pose(s, cam)))
    (s_o, p_o), (s_t, p_t) = outs
    torch.testing.assert_close(s_o.pose6d, s_t.pose6d, atol=1e-5, rtol=0)
    torch.testing.assert_close(p_o.vertices, p_t.vertices, atol=1e-5, rtol=0)

    # The pipeline takes the backend in place of the torch model (cold, then warm frames).
    from refit_ros.pipeline.frame import PipelineSettings, RefitPipeline
    from refit_ros.tracking import Tracker, TrackerParams

    class Stub:
        def detect(self, image_rgb, stamp=0.0):
            return dets

    backend = FittingModel.from_export("onnxruntime", tmp_path, {"model": "refit_kp"}, body=kp_net.body)
    pipe = RefitPipeline(Stub(), backend, PipelineSettings(), Tracker(TrackerParams()))
    for k in range(3):
        result = pipe.process(image, stamp=k / 30)
        assert len(result.bodies) == 3
        assert all(np.isfinite(b.vertices).all() for b in result.bodies)


# ---------------------------------------------------------------------- benchmark
def test_bench_reports_every_stage_and_both_frame_kinds(kp_net):
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.bench.network import run_bench

    r = run_bench(FittingModel.from_network(kp_net, "cpu"), persons=2, cold_iters=5, warm_iters=2,
                  repeats=2, warmup=1).to_dict()
    for stage in ("preprocess", "encode", "init", "body", "postprocess", "step_all",
                  *(f"cold_step_{k}" for k in range(1, 6)), "warm_step_1", "warm_step_2"):
        s = r["stages"][stage]
        assert s["n"] >= 2 and 0 < s["median_ms"] <= s["p95_ms"] + 1e-9, stage
    assert "warm_step_3" not in r["stages"]
    assert r["frames"]["cold"]["iterations"] == 5 and r["frames"]["warm"]["iterations"] == 2
    assert r["frames"]["cold"]["fps"] > 0 and r["persons"] == 2
    json.dumps(r)


def test_bench_command_json(capsys):
    from refit_ros.cli import main

    rc = main(["bench", "network", "--json", "--backend", "torch", "--model", "refit_kp", "--persons", "1",
               "--iters", "1", "--repeats", "1", "--warmup", "0"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["backend"]["backend"] == "torch" and d["model"]["name"] == "refit_kp"
    assert "cold_step_5" in d["stages"] and d["frames"]["warm"]["iterations"] == 1
