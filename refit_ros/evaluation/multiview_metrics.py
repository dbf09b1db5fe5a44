"""Monocular bodies scored against multi-view 3D ground truth (no ROS, NumPy + SciPy).

The fixture format is ``shared/fixtures/p2s_multi`` (its README): ``gt.npz`` with
``joints_world`` (``F x P x 12 x 3`` metres, NaN = invalid, or ``F x 12 x 3`` for one person),
``smpl_idx`` (the 12 SMPL joints: L/R shoulder, elbow, wrist, hip, knee, ankle) and optional
``n_views``, ``person_names``, ``joint_names``, ``fps``; ``extrinsics.json`` with per camera
``R_world_to_cam``, ``t_world_to_cam`` (``X_cam = R X_world + t``) and ``K``.

Definitions (the team's evaluator ``shared/tools/multiview_eval.py``; the numbers agree):

* **matching**, per view and frame: each eligible person's GT and each body's 12 joints are
  projected with ``K``; a pair's distance is the mean 2D distance over the person's valid
  joints divided by the height of the person's projected joint box; pairs are taken
  greedily, smallest first, one-to-one, only below ``match_frac``.
* **eligible** (view, frame, person): both GT hips and ``>= min_joints`` valid joints.
* ``mpjpe_mm``: root-relative (mid-hip = mean of SMPL joints 1, 2) error in world, mm;
  ``pa_mpjpe_mm``: after a similarity Procrustes fit; ``root_err_m``: absolute mid-hip error.
* ``coverage``: matched / eligible; ``id_switches``: changes of the matched ``track_id``.
* ``accel_err_mm`` (this module's addition): for three consecutive matched frames of a person
  in a view, ``|a_pred - a_gt|`` per valid joint, averaged, where ``a`` is the second
  difference of the root-relative joints (mm / frame^2) and the GT is first smoothed in time
  (Savitzky-Golay, ``ACCEL_WINDOW`` frames, quadratic, over runs of valid frames; its
  triangulation noise would otherwise dominate). ``root_accel_err_mm``: the same for the
  absolute mid-hip (the published translation, depth included).

Medians are reported per view, per view and person, per person and pooled; acceleration
errors are means (as in the temporal literature); per-joint errors are means.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Positions of SMPL joints 1 (left hip) and 2 (right hip) in the fixture's 12-joint list.
HIP_L, HIP_R = 6, 7
METRICS = ("mpjpe_mm", "pa_mpjpe_mm", "root_err_m")
#: Savitzky-Golay window (frames) of the GT smoothing before its acceleration is taken.
ACCEL_WINDOW = 9


class FixtureError(ValueError):
    """The multi-view fixture cannot be read."""


@dataclasses.dataclass(frozen=True)
class ViewCamera:
    """One calibrated view: ``X_cam = R X_world + t``; pinhole ``K``."""

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray

    def to_cam(self, x_world: np.ndarray) -> np.ndarray:
        return x_world @ self.R.T + self.t

    def to_world(self, x_cam: np.ndarray) -> np.ndarray:
        return (x_cam - self.t) @ self.R


@dataclasses.dataclass(frozen=True)
class MultiviewFixture:
    """Ground truth of a multi-view fixture.

    Attributes
    ----------
    joints_world : ndarray, F x P x 12 x 3
        Metres, world frame, NaN = invalid.
    smpl_idx : ndarray, 12
        SMPL joint of each GT joint.
    cameras : dict of str -> ViewCamera
    n_views : ndarray, F x P x 12, or None
        Views each joint was triangulated from.
    person_names, joint_names : list of str
    fps : float or None
    """

    joints_world: np.ndarray
    smpl_idx: np.ndarray
    cameras: dict[str, ViewCamera]
    n_views: np.ndarray | None
    person_names: list[str]
    joint_names: list[str]
    fps: float | None

    @property
    def frames(self) -> int:
        return self.joints_world.shape[0]

    @property
    def persons(self) -> int:
        return self.joints_world.shape[1]


def load_fixture(directory: str | Path) -> MultiviewFixture:
    """Read ``gt.npz`` and ``extrinsics.json`` of a fixture folder (:class:`FixtureError`)."""
    d = Path(directory)
    try:
        gt = np.load(d / "gt.npz")
        ext = json.loads((d / "extrinsics.json").read_text(encoding="utf-8"))
        g = np.asarray(gt["joints_world"], dtype=np.float64)
        smpl_idx = np.asarray(gt["smpl_idx"], dtype=int)
        cams = {name: ViewCamera(np.asarray(c["R_world_to_cam"], float).reshape(3, 3),
                                 np.asarray(c["t_world_to_cam"], float).reshape(3),
                                 np.asarray(c["K"], float).reshape(3, 3))
                for name, c in sorted(ext["cameras"].items())}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise FixtureError(f"cannot read the multi-view fixture in {d} (gt.npz + "
                           f"extrinsics.json): {exc}") from exc
    if g.ndim == 3:
        g = g[:, None]
    if g.ndim != 4 or g.shape[2:] != (len(smpl_idx), 3):
        raise FixtureError(f"{d / 'gt.npz'}: joints_world has shape {g.shape}, expected "
                           f"F x P x {len(smpl_idx)} x 3 or F x {len(smpl_idx)} x 3")
    if len(smpl_idx) <= HIP_R or list(smpl_idx[[HIP_L, HIP_R]]) != [1, 2]:
        raise FixtureError(f"{d / 'gt.npz'}: smpl_idx must hold the SMPL hips (1, 2) at "
                           f"positions {HIP_L}, {HIP_R}; got {smpl_idx.tolist()}")
    nv = np.asarray(gt["n_views"], int).reshape(g.shape[:3]) if "n_views" in gt.files else None
    names = [str(x) for x in gt["person_names"]] if "person_names" in gt.files else []
    if len(names) != g.shape[1]:
        names = [f"P{p}" for p in range(g.shape[1])]
    jnames = [str(x) for x in gt["joint_names"]] if "joint_names" in gt.files else []
    if len(jnames) != len(smpl_idx):
        jnames = [f"smpl{j}" for j in smpl_idx]
    fps = float(gt["fps"]) if "fps" in gt.files else None
    return MultiviewFixture(g, smpl_idx, cams, nv, names, jnames, fps)


def read_bodies_jsonl(path: str | Path, frames: int) -> dict[int, list[tuple[np.ndarray, Any]]]:
    """``bodies.jsonl`` (the ``refit-ros video`` format) -> frame -> [(joints 24 x 3, track_id)].

    A missing file gives no bodies; unreadable lines and malformed bodies are skipped.
    """
    out: dict[int, list[tuple[np.ndarray, Any]]] = {}
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            f = int(row["frame"])
            bodies = row.get("bodies") or []
        except (ValueError, KeyError, TypeError):
            continue
        if not 0 <= f < frames:
            continue
        for b in bodies:
            try:
                j = np.asarray(b["joints"], dtype=np.float64)
            except (KeyError, ValueError, TypeError):
                continue
            if j.ndim == 2 and j.shape[1] == 3 and j.shape[0] >= 24:
                out.setdefault(f, []).append((j, b.get("track_id")))
    return out


def project(x_cam: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame points ``... x 3`` -> pixels ``... x 2`` (NaN at depth <= 0)."""
    z = x_cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack([k[0, 0] * x_cam[..., 0] / z + k[0, 2],
                       k[1, 1] * x_cam[..., 1] / z + k[1, 2]], axis=-1)
    uv[~(z > 1e-6)] = np.nan
    return uv


def procrustes_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean distance after the best similarity transform of ``pred`` onto ``gt`` (N x 3)."""
    mp, mg = pred.mean(0), gt.mean(0)
    p, g = pred - mp, gt - mg
    var = float((p ** 2).sum())
    if var < 1e-12:
        return float(np.linalg.norm(g, axis=1).mean())
    u, s, vt = np.linalg.svd(g.T @ p)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    d = np.array([1.0, 1.0, sign])
    rot = (u * d) @ vt
    scale = float((s * d).sum()) / var
    return float(np.linalg.norm(scale * p @ rot.T - g, axis=1).mean())


def _root(x: np.ndarray) -> np.ndarray:
    return 0.5 * (x[..., HIP_L, :] + x[..., HIP_R, :])


def greedy_pairs(dist: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one pairs of a ``P x B`` distance matrix, smallest first (inf = impossible)."""
    d = np.array(dist, dtype=np.float64, copy=True)
    pairs: list[tuple[int, int]] = []
    while d.size:
        k = int(np.argmin(d))
        p, b = divmod(k, d.shape[1])
        if not np.isfinite(d[p, b]):
            break
        pairs.append((p, b))
        d[p, :] = np.inf
        d[:, b] = np.inf
    return pairs


def smooth_in_time(x: np.ndarray, valid: np.ndarray, window: int = ACCEL_WINDOW) -> np.ndarray:
    """Savitzky-Golay smoothing (quadratic) of ``F x ...`` along frames.

    Each trailing element (a joint's coordinate) is smoothed over its own runs of frames that
    are ``valid`` and finite; runs shorter than ``window`` become NaN (no reliable
    acceleration there).
    """
    from scipy.signal import savgol_filter

    flat = x.reshape(len(x), -1)
    out = np.full_like(flat, np.nan)
    n = len(flat)
    for c in range(flat.shape[1]):
        ok = valid & np.isfinite(flat[:, c])
        f = 0
        while f < n:
            if not ok[f]:
                f += 1
                continue
            e = f
            while e < n and ok[e]:
                e += 1
            if e - f >= window:
                out[f:e, c] = savgol_filter(flat[f:e, c], window, 2)
            f = e
    return out.reshape(x.shape)


def _accel(x: np.ndarray) -> np.ndarray:
    """Second difference along axis 0 (``F - 2`` rows; row i is centred on frame i + 1)."""
    return x[2:] - 2 * x[1:-1] + x[:-2]


def _new() -> dict[str, list]:
    return {"frame": [], "mpjpe_mm": [], "pa_mpjpe_mm": [], "root_err_m": [], "match_px": [],
            "track_id": [], "per_joint_mm": []}


def _median(v: Sequence[float]) -> float:
    return float(np.median(v)) if len(v) else float("nan")


def _mean(v: Sequence[float]) -> float:
    return float(np.mean(v)) if len(v) else float("nan")


def _summary(acc: dict[str, list], eligible: int) -> dict[str, Any]:
    matched = len(acc["mpjpe_mm"])
    return {"eligible": int(eligible), "matched": matched,
            "coverage": matched / eligible if eligible else float("nan"),
            "median": {k: _median(acc[k]) for k in METRICS},
            "mean": {k: _mean(acc[k]) for k in METRICS},
            "median_match_px": _median(acc["match_px"])}


def evaluate(fixture: MultiviewFixture,
             bodies: Mapping[str, Mapping[int, list[tuple[np.ndarray, Any]]]],
             match_frac: float = 0.3, min_joints: int = 8, min_views: int | None = None,
             views: Iterable[str] | None = None) -> dict[str, Any]:
    """Score per-view bodies against the fixture.

    Parameters
    ----------
    fixture : MultiviewFixture
    bodies : mapping view -> frame -> list of (joints ``24 x 3`` camera frame m, track_id)
    match_frac, min_joints, min_views : see the module docstring
    views : iterable of str, optional
        Cameras to score (default: all of the fixture).

    Returns
    -------
    dict
        ``views`` (per view: the summary, ``persons`` with id switches, acceleration errors
        and per-frame values), ``persons_summary``, ``per_joint_mean_mm``, ``overall``
        (with ``accel_err_mm`` and ``root_accel_err_mm`` pooled over views and people).
    """
    g = fixture.joints_world
    n_f, n_p = g.shape[:2]
    gvalid = np.all(np.isfinite(g), axis=3)
    if min_views is not None and min_views > 2 and fixture.n_views is not None:
        gvalid &= fixture.n_views >= min_views
    g = np.where(gvalid[..., None], g, np.nan)
    eligible = gvalid[:, :, HIP_L] & gvalid[:, :, HIP_R] & (gvalid.sum(2) >= min_joints)
    # time-smoothed GT (root-relative joints and root) for the acceleration error
    g_rel = g - _root(g)[:, :, None]
    g_rel_s = np.stack([smooth_in_time(g_rel[:, p], eligible[:, p]) for p in range(n_p)], 1)
    g_root_s = np.stack([smooth_in_time(_root(g)[:, p], eligible[:, p]) for p in range(n_p)], 1)
    names = [v for v in (list(views) if views is not None else sorted(fixture.cameras))
             if v in fixture.cameras]
    res: dict[str, Any] = {
        "persons": n_p, "person_names": fixture.person_names,
        "eligible_frames_per_person": [int(x) for x in eligible.sum(0)],
        "match_frac": match_frac, "min_joints": min_joints, "min_views": min_views,
        "joint_names": fixture.joint_names, "views": {}}
    pooled, by_person = _new(), [_new() for _ in range(n_p)]
    accel_all: list[float] = []
    root_accel_all: list[float] = []
    accel_person: list[list[float]] = [[] for _ in range(n_p)]
    n_elig = 0
    for name in names:
        cam = fixture.cameras[name]
        view_bodies = bodies.get(name, {})
        per_p = [_new() for _ in range(n_p)]
        pred_world = np.full((n_f, n_p, len(fixture.smpl_idx), 3), np.nan)
        rejected = 0
        for f in range(n_f):
            ps = np.flatnonzero(eligible[f])
            cand = view_bodies.get(f, [])
            if not len(ps) or not cand:
                continue
            dist = np.full((len(ps), len(cand)), np.inf)
            dpx = np.full_like(dist, np.inf)
            for i, p in enumerate(ps):
                v = gvalid[f, p]
                gu = project(cam.to_cam(g[f, p]), cam.K)
                v2 = v & np.all(np.isfinite(gu), axis=1)
                if v2.sum() < 2:
                    continue
                h = float(np.ptp(gu[v2, 1]))
                for b, (joints, _) in enumerate(cand):
                    pj = joints[fixture.smpl_idx]
                    if not np.all(np.isfinite(pj[v])):
                        continue
                    d = np.linalg.norm(project(pj, cam.K)[v2] - gu[v2], axis=1)
                    if np.all(np.isfinite(d)) and h > 0:
                        dpx[i, b] = d.mean()
                        dist[i, b] = d.mean() / h
            pairs = greedy_pairs(np.where(dist < match_frac, dist, np.inf))
            matched = {i for i, _ in pairs}
            rejected += sum(1 for i in range(len(ps))
                            if i not in matched and np.isfinite(dist[i]).any())
            for i, b in pairs:
                p = ps[i]
                joints, tid = cand[b]
                pw = cam.to_world(joints[fixture.smpl_idx])
                pred_world[f, p] = pw
                valid = gvalid[f, p]
                rp, rg = _root(pw), _root(g[f, p])
                pj = np.full(len(valid), np.nan)
                pj[valid] = 1000.0 * np.linalg.norm((pw[valid] - rp) - (g[f, p, valid] - rg), axis=1)
                vals = (float(np.nanmean(pj)), 1000.0 * procrustes_error(pw[valid], g[f, p, valid]),
                        float(np.linalg.norm(rp - rg)))
                for acc in (per_p[p], by_person[p], pooled):
                    for key, val in zip(METRICS, vals):
                        acc[key].append(val)
                    acc["match_px"].append(float(dpx[i, b]))
                    acc["per_joint_mm"].append(pj)
                per_p[p]["frame"].append(int(f))
                per_p[p]["track_id"].append(tid)
        vres: dict[str, Any] = {"persons": {}}
        all_view = _new()
        view_accel: list[float] = []
        view_root_accel: list[float] = []
        n_e_v = 0
        for p in range(n_p):
            acc = per_p[p]
            n_e = int(eligible[:, p].sum())
            n_e_v += n_e
            for key in METRICS + ("match_px",):
                all_view[key] += acc[key]
            tids = [t for t in acc["track_id"] if t is not None]
            acc_err, root_err = _accel_errors(pred_world[:, p], g_rel_s[:, p], g_root_s[:, p])
            view_accel += acc_err
            view_root_accel += root_err
            accel_person[p] += acc_err
            root_accel_all += root_err
            vres["persons"][f"P{p}"] = _summary(acc, n_e) | {
                "track_ids": sorted(set(tids), key=str),
                "id_switches": int(sum(a != b for a, b in zip(tids[:-1], tids[1:]))),
                "accel_err_mm": _mean(acc_err), "root_accel_err_mm": _mean(root_err),
                "accel_frames": len(acc_err),
                "per_frame": {k: acc[k] for k in ("frame", "mpjpe_mm", "pa_mpjpe_mm",
                                                  "root_err_m", "match_px", "track_id")}}
        accel_all += view_accel
        n_elig += n_e_v
        vres.update(_summary(all_view, n_e_v))
        vres.update(rejected_far_bodies=rejected, accel_err_mm=_mean(view_accel),
                    root_accel_err_mm=_mean(view_root_accel),
                    id_switches=sum(v["id_switches"] for v in vres["persons"].values()))
        res["views"][name] = vres
    res["persons_summary"] = {
        f"P{p}": {"name": fixture.person_names[p], "accel_err_mm": _mean(accel_person[p])}
        | _summary(by_person[p], int(eligible[:, p].sum()) * len(names)) for p in range(n_p)}
    per_joint: dict[str, list[float]] = {}
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if pooled["per_joint_mm"]:
                per_joint["pooled"] = np.nanmean(np.array(pooled["per_joint_mm"]), 0).tolist()
            for p in range(n_p):
                if by_person[p]["per_joint_mm"]:
                    per_joint[f"P{p}"] = np.nanmean(np.array(by_person[p]["per_joint_mm"]), 0).tolist()
    res["per_joint_mean_mm"] = per_joint
    overall = _summary(pooled, n_elig)
    if not n_elig:
        overall["coverage"] = 0.0
    overall.update(accel_err_mm=_mean(accel_all), root_accel_err_mm=_mean(root_accel_all),
                   id_switches=sum(v["id_switches"] for v in res["views"].values()))
    res["overall"] = overall
    return res


def _accel_errors(pred: np.ndarray, g_rel_s: np.ndarray,
                  g_root_s: np.ndarray) -> tuple[list[float], list[float]]:
    """Per centre frame of three consecutive matched frames: joint and root accel errors (mm)."""
    root = _root(pred)
    rel = pred - root[:, None]
    a_pred, a_gt = _accel(rel), _accel(g_rel_s)
    ok = np.isfinite(a_pred).all(-1) & np.isfinite(a_gt).all(-1)            # (F-2, 12)
    err = np.where(ok, np.linalg.norm(np.nan_to_num(a_pred - a_gt), axis=-1), np.nan)
    rows = ok.any(1)
    joint = [1000.0 * float(np.nanmean(err[i])) for i in np.flatnonzero(rows)]
    ar_pred, ar_gt = _accel(root), _accel(g_root_s)
    rok = np.isfinite(ar_pred).all(-1) & np.isfinite(ar_gt).all(-1)
    rootv = (1000.0 * np.linalg.norm(ar_pred[rok] - ar_gt[rok], axis=-1)).tolist()
    return joint, rootv


def final_line(res: Mapping[str, Any]) -> str:
    """The one-line summary (same first four fields as the team's evaluator)."""
    o = res["overall"]
    return (f"mpjpe_mm={o['median']['mpjpe_mm']:.1f} pa_mpjpe_mm={o['median']['pa_mpjpe_mm']:.1f} "
            f"root_err_m={o['median']['root_err_m']:.3f} coverage={o['coverage']:.3f} "
            f"accel_err_mm={o['accel_err_mm']:.1f} id_switches={o['id_switches']}")


def report_lines(res: Mapping[str, Any]) -> list[str]:
    """A human-readable table of :func:`evaluate`'s result."""
    hdr = (f"{'':14s} {'eligible':>8s} {'matched':>8s} {'coverage':>9s} {'mpjpe_mm':>9s} "
           f"{'pa_mpjpe':>9s} {'root_m':>7s} {'accel':>7s} {'id_sw':>6s}")

    def row(name: str, v: Mapping[str, Any]) -> str:
        return (f"{name:14s} {v['eligible']:8d} {v['matched']:8d} {v['coverage']:9.3f} "
                f"{v['median']['mpjpe_mm']:9.1f} {v['median']['pa_mpjpe_mm']:9.1f} "
                f"{v['median']['root_err_m']:7.3f} {v.get('accel_err_mm', float('nan')):7.1f} "
                f"{v.get('id_switches', 0):6d}")

    lines = ["per view (medians; accel = mean acceleration error, mm/frame^2):", hdr]
    lines += [row(n, v) for n, v in res["views"].items()]
    lines += ["per view and person:", hdr]
    for n, v in res["views"].items():
        lines += [row(f"{n}/{pk}", pv) for pk, pv in v["persons"].items()]
    lines += ["per person (pooled over views):", hdr]
    lines += [row(pk, pv) for pk, pv in res["persons_summary"].items()]
    lines.append(row("overall", res["overall"]))
    pj = res["per_joint_mean_mm"]
    if pj:
        keys = list(pj)
        lines.append("per-joint mean root-relative error, mm:")
        lines.append(f"{'joint':14s}" + "".join(f"{k:>9s}" for k in keys))
        for j, jn in enumerate(res["joint_names"]):
            lines.append(f"{jn:14s}" + "".join(f"{pj[k][j]:9.1f}" for k in keys))
    return lines
