"""Temporal evaluation: metrics on known trajectories, the sequence generator, warm vs cold
through the pipeline, and ``refit-ros eval temporal`` on a tiny sequence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kp_test_body import kp_test_body
from refit_ros.detect.base import Detection
from refit_ros.evaluation.temporal import (FrameRecord, ReplayDetector, count_id_switches,
                                           run_frames)
from refit_ros.evaluation.temporal_metrics import (acceleration_error, jitter, lag_curve,
                                                   trajectory_lag)
from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.pipeline.models import FittingModel
from refit_ros.pipeline.frame import PipelineSettings, RefitPipeline
from refit_ros.tracking import Tracker, TrackerParams
from refit_ros.training.config import load_train_config
from refit_ros.training.sequences import SequenceConfig, sample_sequences


# ----------------------------------------------------------------------------- metrics
def _track(positions: np.ndarray) -> np.ndarray:
    """``T x 3`` -> ``T x 2 x 3`` (two joints moving together)."""
    return np.stack([positions, positions + 0.1], axis=1)


def test_constant_velocity_has_zero_jitter():
    t = np.arange(50, dtype=np.float64)
    x = _track(np.stack([0.01 * t, -0.02 * t, 3.0 + 0.005 * t], -1))
    value, count = jitter(x)
    assert value == pytest.approx(0.0, abs=1e-9) and count == 48
    assert acceleration_error(x, x)[0] == pytest.approx(0.0, abs=1e-12)


def test_zigzag_jitter_is_four_times_the_amplitude():
    # +-a alternating -> second difference of norm 4a every frame (a = 3 mm -> 12 mm/frame^2)
    t = np.arange(40)
    x = _track(np.stack([0.003 * (-1.0) ** t, np.zeros(40), np.zeros(40)], -1))
    assert jitter(x)[0] == pytest.approx(12.0)
    # on top of constant velocity, and against that smooth ground truth
    drift = _track(np.stack([0.01 * t, np.zeros(40), np.zeros(40)], -1))
    assert jitter(x + drift)[0] == pytest.approx(12.0)
    assert acceleration_error(x + drift, drift)[0] == pytest.approx(12.0)


def test_jitter_skips_triplets_with_missing_frames():
    t = np.arange(20, dtype=np.float64)
    x = _track(np.stack([0.003 * (-1.0) ** t, 0 * t, 0 * t], -1))
    valid = np.ones(20, bool)
    valid[[5, 12]] = False
    value, count = jitter(x, valid)
    assert value == pytest.approx(12.0) and count == 18 - 6


def test_lag_of_a_delayed_trajectory():
    t = np.arange(120, dtype=np.float64)
    ref = _track(np.stack([np.sin(t / 7), np.cos(t / 11), 0 * t], -1))
    delayed = np.concatenate([np.repeat(ref[:3], 1, 0), ref[:-3]])  # pred[t] = ref[t - 3]
    assert trajectory_lag(delayed, ref) == pytest.approx(3.0, abs=0.1)
    assert trajectory_lag(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(lag_curve(ref[:5], ref[:5], max_lag=10)).all()  # too short


def test_id_switch_counter_sees_a_swap():
    def rec(a, b):
        return FrameRecord({}, {a: np.array([0, 0, 10, 20.0]), b: np.array([100, 0, 110, 20.0])},
                           {}, 1.0, 1.0)
    assert count_id_switches([rec(1, 2), rec(1, 2)])["switches"] == 0
    assert count_id_switches([rec(1, 2), rec(2, 1)])["switches"] == 2
    assert count_id_switches([rec(1, 2), rec(1, 3)])["switches"] == 1


# ----------------------------------------------------------------------------- sequences
@pytest.fixture(scope="module")
def body():
    return kp_test_body()


def test_sequences_are_deterministic_and_smooth(body):
    scene = load_train_config().data
    cfg = SequenceConfig(frames=24)
    a = sample_sequences(body, scene, 5, 4, cfg)
    b = sample_sequences(body, scene, 5, 4, cfg)
    c = sample_sequences(body, scene, 6, 4, cfg)
    for name in ("keypoints2d", "bbox", "score", "detected", "translation", "joints", "rotmat"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.keypoints2d, c.keypoints2d)
    assert a.keypoints2d.shape == (4, 24, 33, 3) and a.joints.shape == (4, 24, 24, 3)
    assert sorted(a.motion) == ["arc", "reach", "spin", "walk"]
    # the ground truth moves smoothly: far below the detector noise in pixels
    j = a.joints_camera()
    for s in range(4):
        assert jitter(j[s])[0] < 10.0


# ----------------------------------------------------------------------------- pipeline
@pytest.fixture(scope="module")
def kp_model(body):
    from refit_ros.models.refit_kp import RefitKp

    torch.manual_seed(0)
    return FittingModel.from_network(RefitKp(body).eval(), body=body)


def _pipeline(model, warm_start: bool, warm_iterations: int) -> RefitPipeline:
    settings = PipelineSettings(iterations=3, warm_start=warm_start,
                                warm_iterations=warm_iterations)
    return RefitPipeline(ReplayDetector(), model, settings, Tracker(TrackerParams()))


def _static_frames(n: int) -> dict:
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(500, 700, (33, 2)), rng.uniform(0.8, 1, (33, 1))], -1)
    det = Detection(bbox=np.array([480, 380, 720, 820], np.float32), score=0.9,
                    keypoints2d=kp.astype(np.float32))
    return {ReplayDetector.key(k / 30): [det] for k in range(n)}


def test_warm_path_equals_cold_path_in_a_constructed_case(kp_model):
    # Identical detections every frame: the cold fit of frame k is the fit of frame 0, and
    # a warm start with 0 steps reproduces it exactly (same state, camera re-expressed for
    # the same box, accumulated shape = the one shape), through the real pipeline code.
    frames = _static_frames(4)
    image = np.zeros((1080, 1280, 3), np.uint8)
    intr = Intrinsics(1200.0, 1200.0, 640.0, 540.0, 1280, 1080)
    stamps = [(k / 30, image) for k in range(4)]
    cold = _pipeline(kp_model, False, 0)
    warm = _pipeline(kp_model, True, 0)
    cold.detector.load(frames)
    warm.detector.load(frames)
    rc = run_frames(cold, stamps, intr)
    rw = run_frames(warm, stamps, intr)
    assert [list(r.warm.values()) for r in rw] == [[False], [True], [True], [True]]
    for a, b in zip(rc, rw):
        np.testing.assert_allclose(a.joints[0], b.joints[0], atol=2e-5)


class _CountingModel:
    """Wraps a fitting model and counts init/step calls per frame."""

    def __init__(self, inner):
        self.inner, self.name, self.body = inner, inner.name, inner.body
        self.inits = self.steps = 0

    def encode(self, *a):
        return self.inner.encode(*a)

    def init_state(self, *a):
        self.inits += 1
        return self.inner.init_state(*a)

    def step(self, *a):
        self.steps += 1
        return self.inner.step(*a)

    def rotmat(self, s):
        return self.inner.rotmat(s)

    def warm_start(self, *a, **k):
        return self.inner.warm_start(*a, **k)


def test_warm_frames_run_warm_iterations_and_cold_frames_run_iterations(kp_model):
    model = _CountingModel(kp_model)
    pipe = _pipeline(model, True, 2)
    pipe.detector.load(_static_frames(3))
    image = np.zeros((1080, 1280, 3), np.uint8)
    counts = []
    for k in range(3):
        pipe.process(image, stamp=k / 30)
        counts.append((model.inits, model.steps))
    assert counts == [(1, 3), (1, 5), (1, 7)]


# ----------------------------------------------------------------------------- CLI
def test_cli_eval_temporal_tiny(tmp_path, capsys):
    from refit_ros.body.open_body import OpenBody
    from refit_ros.cli import main
    from refit_ros.models.refit_kp import RefitKp, save_refit_kp

    torch.manual_seed(0)
    weights = save_refit_kp(RefitKp(OpenBody()).eval(), tmp_path / "w.pt")
    assert main(["eval", "temporal", "--weights", str(weights), "--sequences", "1",
                 "--frames", "24", "--threads", "1", "--one-euro-cutoffs", "2", "--json",
                 "--set", "tracking.warm_max_error=0"]) == 0  # untrained net: never fits well
    out = json.loads(capsys.readouterr().out)
    names = [m["mode"] for m in out["modes"]]
    assert names[:3] == ["cold", "warm", "cold+one_euro"]
    assert "cold+one_euro@warm_lag" in names
    by = {m["mode"]: m for m in out["modes"]}
    assert by["cold"]["warm_fraction"] == 0.0 and by["warm"]["warm_fraction"] > 0.5
    assert by["cold"]["mpjpe_mm"] > 0 and by["warm"]["jitter_mm"] >= 0
    assert out["sequences"] == 1 and out["frames_per_sequence"] == 24
    assert set(out["warm_vs_cold"]) >= {"jitter_mm_change", "mpjpe_mm_change",
                                        "model_ms_median_change"}


def test_warm_start_state_keeps_or_resets_hidden_and_drops_stale_body(kp_model):
    from refit_ros.models.refit.warm import warm_start_state

    pipe = _pipeline(kp_model, True, 1)
    pipe.detector.load(_static_frames(2))
    image = np.zeros((1080, 1280, 3), np.uint8)
    pipe.process(image, stamp=0.0)
    fit = pipe.fits[pipe.tracker.tracks[0].track_id]
    prev, cam = fit.state, fit.camera
    kept = warm_start_state(prev, cam, cam)
    torch.testing.assert_close(kept.cam, prev.cam, rtol=0, atol=1e-5)
    # the 6D pose is put in canonical form (orthonormal columns), same rotations
    six = kept.pose6d.reshape(-1, 3, 2)
    torch.testing.assert_close(six.norm(dim=1), torch.ones(six.shape[0], 2), rtol=0, atol=1e-5)
    torch.testing.assert_close(kp_model.rotmat(kept), kp_model.rotmat(prev), rtol=0, atol=1e-5)
    assert kept.hpose is prev.hpose and kept.joints is prev.joints
    reset = warm_start_state(prev, cam, cam, betas=prev.betas + 0.1, reset_hidden=True)
    assert float(reset.hpose.abs().sum()) == 0.0 and float(reset.hcam.abs().sum()) == 0.0
    assert reset.joints is None  # the cached body belonged to the old shape


def test_chained_warm_starts_keep_the_6d_pose_bounded(kp_model):
    # A step adds its update to the raw 6D vectors; chained over many frames without
    # normalisation their length grows frame after frame (the network then sees inputs it
    # was never trained on and stops fitting). The warm start renormalises them, so after
    # many warm frames the stored state is still one step away from unit length.
    n = 40
    pipe = _pipeline(kp_model, True, 1)
    pipe.detector.load(_static_frames(n))
    image = np.zeros((1080, 1280, 3), np.uint8)
    lengths = []
    for k in range(n):
        pipe.process(image, stamp=k / 30)
        fit = pipe.fits[pipe.tracker.tracks[0].track_id]
        assert fit.warm_ok == (k > 0)
        six = fit.state.pose6d.reshape(-1, 3, 2)
        lengths.append(float(six.norm(dim=1).mean()))
    assert max(abs(x - 1.0) for x in lengths) < 0.01, lengths  # unnormalised: 1.10 at the end


class _ScriptedErrors(_CountingModel):
    """Counting model whose ``fit_error`` is scripted: warm fits (hidden states non-zero
    after a warm step) report ``warm_err``, cold fits 0.01."""

    def __init__(self, inner, warm_err):
        super().__init__(inner)
        self.warm_err = warm_err

    def fit_error(self, state, features, camera):
        return torch.full((state.pose6d.shape[0],), self.warm_err)


def test_fit_quality_check_refits_cold_after_consecutive_poor_warm_fits(kp_model):
    image = np.zeros((1080, 1280, 3), np.uint8)

    def run(warm_err, check_frames):
        model = _ScriptedErrors(kp_model, warm_err)
        settings = PipelineSettings(iterations=3, warm_iterations=1, warm_max_error=0.05,
                                    warm_check_frames=check_frames)
        pipe = RefitPipeline(ReplayDetector(), model, settings, Tracker(TrackerParams()))
        pipe.detector.load(_static_frames(5))
        recs = run_frames(pipe, [(k / 30, image) for k in range(5)], None)
        return model.inits, [r.warm[0] for r in recs]

    # good warm fits: one cold start, then warm
    assert run(0.01, 2) == (1, [False, True, True, True, True])
    # poor warm fits (scripted 0.2 > 0.05; the cold fit scores 0.2 as well here, so it is
    # fitted but not taken): cold refits on frames 2 and 4, the second poor frame in a row
    inits, warm = run(0.2, 2)
    assert inits == 3 and warm == [False, True, True, True, True]


def test_fit_quality_check_takes_the_better_cold_fit(kp_model):
    image = np.zeros((1080, 1280, 3), np.uint8)

    class ColdIsBetter(_CountingModel):
        def fit_error(self, state, features, camera):
            # the first call of a frame scores the warm fit, the second the cold refit
            self.calls = getattr(self, "calls", 0) + 1
            return torch.full((state.pose6d.shape[0],), 0.2 if self.calls % 2 else 0.01)

    model = ColdIsBetter(kp_model)
    settings = PipelineSettings(iterations=3, warm_iterations=1, warm_max_error=0.05,
                                warm_check_frames=1)
    pipe = RefitPipeline(ReplayDetector(), model, settings, Tracker(TrackerParams()))
    pipe.detector.load(_static_frames(3))
    recs = run_frames(pipe, [(k / 30, image) for k in range(3)], None)
    assert model.inits == 3 and [r.warm[0] for r in recs] == [False, False, False]


def _moving_frames(n: int) -> dict:
    rng = np.random.default_rng(1)
    base = np.concatenate([rng.uniform(500, 700, (33, 2)), rng.uniform(0.8, 1, (33, 1))], -1)
    out = {}
    for k in range(n):
        kp = base.copy()
        kp[:, :2] += rng.normal(0.0, 6.0, (33, 2)) + 4.0 * k
        det = Detection(bbox=np.array([480 + 4 * k, 380 + 4 * k, 720 + 4 * k, 820 + 4 * k],
                                      np.float32), score=0.9, keypoints2d=kp.astype(np.float32))
        out[ReplayDetector.key(k / 30)] = [det]
    return out


def test_cold_blend_mixes_this_frames_cold_fit_into_the_warm_fit(kp_model):
    frames = _moving_frames(5)
    image = np.zeros((1080, 1280, 3), np.uint8)
    intr = Intrinsics(1200.0, 1200.0, 640.0, 540.0, 1280, 1080)
    stamps = [(k / 30, image) for k in range(5)]
    runs = {}
    for name, warm, blend in (("cold", False, 0.0), ("warm", True, 0.0), ("all", True, 1.0),
                              ("half", True, 0.5)):
        settings = PipelineSettings(iterations=3, warm_start=warm, warm_iterations=1,
                                    cold_blend=blend)
        pipe = RefitPipeline(ReplayDetector(), kp_model, settings, Tracker(TrackerParams()))
        pipe.detector.load(frames)
        runs[name] = [pipe.process(img, intr, t).bodies[0] for t, img in stamps]
    for k in range(1, 5):   # warm frames
        cold, warm, full, half = (runs[n][k] for n in ("cold", "warm", "all", "half"))
        # cold_blend=1: pose and translation are the cold fit's (the shape stays accumulated)
        np.testing.assert_allclose(full.pose, cold.pose, atol=1e-4)
        np.testing.assert_allclose(full.transl, cold.transl, atol=1e-4)
        assert np.abs(warm.pose - cold.pose).max() > 1e-3
        # 0.5 lies between the two
        d_half = np.abs(half.pose - cold.pose).max()
        assert 1e-4 < d_half < np.abs(warm.pose - cold.pose).max() + 1e-6
