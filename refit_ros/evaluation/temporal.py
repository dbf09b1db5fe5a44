"""``refit-ros eval temporal``: warm-started tracking vs per-frame fitting vs One-Euro.

The same fitting network is run three ways through :class:`RefitPipeline` (the code path
the node and ``refit-ros video`` use, tracker included):

* ``cold``: every person fitted from the mean every frame (``model.iterations`` steps;
  ``tracking.warm_start=false`` keeps the track ids);
* ``warm``: a tracked person starts from its previous frame's state (pose, shape, crop camera
  re-expressed for the new box, GRU hidden states) and runs ``tracking.warm_iterations``;
* ``cold+one_euro``: ``cold`` followed by the One-Euro filter (``tracking.one_euro=true``).

Optionally (``--one-euro-cutoffs``) the One-Euro cut-off is swept and the setting whose lag
is closest to the warm start's is reported as ``cold+one_euro@warm_lag``: the comparison
at equal lag.

**Synthetic** (default): fixed-seed sequences of smooth motion with ground truth
(:mod:`refit_ros.training.sequences`, a random stream never drawn in training). The
detector is a :class:`ReplayDetector` returning the simulated detections of each frame:
a replay of known detections, so tracking, warm starts and filtering run exactly as they
do live. Reported per mode: MPJPE and PA-MPJPE (mm), jitter and acceleration error of
the pelvis-relative joints and of the pelvis (camera frame) trajectory (mm/frame^2), lag
against the ground truth (frames), ID switches and the median model time per frame
(``encode`` + ``iterate`` stages, ms).

**Video** (``--video CLIP``): the configured detector runs once over the clip; its
detections are replayed to every mode (identical input, hence identical track ids). No
ground truth: jitter per track, lag against the cold run (cross-correlation of the
pelvis-relative joint trajectories; the cold fit has no memory, so its lag is zero by
construction) and ID switches while at least two people are visible (see
:func:`count_id_switches`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from refit_ros.detect.base import Detection
from refit_ros.evaluation.temporal_metrics import (acceleration_error, jitter, lag_curve,
                                                   lag_from_curve, root_relative)
from refit_ros.geometry.intrinsics import Intrinsics

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- modes
@dataclasses.dataclass(frozen=True)
class Mode:
    """One way of running the pipeline: a name and its ``--set`` overrides."""

    name: str
    overrides: tuple[str, ...]


COLD = Mode("cold", ("tracking.enabled=true", "tracking.warm_start=false",
                     "tracking.one_euro=false"))
WARM = Mode("warm", ("tracking.enabled=true", "tracking.warm_start=true",
                     "tracking.one_euro=false"))
COLD_EURO = Mode("cold+one_euro", ("tracking.enabled=true", "tracking.warm_start=false",
                                   "tracking.one_euro=true"))
DEFAULT_MODES = (COLD, WARM, COLD_EURO)


def euro_mode(min_cutoff: float, beta: float = 0.0) -> Mode:
    """``cold+one_euro`` with a given cut-off (Hz) and speed coefficient."""
    return Mode(f"cold+one_euro(min_cutoff={min_cutoff:g},beta={beta:g})",
                COLD_EURO.overrides + (f"tracking.one_euro_min_cutoff={min_cutoff}",
                                       f"tracking.one_euro_beta={beta}"))


# ----------------------------------------------------------------------------- replay
class ReplayDetector:
    """A detector that returns known detections (simulated, or recorded from a real one).

    It lets the pipeline run unchanged - tracker, warm starts, filter - on detections whose
    origin we control, which is what an evaluation needs (the same input to every mode).

    Parameters
    ----------
    frames : dict, optional
        ``stamp -> list of Detection`` (stamps rounded to microseconds).
    """

    has_keypoints = True

    def __init__(self, frames: dict[float, list[Detection]] | None = None) -> None:
        self.frames: dict[float, list[Detection]] = dict(frames or {})

    @staticmethod
    def key(stamp: float) -> float:
        return round(float(stamp), 6)

    def load(self, frames: dict[float, list[Detection]]) -> None:
        self.frames = {self.key(k): v for k, v in frames.items()}

    def detect(self, image_rgb: np.ndarray, timestamp_s: float | None = None) -> list[Detection]:
        try:
            return list(self.frames[self.key(timestamp_s or 0.0)])
        except KeyError:
            raise KeyError(f"ReplayDetector has no detections for stamp {timestamp_s}") from None

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclasses.dataclass
class FrameRecord:
    """What one mode produced on one frame.

    Attributes
    ----------
    joints : dict
        ``track_id -> (24, 3)`` camera-frame joints (metres); untracked bodies are skipped.
    boxes : dict
        ``track_id -> (4,)`` boxes.
    warm : dict
        ``track_id -> bool``: fitted from the previous frame's state.
    model_ms, iterate_ms : float
        ``encode + iterate`` and ``iterate`` stage times (NaN without people).
    fit2d : dict
        ``track_id -> (12,)`` projected limb joints vs detector landmarks, fractions of the
        box height (:func:`refit_ros.evaluation.video.joint_errors`; NaN where not confident).
    """

    joints: dict[int, np.ndarray]
    boxes: dict[int, np.ndarray]
    warm: dict[int, bool]
    model_ms: float
    iterate_ms: float
    fit2d: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)


def run_frames(pipeline, frames: Iterable[tuple[float, np.ndarray]],
               intrinsics: Intrinsics | None) -> list[FrameRecord]:
    """Process frames through a pipeline (reset first) and keep the per-track results.

    Parameters
    ----------
    pipeline : RefitPipeline
    frames : iterable of (stamp, image)
    intrinsics : Intrinsics or None
    """
    from refit_ros.evaluation.video import joint_errors

    pipeline.reset()
    out = []
    for stamp, image in frames:
        res = pipeline.process(image, intrinsics=intrinsics, stamp=stamp)
        fits = getattr(pipeline, "fits", {})
        warm_on = getattr(pipeline.settings, "warm_start", True)
        rec = FrameRecord({}, {}, {}, float("nan"), float("nan"))
        for b in res.bodies:
            if b.track_id < 0:
                continue
            rec.joints[b.track_id] = np.asarray(b.joints, np.float64)
            rec.boxes[b.track_id] = np.asarray(b.bbox, np.float64)
            f = fits.get(b.track_id)
            rec.warm[b.track_id] = bool(warm_on and f is not None and f.warm_ok)
            rec.fit2d[b.track_id] = joint_errors(b.joints, b.keypoints2d, b.bbox, res.intrinsics)
        if res.bodies:
            tm = res.timings_ms
            rec.model_ms = tm.get("encode", 0.0) + tm.get("iterate", 0.0)
            rec.iterate_ms = tm.get("iterate", float("nan"))
        out.append(rec)
    return out


def tracks_of(records: Sequence[FrameRecord]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``track_id -> (joints T x 24 x 3 with NaN where absent, valid T)``."""
    ids = sorted({k for r in records for k in r.joints})
    out = {}
    for k in ids:
        j = np.full((len(records), 24, 3), np.nan)
        for t, r in enumerate(records):
            if k in r.joints:
                j[t] = r.joints[k]
        out[k] = (j, np.isfinite(j).all((1, 2)))
    return out


def count_id_switches(records: Sequence[FrameRecord], min_people: int = 2) -> dict[str, int]:
    """ID switches judged by an association independent of the tracker.

    Between consecutive frames that both show at least ``min_people`` tracked bodies, the
    bodies are matched by box-centre distance (relative to box height; Hungarian); every
    matched pair whose track ids differ is a switch (a swap, or a person given a new id).

    Returns
    -------
    dict
        ``switches``, ``frames_compared`` and ``distinct_ids`` (ids seen in those frames).
    """
    from scipy.optimize import linear_sum_assignment

    switches, compared, ids = 0, 0, set()
    for prev, cur in zip(records[:-1], records[1:]):
        if len(prev.boxes) < min_people or len(cur.boxes) < min_people:
            continue
        compared += 1
        pa, pb = list(prev.boxes), list(cur.boxes)
        ids.update(pa)
        ids.update(pb)
        a = np.stack([prev.boxes[k] for k in pa])
        b = np.stack([cur.boxes[k] for k in pb])
        ca, cb = 0.5 * (a[:, :2] + a[:, 2:]), 0.5 * (b[:, :2] + b[:, 2:])
        h = np.maximum(a[:, 3] - a[:, 1], 1.0)
        cost = np.linalg.norm(ca[:, None] - cb[None], axis=-1) / h[:, None]
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] < 0.5 and pa[i] != pb[j]:
                switches += 1
    return {"switches": switches, "frames_compared": compared, "distinct_ids": len(ids)}


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass
class ModeResult:
    """Temporal and accuracy metrics of one mode.

    Attributes
    ----------
    mode : str
    overrides : list of str
    frames : int
        Person-frames with a prediction.
    mpjpe_mm, pa_mpjpe_mm : float or None
        Synthetic only (pelvis-aligned / Procrustes-aligned, 24 joints).
    jitter_mm : float
        Mean second-difference norm of the pelvis-relative joints (mm/frame^2).
    accel_error_mm : float or None
        vs ground truth (synthetic only).
    root_jitter_mm, root_accel_error_mm : float or None
        The same for the pelvis trajectory in the camera frame (includes depth noise).
    lag_frames : float
        Cross-correlation delay of the pelvis-relative joints (synthetic: vs ground truth;
        video: vs the cold run).
    model_ms_median, iterate_ms_median : float
        Median per-frame ``encode + iterate`` / ``iterate`` time (all people of a frame).
    warm_fraction : float
        Person-frames fitted from the previous state.
    id_switches : int
    root_error_mm : float or None
        Synthetic only: mean distance of the predicted pelvis to the true one in the camera
        frame (translation/depth error; MPJPE does not see it).
    fit2d_median : float or None
        Median distance of the projected limb joints to the detector's confident landmarks
        (fraction of box height; the fitter's input, so a fit-quality check, not accuracy).
    """

    mode: str
    overrides: list[str]
    frames: int
    mpjpe_mm: float | None
    pa_mpjpe_mm: float | None
    jitter_mm: float
    accel_error_mm: float | None
    root_jitter_mm: float
    root_accel_error_mm: float | None
    lag_frames: float
    model_ms_median: float
    iterate_ms_median: float
    warm_fraction: float
    id_switches: int
    fit2d_median: float | None = None
    root_error_mm: float | None = None


def _fit2d(records_all: Sequence[Sequence[FrameRecord]]) -> float | None:
    v = [e for recs in records_all for r in recs for e in r.fit2d.values()]
    if not v:
        return None
    v = np.concatenate(v)
    v = v[np.isfinite(v)]
    return round(float(np.median(v)), 4) if v.size else None


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def _wmean(pairs: list[tuple[float, int]]) -> float:
    num = sum(v * n for v, n in pairs if n > 0 and math.isfinite(v))
    den = sum(n for v, n in pairs if n > 0 and math.isfinite(v))
    return num / den if den else float("nan")


def _timing(records_all: Sequence[Sequence[FrameRecord]]) -> tuple[float, float]:
    m = [r.model_ms for recs in records_all for r in recs if math.isfinite(r.model_ms)]
    it = [r.iterate_ms for recs in records_all for r in recs if math.isfinite(r.iterate_ms)]
    nan = float("nan")
    return (float(np.median(m)) if m else nan, float(np.median(it)) if it else nan)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(a / b - 1.0, 4)


def compare(modes: Sequence[ModeResult], ref: str = "cold", other: str = "warm") -> dict[str, Any]:
    """Relative change of ``other`` vs ``ref`` (e.g. ``-0.55`` = 55% lower)."""
    by = {m.mode: m for m in modes}
    if ref not in by or other not in by:
        return {}
    a, b = by[other], by[ref]
    return {f"{k}_change": _ratio(getattr(a, k), getattr(b, k))
            for k in ("jitter_mm", "accel_error_mm", "mpjpe_mm", "pa_mpjpe_mm", "model_ms_median")}


# ----------------------------------------------------------------------------- synthetic
@dataclasses.dataclass
class TemporalSyntheticResult:
    """``refit-ros eval temporal --json`` on the synthetic sequences."""

    sequences: int
    frames_per_sequence: int
    fps: float
    seed: int
    motions: dict[str, int]
    gt_jitter_mm: float
    gt_root_jitter_mm: float
    iterations: int
    warm_iterations: int
    modes: list[ModeResult]
    warm_vs_cold: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sequence_detections(seqs, s: int) -> dict[float, list[Detection]]:
    """The simulated detections of sequence ``s`` keyed by stamp (frame / fps)."""
    frames = {}
    for t in range(seqs.num_frames):
        dets = []
        if seqs.detected[s, t]:
            dets.append(Detection(bbox=seqs.bbox[s, t].astype(np.float32),
                                  score=float(seqs.score[s, t]),
                                  keypoints2d=seqs.keypoints2d[s, t].astype(np.float32)))
        frames[ReplayDetector.key(t / seqs.fps)] = dets
    return frames


def sequence_intrinsics(seqs, s: int) -> Intrinsics:
    (fx, fy), (cx, cy), (w, h) = seqs.focal[s], seqs.principal[s], seqs.image_size[s]
    return Intrinsics(float(fx), float(fy), float(cx), float(cy), int(w), int(h))


def _best_track(records: Sequence[FrameRecord]) -> tuple[np.ndarray, np.ndarray, int]:
    """The single person's trajectory: at each frame the body of the longest-lived track
    present (one person per synthetic sequence), and the number of id switches."""
    j = np.full((len(records), 24, 3), np.nan)
    ids = []
    for t, r in enumerate(records):
        if r.joints:
            k = min(r.joints)
            j[t] = r.joints[k]
            ids.append(k)
    switches = sum(1 for a, b in zip(ids[:-1], ids[1:]) if a != b)
    return j, np.isfinite(j).all((1, 2)), switches


def evaluate_temporal_synthetic(pipelines: dict[str, Any], seqs, seed: int,
                                mode_overrides: dict[str, Sequence[str]] | None = None,
                                max_lag: int = 10) -> TemporalSyntheticResult:
    """Run every pipeline over every sequence (modes interleaved per sequence, so a busy
    CPU slows them alike) and score them against the ground truth.

    Parameters
    ----------
    pipelines : dict
        ``mode name -> RefitPipeline`` whose detector is a :class:`ReplayDetector`.
    seqs : SyntheticSequences
    seed : int
        Recorded in the result.
    mode_overrides : dict, optional
        ``mode name -> overrides`` (recorded in the result).
    max_lag : int
        Largest delay (frames) the lag search considers.
    """
    from refit_ros.evaluation.metrics import mpjpe, pa_mpjpe

    t_start = time.perf_counter()
    gt = seqs.joints_camera()
    S, T = seqs.num_sequences, seqs.num_frames
    records: dict[str, list[list[FrameRecord]]] = {m: [] for m in pipelines}
    blank: dict[tuple[int, int], np.ndarray] = {}
    for s in range(S):
        dets = sequence_detections(seqs, s)
        intr = sequence_intrinsics(seqs, s)
        size = (intr.height, intr.width)
        if size not in blank:
            blank[size] = np.zeros((intr.height, intr.width, 3), np.uint8)
        image = blank[size]
        stamps = [t / seqs.fps for t in range(T)]
        for name, pipe in pipelines.items():
            pipe.detector.load(dets)
            records[name].append(run_frames(pipe, ((st, image) for st in stamps), intr))
    gt_rel = [root_relative(gt[s]) for s in range(S)]
    gt_jit = _wmean([jitter(g) for g in gt_rel])
    gt_root_jit = _wmean([jitter(gt[s][:, :1]) for s in range(S)])

    modes = []
    for name, recs in records.items():
        per = [_best_track(r) for r in recs]
        err, pa, jit, acc, rjit, racc, curves, root = [], [], [], [], [], [], [], []
        warm = [w for r in recs for f in r for w in f.warm.values()]
        for s, (j, valid, _) in enumerate(per):
            if valid.any():
                pj = torch.as_tensor(j[valid])
                gj = torch.as_tensor(gt[s][valid])
                err.append(mpjpe(pj, gj).numpy())
                pa.append(pa_mpjpe(pj, gj).numpy())
                root.append(np.linalg.norm(j[valid, 0] - gt[s][valid, 0], axis=-1) * 1000.0)
            rel = root_relative(j)
            jit.append(jitter(rel, valid))
            acc.append(acceleration_error(rel, gt_rel[s], valid))
            rjit.append(jitter(j[:, :1], valid))
            racc.append(acceleration_error(j[:, :1], gt[s][:, :1], valid))
            curves.append(lag_curve(rel, gt_rel[s], valid, max_lag))
        model_ms, iterate_ms = _timing(recs)
        c = np.nansum(np.stack(curves), 0) if curves else np.full(2 * max_lag + 1, np.nan)
        modes.append(ModeResult(
            mode=name, overrides=list((mode_overrides or {}).get(name, ())),
            frames=int(sum(v.sum() for _, v, _ in per)),
            mpjpe_mm=_r(float(np.concatenate(err).mean()) if err else float("nan")),
            pa_mpjpe_mm=_r(float(np.concatenate(pa).mean()) if pa else float("nan")),
            jitter_mm=_r(_wmean(jit), 3), accel_error_mm=_r(_wmean(acc), 3),
            root_jitter_mm=_r(_wmean(rjit), 3), root_accel_error_mm=_r(_wmean(racc), 3),
            lag_frames=_r(lag_from_curve(c)), model_ms_median=_r(model_ms, 3),
            iterate_ms_median=_r(iterate_ms, 3),
            warm_fraction=_r(float(np.mean(warm)) if warm else 0.0, 4),
            id_switches=int(sum(sw for _, _, sw in per)), fit2d_median=_fit2d(recs),
            root_error_mm=_r(float(np.concatenate(root).mean()) if root else float("nan"))))
    any_pipe = next(iter(pipelines.values()))
    motions: dict[str, int] = {}
    for m in seqs.motion:
        motions[m] = motions.get(m, 0) + 1
    return TemporalSyntheticResult(
        sequences=S, frames_per_sequence=T, fps=seqs.fps, seed=seed, motions=motions,
        gt_jitter_mm=_r(gt_jit, 3), gt_root_jitter_mm=_r(gt_root_jit, 3),
        iterations=any_pipe.settings.iterations,
        warm_iterations=pipelines.get("warm", any_pipe).settings.warm_iterations,
        modes=modes, warm_vs_cold=compare(modes),
        seconds=round(time.perf_counter() - t_start, 1))


# ----------------------------------------------------------------------------- video
@dataclasses.dataclass
class TemporalVideoResult:
    """``refit-ros eval temporal --video CLIP --json``."""

    input: str
    frames: int
    fps: float
    people_per_frame: list[int]
    tracks: int
    iterations: int
    warm_iterations: int
    lag_reference: str
    id_switches_while_two_visible: dict[str, int]
    modes: list[ModeResult]
    warm_vs_cold: dict[str, Any]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def record_detections(detector, source, max_frames: int | None = None
                      ) -> tuple[dict[float, list[Detection]], list[float], tuple[int, int]]:
    """Run a detector once over a frame source.

    Returns
    -------
    frames : dict
        ``stamp -> detections``.
    stamps : list of float
    size : (width, height)
    """
    frames, stamps, size = {}, [], (0, 0)
    detector.reset()
    for index, stamp, image in source:
        if max_frames is not None and index >= max_frames:
            break
        frames[ReplayDetector.key(stamp)] = detector.detect(image, stamp)
        stamps.append(stamp)
        size = (image.shape[1], image.shape[0])
    return frames, stamps, size


def evaluate_temporal_video(pipelines: dict[str, Any], detections: dict[float, list[Detection]],
                            frames_fn, intrinsics: Intrinsics | None, name: str, fps: float,
                            mode_overrides: dict[str, Sequence[str]] | None = None,
                            max_lag: int = 10) -> TemporalVideoResult:
    """Score every mode on replayed real detections (no ground truth).

    Parameters
    ----------
    pipelines : dict
        ``mode name -> RefitPipeline`` with a :class:`ReplayDetector`; must contain ``cold``
        (the lag reference).
    detections : dict
        ``stamp -> detections`` (:func:`record_detections`).
    frames_fn : callable
        ``frames_fn() -> iterable of (stamp, image)``; called once per mode.
    intrinsics : Intrinsics or None
    name : str
        Input name for the report.
    fps : float
    """
    t_start = time.perf_counter()
    records = {}
    for mode, pipe in pipelines.items():
        pipe.detector.load(detections)
        records[mode] = run_frames(pipe, frames_fn(), intrinsics)
    cold = tracks_of(records["cold"])
    modes = []
    for mode, recs in records.items():
        tr = tracks_of(recs)
        jit, rjit, curves = [], [], []
        for k, (j, valid) in tr.items():
            rel = root_relative(j)
            jit.append(jitter(rel, valid))
            rjit.append(jitter(j[:, :1], valid))
            if k in cold:
                cj, cv = cold[k]
                curves.append(lag_curve(rel, root_relative(cj), valid & cv, max_lag))
        curves = [c for c in curves if np.isfinite(c).any()]
        c = np.nansum(np.stack(curves), 0) if curves else np.full(2 * max_lag + 1, np.nan)
        model_ms, iterate_ms = _timing([recs])
        warm = [w for f in recs for w in f.warm.values()]
        modes.append(ModeResult(
            mode=mode, overrides=list((mode_overrides or {}).get(mode, ())),
            frames=int(sum(len(f.joints) for f in recs)), mpjpe_mm=None, pa_mpjpe_mm=None,
            jitter_mm=_r(_wmean(jit), 3), accel_error_mm=None,
            root_jitter_mm=_r(_wmean(rjit), 3), root_accel_error_mm=None,
            lag_frames=_r(lag_from_curve(c)), model_ms_median=_r(model_ms, 3),
            iterate_ms_median=_r(iterate_ms, 3),
            warm_fraction=_r(float(np.mean(warm)) if warm else 0.0, 4),
            id_switches=count_id_switches(recs)["switches"], fit2d_median=_fit2d([recs])))
    counts = np.array([len(f.joints) for f in records["cold"]])
    any_pipe = next(iter(pipelines.values()))
    return TemporalVideoResult(
        input=name, frames=len(counts), fps=fps,
        people_per_frame=np.bincount(counts).tolist() if counts.size else [],
        tracks=len(cold), iterations=any_pipe.settings.iterations,
        warm_iterations=pipelines.get("warm", any_pipe).settings.warm_iterations,
        lag_reference="cold (per-frame fit, no temporal memory)",
        id_switches_while_two_visible=count_id_switches(records["cold"]),
        modes=modes, warm_vs_cold=compare(modes), seconds=round(time.perf_counter() - t_start, 1))


def equal_lag_euro(modes: list[ModeResult], target: str = "warm") -> ModeResult | None:
    """Of the swept One-Euro modes, the one whose lag is closest to ``target``'s (ties:
    the smoother one), renamed ``cold+one_euro@<target>_lag``."""
    by = {m.mode: m for m in modes}
    if target not in by or by[target].lag_frames is None:
        return None
    sweep = [m for m in modes if m.mode.startswith("cold+one_euro(") and m.lag_frames is not None]
    if not sweep:
        return None
    lag = by[target].lag_frames
    best = min(sweep, key=lambda m: (abs(m.lag_frames - lag), m.jitter_mm))
    return dataclasses.replace(best, mode=f"cold+one_euro@{target}_lag",
                               overrides=best.overrides)


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``eval temporal`` (added to the ``eval`` command's parser)."""
    from refit_ros.cli import add_config_arguments

    if "--set" not in parser._option_string_actions:
        add_config_arguments(parser)
    g = parser.add_argument_group("temporal mode")
    g.add_argument("--video", dest="temporal_video", default=None, metavar="CLIP",
                   help="temporal mode: evaluate on this real clip instead of the synthetic "
                        "sequences")
    g.add_argument("--sequences", type=int, default=24,
                   help="temporal mode: synthetic sequences (default 24)")
    g.add_argument("--frames", type=int, default=90,
                   help="temporal mode: frames per synthetic sequence (default 90, 30 fps)")
    g.add_argument("--seq-seed", type=int, default=31337,
                   help="temporal mode: seed of the synthetic sequences (default 31337)")
    g.add_argument("--one-euro-cutoffs", default="",
                   help="temporal mode: comma-separated One-Euro min_cutoff values (Hz) to sweep; "
                        "the one whose lag matches the warm start is reported as "
                        "cold+one_euro@warm_lag")
    if "--max-frames" not in parser._option_string_actions:
        parser.add_argument("--max-frames", type=int, default=None, metavar="N")
    if "--camera-info" not in parser._option_string_actions:
        parser.add_argument("--camera-info", default=None, metavar="YAML")


def _pipelines(cfg_path, overrides: Sequence[str], modes: Sequence[Mode], detector, model):
    from refit_ros.config import load_config
    from refit_ros.pipeline import build_pipeline

    pipes, used = {}, {}
    for m in modes:
        cfg = load_config(cfg_path, list(overrides) + list(m.overrides))
        pipes[m.name] = build_pipeline(cfg, detector=detector, model=model)
        used[m.name] = list(m.overrides)
    return pipes, used, cfg


def run(args: argparse.Namespace) -> int:
    """``refit-ros eval temporal [--video CLIP] [--json]``."""
    from refit_ros.config import load_config
    from refit_ros.pipeline import ModelFileError, build_backend

    torch.set_num_threads(max(1, int(getattr(args, "threads", 1) or 1)))
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "weights", ""):
        overrides.append(f"model.weights={args.weights}")
    cfg = load_config(args.config, overrides)
    try:
        model = build_backend(cfg, backend="torch")  # one torch model for every mode
    except (ModelFileError, FileNotFoundError) as exc:
        print(f"refit-ros eval temporal: {exc}", file=sys.stderr)
        return 2
    cutoffs = [float(x) for x in str(args.one_euro_cutoffs).split(",") if x.strip()]
    modes = list(DEFAULT_MODES) + [euro_mode(c, cfg.tracking.one_euro_beta) for c in cutoffs]
    clip = args.temporal_video or (args.video if getattr(args, "video", None) else None)
    replay = ReplayDetector()
    pipes, used, _ = _pipelines(args.config, overrides, modes, replay, model)
    if clip:
        out = _run_video(args, cfg, clip, pipes, used)
        if out is None:
            return 2
    else:
        out = _run_synthetic(args, cfg, model, pipes, used)
    if cutoffs:
        eq = equal_lag_euro(out.modes)
        if eq is not None:
            out.modes.append(eq)
            out.warm_vs_cold.update({f"vs_equal_lag_one_euro_{k}": v for k, v in
                                     compare(out.modes, eq.mode, "warm").items()})
    result = {"mode": "temporal", "model": cfg.model.name, "body": cfg.body.model,
              "weights": cfg.model.weights or "shipped", **out.to_dict()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


def _run_synthetic(args, cfg, model, pipes, used) -> TemporalSyntheticResult:
    from refit_ros.training.config import load_train_config
    from refit_ros.training.sequences import SequenceConfig, sample_sequences

    tcfg = load_train_config(getattr(args, "train_config", None))
    seqs = sample_sequences(model.body, tcfg.data, args.seq_seed, args.sequences,
                            SequenceConfig(frames=args.frames))
    return evaluate_temporal_synthetic(pipes, seqs, args.seq_seed, used)


def _run_video(args, cfg, clip, pipes, used) -> TemporalVideoResult | None:
    from refit_ros.config import resolve_path
    from refit_ros.detect import build_detector
    from refit_ros.io.camera_info import CameraInfoError, intrinsics_for_size, load_camera_info
    from refit_ros.io.frames import FrameSourceError, open_source

    try:
        source = open_source(clip, cfg.source.rate)
        intrinsics = None
        if getattr(args, "camera_info", None):
            intrinsics = load_camera_info(args.camera_info)
        elif cfg.source.camera_info:
            intrinsics = load_camera_info(resolve_path(cfg.source.camera_info))
    except (FrameSourceError, CameraInfoError) as exc:
        print(f"refit-ros eval temporal: {exc}", file=sys.stderr)
        return None
    with build_detector(cfg) as detector:
        dets, stamps, (w, h) = record_detections(detector, source, args.max_frames)
    intr = None if intrinsics is None else intrinsics_for_size(intrinsics, w, h)

    def frames():
        for index, stamp, image in source:
            if args.max_frames is not None and index >= args.max_frames:
                break
            yield stamp, image

    return evaluate_temporal_video(pipes, dets, frames, intr, str(clip), source.fps, used)


def _print_table(result: dict) -> None:
    head = (f"{'mode':40s} {'MPJPE':>7s} {'PA':>7s} {'root':>7s} {'jitter':>7s} {'accErr':>7s} "
            f"{'rootJit':>8s} {'lag':>6s} {'ms':>7s} {'fit2d':>6s} {'warm%':>6s} {'IDsw':>5s}")
    print(head)

    def f(v, w=7, nd=2):
        return f"{'-':>{w}s}" if v is None else f"{v:{w}.{nd}f}"

    for m in result["modes"]:
        print(f"{m['mode'][:40]:40s} {f(m['mpjpe_mm'])} {f(m['pa_mpjpe_mm'])} "
              f"{f(m.get('root_error_mm'))} {f(m['jitter_mm'])} {f(m['accel_error_mm'])} "
              f"{f(m['root_jitter_mm'], 8)} {f(m['lag_frames'], 6)} {f(m['model_ms_median'])} "
              f"{f(m.get('fit2d_median'), 6, 3)} {100 * m['warm_fraction']:6.1f} "
              f"{m['id_switches']:5d}")
    print("warm vs cold:", json.dumps(result.get("warm_vs_cold", {})))
