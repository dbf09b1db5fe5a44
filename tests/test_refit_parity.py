"""ReFit against the golden fixture of the official network (names, weights, outputs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from refit_ros.parity.fixture import check_names, load_fixture
from refit_ros.geometry.camera import CropCamera
from refit_ros.models.refit import Refit, RefitConfig
from refit_ros.parity.official import _PER_PREDICTION, _PER_STEP, build_fixture_model, check_model


@pytest.fixture(scope="module")
def fixture(reference_fixture_dir):
    return load_fixture(reference_fixture_dir)


@pytest.fixture(scope="module")
def built(fixture):
    return build_fixture_model(fixture)


@pytest.fixture(scope="module")
def report(fixture, built):
    model, weights = built
    return check_model(model, fixture, weights)


def test_weights_follow_the_rule_bit_for_bit(built, fixture):
    _, weights = built
    assert weights["mismatched"] == []
    assert weights["sha256_ok"] == weights["entries"] == len(fixture.entries) == 1987


def test_state_dict_names_shapes_dtypes_and_order_match_manifest(built, fixture):
    model, _ = built
    assert check_names(model, fixture.entries) == []
    assert sum(p.numel() for p in model.parameters()) == fixture.manifest["total_parameter_count"]


def test_strict_load_of_a_state_dict_with_the_official_names(fixture):
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    official = {e["name"]: torch.zeros(e["shape"], dtype=dtypes[e["dtype"]])
                for e in fixture.entries}
    model = Refit(fixture.assets)
    result = model.load_state_dict(official, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # The aliased downsample blocks are one module under two names.
    assert model.backbone.downsamples[0] is model.backbone.downsample_stage_1


def test_every_output_within_fixture_tolerance(report):
    failed = {n: (c.max_abs, c.atol) for n, c in report.outputs.items() if not c.ok}
    assert not failed, f"outside tolerance (max_abs, atol): {failed}"
    assert report.missing_required == []
    assert report.ok
    # Every prediction and every loop step was compared, intermediates included.
    assert len(report.outputs["pred_rotmat"].per_iter) == report.iters + 1 == 6
    assert len(report.outputs["lookup"].per_iter) == report.iters
    for name in ("corr", "z", "lookup", "hpose", "vertices", "marker_p2d", "trans_full"):
        assert name in report.outputs


def test_run_api_equals_the_traced_official_loop(built, fixture, report):
    model, _ = built
    inp = fixture.inputs
    t = {k: torch.from_numpy(np.asarray(inp[k], dtype=np.float32))
         for k in ("img", "center", "scale", "img_focal", "img_center")}
    camera = CropCamera.from_scale(t["center"], t["scale"], t["img_focal"], t["img_center"])
    with torch.no_grad():
        run = model.run(t["img"], camera, iters=5)
        assert len(run.predictions) == 6
        ref = fixture.outputs
        for k, pred in enumerate(run.predictions):
            np.testing.assert_allclose(pred.rotmat.numpy(), ref["pred_rotmat"][k], atol=2e-6)
            np.testing.assert_allclose(pred.joints2d_crop.numpy(), ref["pred_j2d"][k], atol=2e-3)
        np.testing.assert_allclose(run.final.translation[:, None].numpy(), ref["trans_full"],
                                   atol=1e-5)
        # Outputs in the camera frame are the model-frame body moved by the translation.
        torch.testing.assert_close(run.final.joints_cam,
                                   run.final.joints + run.final.translation[:, None])
        # Warm start: the final state reproduces the final estimate, and steps continue
        # from it (run(..., state=...) does this after encoding the next frame).
        again = model.predict(run.state, camera)
        torch.testing.assert_close(again.joints2d_crop, run.final.joints2d_crop)
        more = model.step(run.state, run.features, camera)
        assert more.pose6d.shape == (2, 144)
        assert not torch.equal(more.pose6d, run.state.pose6d)


def _slice_fixture(src: Path, dst: Path, sample: int) -> None:
    """A second fixture of the same format: one sample of the first, batch 1."""
    dst.mkdir()
    for name in ("manifest.json", "smpl_synthetic.npz", "refit_data.npz"):
        (dst / name).symlink_to(src / name)
    inp = dict(np.load(src / "inputs.npz"))
    for k in ("img", "center", "scale", "img_focal", "img_center", "orig_shape", "description"):
        inp[k] = inp[k][sample:sample + 1]
    np.savez(dst / "inputs.npz", **inp)
    out = dict(np.load(src / "outputs.npz"))
    for k, v in out.items():
        base = k.removeprefix("f64_")
        axis = 1 if base in _PER_PREDICTION + _PER_STEP else 0
        out[k] = np.take(v, [sample], axis=axis)
    np.savez(dst / "outputs.npz", **out)


def test_parity_command_on_a_second_fixture_with_other_inputs(reference_fixture_dir, tmp_path,
                                                              capsys):
    from refit_ros.commands import parity as cmd

    other = tmp_path / "fixture_b"
    _slice_fixture(Path(reference_fixture_dir), other, sample=1)
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    rc = cmd.run(parser.parse_args([str(other), "--json"]))
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out["worst"]
    assert out["ok"] and out["batch"] == 1
    assert set(out["outputs"]["pred_j2d"]) >= {"max_abs", "max_rel", "atol", "per_iter"}


def test_parity_detects_a_wrong_reference(report):
    from refit_ros.parity.official import compare

    c = report.outputs["pred_cam"]
    assert c.ok
    ref = np.zeros((6, 2, 3), np.float32)
    assert not compare("pred_cam", ref + 1e-5, ref).ok
    assert compare("pred_cam", ref + 1e-7, ref).ok


def test_parity_command_refuses_a_non_fixture(tmp_path, capsys):
    from refit_ros.commands import parity as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    assert cmd.run(parser.parse_args([str(tmp_path)])) == 2
    assert "missing" in capsys.readouterr().err


def test_w32_variant_has_the_official_layout(fixture):
    model = Refit(fixture.assets, RefitConfig(backbone="hrnet_w32"))
    sd = model.state_dict()
    assert set(sd) == {e["name"] for e in fixture.entries}
    assert sd["corr_layer.0.weight"].shape == (256, 480, 3, 3)
    assert sd["init_layer.weight"].shape == (832, 256)
    with torch.no_grad():
        feature, z = model.backbone.eval()(torch.zeros(1, 3, 64, 64))
    assert feature.shape == (1, 480, 16, 16) and z.shape == (1, 256)


def test_float64_run_matches_the_float64_reference(built, fixture):
    import copy

    model, weights = built
    problems = check_names(model, fixture.entries)
    report64 = check_model(copy.deepcopy(model).double(), fixture, weights,
                           state_dict_problems=problems)
    assert report64.dtype == "float64"
    assert set(report64.float64_outputs) >= {"pred_rotmat", "pred_j2d", "trans_full"}
    bad = {n: c.max_abs for n, c in report64.float64_outputs.items() if not c.ok}
    assert not bad, bad
    assert report64.ok


@pytest.mark.slow  # one more parity run (~30 s on 2 cores)
def test_parity_command_takes_the_weights_from_an_official_checkpoint(
        built, reference_fixture_dir, tmp_path, capsys, monkeypatch):
    """``parity --checkpoint``: the weights come from a file written exactly as the official
    trainer writes it (numpy 1.x scalars, optimizer, cuda:0 storages), not from the rule."""
    import refit_ros.parity.official as parity_mod
    from official_checkpoint import official_checkpoint_dict, save_official_checkpoint
    from refit_ros.commands import parity as cmd

    model, _ = built
    path = save_official_checkpoint(tmp_path / "checkpoint_best.pth.tar",
                                    official_checkpoint_dict(model.state_dict()))

    def no_rule(*args, **kwargs):
        raise AssertionError("the weight rule was used although --checkpoint was given")

    monkeypatch.setattr(parity_mod, "apply_weight_rule", no_rule)
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    rc = cmd.run(parser.parse_args([str(reference_fixture_dir), "--checkpoint", str(path),
                                    "--json"]))
    captured = capsys.readouterr()
    assert rc == 0, captured.err or json.loads(captured.out)["worst"]
    out = json.loads(captured.out)
    w = out["weights"]
    assert w["source"] == str(path) and w["generated"] == 0 and w["ok"]
    assert w["sha256_ok"] == w["entries"] == 1987 and w["smpl"] == "local"
    assert "performance" in w["checkpoint_keys"] and "optimizer" in w["checkpoint_keys"]
    assert out["ok"]


def test_parity_with_a_checkpoint_of_other_weights_fails_and_names_them(built, fixture,
                                                                        tmp_path):
    from official_checkpoint import official_checkpoint_dict, save_official_checkpoint
    from refit_ros.parity.official import build_checkpoint_model

    model, _ = built
    sd = model.state_dict()
    sd["regressor.deccam.bias"] = sd["regressor.deccam.bias"] + 1e-3
    path = save_official_checkpoint(tmp_path / "other.pth.tar", official_checkpoint_dict(sd))
    loaded, weights = build_checkpoint_model(fixture, path)
    assert not weights["ok"]
    assert weights["mismatched"] == ["regressor.deccam.bias: sha256 differs from manifest"]
    torch.testing.assert_close(loaded.regressor.deccam.bias, sd["regressor.deccam.bias"])
