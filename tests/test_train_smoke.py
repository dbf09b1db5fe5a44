"""ReFit-KP training smoke test: a few steps on synthetic batches make the loss fall, and
the training command writes loadable weights with their recipe and provenance."""

from __future__ import annotations

import torch
import yaml

from kp_test_body import kp_test_body
from refit_ros.models.refit_kp import load_refit_kp
from refit_ros.training.config import load_train_config
from refit_ros.training.synthetic import SceneSampler, batch_rng, vertex_subset
from refit_ros.training.trainer import build_model, train, training_step

SMALL = ["batch_size=16", "iterations=2", "prefetch=false", "threads=1", "log_every=1",
         "eval.monitor_size=8", "optim.warmup_steps=1", "checkpoint_minutes=100"]


def test_loss_falls_in_a_few_steps():
    torch.manual_seed(0)
    cfg = load_train_config(None, SMALL + ["optim.lr=2e-3"])
    body = kp_test_body()
    model = build_model(cfg, body)
    vids = vertex_subset(body.num_vertices, 16)
    batch = SceneSampler(body, cfg.data, vids).sample(batch_rng(0, 0), 16)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    losses = []
    for _ in range(25):
        loss, _ = training_step(model, batch, cfg, vids)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:3]) / 3, sum(losses[-5:]) / 5
    assert last < 0.8 * first, losses


def test_train_writes_weights_config_and_resumes(tmp_path):
    body = kp_test_body()
    cfg = load_train_config(None, SMALL + ["budget.max_steps=2"])
    res = train(cfg, tmp_path, command="refit-ros train (test)", body=body)
    assert res.steps == 2 and res.weights.is_file()
    saved = yaml.safe_load((tmp_path / "train_config.yaml").read_text())
    assert saved["seed"] == cfg.seed and saved["batch_size"] == 16
    model = load_refit_kp(body, res.weights)
    assert model.meta["steps"] == 2 and model.meta["command"] == "refit-ros train (test)"
    assert model.meta["seed"] == cfg.seed and "git_commit" in model.meta
    more = load_train_config(None, SMALL + ["budget.max_steps=3"])
    assert train(more, tmp_path, body=body).steps == 3       # resumed from the checkpoint


def test_temporal_losses_measure_velocity_and_acceleration_errors():
    from refit_ros.training.warm_finetune import temporal_losses

    true = [torch.zeros(2, 24, 3) + k * 0.01 for k in range(3)]   # constant velocity
    out = temporal_losses([t.clone() for t in true], true)
    assert float(out["velocity"]) < 1e-4 and float(out["accel"]) < 1e-4
    pred = [t.clone() for t in true]
    pred[-1] = pred[-1] + torch.tensor([0.0, 0.03, 0.04])          # last frame 5 cm off
    out = temporal_losses(pred, true)
    assert abs(float(out["velocity"]) - 0.05) < 1e-4 and abs(float(out["accel"]) - 0.05) < 1e-4
    assert set(temporal_losses(pred[1:], true[1:])) == {"velocity"}


def test_warm_finetune_runs_with_and_without_the_temporal_loss(tmp_path):
    """A few fine-tuning steps on the test body: finite losses, weights + provenance saved,
    earlier fine-tune records kept."""
    from refit_ros.training.warm_finetune import WarmFinetuneConfig, finetune

    body = kp_test_body()
    train_cfg = load_train_config(None, SMALL)
    model = build_model(train_cfg, body)
    model.meta = {"warm_finetune": {"steps": 99}}
    for k, (accel, vel, root) in enumerate([(0.0, 0.0, 0.0), (10.0, 10.0, 2.0)]):
        cfg = WarmFinetuneConfig(max_steps=2, seq_batch=2, burn_in=(0, 2), scored_frames=2,
                                 cold_batch=4, accel_weight=accel, velocity_weight=vel,
                                 root_weight=root, min_burn_in_temporal=1)
        path = finetune(model, train_cfg, cfg, tmp_path / f"run{k}")
        assert path.is_file()
        assert all(torch.isfinite(p).all() for p in model.parameters())
    saved = load_refit_kp(body, path)
    assert saved.meta["warm_finetune"]["steps"] == 2
    assert saved.meta["warm_finetune"]["config"]["accel_weight"] == 10.0
    assert saved.meta["warm_finetune"]["config"]["root_weight"] == 2.0
    assert saved.meta["warm_finetune"]["last"] is None or \
        "warm_root_accel" in saved.meta["warm_finetune"]["last"]
    assert [r["steps"] for r in saved.meta["warm_finetune_previous"]] == [99, 2]


def test_root_term_adds_the_camera_frame_pelvis_trajectory_error():
    """``root_weight`` adds velocity + acceleration errors of the camera-frame pelvis to the
    warm loss (the published translation), on top of the pelvis-relative terms."""
    import numpy as np

    from refit_ros.training.sequences import SequenceConfig, SequenceSampler
    from refit_ros.training.warm_finetune import warm_sequence_loss

    body = kp_test_body()
    train_cfg = load_train_config(None, SMALL)
    torch.manual_seed(0)
    model = build_model(train_cfg, body).eval()
    seqs = SequenceSampler(body, train_cfg.data, SequenceConfig(frames=5, dropout_rate=0.0)) \
        .sample(np.random.default_rng(3), 2)
    args = (model, seqs, train_cfg, 2, 2, 1)
    base, p0 = warm_sequence_loss(*args, accel_weight=1.0, velocity_weight=1.0)
    with_root, p1 = warm_sequence_loss(*args, accel_weight=1.0, velocity_weight=1.0,
                                       root_weight=3.0)
    assert "root_accel" not in p0 and {"root_velocity", "root_accel"} <= set(p1)
    assert p1["root_accel"] > 0 and p1["root_velocity"] > 0
    # per scored frame the loss grows by root_weight x (velocity + accel) of the pelvis
    expected = 3.0 * (p1["root_velocity"] + p1["root_accel"])
    assert abs(float(with_root - base) - expected) < 1e-4 * max(1.0, expected)
