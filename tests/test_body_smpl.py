"""SMPL through smplx without chumpy: synthetic files, the restricted unpickler, errors."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from smplx.lbs import batch_rodrigues

from refit_ros.body.smpl import (SMPL_MARKER_IDS, SmplBody, SmplFileError, find_smpl_file,
                                 read_smpl_file)
from refit_ros.body.smpl_pickle import read_smpl_pickle
from refit_ros.body.synthetic import synthetic_smpl_arrays, write_synthetic_smpl


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory):
    return write_synthetic_smpl(tmp_path_factory.mktemp("smpl"))


def _random_pose(batch: int, seed: int = 0, scale: float = 0.5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    aa = torch.randn(batch * 24, 3, generator=gen) * scale
    return batch_rodrigues(aa).view(batch, 24, 3, 3)


def test_synthetic_structure():
    d = synthetic_smpl_arrays("neutral")
    assert d["v_template"].shape == (6890, 3)
    assert d["f"].shape == (13776, 3)
    assert d["shapedirs"].shape == (6890, 3, 10)
    assert d["posedirs"].shape == (6890, 3, 207)
    assert d["J_regressor"].shape == (24, 6890)
    assert d["weights"].shape == (6890, 24)
    np.testing.assert_allclose(d["weights"].sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(d["J_regressor"].sum(1), 1.0, atol=1e-12)
    again = synthetic_smpl_arrays("neutral")
    for key, value in d.items():  # deterministic
        np.testing.assert_array_equal(value, again[key])


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_matches_smplx_smpl(smpl_dir, gender):
    """Our SMPL body equals smplx.SMPL loading the same file with its own pickle code."""
    ref = smplx.SMPL(str(smpl_dir), gender=gender)
    body = SmplBody(smpl_dir, gender)
    rotmat = _random_pose(3, seed=1)
    betas = torch.randn(3, 10, generator=torch.Generator().manual_seed(2))
    out = ref(betas=betas, global_orient=rotmat[:, :1], body_pose=rotmat[:, 1:], pose2rot=False)
    ours = body(rotmat, betas)
    torch.testing.assert_close(ours.vertices, out.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.joints, out.joints[:, :24], atol=1e-5, rtol=0)
    assert body.faces.shape == (13776, 3) and body.name == "smpl"


def test_marker_fast_path_equals_full_mesh(smpl_dir):
    body = SmplBody(smpl_dir)
    rotmat, betas = _random_pose(4, seed=3), torch.randn(4, 10)
    full = body(rotmat, betas)
    markers = body.markers(rotmat, betas)
    assert markers.shape == (4, 67, 3)
    ids = torch.tensor(SMPL_MARKER_IDS)
    torch.testing.assert_close(markers, full.vertices[:, ids], atol=1e-6, rtol=0)
    torch.testing.assert_close(body.joints(rotmat, betas), full.joints, atol=0, rtol=0)


def test_landmarks_defined_where_known(smpl_dir):
    body = SmplBody(smpl_dir)
    rotmat, betas = _random_pose(2, seed=4), torch.zeros(2, 10)
    lm = body.landmarks(rotmat, betas)
    defined = torch.tensor(body.landmark_map.defined)
    assert lm.shape == (2, 33, 3)
    assert torch.isfinite(lm[:, defined]).all() and torch.isnan(lm[:, ~defined]).all()
    full = body(rotmat, betas)
    torch.testing.assert_close(lm[:, defined],
                               body.landmark_map.gather(full.vertices, full.joints)[:, defined],
                               atol=1e-6, rtol=0)


def test_betas_fewer_than_num_betas(smpl_dir):
    body = SmplBody(smpl_dir)
    rotmat = _random_pose(2)
    betas = torch.randn(2, 4)
    padded = torch.cat([betas, torch.zeros(2, 6)], 1)
    torch.testing.assert_close(body(rotmat, betas).vertices, body(rotmat, padded).vertices)
    with pytest.raises(ValueError, match="K <= 10"):
        body(rotmat, torch.zeros(2, 11))


def test_missing_file_message(tmp_path):
    with pytest.raises(SmplFileError) as err:
        SmplBody(tmp_path / "nowhere", "male")
    msg = str(err.value)
    for needle in ("SMPL_MALE.pkl", "SMPL_NEUTRAL.pkl", "SMPL_FEMALE.pkl",
                   str(tmp_path / "nowhere"), "https://smpl.is.tue.mpg.de", "licence",
                   "body.smpl_dir"):
        assert needle in msg, needle
    with pytest.raises(SmplFileError, match="body.smpl_dir is not set"):
        find_smpl_file("", "neutral")


def test_corrupt_file_message(tmp_path):
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(b"\x80\x04this is not a pickle")
    with pytest.raises(SmplFileError, match="corrupt.*body.smpl_dir"):
        SmplBody(tmp_path)
    with open(tmp_path / "SMPL_MALE.pkl", "wb") as fh:
        pickle.dump({"v_template": np.zeros((6890, 3))}, fh)
    with pytest.raises(SmplFileError, match="lacks"):
        read_smpl_file(tmp_path / "SMPL_MALE.pkl")


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.path}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_refuses_malicious_pickle(tmp_path, protocol):
    witness = tmp_path / "pwned"
    for payload in ({"v_template": _Evil(witness)}, {"x": _EvalEvil()}):
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        path.write_bytes(pickle.dumps(payload, protocol=protocol))
        with pytest.raises(pickle.UnpicklingError, match="refused to load global"):
            read_smpl_pickle(path)
        with pytest.raises(SmplFileError, match="refused"):
            read_smpl_file(path)
    assert not witness.exists()


def _chumpy_like_pickle(arrays: dict, protocol: int) -> bytes:
    """Pickle ``arrays`` the way official SMPL files are: chumpy Ch + scipy.sparse."""

    class Ch:  # what chumpy's Ch pickles to: a class in chumpy.ch whose state holds 'x'
        def __init__(self, x):
            self.x = x
            self.terms, self.dterms = [], ["x"]

    mods = {"chumpy": types.ModuleType("chumpy"), "chumpy.ch": types.ModuleType("chumpy.ch")}
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mods["chumpy.ch"].Ch = Ch
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        obj = dict(arrays)
        for key in ("v_template", "shapedirs", "weights", "posedirs"):
            obj[key] = Ch(np.asarray(arrays[key], np.float64))
        obj["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        obj["bs_style"], obj["bs_type"] = "lbs", "lrotmin"
        obj["pose_training_info"] = {"num_subjects": 1}
        return pickle.dumps(obj, protocol=protocol)
    finally:
        for key, mod in saved.items():
            if mod is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = mod


@pytest.mark.parametrize("protocol", [0, 2])
def test_reads_chumpy_like_pickle(tmp_path, smpl_dir, protocol):
    arrays = synthetic_smpl_arrays("neutral")
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(_chumpy_like_pickle(arrays, protocol))
    assert "chumpy" not in sys.modules
    data = read_smpl_file(tmp_path / "SMPL_NEUTRAL.pkl")
    assert all(isinstance(v, np.ndarray) for v in data.values())
    assert "bs_style" not in data and "pose_training_info" not in data
    assert data["J_regressor"].shape == (24, 6890)
    for key in ("v_template", "shapedirs", "weights", "J_regressor", "f", "kintree_table"):
        np.testing.assert_allclose(data[key], arrays[key], err_msg=key)
    rotmat, betas = _random_pose(2), torch.randn(2, 10)
    ours = SmplBody(tmp_path)(rotmat, betas)
    plain = SmplBody(smpl_dir)(rotmat, betas)
    torch.testing.assert_close(ours.vertices, plain.vertices, atol=1e-6, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(smpl_dir):
    body = SmplBody(smpl_dir)
    rotmat, betas = _random_pose(2), torch.randn(2, 10)
    cpu = body(rotmat, betas)
    gpu = body.to("cuda")(rotmat.cuda(), betas.cuda())
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(body.markers(rotmat.cuda(), betas.cuda()).cpu(),
                               cpu.vertices[:, body.marker_ids.cpu()], atol=1e-5, rtol=0)
