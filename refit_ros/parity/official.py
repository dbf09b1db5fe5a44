"""Parity of our ReFit with the official network on a reference fixture.

:func:`run_parity` builds the model from the fixture's arrays, sets every weight by the
fixture's rule (checking each sha256 against the manifest), runs the fixture's inputs
through the explicit-state API (encode, init, ``iters`` steps) and compares every
prediction and intermediate with the stored float32 reference, per iteration.

Tolerances are those of the fixture's RULE.md section 6 ("suggested test tolerances",
about 10x the float32-vs-float64 noise); for intermediates that table does not list we use
10x the noise it measured, rounded up (marked ``derived``).

With ``dtype="float64"`` the same float32-rounded weights run in double precision; the
predictions are then also compared with the fixture's float64 references (``f64_*``) at
tolerances ~1e-9, which checks the arithmetic itself beyond float32 noise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from refit_ros.parity.fixture import (Fixture, FixtureError, apply_weight_rule, check_names,
                               check_sha256, load_fixture)
from refit_ros.geometry.camera import CropCamera
from refit_ros.models.refit import Refit, RefitConfig

log = logging.getLogger(__name__)

#: name -> absolute tolerance (RULE.md section 6).
TOLERANCES: dict[str, float] = {
    "pred_rotmat": 2e-6, "final_pred_rotmat": 2e-6, "final_pred_pose": 2e-6,
    "pred_shape": 1e-6, "final_pred_shape": 1e-6, "pred_cam": 1e-6, "final_pred_cam": 1e-6,
    "pred_j3d": 3e-6, "pred_j2d": 2e-3, "trans_full": 1e-5, "vertices": 4e-6,
    "z": 7e-6, "init_h_pretanh": 7e-6, "corr": 2e-6, "lookup": 1.5e-5, "lookup_iter0": 1.5e-5,
    "lookup_coords": 5e-4, "marker_p2d": 2e-3,
    "backbone_feature_ch_mean": 1e-5, "backbone_feature_ch_std": 1e-5,
    # float16-stored map: |d| <= 2.5e-3 + 1e-3 |ref| (RULE.md section 6)
    "backbone_feature_f16": 2.5e-3,
}
#: 10x the measured float32 noise of RULE.md section 6 for entries without a suggestion.
DERIVED_TOLERANCES: dict[str, float] = {
    "bbox_info": 4e-6, "flow_out": 7e-6, "local_out": 4e-6,
    "hpose": 2e-6, "hshape": 2e-6, "hcam": 2e-6,
    "d_pose": 5e-7, "d_shape": 5e-7, "d_cam": 5e-7,
}
_RTOL = {"backbone_feature_f16": 1e-3}
#: Our float64 run against the fixture's float64 references (two double implementations).
FLOAT64_TOLERANCES: dict[str, float] = {
    "pred_rotmat": 1e-9, "pred_shape": 1e-9, "pred_cam": 1e-9, "pred_j3d": 1e-9,
    "pred_j2d": 1e-7, "final_pred_pose": 1e-9, "trans_full": 1e-8,
}
#: Outputs whose axis 0 indexes predictions (0 = initial) or loop steps.
_PER_PREDICTION = ("pred_rotmat", "pred_shape", "pred_cam", "pred_j3d", "pred_j2d", "vertices",
                   "d_pose", "d_shape", "d_cam")
#: Outputs a fixture must provide for a meaningful check.
REQUIRED = ("pred_rotmat", "pred_shape", "pred_cam", "pred_j3d", "pred_j2d")
_PER_STEP = ("marker_p2d", "lookup_coords", "lookup", "flow_out", "local_out", "hpose",
             "hshape", "hcam")


@dataclass
class Comparison:
    """Error of one output against the reference.

    Attributes
    ----------
    max_abs, max_rel : float
        Max ``|ours - ref|`` and max ``|ours - ref| / max(|ref|, 1e-3)``.
    atol : float
        Tolerance (plus ``rtol * |ref|`` where ``rtol`` is set).
    ok : bool
        Within tolerance everywhere.
    per_iter : list of dict, optional
        ``max_abs``/``max_rel`` per prediction or loop step.
    """

    max_abs: float
    max_rel: float
    atol: float
    ok: bool
    rtol: float = 0.0
    derived_tolerance: bool = False
    per_iter: list[dict[str, float]] | None = None


@dataclass
class ParityReport:
    """Everything :func:`run_parity` found."""

    fixture: str
    backend: str
    device: str
    torch_version: str
    threads: int
    iters: int
    batch: int
    dtype: str
    weights: dict[str, Any]
    state_dict_problems: list[str]
    outputs: dict[str, Comparison] = field(default_factory=dict)
    missing_required: list[str] = field(default_factory=list)
    vs_float64: dict[str, float] = field(default_factory=dict)
    float64_outputs: dict[str, Comparison] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (not self.state_dict_problems and self.weights["ok"]
                and not self.missing_required
                and all(c.ok for c in self.outputs.values())
                and all(c.ok for c in self.float64_outputs.values()))

    def worst(self) -> tuple[str, float]:
        """The output closest to (or furthest past) its tolerance, as max_abs / atol."""
        name, c = max(self.outputs.items(), key=lambda kv: kv[1].max_abs / kv[1].atol)
        return name, c.max_abs / c.atol

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        name, ratio = self.worst()
        d["worst"] = {"output": name, "max_abs_over_atol": ratio}
        return d


def _errors(ours: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref64 = ref.astype(np.float64)
    diff = np.abs(ours.astype(np.float64) - ref64)
    return diff, diff / np.maximum(np.abs(ref64), 1e-3)


def compare(name: str, ours: np.ndarray, ref: np.ndarray,
            tolerances: dict[str, float] | None = None) -> Comparison:
    """Compare one output (shapes must agree) with its tolerance (``tolerances`` overrides
    the float32 table)."""
    if ours.shape != ref.shape:
        raise ValueError(f"{name}: our shape {ours.shape} != reference {ref.shape}")
    table = TOLERANCES if tolerances is None else tolerances
    derived = name not in table
    atol = table.get(name, DERIVED_TOLERANCES.get(name))
    if atol is None:
        raise KeyError(f"no tolerance for {name}")
    rtol = _RTOL.get(name, 0.0)
    diff, rel = _errors(ours, ref)
    ok = bool(np.all(diff <= atol + rtol * np.abs(ref.astype(np.float64))))
    per_iter = None
    if name in _PER_PREDICTION or name in _PER_STEP:
        per_iter = [{"max_abs": float(diff[k].max()), "max_rel": float(rel[k].max())}
                    for k in range(diff.shape[0])]
    return Comparison(float(diff.max()), float(rel.max()), atol, ok, rtol, derived, per_iter)


def _inputs(fx: Fixture, device: torch.device,
            dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, CropCamera, int]:
    inp = fx.inputs
    if bool(np.asarray(inp.get("flip_test", False))):
        raise ValueError(f"{fx.path}/inputs.npz: flip_test=True is not supported (the ReFit "
                         "node does not use test-time flipping)")

    def t(k: str) -> torch.Tensor:
        if k not in inp:
            raise ValueError(f"{fx.path}/inputs.npz: missing {k!r}")
        t32 = torch.from_numpy(np.ascontiguousarray(inp[k], dtype=np.float32))
        return t32.to(device=device, dtype=dtype)

    camera = CropCamera.from_scale(t("center"), t("scale"), t("img_focal"), t("img_center"))
    iters = int(inp.get("iters", 5))
    return t("img"), camera, iters


@torch.no_grad()
def _run_traced(model: Refit, img: torch.Tensor, camera: CropCamera,
                iters: int) -> dict[str, np.ndarray]:
    """Run encode, init and ``iters`` steps, collecting outputs under the fixture's names."""
    feats = model.encode(img, keep_feature_map=True)
    state, init = model.init_state_traced(feats, camera)
    preds = [model.predict(state, camera)]
    deltas = [(init.d_pose, init.d_shape, init.d_cam)]
    steps = []
    for _ in range(iters):
        state, tr = model.step_traced(state, feats, camera)
        steps.append((tr, state))
        preds.append(model.predict(state, camera))
        deltas.append((tr.d_pose, tr.d_shape, tr.d_cam))

    def np_(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()

    def stack(xs: list[torch.Tensor]) -> np.ndarray:
        return np.stack([np_(x) for x in xs])

    fmap = feats.feature_map
    out = {
        "bbox_info": np_(camera.bbox_info()), "z": np_(feats.z),
        "init_h_pretanh": np_(init.init_h_pretanh), "corr": np_(feats.corr),
        "backbone_feature_f16": np_(fmap),
        "backbone_feature_ch_mean": np_(fmap.mean(dim=(2, 3))),
        "backbone_feature_ch_std": np_(fmap.std(dim=(2, 3), correction=0)),
        "pred_rotmat": stack([p.rotmat for p in preds]),
        "pred_shape": stack([p.betas for p in preds]),
        "pred_cam": stack([p.cam for p in preds]),
        "pred_j3d": stack([p.joints for p in preds]),
        "pred_j2d": stack([p.joints2d_crop for p in preds]),
        "vertices": stack([p.vertices for p in preds]),
        "d_pose": stack([d[0] for d in deltas]), "d_shape": stack([d[1] for d in deltas]),
        "d_cam": stack([d[2] for d in deltas]),
        "final_pred_pose": np_(preds[-1].pose6d), "final_pred_rotmat": np_(preds[-1].rotmat),
        "final_pred_shape": np_(preds[-1].betas), "final_pred_cam": np_(preds[-1].cam),
        "trans_full": np_(preds[-1].translation[:, None]),
    }
    if steps:
        out.update({
            "marker_p2d": stack([s[0].marker_p2d for s in steps]),
            "lookup_coords": stack([s[0].lookup_coords for s in steps]),
            "lookup": stack([s[0].lookup for s in steps]),
            "lookup_iter0": np_(steps[0][0].lookup),
            "flow_out": stack([s[0].flow_out for s in steps]),
            "local_out": stack([s[0].local_out for s in steps]),
            "hpose": stack([s[1].hpose for s in steps]),
            "hshape": stack([s[1].hshape for s in steps]),
            "hcam": stack([s[1].hcam for s in steps]),
        })
    return out


def build_fixture_model(fx: Fixture, device: torch.device | str = "cpu") -> tuple[Refit, dict]:
    """The fixture's model with rule weights; returns it and the weight check summary."""
    model = Refit(fx.assets, RefitConfig(backbone=fx.backbone)).eval()
    report = apply_weight_rule(model, fx.entries)
    summary = {"entries": report.n_entries, "generated": report.n_generated,
               "sha256_ok": report.n_sha_ok, "mismatched": report.mismatched[:20],
               "ok": report.ok}
    return model.to(device), summary


def build_checkpoint_model(fx: Fixture, checkpoint: str | Path,
                           device: torch.device | str = "cpu") -> tuple[Refit, dict]:
    """The fixture's model with its network weights read from ``checkpoint`` (a file in the
    official trainer's format, or a bare state dict) instead of the weight rule.

    The checkpoint is loaded as the node loads ``model.weights`` (safely, strictly by name
    and shape); SMPL stays the fixture's. Every entry's sha256 is then compared with the
    manifest: ``ok`` only when the checkpoint holds the weights the fixture was made with.

    Raises
    ------
    FixtureError
        The checkpoint cannot be read or does not fit the model (the message says why).
    """
    from refit_ros.models.refit.checkpoint import CheckpointError, load_checkpoint

    model = Refit(fx.assets, RefitConfig(backbone=fx.backbone)).eval()
    try:
        loaded = load_checkpoint(model, checkpoint)
    except CheckpointError as exc:
        raise FixtureError(f"--checkpoint: {exc}") from exc
    n, sha_ok, problems = check_sha256(model, fx.entries)
    summary = {"entries": n, "generated": 0, "sha256_ok": sha_ok, "mismatched": problems[:20],
               "ok": not problems and sha_ok == n, "source": str(checkpoint),
               "loaded": loaded.loaded, "smpl": loaded.smpl,
               "checkpoint_keys": loaded.extra_top_level}
    return model.to(device), summary


def run_parity(fixture_dir: str | Path, backend: str = "torch", device: str = "cpu",
               dtype: str = "float32", checkpoint: str | Path | None = None) -> ParityReport:
    """Build, run and compare; see the module docstring.

    ``checkpoint``: take the network weights from this file (see
    :func:`build_checkpoint_model`) instead of the fixture's weight rule.

    Raises
    ------
    FixtureError
        The folder is not a complete fixture.
    ValueError
        Unsupported backend or inputs.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if backend != "torch":
        # Exported backends are compared by refit_ros.parity.backends.run_backend_parity
        # (`refit-ros parity --backend onnxruntime|tensorrt`).
        raise ValueError(f"run_parity runs the torch model; for backend={backend!r} use "
                         "refit_ros.parity.backends.run_backend_parity")
    t0 = time.perf_counter()
    fx = load_fixture(fixture_dir)
    dev = torch.device(device)
    if dev.type == "cuda":
        # TF32 adds ~1e-3 relative error, which the tolerances reject (RULE.md section 6).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if checkpoint is not None:
        model, weights = build_checkpoint_model(fx, checkpoint, dev)
    else:
        model, weights = build_fixture_model(fx, dev)
    problems = check_names(model, fx.entries)  # before any upcast (dtypes are float32)
    if dtype == "float64":
        model = model.double()  # the float32-rounded weights, upcast
    report = check_model(model, fx, weights, backend, problems)
    report.seconds["build"] = time.perf_counter() - t0 - report.seconds["run"]
    return report


def check_model(model: Refit, fx: Fixture, weights: dict[str, Any], backend: str = "torch",
                state_dict_problems: list[str] | None = None) -> ParityReport:
    """Run the fixture's inputs through ``model`` and compare with its outputs
    (``state_dict_problems``: :func:`check_names` of the model, computed here if None)."""
    if state_dict_problems is None:
        state_dict_problems = check_names(model, fx.entries)
    p = next(model.parameters())
    img, camera, iters = _inputs(fx, p.device, p.dtype)
    t1 = time.perf_counter()
    ours = _run_traced(model, img, camera, iters)
    report = ParityReport(fixture=str(fx.path), backend=backend, device=str(p.device),
                          torch_version=torch.__version__, threads=torch.get_num_threads(),
                          iters=iters, batch=int(img.shape[0]),
                          dtype=str(p.dtype).removeprefix("torch."), weights=weights,
                          state_dict_problems=state_dict_problems,
                          seconds={"run": time.perf_counter() - t1})
    for name, ref in fx.outputs.items():
        if name.startswith("f64_"):
            base = name[4:]
            if base in ours and ours[base].shape == ref.shape:
                report.vs_float64[base] = float(_errors(ours[base], ref)[0].max())
                if p.dtype == torch.float64 and base in FLOAT64_TOLERANCES:
                    report.float64_outputs[base] = compare(base, ours[base], ref,
                                                           FLOAT64_TOLERANCES)
            continue
        if name not in ours:
            log.warning("reference output %s has no counterpart here; not compared", name)
            continue
        report.outputs[name] = compare(name, ours[name], ref)
    report.missing_required = [n for n in REQUIRED if n not in report.outputs]
    return report
