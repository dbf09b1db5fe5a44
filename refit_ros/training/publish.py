"""Copy trained ReFit-KP weights into the package, with their recipe and provenance.

``refit-ros train --publish OUT/refit_kp.pt`` writes, beside the shipped weights
(``refit_ros/models/refit_kp/weights/``): the weights (float16 storage, float32 at load),
``train_config.yaml`` (the recipe they were trained with) and ``PROVENANCE.md`` (how, where
and how long they were trained, and the held-out accuracy measured on the stored file).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import yaml

from refit_ros.body import create_body_model
from refit_ros.evaluation.synthetic import evaluate_synthetic
from refit_ros.models.refit_kp.loading import DEFAULT_WEIGHTS, load_refit_kp, save_refit_kp
from refit_ros.training.config import TrainConfig

log = logging.getLogger(__name__)


def _read_trainer_output(path: Path) -> dict:
    # Older trainer outputs stored torch.__version__ (a TorchVersion) in their metadata.
    from torch.torch_version import TorchVersion

    with torch.serialization.safe_globals([TorchVersion]):
        blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = dict(blob.get("meta", {}))
    meta["torch"] = str(meta.get("torch", torch.__version__))
    blob["meta"] = meta
    return blob


def publish(src: str | Path, dst: str | Path = DEFAULT_WEIGHTS, eval_samples: int | None = None) -> dict:
    """Store ``src`` as the shipped weights and write the recipe and PROVENANCE.md.

    Returns
    -------
    dict
        The held-out evaluation of the stored file (``SyntheticEvaluation.to_dict()``).
    """
    src, dst = Path(src), Path(dst)
    blob = _read_trainer_output(src)
    meta = blob["meta"]
    cfg = TrainConfig.from_dict(meta["config"])
    body = create_body_model(cfg.body)
    tmp = dst.with_name(dst.stem + ".staging.pt")
    model = load_refit_kp_blob(body, blob)
    save_refit_kp(model, tmp, meta=meta, half=True)
    stored = load_refit_kp(body, tmp)
    size = cfg.eval.size if eval_samples is None else eval_samples
    res = evaluate_synthetic(stored, cfg.data, cfg.eval.seed, size, cfg.iterations, mesh=True)
    meta = dict(meta, heldout=res.to_dict())
    save_refit_kp(stored, dst, meta=meta, half=True)
    tmp.unlink()
    with open(dst.parent / "train_config.yaml", "w") as fh:
        yaml.safe_dump(meta["config"], fh, sort_keys=False)
    (dst.parent / "PROVENANCE.md").write_text(provenance_text(dst, meta, stored.num_parameters()))
    return res.to_dict()


def load_refit_kp_blob(body, blob: dict):
    """A model from an in-memory weights dict (see :mod:`refit_ros.models.refit_kp.loading`)."""
    from refit_ros.models.refit_kp.config import RefitKpConfig
    from refit_ros.models.refit_kp.model import RefitKp

    model = RefitKp(body, RefitKpConfig.from_dict(blob["config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in blob["state_dict"].items()})
    return model.eval()


def provenance_text(weights: Path, meta: dict, n_params: int) -> str:
    """PROVENANCE.md for shipped weights."""
    h = meta.get("heldout", {})
    rows = "\n".join(
        f"| {m['iteration']} | {m['mpjpe_mm']:.1f} | {m['pa_mpjpe_mm']:.1f} | "
        f"{m['pve_mm']:.1f} | {m['reproj_px']:.1f} | {m['reproj_kp_px']:.1f} | "
        f"{m['root_error_rel']:.3f} |" for m in h.get("iterations", []))
    size_mb = weights.stat().st_size / 1e6 if weights.exists() else float("nan")
    return f"""# ReFit-KP weights: provenance

`{weights.name}` ({size_mb:.1f} MB, {n_params:,} parameters, stored as float16, loaded as
float32) with `train_config.yaml`, the exact recipe.

- **Trained here**, from scratch, on the CPU of this project's machine ({meta.get('cpu')},
  {meta.get('threads')} torch thread(s) + 1 data thread; the CPU was shared with other work).
- **Data**: synthetic only, generated on the fly from the open body
  (`{meta.get('body')}`, array sha256 `{meta.get('body_sha256')}`): structured pose prior,
  adult statures, real-footage-like cameras, BlazePose-like detector noise
  (`refit_ros/training/synthetic.py`). No dataset, no SMPL, no third-party weights.
- **Seed**: {meta.get('seed')} (batch k drawn from `SeedSequence([seed, k])`); held-out set:
  seed {meta['config']['eval']['seed']} on a separate stream, never drawn in training.
- **Command**: `{meta.get('command')}`
- **Code**: git commit `{meta.get('git_commit')}`, torch {meta.get('torch')}.
- **Training**: {meta.get('steps')} steps of batch {meta['config']['batch_size']},
  {meta.get('wall_minutes')} min wall time.
- **Licence**: MIT (weights produced by refit_ros code; the open body's own licences are in
  `refit_ros/body/data/LICENSE_NOTICE.md`).

## Held-out synthetic accuracy of this file

`refit-ros eval synthetic --json` ({h.get('samples')} samples, seed {h.get('seed')}; detector-like
noise, 24 SMPL joints; PVE on all vertices; 2D in full-image pixels):

| iteration | MPJPE mm | PA-MPJPE mm | PVE mm | 2D vs truth px | 2D vs detections px | root error / distance |
|---|---|---|---|---|---|---|
{rows}

Median after the last iteration: {json.dumps(h.get('median_final', {}))}.
"""
