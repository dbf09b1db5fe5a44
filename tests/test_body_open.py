"""The shipped open body: geometry, shape space, markers, landmarks and the fast path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from smplx.lbs import batch_rodrigues, lbs

from refit_ros.body import SMPL_JOINT_NAMES, create_body_model
from refit_ros.body.open_body import DATA_FILE, OpenBody


@pytest.fixture(scope="module")
def body() -> OpenBody:
    return OpenBody()


def _eye(batch: int = 1) -> torch.Tensor:
    return torch.eye(3).expand(batch, 24, 3, 3).clone()


def _random_pose(batch: int, seed: int = 0, scale: float = 0.4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return batch_rodrigues(torch.randn(batch * 24, 3, generator=gen) * scale).view(batch, 24, 3, 3)


def _stature(verts: torch.Tensor) -> torch.Tensor:
    return verts[..., 1].amax(-1) - verts[..., 1].amin(-1)


def test_data_file_is_small_float32_and_open():
    assert DATA_FILE.stat().st_size < 3_000_000
    with np.load(DATA_FILE, allow_pickle=False) as npz:
        for key in ("v_template", "shapedirs", "weights", "jreg_vals"):
            assert npz[key].dtype == np.float32, key
        assert str(npz["name"]) == "refit_open_body_v1"
        assert '"noncommercial_data_used": false' in str(npz["provenance"])


def test_structure(body):
    assert body.name == "refit_open_body_v1"
    assert body.num_vertices == 13718 and body.num_betas == 10
    assert body.faces.shape == (27420, 3) and body.faces.dtype == torch.int64
    assert body.joint_names == SMPL_JOINT_NAMES
    assert body.parents.tolist()[:4] == [-1, 0, 0, 0]
    assert body.marker_ids.shape == (67,) and len(set(body.marker_ids.tolist())) == 67
    torch.testing.assert_close(body.lbs_weights.sum(1), torch.ones(body.num_vertices))
    assert isinstance(create_body_model("open"), OpenBody)


def test_t_pose_height_sides_and_orientation(body):
    out = body(_eye(), torch.zeros(1, 10))
    v, j = out.vertices[0], out.joints[0]
    assert 1.6 <= float(_stature(v)) <= 1.9
    for name in SMPL_JOINT_NAMES:
        if name.startswith("left_"):
            jl, jr = j[SMPL_JOINT_NAMES.index(name)], j[SMPL_JOINT_NAMES.index("right_" + name[5:])]
            assert jl[0] > 0.01 and jr[0] < -0.01, name
            torch.testing.assert_close(jl * torch.tensor([-1.0, 1, 1]), jr, atol=2e-3, rtol=0)
    head = j[SMPL_JOINT_NAMES.index("head")]
    for name in ("left_ankle", "right_ankle", "left_foot", "right_foot", "left_knee"):
        assert j[SMPL_JOINT_NAMES.index(name)][1] < head[1] - 1.0, name
    assert v[:, 1].argmin() != v[:, 1].argmax()
    assert float(v[v[:, 1] > head[1], 1].max()) - float(head[1]) < 0.3  # crown above head joint
    lm = body.landmarks(_eye(), torch.zeros(1, 10))[0]
    nose = lm[0]
    assert nose[2] > j[SMPL_JOINT_NAMES.index("head"), 2] + 0.05  # +z is the front
    assert float(torch.linalg.norm(j[1] - j[2])) == pytest.approx(0.225, abs=0.03)


def test_elbow_bend_moves_only_forearm_and_hand(body):
    betas = torch.zeros(1, 10)
    rest = body(_eye(), betas).vertices[0]
    bent = _eye()
    bent[0, SMPL_JOINT_NAMES.index("left_elbow")] = batch_rodrigues(
        torch.tensor([[0.0, -math.pi / 2, 0.0]]))[0]
    moved = (body(bent, betas).vertices[0] - rest).norm(dim=1)
    below = [SMPL_JOINT_NAMES.index(n) for n in ("left_elbow", "left_wrist", "left_hand")]
    influenced = body.lbs_weights[:, below].sum(1) > 0
    assert (moved[~influenced] == 0).all()
    assert (moved[influenced] > 0).all()
    hand = body.lbs_weights[:, SMPL_JOINT_NAMES.index("left_hand")] > 0.9
    assert float(moved[hand].min()) > 0.25  # fingers swing ~0.3 m forward
    fingertips = body(bent, betas).vertices[0][hand]
    assert float(fingertips[:, 2].mean()) > 0.25 and float(fingertips[:, 0].mean()) < 0.55
    elbow_x = float(body(_eye(), betas).joints[0, SMPL_JOINT_NAMES.index("left_elbow"), 0])
    shoulder_x = float(body(_eye(), betas).joints[0, SMPL_JOINT_NAMES.index("left_shoulder"), 0])
    assert float(rest[moved > 0, 0].min()) > shoulder_x + 0.08  # arm only, never the torso
    assert float(rest[moved > 0.01, 0].min()) > elbow_x - 0.08  # visibly: forearm and hand
    assert influenced.sum() < 0.2 * body.num_vertices


def test_marker_fast_path_equals_full_mesh(body):
    rotmat = _random_pose(8, seed=1)
    betas = torch.randn(8, 10, generator=torch.Generator().manual_seed(2))
    full = body(rotmat, betas)
    torch.testing.assert_close(body.markers(rotmat, betas), full.vertices[:, body.marker_ids],
                               atol=1e-6, rtol=0)
    ids = torch.tensor([0, 5, 13717, 777])
    torch.testing.assert_close(body.skin_vertices(rotmat, betas, ids), full.vertices[:, ids],
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(body.joints(rotmat, betas), full.joints, atol=0, rtol=0)


def test_matches_plain_smplx_lbs_and_exact_regressor(body):
    """The arrays run through smplx's own lbs() (zero pose correctives) to the same mesh."""
    rotmat, betas = _random_pose(2, seed=3), torch.randn(2, 10)
    posedirs = torch.zeros(207, body.num_vertices * 3)
    verts, joints = lbs(betas, rotmat, body.v_template, body.shapedirs, posedirs,
                        body.J_regressor, body.parents, body.lbs_weights, pose2rot=False)
    out = body(rotmat, betas)
    torch.testing.assert_close(out.vertices, verts, atol=2e-5, rtol=0)
    torch.testing.assert_close(out.joints, joints, atol=2e-5, rtol=0)


def test_shape_space_height(body):
    for target in (1.55, 1.70, 1.90):
        betas = body.betas_for_height(torch.tensor([target]))
        assert float(_stature(body(_eye(), betas).vertices[0])) == pytest.approx(target, abs=0.01)
    base = float(_stature(body(_eye(), torch.zeros(1, 10)).vertices[0]))
    for k in range(1, 10):  # other components leave stature (nearly) unchanged
        betas = torch.zeros(2, 10)
        betas[:, k] = torch.tensor([-1.0, 1.0])
        assert (_stature(body(_eye(2), betas).vertices) - base).abs().max() < 0.01, k
    heights = body.height_mean + body.height_per_beta0 * body.sample_betas(
        4000, torch.Generator().manual_seed(0))[:, 0]
    assert 1.65 < float(heights.mean()) < 1.75
    assert 0.06 < float(heights.std()) < 0.12
    assert float(heights.min()) > 1.3 and float(heights.max()) < 2.1


def test_markers_and_landmarks_placement(body):
    out = body(_eye(), torch.zeros(1, 10))
    v = out.vertices[0]
    m = dict(zip(body.marker_names, v[body.marker_ids], strict=True))
    for name, pos in m.items():
        if name[0] in "LR" and name[1:] and ("R" + name[1:] in m or "L" + name[1:] in m):
            assert (pos[0] > 0) == (name[0] == "L"), name
    assert m["LFHD"][1] > m["CLAV"][1] > m["STRN"][1] > m["MBLLY"][1] > m["LKNE"][1] > m["LHEE"][1]
    assert m["STRN"][2] > 0 > m["T8"][2] and m["LTOE"][2] > m["LANK"][2] > m["LHEE"][2]
    lm = body.landmarks(_eye(), torch.zeros(1, 10))[0]
    names = body.landmark_map.names
    assert all(body.landmark_map.defined)
    p = {n: lm[i] for i, n in enumerate(names)}
    assert p["nose"][2] == lm[:, 2].max() or p["nose"][2] > p["left_eye"][2]
    assert p["left_eye_outer"][0] > p["left_eye"][0] > p["left_eye_inner"][0] > 0
    assert p["right_eye_outer"][0] < p["right_eye"][0] < p["right_eye_inner"][0] < 0
    assert p["left_ear"][0] > p["left_eye_outer"][0] and p["mouth_left"][0] > 0
    assert p["left_eye"][1] > p["nose"][1] > p["mouth_left"][1]
    assert p["left_heel"][2] < p["left_ankle"][2] < p["left_foot_index"][2]
    assert p["left_thumb"][2] > p["left_pinky"][2]  # palms down: thumb side is the front
    torch.testing.assert_close(p["left_wrist"], out.joints[0, SMPL_JOINT_NAMES.index("left_wrist")])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(body):
    rotmat, betas = _random_pose(4), torch.randn(4, 10)
    cpu = body(rotmat, betas)
    gpu_body = OpenBody().to("cuda")
    gpu = gpu_body(rotmat.cuda(), betas.cuda())
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu_body.markers(rotmat.cuda(), betas.cuda()).cpu(),
                               cpu.vertices[:, body.marker_ids], atol=1e-5, rtol=0)
