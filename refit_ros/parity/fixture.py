"""Read a ReFit reference fixture (``refit_reference`` format) and apply its weight rule.

A fixture folder holds ``manifest.json`` (every state_dict entry with its rule and
sha256), ``smpl_synthetic.npz`` and ``refit_data.npz`` (the arrays the model is built
from), ``inputs.npz`` (one batch of the official ``forward``) and ``outputs.npz``
(float32 reference). See the fixture's ``RULE.md``.

The weight rule (RULE.md section 1): for an entry named ``n`` with ``N`` elements,
``k = crc32(n)``, ``m_i = (i * 2654435761 + k) mod 2^32``, ``u_i = m_i / 2^32 - 0.5``; each
kind of entry maps ``u`` to its value in double, rounded once to float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from refit_ros.models.refit.assets import RefitAssets

log = logging.getLogger(__name__)

_GOLDEN = 2654435761
_SMPL_PREFIXES = ("smpl.", "smpl_male.", "smpl_female.")
_MEAN_NAMES = ("init_pose", "init_shape", "init_cam")
_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_FILES = ("manifest.json", "smpl_synthetic.npz", "refit_data.npz", "inputs.npz", "outputs.npz")
_SMPL_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights",
              "kintree_table")


class FixtureError(ValueError):
    """A fixture folder is incomplete or inconsistent."""


@dataclass
class Fixture:
    """A loaded fixture.

    Attributes
    ----------
    path : Path
        The folder.
    manifest : dict
        Parsed ``manifest.json``.
    assets : RefitAssets
        SMPL and ReFit data arrays.
    inputs : dict[str, numpy.ndarray]
        ``inputs.npz``.
    outputs : dict[str, numpy.ndarray]
        ``outputs.npz``.
    """

    path: Path
    manifest: dict[str, Any]
    assets: RefitAssets
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.manifest["entries"]

    @property
    def backbone(self) -> str:
        """Backbone named in the manifest description (``hrnet_w48`` if not stated)."""
        desc = self.manifest.get("description", "")
        return "hrnet_w32" if "hrnet_w32" in desc else "hrnet_w48"


def load_fixture(path: str | Path) -> Fixture:
    """Load every file of a fixture folder (raises :class:`FixtureError` with the gap)."""
    path = Path(path)
    missing = [f for f in _FILES if not (path / f).is_file()]
    if missing:
        raise FixtureError(f"{path}: not a ReFit reference fixture, missing {missing}")
    manifest = json.loads((path / "manifest.json").read_text())
    if "entries" not in manifest:
        raise FixtureError(f"{path / 'manifest.json'}: no 'entries' list")
    smpl = dict(np.load(path / "smpl_synthetic.npz"))
    data = dict(np.load(path / "refit_data.npz"))

    def model(prefix: str) -> dict[str, np.ndarray] | None:
        keys = [prefix + k for k in _SMPL_KEYS]
        return {k: smpl[prefix + k] for k in _SMPL_KEYS} if all(k in smpl for k in keys) else None

    neutral = model("")
    if neutral is None:
        raise FixtureError(f"{path / 'smpl_synthetic.npz'}: needs keys {_SMPL_KEYS}")
    try:
        assets = RefitAssets(
            smpl_neutral=neutral, smpl_male=model("male/"), smpl_female=model("female/"),
            j_regressor_extra=data["J_regressor_extra"], markers=data["smpl_ssm"],
            mean_pose=data["mean_pose"], mean_shape=data["mean_shape"], mean_cam=data["mean_cam"],
            extra_joints_idxs=data.get("smplx_extra_joints_idxs"), joint_map=data.get("joint_map"))
    except KeyError as exc:
        raise FixtureError(f"{path / 'refit_data.npz'}: missing array {exc}") from exc
    inputs = dict(np.load(path / "inputs.npz"))
    outputs = dict(np.load(path / "outputs.npz"))
    return Fixture(path, manifest, assets, inputs, outputs)


def hash_uniform(name: str, n: int) -> np.ndarray:
    """The rule's ``u_i`` in ``[-0.5, 0.5)`` for ``i = 0..n-1`` (float64)."""
    k = np.uint64(zlib.crc32(name.encode("utf-8")))
    i = np.arange(n, dtype=np.uint64)
    m = (i * np.uint64(_GOLDEN) + k) % np.uint64(2**32)
    return m.astype(np.float64) / 2.0**32 - 0.5


def rule_kind(name: str, shape: tuple[int, ...], names: set[str]) -> str:
    """Kind of a state_dict entry under the weight rule, from its name and shape."""
    if name.startswith(_SMPL_PREFIXES):
        return "smpl_keep"
    if name in _MEAN_NAMES:
        return "mean_keep"
    prefix, _, leaf = name.rpartition(".")
    if leaf in _BN_SUFFIXES and f"{prefix}.running_mean" in names:
        return {"weight": "bn_weight", "bias": "bn_bias", "running_mean": "bn_mean",
                "running_var": "bn_var", "num_batches_tracked": "bn_count"}[leaf]
    if leaf == "bias":
        return "bias"
    if leaf == "weight":
        return {4: "conv_weight", 2: "linear_weight", 3: "multilinear_weight"}.get(
            len(shape), "unknown")
    return "unknown"


def rule_value(name: str, shape: tuple[int, ...], kind: str, gain: float = 1.0) -> np.ndarray:
    """Value of one entry (float32, or int64 for ``num_batches_tracked``)."""
    n = int(np.prod(shape)) if shape else 1
    if kind == "bn_count":
        return np.zeros(shape, dtype=np.int64)
    u = hash_uniform(name, n)
    if kind == "bn_weight":
        v = 1.0 + 0.2 * u
    elif kind in ("bn_bias", "bn_mean", "bias"):
        v = 0.02 * u
    elif kind == "bn_var":
        v = 1.0 + 0.2 * np.abs(u)
    elif kind in ("conv_weight", "linear_weight", "multilinear_weight"):
        fan_in = int(np.prod(shape[1:])) if kind == "conv_weight" else int(shape[-1])
        # Left to right in double, as the rule specifies, for bit-exact float32 values.
        v = (u * math.sqrt(12.0)) * (gain / math.sqrt(fan_in))
    else:
        raise FixtureError(f"no weight rule for {name} (kind {kind})")
    return v.astype(np.float32).reshape(shape)


def sha256_of(t: torch.Tensor) -> str:
    """sha256 of a tensor's raw little-endian C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes()).hexdigest()


@dataclass
class WeightReport:
    """Outcome of :func:`apply_weight_rule`.

    Attributes
    ----------
    n_entries : int
        Entries in the model's state_dict.
    n_generated : int
        Entries set from the rule.
    n_sha_ok : int
        Entries whose sha256 equals the manifest's (all of them, aliases and SMPL included).
    mismatched : list[str]
        Names whose sha256, shape, dtype or kind disagree with the manifest.
    """

    n_entries: int
    n_generated: int
    n_sha_ok: int
    mismatched: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatched and self.n_sha_ok == self.n_entries


def check_names(model: torch.nn.Module, entries: list[dict[str, Any]]) -> list[str]:
    """Differences between the model's state_dict and the manifest (names, order, shapes,
    dtypes); empty when they agree."""
    sd = model.state_dict()
    problems = []
    want = [e["name"] for e in entries]
    have = list(sd)
    for n in sorted(set(want) - set(have)):
        problems.append(f"missing in model: {n}")
    for n in sorted(set(have) - set(want)):
        problems.append(f"not in manifest: {n}")
    if not problems and want != have:
        problems.append("same names but a different order")
    for e in entries:
        t = sd.get(e["name"])
        if t is None:
            continue
        if list(t.shape) != list(e["shape"]):
            problems.append(f"{e['name']}: shape {list(t.shape)} != {e['shape']}")
        if str(t.dtype).removeprefix("torch.") != e["dtype"]:
            problems.append(f"{e['name']}: dtype {t.dtype} != {e['dtype']}")
    return problems


@torch.no_grad()
def apply_weight_rule(model: torch.nn.Module, entries: list[dict[str, Any]]) -> WeightReport:
    """Set every rule-generated entry of ``model`` and check all sha256 values.

    Aliases (the same tensor under two names) are generated once, from the first name in
    state_dict order. SMPL buffers and ``init_*`` keep their loaded values.
    """
    sd = model.state_dict(keep_vars=True)
    names = set(sd)
    by_name = {e["name"]: e for e in entries}
    seen: dict[int, str] = {}
    generated, mismatched = 0, []
    for name, t in sd.items():
        ptr = t.data_ptr()
        if ptr in seen and t.numel() > 0:
            continue  # alias of an entry already set
        seen[ptr] = name
        kind = rule_kind(name, tuple(t.shape), names)
        entry = by_name.get(name, {})
        if entry and entry.get("rule") not in (kind, None):
            mismatched.append(f"{name}: kind {kind} != manifest {entry.get('rule')}")
        if kind in ("smpl_keep", "mean_keep"):
            continue
        gain = float(entry.get("extra_gain", 1.0))
        t.copy_(torch.from_numpy(rule_value(name, tuple(t.shape), kind, gain)))
        generated += 1
    n_entries, sha_ok, sha_bad = check_sha256(model, entries)
    return WeightReport(n_entries, generated, sha_ok, mismatched + sha_bad)


def check_sha256(model: torch.nn.Module, entries: list[dict[str, Any]]
                 ) -> tuple[int, int, list[str]]:
    """Compare every state_dict entry of ``model`` with the manifest's sha256.

    Returns ``(entries, matching, problems)``; ``problems`` names each entry not in the
    manifest or whose bytes differ (e.g. weights loaded from a checkpoint that is not the
    one the fixture was made with).
    """
    by_name = {e["name"]: e for e in entries}
    sd = model.state_dict()
    sha_ok, problems = 0, []
    for name, t in sd.items():
        entry = by_name.get(name)
        if entry is None:
            problems.append(f"{name}: not in manifest")
        elif sha256_of(t) == entry["sha256"]:
            sha_ok += 1
        else:
            problems.append(f"{name}: sha256 differs from manifest")
    return len(sd), sha_ok, problems
