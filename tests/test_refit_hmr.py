"""HMR baseline: ResNet-50 + 3 IEF iterations behind the ReFit stage API."""

from __future__ import annotations

import pytest
import torch

from refit_ros.geometry.camera import CropCamera, crop_cam_to_translation
from refit_ros.models.hmr import Hmr, HmrState
from refit_ros.models.refit import RefitAssets


@pytest.fixture(scope="module")
def hmr():
    torch.manual_seed(0)
    return Hmr(RefitAssets.synthetic()).eval()


def _camera(b: int) -> CropCamera:
    return CropCamera(center=torch.tensor([[400.0, 300.0]]).repeat(b, 1),
                      box_size=torch.full((b,), 250.0), focal=torch.full((b, 2), 1200.0),
                      principal=torch.tensor([[320.0, 240.0]]).repeat(b, 1), crop_size=224)


def test_resnet50_size_and_ief_layout(hmr):
    n_enc = sum(p.numel() for p in hmr.encoder.parameters())
    assert n_enc == 23_508_032  # ResNet-50 without the classifier
    assert hmr.fc1.in_features == 2048 + 144 + 10 + 3
    assert hmr.fc2.out_features == 1024


def test_run_three_iterations_from_the_mean_with_full_frame_translation(hmr):
    img = torch.randn(2, 3, 224, 224)
    cam = _camera(2)
    with torch.no_grad():
        run = hmr.run(img, cam, iters=3)
        assert len(run.predictions) == 4
        torch.testing.assert_close(run.predictions[0].pose6d, hmr.init_pose.expand(2, -1))
        # Each step is the IEF update of the previous estimate.
        feats = hmr.encode(img)
        s1 = hmr.step(hmr.init_state(feats, cam), feats, cam)
        torch.testing.assert_close(run.predictions[1].cam, s1.cam)
        final = run.final
        assert final.vertices.shape == (2, 6890, 3) and final.joints.shape == (2, 49, 3)
        torch.testing.assert_close(final.translation, crop_cam_to_translation(
            final.cam, cam.center, cam.box_size, cam.focal, cam.principal))
        assert torch.all(final.translation[:, 2] > 0)
        # Warm start: continuing from the final state for 0 iterations changes nothing.
        warm = hmr.run(img, cam, iters=0, state=run.state)
        torch.testing.assert_close(warm.final.pose6d, final.pose6d)
        assert isinstance(run.state, HmrState)


def test_hmr_rejects_a_refit_sized_crop(hmr):
    with pytest.raises(ValueError, match="224 x 224"):
        hmr.encode(torch.zeros(1, 3, 256, 256))
