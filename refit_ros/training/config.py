"""Training configuration of ReFit-KP (``refit_ros/training/refit_kp.yaml``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from refit_ros.models.refit_kp.config import RefitKpConfig
from refit_ros.training.losses import LossWeights
from refit_ros.training.synthetic import SceneConfig

#: The shipped training recipe.
DEFAULT_TRAIN_CONFIG = Path(__file__).resolve().parent / "refit_kp.yaml"


@dataclass(frozen=True)
class OptimConfig:
    """Adam with linear warm-up and a cosine decay over the budget.

    Attributes
    ----------
    lr, lr_min : float
    warmup_steps : int
    grad_clip : float
        Max global gradient norm.
    """

    lr: float = 1e-3
    lr_min: float = 2e-5
    warmup_steps: int = 200
    grad_clip: float = 4.0


@dataclass(frozen=True)
class BudgetConfig:
    """When training stops: whichever comes first. The learning-rate schedule follows the
    larger of the two progress fractions (steps done / max_steps, minutes / max_minutes).

    Attributes
    ----------
    max_steps : int
    max_minutes : float
    """

    max_steps: int = 100000
    max_minutes: float = 40.0


@dataclass(frozen=True)
class EvalConfig:
    """The held-out synthetic set (own seed and stream; never drawn in training).

    Attributes
    ----------
    seed : int
    size : int
        Samples in the held-out set (``refit-ros eval synthetic``).
    monitor_size : int
        Samples of it scored during training (first ``monitor_size``).
    every_minutes : float
        How often training scores the monitor set.
    """

    seed: int = 90210
    size: int = 1024
    monitor_size: int = 512
    every_minutes: float = 8.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved beside the weights)."""

    seed: int
    body: str
    iterations: int
    batch_size: int
    threads: int
    prefetch: bool
    vertex_subset: int
    checkpoint_minutes: float
    log_every: int
    optim: OptimConfig
    budget: BudgetConfig
    loss: LossWeights
    model: RefitKpConfig
    data: SceneConfig
    eval: EvalConfig
    raw: dict

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        raw = copy.deepcopy(dict(d))
        sub = {"optim": OptimConfig, "budget": BudgetConfig, "loss": LossWeights,
               "eval": EvalConfig}
        names = {f.name for f in fields(cls)} - {"raw"}
        unknown = set(raw) - names
        missing = names - set(raw)
        if unknown or missing:
            raise ValueError(f"training config: unknown keys {sorted(unknown)}, missing "
                             f"keys {sorted(missing)}")
        kw: dict[str, Any] = {}
        for k in names:
            v = raw[k]
            if k in sub:
                known = {f.name for f in fields(sub[k])}
                bad = set(v) - known
                if bad:
                    raise ValueError(f"training config: unknown {k}.{sorted(bad)}; known {sorted(known)}")
                kw[k] = sub[k](**v)
            elif k == "model":
                kw[k] = RefitKpConfig.from_dict(v)
            elif k == "data":
                kw[k] = SceneConfig.from_dict(v)
            else:
                kw[k] = v
        return cls(raw=raw, **kw)


def _parse_value(text: str) -> Any:
    """YAML value, reading ``2e-3`` as a number (YAML 1.1 wants ``2.0e-3``)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_train_config(path: str | Path | None = None,
                      overrides: Sequence[str] = ()) -> TrainConfig:
    """Read the YAML recipe and apply ``key.sub=value`` overrides (YAML-parsed values)."""
    path = DEFAULT_TRAIN_CONFIG if path in (None, "") else Path(path)
    with open(path) as fh:
        d = yaml.safe_load(fh)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must be KEY=VALUE (e.g. budget.max_minutes=5)")
        key, value = item.split("=", 1)
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise ValueError(f"override {item!r}: no section {p!r} in {path}")
            node = node[p]
        if parts[-1] not in node:
            raise ValueError(f"override {item!r}: no key {key!r} in {path}")
        node[parts[-1]] = _parse_value(value)
    return TrainConfig.from_dict(d)
