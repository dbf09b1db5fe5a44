"""The ReFit-KP training loop: synthetic batches on the fly, losses on every estimate.

Runs on a CPU within a time budget: a background thread draws the next batches while the
main thread trains (two cores, one torch thread each by default), a checkpoint is written
every few minutes (``--resume`` continues from it after an interruption), and a monitor
subset of the held-out set is scored now and then. The result is a weights file with the
recipe, seed, command, commit and wall time beside it.
"""

from __future__ import annotations

import logging
import math
import platform
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from refit_ros.body import create_body_model
from refit_ros.body.base import BodyModel
from refit_ros.config import REPO_ROOT
from refit_ros.evaluation.synthetic import evaluate_synthetic
from refit_ros.models.refit_kp.loading import save_refit_kp
from refit_ros.models.refit_kp.evidence import KeypointEvidence
from refit_ros.models.refit_kp.model import RefitKp
from refit_ros.training.config import TrainConfig
from refit_ros.training.losses import Targets, sequence_loss
from refit_ros.training.synthetic import (SceneSampler, SyntheticBatch, batch_rng,
                                          vertex_subset)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    weights : Path
        The final weights file.
    steps : int
    wall_minutes : float
        Training wall time (all resumed sessions together, monitoring included).
    last_loss : dict
    """

    weights: Path
    steps: int
    wall_minutes: float
    last_loss: dict


class _Prefetcher:
    """Draws batches ``start, start+1, ...`` in a background thread."""

    def __init__(self, sampler: SceneSampler, seed: int, batch_size: int, start: int,
                 depth: int = 3):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._args = (sampler, seed, batch_size)
        self._next = start
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        sampler, seed, bs = self._args
        k = self._next
        while not self._stop.is_set():
            batch = sampler.sample(batch_rng(seed, k), bs)
            while not self._stop.is_set():
                try:
                    self._q.put((k, batch), timeout=0.5)
                    break
                except queue.Full:
                    continue
            k += 1

    def get(self) -> tuple[int, SyntheticBatch]:
        return self._q.get()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def build_model(cfg: TrainConfig, body: BodyModel | None = None) -> RefitKp:
    """The untrained network of a recipe."""
    body = create_body_model(cfg.body) if body is None else body
    return RefitKp(body, cfg.model)


def learning_rate(cfg: TrainConfig, step: int, minutes: float) -> float:
    """Warm-up, then cosine from ``lr`` to ``lr_min`` over the step/time budget."""
    o, b = cfg.optim, cfg.budget
    progress = min(1.0, max(step / b.max_steps, minutes / b.max_minutes))
    lr = o.lr_min + (o.lr - o.lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr * min(1.0, (step + 1) / max(o.warmup_steps, 1))


def training_step(model: RefitKp, batch: SyntheticBatch, cfg: TrainConfig,
                  vertex_ids: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Forward the loop on one batch and return the loss (not yet backpropagated)."""
    cam = batch.camera
    ev = KeypointEvidence.from_full_image(batch.keypoints2d, cam)
    feats = model.encode(ev)
    estimates, _ = model.unroll(feats, cam, cfg.iterations, vertex_ids)
    markers = batch.landmarks[:, model.marker_landmarks]
    tgt = Targets.from_camera_frame(batch.rotmat, batch.betas,
                                    torch.cat([batch.joints, markers], dim=1),
                                    batch.translation, cam, batch.vertices)
    return sequence_loss(estimates, tgt, cam, cfg.loss)


def git_commit() -> str:
    """The checkout's commit (``unknown`` outside git), ``+dirty`` if files changed."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        return sha or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def body_fingerprint(body: BodyModel) -> str:
    """sha256 of a body model's arrays (the weights only fit the body they were trained on)."""
    import hashlib

    h = hashlib.sha256()
    for name, buf in sorted(body.state_dict().items()):
        h.update(name.encode())
        h.update(buf.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = True,
          command: str = "", body: BodyModel | None = None) -> TrainResult:
    """Train ReFit-KP within the recipe's budget.

    Parameters
    ----------
    cfg : TrainConfig
    out_dir : str or Path
        Receives ``checkpoint.pt``, ``refit_kp.pt``, ``train_config.yaml``, ``train.log``
        lines (through the caller's logging) and ``monitor.jsonl``.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` if it exists.
    command : str
        The command line, recorded in the weights' provenance.
    body : BodyModel, optional
        Use this body instead of ``cfg.body`` (tests).

    Returns
    -------
    TrainResult
    """
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    commit = git_commit()   # the code that trains is the code at start, not at the end
    body = create_body_model(cfg.body) if body is None else body
    model = build_model(cfg, body)
    vids = vertex_subset(body.num_vertices, cfg.vertex_subset, seed=0)
    sampler = SceneSampler(body, cfg.data, vids)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    with open(out / "train_config.yaml", "w") as fh:
        yaml.safe_dump(cfg.raw, fh, sort_keys=False)

    step, elapsed = 0, 0.0
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        step, elapsed = int(ck["step"]), float(ck["elapsed_s"])
        log.info("resumed from %s at step %d (%.1f min)", ckpt_path, step, elapsed / 60)
    log.info("ReFit-KP: %d parameters, %d markers, body %s, batch %d, %d threads",
             model.num_parameters(), model.num_markers, body.name, cfg.batch_size, cfg.threads)

    def save_checkpoint() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": step,
                    "elapsed_s": elapsed}, tmp)
        tmp.replace(ckpt_path)

    def monitor() -> dict:
        res = evaluate_synthetic(model, cfg.data, cfg.eval.seed, cfg.eval.monitor_size,
                                 cfg.iterations, mesh=False)
        model.train()
        row = {"step": step, "minutes": round(elapsed / 60, 2),
               "iterations": [(m.mpjpe_mm, m.pa_mpjpe_mm) for m in res.iterations]}
        with open(out / "monitor.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        f = res.iterations[-1]
        log.info("monitor step %d (%.1f min): MPJPE %.1f PA-MPJPE %.1f mm (iter 0: %.1f / %.1f)",
                 step, elapsed / 60, f.mpjpe_mm, f.pa_mpjpe_mm, res.iterations[0].mpjpe_mm,
                 res.iterations[0].pa_mpjpe_mm)
        return row

    prefetch = _Prefetcher(sampler, cfg.seed, cfg.batch_size, step) if cfg.prefetch else None
    model.train()
    t_session = time.perf_counter()
    base_elapsed = elapsed
    last_ckpt = last_mon = elapsed
    parts: dict = {}
    window: list[float] = []
    try:
        while step < cfg.budget.max_steps and elapsed < cfg.budget.max_minutes * 60:
            t0 = time.perf_counter()
            if prefetch is not None:
                k, batch = prefetch.get()
                assert k == step, (k, step)
            else:
                batch = sampler.sample(batch_rng(cfg.seed, step), cfg.batch_size)
            lr = learning_rate(cfg, step, elapsed / 60)
            for g in opt.param_groups:
                g["lr"] = lr
            loss, parts = training_step(model, batch, cfg, vids)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {float(loss)} at step {step}")
            opt.step()
            step += 1
            elapsed = base_elapsed + (time.perf_counter() - t_session)
            window.append(time.perf_counter() - t0)
            if step % cfg.log_every == 0:
                log.info("step %d  %.1f min  lr %.2e  loss %.4f  2d %.4f  3d %.4f  rot %.4f  "
                         "verts %.4f  |g| %.2f  %.3f s/step", step, elapsed / 60, lr,
                         parts["total"], parts["keypoints2d"], parts["keypoints3d"],
                         parts["rotmat"], parts["vertices"], float(gnorm),
                         sum(window) / len(window))
                window.clear()
            if elapsed - last_ckpt > cfg.checkpoint_minutes * 60:
                save_checkpoint()
                last_ckpt = elapsed
            if elapsed - last_mon > cfg.eval.every_minutes * 60:
                monitor()
                elapsed = base_elapsed + (time.perf_counter() - t_session)
                last_mon = elapsed
    finally:
        if prefetch is not None:
            prefetch.close()
    save_checkpoint()
    final = monitor()
    meta = {
        "trained_here": True, "data": "synthetic, generated on the fly from the open body",
        "seed": cfg.seed, "command": command, "git_commit": commit,
        "body": body.name, "body_sha256": body_fingerprint(body),
        "steps": step, "wall_minutes": round(elapsed / 60, 2), "cpu": cpu_name(),
        "threads": cfg.threads, "torch": str(torch.__version__), "config": cfg.raw,
        "monitor": final, "licence": "MIT",
    }
    weights = save_refit_kp(model.eval(), out / "refit_kp.pt", meta=meta)
    log.info("wrote %s after %d steps, %.1f min", weights, step, elapsed / 60)
    return TrainResult(weights=weights, steps=step, wall_minutes=elapsed / 60, last_loss=parts)
