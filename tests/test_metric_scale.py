"""Body size from the detector's metric world landmarks (pipeline/metric_scale.py)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from smplx.lbs import batch_rodrigues

from refit_ros.body.base import BLAZEPOSE_LANDMARK_NAMES
from refit_ros.body.open_body import OpenBody
from refit_ros.config import ConfigError, load_config
from refit_ros.pipeline.metric_scale import SEGMENTS, MetricScale, skeleton_length

LM = {n: i for i, n in enumerate(BLAZEPOSE_LANDMARK_NAMES)}


@pytest.fixture(scope="module")
def body() -> OpenBody:
    return OpenBody()


def _pose(batch: int, seed: int = 0, spread: float = 0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    aa = torch.randn(batch * 24, 3, generator=gen) * spread
    rot = batch_rodrigues(aa).view(batch, 24, 3, 3).clone()
    rot[:, 0] = batch_rodrigues(torch.tensor([[np.pi, 0.0, 0.0]]))[0]   # upright, facing the camera
    return rot


def _world_landmarks(body, rotmat, betas, scale: float) -> np.ndarray:
    """World landmarks of a body ``scale`` times this one's size (hip-centred, 33 x 3)."""
    j = body(rotmat, betas).joints[0].numpy().astype(np.float64)
    kp = np.zeros((33, 3))
    lmap = body.landmark_map
    for name, i in LM.items():
        if lmap.joint_ids[i] >= 0:
            kp[i] = j[lmap.joint_ids[i]]
    return (kp - 0.5 * (kp[LM["left_hip"]] + kp[LM["right_hip"]])) * scale


def _project(points: torch.Tensor, f: float = 1500.0) -> torch.Tensor:
    return points[..., :2] / points[..., 2:3] * f


def _segments(body, rotmat, betas) -> float:
    j = body(rotmat, betas).joints[0].numpy()
    lmap = body.landmark_map
    pairs = [(lmap.joint_ids[LM[a]], lmap.joint_ids[LM[b]]) for a, b in SEGMENTS]
    return skeleton_length(j, pairs)


@pytest.mark.parametrize("scale", [0.85, 1.1])
def test_body_is_resized_to_the_world_landmarks_and_projects_where_it_did(body, scale):
    ms = MetricScale(body)
    assert ms.available
    rot = _pose(1)
    betas = torch.zeros(1, body.num_betas)
    betas[0, 1] = 0.5
    transl = torch.tensor([[0.3, -0.2, 4.0]])
    det = types.SimpleNamespace(keypoints3d=_world_landmarks(body, rot, betas, scale))
    new_betas, new_transl = ms.apply(rot, betas, transl, [det], [None])
    # the stature coefficient moved, the other shape coefficients did not
    assert new_betas[0, 0] != 0 and torch.equal(new_betas[0, 1:], betas[0, 1:])
    ratio = _segments(body, rot, new_betas) / _segments(body, rot, betas)
    assert ratio == pytest.approx(scale, rel=0.01)
    # moved along the viewing ray by the achieved size ratio
    assert torch.allclose(new_transl, transl * ratio, rtol=0.01)
    # and the joints project (nearly) where they did: the stature coefficient scales the
    # body almost uniformly (the legs a little more than the arms), so a 10-15 % resize
    # moves them by ~1 % of the body's projected height
    before = _project(body(rot, betas).joints + transl[:, None])
    after = _project(body(rot, new_betas).joints + new_transl[:, None])
    height = float(before[0, :, 1].max() - before[0, :, 1].min())
    assert (after - before).norm(dim=-1).median() < 0.015 * height


def test_running_median_per_track_ignores_one_bad_frame_and_forgets_dead_tracks(body):
    ms = MetricScale(body, window=10)
    rot = _pose(1, seed=1, spread=0.0)   # torso segments as in the rest pose
    betas = torch.zeros(1, body.num_betas)
    transl = torch.tensor([[0.0, 0.0, 3.0]])
    good = types.SimpleNamespace(keypoints3d=_world_landmarks(body, rot, betas, 0.9))
    bad = types.SimpleNamespace(keypoints3d=_world_landmarks(body, rot, betas, 1.2))
    for _ in range(4):
        ms.apply(rot, betas, transl, [good], [7])
    _, t_bad = ms.apply(rot, betas, transl, [bad], [7])
    assert float(t_bad[0, 2]) == pytest.approx(2.7, rel=0.02)
    ms.forget({8})
    _, t_new = ms.apply(rot, betas, transl, [bad], [7])   # history gone: this frame only
    assert float(t_new[0, 2]) == pytest.approx(3.6, rel=0.02)


def test_people_without_world_landmarks_and_weight_zero_are_left_alone(body):
    rot = _pose(2, seed=2)
    betas = torch.zeros(2, body.num_betas)
    transl = torch.tensor([[0.0, 0.0, 3.0], [1.0, 0.0, 5.0]])
    det = types.SimpleNamespace(keypoints3d=_world_landmarks(body, rot[:1], betas[:1], 0.9))
    nan = types.SimpleNamespace(keypoints3d=np.full((33, 3), np.nan))
    b, t = MetricScale(body).apply(rot, betas, transl, [det, nan], [None, None])
    assert float(t[0, 2]) < 3.0 and torch.equal(t[1], transl[1]) and torch.equal(b[1], betas[1])
    b, t = MetricScale(body).apply(rot, betas, transl, [types.SimpleNamespace(), nan], [1, 2])
    assert torch.equal(t, transl) and torch.equal(b, betas)
    off = MetricScale(body, weight=0.0)
    assert not off.available
    b, t = off.apply(rot, betas, transl, [det, det], [None, None])
    assert torch.equal(t, transl) and torch.equal(b, betas)


def test_half_weight_is_the_geometric_mean_of_the_sizes(body):
    rot = _pose(1, seed=3, spread=0.0)
    betas = torch.zeros(1, body.num_betas)
    transl = torch.tensor([[0.0, 0.0, 4.0]])
    det = types.SimpleNamespace(keypoints3d=_world_landmarks(body, rot, betas, 0.81))
    _, t = MetricScale(body, weight=0.5).apply(rot, betas, transl, [det], [None])
    assert float(t[0, 2]) == pytest.approx(4.0 * 0.9, rel=0.01)


def test_a_body_without_landmarks_on_joints_is_not_rescaled():
    no_map = types.SimpleNamespace(landmark_map=None)
    assert not MetricScale(no_map).available


def test_config_key_and_pipeline_hook():
    cfg = load_config()
    assert 0.0 < cfg.scale.world_weight <= 1.0 and cfg.scale.window >= 1
    with pytest.raises(ConfigError, match="scale.world_weight"):
        load_config(overrides=["scale.world_weight=1.5"])
    with pytest.raises(ConfigError, match="scale.window"):
        load_config(overrides=["scale.window=0"])
