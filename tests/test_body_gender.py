"""body.gender: only where the fitted betas belong to the gendered body (issue 14, item 10).

Every fitting network here regresses betas for a neutral body (ReFit and HMR: SMPL_NEUTRAL;
ReFit-KP: the open body, which has no gendered variants), so the config refuses
male/female, and the gender published with each body is that of the body model that made
the mesh, never a setting.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kp_test_body import kp_test_body
from refit_ros.config import ConfigError, load_config


def test_open_body_refuses_a_gender():
    for gender in ("male", "female"):
        with pytest.raises(ConfigError, match=rf"body.gender={gender!r} with body.model=open: "
                                              r"the open body has no gendered variants"):
            load_config(overrides=[f"body.gender={gender}"])
    assert load_config().body.gender == "neutral"


def test_hmr_is_refused_until_it_runs_in_the_pipeline():
    with pytest.raises(ConfigError, match=r"model.name=hmr: .*does not run in the pipeline yet"):
        load_config(overrides=["model.name=hmr"])


@pytest.mark.parametrize("model", ["refit"])
def test_neutral_regressed_betas_refuse_a_gendered_smpl(model):
    with pytest.raises(ConfigError, match=rf"body.gender='female' with model.name={model}: .*"
                                          r"betas for the neutral body.*set body.gender=neutral"):
        load_config(overrides=[f"model.name={model}", "body.model=smpl", "body.gender=female"])
    cfg = load_config(overrides=[f"model.name={model}", "body.model=smpl"])
    assert cfg.body.gender == "neutral"


def test_body_models_carry_their_gender(tmp_path):
    from refit_ros.body.open_body import OpenBody
    from refit_ros.body.smpl import SmplBody
    from refit_ros.body.synthetic import write_synthetic_smpl

    assert OpenBody().gender == "neutral"
    assert kp_test_body().gender == "neutral"
    write_synthetic_smpl(tmp_path)
    assert SmplBody(tmp_path, "female").gender == "female"


def test_published_gender_is_the_body_models_not_a_setting():
    """A pipeline on a genderless body says "neutral" even if handed gender="male"."""
    from refit_ros.detect.base import Detection
    from refit_ros.evaluation.temporal import ReplayDetector
    from refit_ros.geometry.intrinsics import Intrinsics
    from refit_ros.models.refit_kp import RefitKp
    from refit_ros.pipeline.models import FittingModel
    from refit_ros.pipeline.frame import PipelineSettings, RefitPipeline

    body = kp_test_body()
    torch.manual_seed(0)
    model = FittingModel.from_network(RefitKp(body).eval(), body=body)
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(500, 700, (33, 2)), rng.uniform(0.8, 1, (33, 1))], -1)
    det = Detection(bbox=np.array([480, 380, 720, 820], np.float32), score=0.9,
                    keypoints2d=kp.astype(np.float32))
    pipe = RefitPipeline(ReplayDetector({0.0: [det]}), model,
                         PipelineSettings(iterations=1), None)
    result = pipe.process(np.zeros((1080, 1280, 3), np.uint8),
                          Intrinsics(1200.0, 1200.0, 640.0, 540.0, 1280, 1080), 0.0)
    assert [b.gender for b in result.bodies] == ["neutral"]
