"""Checkpoint loading (safe, strict, SMPL-tolerant) and bad-input errors of ReFit.

Uses ``RefitAssets.synthetic()`` (synthetic SMPL); no fixture or official file needed.
"""

from __future__ import annotations

import pytest
import torch

from refit_ros.geometry.camera import CropCamera
from refit_ros.models.refit import Refit, RefitAssets, RefitConfig
from refit_ros.models.refit.checkpoint import (CheckpointError, load_checkpoint, read_checkpoint,
                                               state_dict_of)


@pytest.fixture(scope="module")
def assets():
    return RefitAssets.synthetic()


@pytest.fixture(scope="module")
def model(assets):
    return Refit(assets).eval()


@pytest.fixture(scope="module")
def official_sd(model):
    """A state dict with the official layout and values different from the model's."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["init_layer.weight"].fill_(0.25)
    sd["regressor.deccam.bias"].fill_(-0.5)
    return sd


def test_reads_the_official_file_layout_and_a_bare_state_dict(tmp_path):
    sd = {"a.weight": torch.ones(2, 2), "b": torch.zeros(3)}
    torch.save({"model": sd, "optimizer": {"state": {}}, "epoch": 7}, tmp_path / "ckpt.pth.tar")
    got, other = read_checkpoint(tmp_path / "ckpt.pth.tar")
    assert set(got) == set(sd) and other == ["epoch", "optimizer"]
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "bare.pth")
    got, other = read_checkpoint(tmp_path / "bare.pth")
    assert set(got) == set(sd) and other == []
    with pytest.raises(CheckpointError, match="not a state dict"):
        state_dict_of({"model": {"x": 1}})
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.pth")


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": {"w": torch.ones(1)}, "payload": _Evil(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_loads_official_layout_with_smpl_present_keeping_local_smpl(model, official_sd):
    report = load_checkpoint(model, {"model": official_sd, "epoch": 1})
    assert report.smpl == "local" and report.smpl_differs == []
    assert report.extra_top_level == ["epoch"]
    assert torch.all(model.init_layer.weight == 0.25)
    assert torch.all(model.regressor.deccam.bias == -0.5)
    assert report.loaded == len([k for k in official_sd if not k.startswith("smpl")])


def test_tolerates_absent_smpl_buffers(model, official_sd):
    local = model.smpl.v_template.clone()
    stripped = {k: v for k, v in official_sd.items() if not k.startswith(("smpl.", "smpl_"))}
    assert len(official_sd) - len(stripped) == 27
    report = load_checkpoint(model, stripped)
    assert report.smpl == "absent"
    torch.testing.assert_close(model.smpl.v_template, local)


def test_differing_smpl_kept_local_by_default_or_used_on_request(model, official_sd):
    local = model.smpl.v_template.clone()
    sd = dict(official_sd)
    sd["smpl.v_template"] = local + 1.0
    report = load_checkpoint(model, sd)
    assert report.smpl == "local" and report.smpl_differs == ["smpl.v_template"]
    torch.testing.assert_close(model.smpl.v_template, local)
    report = load_checkpoint(model, sd, smpl_from_checkpoint=True)
    assert report.smpl == "checkpoint"
    torch.testing.assert_close(model.smpl.v_template, local + 1.0)
    load_checkpoint(model, official_sd, smpl_from_checkpoint=True)  # restore


def test_missing_and_unexpected_keys_are_listed_by_name(model, official_sd):
    sd = {k: v for k, v in official_sd.items() if k != "regressor.deccam.bias"}
    sd["head.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, sd)
    msg = str(err.value)
    assert "missing 1 keys: regressor.deccam.bias" in msg
    assert "unexpected 1 keys: head.extra.weight" in msg


def test_shape_mismatch_is_refused(model, official_sd):
    sd = dict(official_sd)
    sd["local_layer.bias"] = torch.zeros(128)
    with pytest.raises(CheckpointError, match=r"local_layer.bias \(128,\) vs \(256,\)"):
        load_checkpoint(model, sd)


def test_a_checkpoint_for_the_other_backbone_is_refused_clearly(model, assets):
    w32 = Refit(assets, RefitConfig(backbone="hrnet_w32")).state_dict()
    with pytest.raises(CheckpointError, match="hrnet_w32 checkpoint but the model was built as "
                                              "hrnet_w48; set model.backbone: hrnet_w32"):
        load_checkpoint(model, w32)


def test_nan_weights_are_refused(model, official_sd):
    sd = dict(official_sd)
    sd["flow_layer.weight"] = official_sd["flow_layer.weight"].clone()
    sd["flow_layer.weight"][0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN/inf in 1 tensors \\(flow_layer.weight\\)"):
        load_checkpoint(model, sd)


def test_one_name_of_an_aliased_module_is_enough(model, official_sd):
    sd = {k: v for k, v in official_sd.items() if not k.startswith("backbone.downsamples.")}
    sd["backbone.downsample_stage_2.0.weight"] = torch.full_like(
        official_sd["backbone.downsample_stage_2.0.weight"], 0.125)
    load_checkpoint(model, sd)
    assert torch.all(model.backbone.downsamples[1][0].weight == 0.125)
    bad = dict(official_sd)
    bad["backbone.downsamples.0.0.weight"] = bad["backbone.downsamples.0.0.weight"] + 1
    with pytest.raises(CheckpointError, match="one module but hold different values"):
        load_checkpoint(model, bad)


def _camera(b: int) -> CropCamera:
    return CropCamera(center=torch.full((b, 2), 300.0), box_size=torch.full((b,), 200.0),
                      focal=torch.full((b, 2), 1000.0), principal=torch.full((b, 2), 320.0))


def test_wrong_crop_size_and_nan_inputs_give_clear_errors(model):
    with pytest.raises(ValueError, match=r"crop must be B x 3 x 256 x 256.*got \(1, 3, 224, 224\)"):
        model.encode(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError, match="crop must be"):
        model.encode(torch.zeros(3, 256, 256))
    img = torch.zeros(1, 3, 256, 256)
    img[0, 0, 5, 5] = float("inf")
    with pytest.raises(ValueError, match="input crop contains NaN or inf"):
        model.encode(img)


def test_bad_camera_and_state_give_clear_errors(model):
    b = 1
    feats_z = torch.zeros(b, 384)
    from refit_ros.models.refit import RefitFeatures

    feats = RefitFeatures(corr=torch.zeros(b, 67, 64, 64), z=feats_z)
    cam = _camera(b)
    cam.focal[0, 1] = float("nan")
    with pytest.raises(ValueError, match="camera.focal contains NaN"):
        model.init_state(feats, cam)
    with pytest.raises(ValueError, match=r"camera.center must have shape \(1, 2\)"):
        model.init_state(feats, _camera(2))
    with torch.no_grad():
        state = model.init_state(feats, _camera(b))
        with pytest.raises(ValueError, match="state has 1 people but features have 2"):
            model.step(state, RefitFeatures(torch.zeros(2, 67, 64, 64), torch.zeros(2, 384)),
                       _camera(2))
        # A hand-made state without the body cache still steps (the cache is recomputed).
        bare = type(state)(state.pose6d, state.betas, state.cam, state.hpose, state.hshape,
                           state.hcam)
        nxt = model.step(bare, feats, _camera(b))
        ref = model.step(state, feats, _camera(b))
        torch.testing.assert_close(nxt.pose6d, ref.pose6d)


# --- checkpoints written exactly as the official trainer writes them (issue 14, item 1) ---

def _tiny_state_dict():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).state_dict()


def test_reads_a_checkpoint_in_the_official_trainers_exact_format(tmp_path):
    from official_checkpoint import (official_checkpoint_dict, pickle_globals,
                                     save_official_checkpoint, storage_locations)

    sd = _tiny_state_dict()
    path = save_official_checkpoint(tmp_path / "checkpoint_best.pth.tar",
                                    official_checkpoint_dict(sd))
    # The file carries what torch 2.0 + numpy 1.23 on CUDA write: numpy 1.x global names
    # for the NumPy scalars and cuda:0 storages.
    globals_ = pickle_globals(path)
    assert {"numpy.core.multiarray scalar", "numpy dtype"} <= globals_
    assert not any(g.startswith("numpy._core") for g in globals_)
    assert storage_locations(path) == {"cuda:0"}
    got, other = read_checkpoint(path)
    assert list(got) == list(sd)
    for k, v in sd.items():
        assert torch.equal(got[k], v) and got[k].device.type == "cpu"
    assert other == ["batch", "best_performance", "dataperm", "epoch", "global_step",
                     "lr_scheduler", "optimizer", "performance"]


def test_the_numpy_allow_list_is_not_a_blind_unpickle(tmp_path):
    from official_checkpoint import official_checkpoint_dict, save_official_checkpoint

    marker = tmp_path / "pwned"
    obj = official_checkpoint_dict(_tiny_state_dict())
    obj["payload"] = _Evil(str(marker))
    path = save_official_checkpoint(tmp_path / "evil.pth.tar", obj)
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_checkpoint(path)
    assert not marker.exists()
    # An object-dtype NumPy scalar (it could carry anything) is refused too.
    import numpy as np

    obj = official_checkpoint_dict(_tiny_state_dict())
    obj["best_performance"] = np.dtype(object)
    path = save_official_checkpoint(tmp_path / "object.pth.tar", obj)
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_checkpoint(path)
