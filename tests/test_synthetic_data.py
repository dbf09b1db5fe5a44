"""Synthetic scenes: determinism, held-out separation, geometry and detector realism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kp_test_body import kp_test_body
from refit_ros.geometry.camera import project
from refit_ros.training.detector_noise import MIRROR_LANDMARKS
from refit_ros.training.pose_prior import FAMILIES, mirror_rotmat, sample_poses
from refit_ros.training.synthetic import (EVAL_STREAM, TRAIN_STREAM, SceneConfig, SceneSampler,
                                          batch_rng)


@pytest.fixture(scope="module")
def sampler():
    return SceneSampler(kp_test_body())


def test_batches_are_deterministic_and_streams_differ(sampler):
    a = sampler.sample(batch_rng(5, 3, TRAIN_STREAM), 8)
    b = sampler.sample(batch_rng(5, 3, TRAIN_STREAM), 8)
    c = sampler.sample(batch_rng(5, 3, EVAL_STREAM), 8)
    torch.testing.assert_close(a.keypoints2d, b.keypoints2d)
    assert not torch.allclose(a.keypoints2d, c.keypoints2d)


def test_scene_geometry_is_consistent(sampler):
    s = sampler.sample(batch_rng(0, 0), 64)
    cam = s.camera
    # True landmarks, projected, lie near the simulated detections for most points.
    p = project(s.landmarks + s.translation[:, None], cam.focal, cam.principal)
    err = (p - s.keypoints2d[..., :2]).norm(dim=-1) / cam.box_size[:, None]
    assert err.median() < 0.03
    assert (s.translation[:, 2] > 1.0).all() and (s.translation[:, 2] < 12).all()
    # Boxes lie in the image; crops are square boxes 1.2x the box's longer side.
    w, h = s.image_size[:, 0], s.image_size[:, 1]
    assert (s.bbox[:, 0] >= 0).all() and (s.bbox[:, 2] <= w).all() and (s.bbox[:, 3] <= h).all()
    side = torch.maximum(s.bbox[:, 2] - s.bbox[:, 0], s.bbox[:, 3] - s.bbox[:, 1]) * 1.2
    torch.testing.assert_close(cam.box_size, side)
    conf = s.keypoints2d[..., 2]
    assert conf.min() >= 0 and conf.max() <= 1 and 0.6 < conf.mean() < 0.95
    # Rotations are rotations; bodies are mostly upright (head above pelvis in the image).
    eye = torch.eye(3).expand_as(s.rotmat)
    torch.testing.assert_close(s.rotmat @ s.rotmat.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    up = (s.joints[:, 15, 1] < s.joints[:, 0, 1]).float().mean()   # camera y points down
    assert up > 0.85


def test_pose_prior_families_and_mirror():
    rng = np.random.default_rng(0)
    ps = sample_poses(rng, 200)
    assert set(np.unique(ps.family)) == set(range(len(FAMILIES)))
    r = ps.rotmat
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-9)
    np.testing.assert_allclose(mirror_rotmat(mirror_rotmat(r)), r, atol=1e-12)


def test_mirror_landmarks_are_an_involution():
    m = np.array(MIRROR_LANDMARKS)
    assert (m[m] == np.arange(33)).all() and m[0] == 0


def test_scene_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown data config keys"):
        SceneConfig.from_dict({"depth": [1, 2]})
