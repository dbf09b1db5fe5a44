"""Fine-tune ReFit-KP for warm starts: the step learns to continue from last frame's state.

Why: the main training unrolls 5 steps from the mean body, so the step never sees a state
that is already (nearly) right, nor hidden states that have lived for more than 5 steps.
Run beyond its horizon it keeps moving (held-out MPJPE grows by ~1 mm per extra step),
and a tracker that warm-starts every frame adds ``warm_iterations`` steps per frame, so the
error drifts. Here the step is trained on what the pipeline actually does:

* short synthetic sequences (:mod:`refit_ros.training.sequences`, own random stream;
  frame rate 10-30 fps so the motion between processed frames covers a node that drops
  frames);
* frame 0 fitted cold (init + ``iterations`` steps), then a random number of burn-in frames
  warm-started without gradient (hidden states that have lived for many steps), then
  ``scored_frames`` warm-started frames with the loss on every estimate and the gradient
  flowing through the hidden states across them;
* each warm start built by :func:`refit_ros.models.refit.warm.warm_start_state` - the
  pipeline's own function - with the crop camera re-expressed for the new box and the
  running-mean shape, and ``warm_iterations`` drawn per batch from a small range;
* the same losses as the main training (:func:`refit_ros.training.losses.sequence_loss`),
  plus, every step, an ordinary single-frame cold batch of the main recipe so cold accuracy
  is held.

``python -m refit_ros.training.warm_finetune --weights IN.pt --out DIR [--minutes 14]``
writes ``DIR/refit_kp_warm.pt`` (and a log). Whether to ship it is decided by
``refit-ros eval temporal`` and ``refit-ros eval synthetic`` (see README).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from refit_ros.geometry.camera import CropCamera
from refit_ros.models.refit_kp.evidence import KeypointEvidence
from refit_ros.models.refit_kp.loading import load_refit_kp, save_refit_kp
from refit_ros.models.refit_kp.model import RefitKp
from refit_ros.models.refit.warm import warm_start_state
from refit_ros.training.config import TrainConfig, load_train_config
from refit_ros.training.losses import Targets, sequence_loss
from refit_ros.training.sequences import (TEMPORAL_TRAIN_STREAM, SequenceConfig,
                                          SequenceSampler, SyntheticSequences)
from refit_ros.training.synthetic import SceneSampler, batch_rng, vertex_subset
from refit_ros.training.trainer import training_step

log = logging.getLogger(__name__)

#: Offset of the cold-batch indices into the main training stream (beyond any main run).
COLD_BATCH_OFFSET = 10_000_000


@dataclass(frozen=True)
class WarmFinetuneConfig:
    """Settings of the warm-start fine-tuning.

    Attributes
    ----------
    seed : int
    minutes : float
        Wall-clock budget.
    max_steps : int
    lr, lr_min : float
        Adam learning rate: linear warm-up over ``warmup_steps``, cosine to ``lr_min``.
    warmup_steps : int
    grad_clip : float
    seq_batch : int
        Sequences per step.
    scored_frames : int
        Warm frames with a loss per sequence.
    burn_in : tuple of int
        Range (inclusive) of warm frames run without gradient before the scored ones.
    warm_iterations : tuple of int
        Steps per warm frame, drawn per batch from this set.
    fps_range : tuple of float
        Frame rate of the sequences (uniform per batch).
    landmark_bias : float
        :attr:`SequenceConfig.landmark_bias` of the training sequences.
    cold_batch : int
        Single-frame cold samples per step (0 = none).
    cold_weight, warm_weight : float
    accel_weight : float
        Temporal loss on the scored warm frames (0 = off, the default): mean per-joint norm
        of the predicted minus the true second difference of the pelvis-relative joints
        (metres per frame^2); frames ``t-1``, ``t-2`` are earlier scored frames (with
        gradient) or the last burn-in / cold frames (without). Teaches the recurrent state
        not to follow per-frame landmark jitter.
    velocity_weight : float
        The same with the first difference (0 = off, the default).
    root_weight : float
        Velocity + acceleration error of the pelvis trajectory in the camera frame (the
        translation the node publishes, depth included), metres per frame (squared); 0 = off.
    min_burn_in_temporal : int
        Sequences with a temporal loss get at least this many burn-in frames (so the
        second difference of the first scored frame rests on warm frames); 0 = as drawn.
    threads : int
    """

    seed: int = 4242
    minutes: float = 14.0
    max_steps: int = 100_000
    lr: float = 1e-4
    lr_min: float = 1e-5
    warmup_steps: int = 30
    grad_clip: float = 4.0
    seq_batch: int = 24
    scored_frames: int = 3
    burn_in: tuple[int, int] = (0, 30)
    warm_iterations: tuple[int, ...] = (1, 2)
    fps_range: tuple[float, float] = (10.0, 30.0)
    landmark_bias: float = 0.015
    cold_batch: int = 64
    cold_weight: float = 1.0
    warm_weight: float = 1.0
    accel_weight: float = 0.0
    velocity_weight: float = 0.0
    root_weight: float = 0.0
    min_burn_in_temporal: int = 0
    threads: int = 1


def _targets(model: RefitKp, f: dict, cam: CropCamera, vertices) -> Targets:
    markers = f["landmarks"][:, model.marker_landmarks]
    return Targets.from_camera_frame(f["rotmat"], f["betas"],
                                     torch.cat([f["joints"], markers], dim=1),
                                     f["translation"], cam, vertices)


def _rel_joints(joints: torch.Tensor) -> torch.Tensor:
    """Pelvis-relative joints (``B x 24 x 3``), the quantity the jitter metric differences."""
    return joints - joints[:, :1]


def temporal_losses(pred: list, true: list) -> dict[str, torch.Tensor]:
    """Velocity and acceleration errors of the newest frame of a short trajectory.

    Parameters
    ----------
    pred, true : list of Tensor
        Pelvis-relative joints ``B x J x 3`` of frames ``t-2, t-1, t`` (or ``t-1, t``),
        oldest first; only ``pred[-1]`` needs to carry gradient.

    Returns
    -------
    dict
        ``velocity`` (mean per-joint norm of predicted minus true first difference) and,
        with three frames, ``accel`` (second difference), metres per frame (squared).
    """
    out = {}
    vp, vt = pred[-1] - pred[-2], true[-1] - true[-2]
    out["velocity"] = torch.sqrt(((vp - vt) ** 2).sum(-1) + 1e-10).mean()
    if len(pred) >= 3:
        ap = pred[-1] - 2 * pred[-2] + pred[-3]
        at = true[-1] - 2 * true[-2] + true[-3]
        out["accel"] = torch.sqrt(((ap - at) ** 2).sum(-1) + 1e-10).mean()
    return out


def warm_sequence_loss(model: RefitKp, seqs: SyntheticSequences, train: TrainConfig,
                       burn_in: int, scored: int, warm_iters: int,
                       vertex_ids: torch.Tensor | None = None,
                       vertices: list | None = None, accel_weight: float = 0.0,
                       velocity_weight: float = 0.0,
                       root_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """Cold first frame, ``burn_in`` warm frames without gradient, ``scored`` warm frames
    with the loss; returns the mean loss of the scored frames and logging parts.

    Parameters
    ----------
    model : RefitKp
    seqs : SyntheticSequences
        At least ``1 + burn_in + scored`` frames.
    train : TrainConfig
        Its ``iterations`` (cold steps) and ``loss`` weights are used.
    vertices : list of Tensor, optional
        Per-frame ``S x V x 3`` true vertices (body-model frame) for the vertex loss.
    accel_weight, velocity_weight : float
        Weights of the temporal terms (:func:`temporal_losses`) added to each scored frame's
        loss (0 = off: the loss is exactly the per-frame one).
    root_weight : float
        Weight of the same terms (velocity + acceleration) on the camera-frame pelvis.
    """
    temporal = accel_weight > 0 or velocity_weight > 0 or root_weight > 0
    n_frames = 1 + burn_in + scored
    if seqs.num_frames < n_frames:
        raise ValueError(f"sequences have {seqs.num_frames} frames, need {n_frames}")
    cams = [seqs.crop_camera(t) for t in range(n_frames)]
    frames = [seqs.frame_tensors(t) for t in range(n_frames)]

    def features(t):
        return model.encode(KeypointEvidence.from_full_image(frames[t]["keypoints2d"], cams[t]))

    pred_rel: list = []      # per frame: predicted pelvis-relative joints (temporal loss)
    pred_root: list = []     # per frame: predicted camera-frame pelvis

    def root_of(joints, cam, t):
        return joints[:, :1] + cams[t].translation(cam)[:, None]

    def true_root(u):
        return frames[u]["joints"][:, :1] + frames[u]["translation"][:, None]

    def record(joints, cam, t):
        pred_rel.append(_rel_joints(joints))
        pred_root.append(root_of(joints, cam, t))

    def keep(state, t):
        record(model._estimate(state.pose6d, state.betas, state.cam, None).joints, state.cam, t)

    with torch.no_grad():
        f0 = features(0)
        state = model.init_state(f0, cams[0])
        for _ in range(train.iterations):
            state = model.step(state, f0, cams[0])
        betas_sum = state.betas.clone()
        if temporal and burn_in < 2:
            keep(state, 0)
        for t in range(1, 1 + burn_in):
            ft = features(t)
            state = warm_start_state(state, cams[t - 1], cams[t], betas_sum / t)
            for _ in range(warm_iters):
                state = model.step(state, ft, cams[t])
            betas_sum += state.betas
            if temporal and t >= burn_in - 1:
                keep(state, t)
    first_kept = 1 + burn_in - len(pred_rel)
    total = None
    parts: dict = {}
    tparts: dict = {}
    for t in range(1 + burn_in, n_frames):
        ft = features(t)
        start = warm_start_state(state, cams[t - 1], cams[t], (betas_sum / t).detach())
        estimates, state = model.unroll(ft, cams[t], warm_iters, vertex_ids, state=start)
        tgt = _targets(model, frames[t], cams[t], None if vertices is None else vertices[t])
        loss, parts = sequence_loss(estimates, tgt, cams[t], train.loss)
        if temporal:
            record(estimates[-1].joints, estimates[-1].cam, t)
            k = min(3, len(pred_rel))
            true_rel = [_rel_joints(frames[u]["joints"]) for u in range(t - k + 1, t + 1)]
            assert first_kept <= t - k + 1
            terms = temporal_losses(pred_rel[-k:], true_rel)
            loss = loss + velocity_weight * terms["velocity"]
            if "accel" in terms:
                loss = loss + accel_weight * terms["accel"]
            if root_weight > 0:
                root = temporal_losses(pred_root[-k:], [true_root(u) for u in
                                                         range(t - k + 1, t + 1)])
                loss = loss + root_weight * sum(root.values())
                terms.update({f"root_{name}": v for name, v in root.items()})
            for name, v in terms.items():
                tparts.setdefault(name, []).append(float(v.detach()))
        total = loss if total is None else total + loss
        betas_sum = betas_sum + state.betas.detach()
    parts = dict(parts)
    for name, v in tparts.items():
        parts[name] = float(np.mean(v))
    return total / scored, parts


def _lr(cfg: WarmFinetuneConfig, step: int, minutes: float) -> float:
    progress = min(1.0, max(step / cfg.max_steps, minutes / cfg.minutes))
    lr = cfg.lr_min + (cfg.lr - cfg.lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * min(1.0, (step + 1) / max(cfg.warmup_steps, 1))


def finetune(model: RefitKp, train: TrainConfig, cfg: WarmFinetuneConfig,
             out_dir: str | Path) -> Path:
    """Fine-tune ``model`` in place for warm starts and save it to ``out_dir``.

    Returns
    -------
    Path
        ``out_dir/refit_kp_warm.pt`` (provenance in its ``meta``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    body = model.body
    vids = vertex_subset(body.num_vertices, train.vertex_subset, seed=0)
    scenes = SceneSampler(body, train.data, vids)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    rng_meta = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    step, log_rows = 0, []
    while step < cfg.max_steps and (time.perf_counter() - t0) / 60 < cfg.minutes:
        minutes = (time.perf_counter() - t0) / 60
        lr = _lr(cfg, step, minutes)
        for g in opt.param_groups:
            g["lr"] = lr
        burn = int(rng_meta.integers(cfg.burn_in[0], cfg.burn_in[1] + 1))
        if cfg.accel_weight > 0 or cfg.velocity_weight > 0 or cfg.root_weight > 0:
            burn = max(burn, cfg.min_burn_in_temporal)
        iters = int(rng_meta.choice(cfg.warm_iterations))
        fps = float(rng_meta.uniform(*cfg.fps_range))
        seq_cfg = SequenceConfig(frames=1 + burn + cfg.scored_frames, fps=fps, dropout_rate=0.0,
                                 landmark_bias=cfg.landmark_bias)
        seqs = SequenceSampler(body, train.data, seq_cfg).sample(
            batch_rng(cfg.seed, step, TEMPORAL_TRAIN_STREAM), cfg.seq_batch)
        verts = _sequence_vertices(body, seqs, vids)
        warm_loss, wparts = warm_sequence_loss(model, seqs, train, burn, cfg.scored_frames,
                                               iters, vids, verts, cfg.accel_weight,
                                               cfg.velocity_weight, cfg.root_weight)
        loss = cfg.warm_weight * warm_loss
        cparts: dict = {}
        if cfg.cold_batch > 0:
            batch = scenes.sample(batch_rng(train.seed, COLD_BATCH_OFFSET + cfg.seed * 1000 + step),
                                  cfg.cold_batch)
            cold_loss, cparts = training_step(model, batch, train, vids)
            loss = loss + cfg.cold_weight * cold_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {float(loss)} at step {step}")
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        if step % 20 == 0:
            row = {"step": step, "minutes": round((time.perf_counter() - t0) / 60, 2),
                   "lr": lr, "warm": round(float(warm_loss.detach()), 4),
                   "warm_3d": round(wparts.get("keypoints3d", float("nan")), 4),
                   "warm_accel": round(wparts.get("accel", float("nan")), 5),
                   "warm_vel": round(wparts.get("velocity", float("nan")), 5),
                   "warm_root_accel": round(wparts.get("root_accel", float("nan")), 5),
                   "cold": round(cparts.get("total", float("nan")), 4),
                   "cold_3d": round(cparts.get("keypoints3d", float("nan")), 4),
                   "gnorm": round(float(gnorm), 2)}
            log_rows.append(row)
            log.info("warm fine-tune %s", json.dumps(row))
    model.eval()
    meta = dict(getattr(model, "meta", {}) or {})
    if "warm_finetune" in meta:   # fine-tuned again: keep the earlier runs' records
        meta["warm_finetune_previous"] = list(meta.get("warm_finetune_previous", [])) + \
            [meta["warm_finetune"]]
    meta["warm_finetune"] = {"config": dataclasses.asdict(cfg), "steps": step,
                             "minutes": round((time.perf_counter() - t0) / 60, 2),
                             "torch": str(torch.__version__),
                             "last": log_rows[-1] if log_rows else None}
    path = save_refit_kp(model, out / "refit_kp_warm.pt", meta=meta)
    model.meta = meta  # the in-memory model carries the provenance it was saved with
    with open(out / "warm_finetune_log.jsonl", "w") as fh:
        for r in log_rows:
            fh.write(json.dumps(r) + "\n")
    return path


def _sequence_vertices(body, seqs: SyntheticSequences, vertex_ids: torch.Tensor) -> list:
    """Per-frame ``S x V x 3`` true vertices of the vertex-loss subset (body-model frame)."""
    out = []
    with torch.no_grad():
        for t in range(seqs.num_frames):
            f = seqs.frame_tensors(t)
            out.append(body.skin(f["rotmat"], f["betas"], vertex_ids).vertices)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True, help="ReFit-KP weights to start from")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train-config", default=None, help="main training recipe (losses, data)")
    p.add_argument("--minutes", type=float, default=WarmFinetuneConfig.minutes)
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="WarmFinetuneConfig field override (JSON value)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    kw = {"minutes": args.minutes}
    for item in args.overrides:
        key, value = item.split("=", 1)
        if key not in {f.name for f in dataclasses.fields(WarmFinetuneConfig)}:
            raise SystemExit(f"unknown WarmFinetuneConfig field {key!r}")
        v = json.loads(value)
        kw[key] = tuple(v) if isinstance(v, list) else v
    cfg = WarmFinetuneConfig(**kw)
    train = load_train_config(args.train_config)
    from refit_ros.body import create_body_model

    from torch.torch_version import TorchVersion

    torch.set_num_threads(cfg.threads)
    # trainer outputs of older runs record torch.__version__ as a TorchVersion
    with torch.serialization.safe_globals([TorchVersion]):
        model = load_refit_kp(create_body_model(train.body), args.weights)
    model.meta = dict(getattr(model, "meta", {}) or {})
    model.meta["torch"] = str(model.meta.get("torch", torch.__version__))
    if "warm_finetune_command" in model.meta:   # fine-tuning fine-tuned weights: keep history
        model.meta["warm_finetune_command_previous"] = \
            list(model.meta.get("warm_finetune_command_previous", [])) + \
            [model.meta["warm_finetune_command"]]
    model.meta["warm_finetune_command"] = "python -m refit_ros.training.warm_finetune " + \
        " ".join(argv if argv is not None else __import__("sys").argv[1:])
    path = finetune(model, train, cfg, args.out)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
