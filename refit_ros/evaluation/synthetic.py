"""The held-out synthetic benchmark of ReFit-KP: per-iteration accuracy on a fixed set.

The set is drawn with the evaluation seed on its own random stream
(:data:`refit_ros.training.synthetic.EVAL_STREAM`), with the same detector-like noise as
training, so it is fixed for a given recipe and never seen in training.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import torch

from refit_ros.geometry.camera import project
from refit_ros.models.refit_kp.evidence import KeypointEvidence
from refit_ros.models.refit_kp.model import RefitKp
from refit_ros.evaluation.metrics import mpjpe, pa_mpjpe, pve, reprojection_error
from refit_ros.training.synthetic import EVAL_STREAM, SceneConfig, SceneSampler, batch_rng

log = logging.getLogger(__name__)


@dataclass
class IterationMetrics:
    """Mean accuracy of one loop estimate over the set.

    Attributes
    ----------
    iteration : int
        0 = initial estimate, k = after k steps.
    mpjpe_mm, pa_mpjpe_mm : float
        24 SMPL joints, pelvis-aligned / Procrustes-aligned.
    pve_mm : float
        All mesh vertices, pelvis-aligned (NaN when the mesh was not evaluated).
    reproj_px : float
        24 joints projected into the full image vs their true projections.
    reproj_kp_px : float
        Predicted landmark points vs the (noisy) detections with confidence > 0.5.
    root_error_rel : float
        Pelvis position error in the camera frame divided by the true distance.
    """

    iteration: int
    mpjpe_mm: float
    pa_mpjpe_mm: float
    pve_mm: float
    reproj_px: float
    reproj_kp_px: float
    root_error_rel: float


@dataclass
class SyntheticEvaluation:
    """Result of :func:`evaluate_synthetic` (``refit-ros eval synthetic --json``)."""

    samples: int
    seed: int
    iterations: list[IterationMetrics]
    median_final: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def heldout_batches(sampler: SceneSampler, seed: int, size: int, chunk: int = 256):
    """Yield the held-out set in chunks (deterministic for a seed and size)."""
    for i, start in enumerate(range(0, size, chunk)):
        yield sampler.sample(batch_rng(seed, i, EVAL_STREAM), min(chunk, size - start))


@torch.no_grad()
def evaluate_synthetic(model: RefitKp, scene: SceneConfig, seed: int, size: int,
                       iters: int = 5, mesh: bool = True, chunk: int = 256) -> SyntheticEvaluation:
    """Score every estimate of the loop on the held-out set.

    Parameters
    ----------
    model : RefitKp
    scene : SceneConfig
        The recipe's data section (noise, cameras, poses).
    seed, size : int
        Held-out seed and number of samples.
    iters : int
        Loop steps (estimates 0..iters are scored).
    mesh : bool
        Also compute PVE on the full mesh (slower).

    Returns
    -------
    SyntheticEvaluation
    """
    import time

    t0 = time.perf_counter()
    model.eval()
    body = model.body
    sampler = SceneSampler(body, scene)
    keys = ("mpjpe", "pa", "pve", "reproj", "reproj_kp", "root")
    acc = {k: [[] for _ in range(iters + 1)] for k in keys}
    for batch in heldout_batches(sampler, seed, size, chunk):
        cam = batch.camera
        ev = KeypointEvidence.from_full_image(batch.keypoints2d, cam)
        feats = model.encode(ev)
        estimates, _ = model.unroll(feats, cam, iters)
        gt_j = batch.joints
        gt_cam = gt_j + batch.translation[:, None]
        gt2d = project(gt_cam, cam.focal, cam.principal)
        gt_verts = body(batch.rotmat, batch.betas).vertices if mesh else None
        kp_w = (batch.keypoints2d[..., 2] > 0.5).float()[:, model.marker_landmarks]
        kp_xy = batch.keypoints2d[..., :2][:, model.marker_landmarks]
        for j, est in enumerate(estimates):
            t = cam.translation(est.cam)
            acc["mpjpe"][j].append(mpjpe(est.joints, gt_j))
            acc["pa"][j].append(pa_mpjpe(est.joints, gt_j))
            p2d = project(est.joints + t[:, None], cam.focal, cam.principal)
            acc["reproj"][j].append(reprojection_error(p2d, gt2d))
            m2d = project(est.markers + t[:, None], cam.focal, cam.principal)
            acc["reproj_kp"][j].append(reprojection_error(m2d, kp_xy, kp_w))
            root = (est.joints[:, 0] + t - gt_cam[:, 0]).norm(dim=-1) / gt_cam[:, 0].norm(dim=-1)
            acc["root"][j].append(root)
            if mesh:
                verts = body(est.rotmat, est.betas).vertices
                acc["pve"][j].append(pve(verts, gt_verts, est.joints[:, 0], gt_j[:, 0]))
    its = []
    for j in range(iters + 1):
        cat = {k: torch.cat(v[j]) if v[j] else torch.tensor([float("nan")]) for k, v in acc.items()}
        its.append(IterationMetrics(
            iteration=j, mpjpe_mm=_mean(cat["mpjpe"]), pa_mpjpe_mm=_mean(cat["pa"]),
            pve_mm=_mean(cat["pve"]), reproj_px=_mean(cat["reproj"]),
            reproj_kp_px=_mean(cat["reproj_kp"]), root_error_rel=_mean(cat["root"])))
    last = {k: torch.cat(v[iters]) for k, v in acc.items() if v[iters]}
    median = {"mpjpe_mm": _median(last["mpjpe"]), "pa_mpjpe_mm": _median(last["pa"]),
              "root_error_rel": _median(last["root"])}
    return SyntheticEvaluation(samples=size, seed=seed, iterations=its, median_final=median,
                               seconds=round(time.perf_counter() - t0, 2))


def _mean(x: torch.Tensor) -> float:
    x = x[torch.isfinite(x)]
    return round(float(x.mean()), 3) if x.numel() else float("nan")


def _median(x: torch.Tensor) -> float:
    x = x[torch.isfinite(x)]
    return round(float(x.median()), 3) if x.numel() else float("nan")
