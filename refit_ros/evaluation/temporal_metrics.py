"""Temporal metrics of joint trajectories: jitter, acceleration error, lag.

All functions take trajectories ``T x J x 3`` in metres sampled once per frame, with an
optional ``T`` validity mask (frames where the person was not recovered); a second
difference is only formed from three consecutive valid frames. Results are in millimetres
per frame squared (mm/frame^2) or frames.

* **jitter**: mean norm of the second difference ``x[t+1] - 2 x[t] + x[t-1]`` of the
  predicted joints (the per-frame acceleration; 0 for constant-velocity motion). Smooth
  true motion has a small but non-zero value; report the ground truth's alongside.
* **acceleration error**: mean norm of the difference between predicted and true second
  differences (as in HMMR / VIBE).
* **lag**: the delay (frames, sub-frame by parabolic interpolation) that maximises the
  cross-correlation of the predicted trajectories with a reference (ground truth, or the
  per-frame cold fit on real video, which has no temporal memory and hence no lag).
  Positive = the prediction trails the reference.
"""

from __future__ import annotations

import numpy as np


def second_difference(x: np.ndarray,
                      valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Second differences of a trajectory and where they are defined.

    Parameters
    ----------
    x : ndarray, (T, J, 3) or (T, D)
    valid : ndarray of bool, (T,), optional

    Returns
    -------
    acc : ndarray, (T-2, ...)
        ``x[t+1] - 2 x[t] + x[t-1]`` for ``t = 1 .. T-2``.
    ok : ndarray of bool, (T-2,)
        True where frames ``t-1, t, t+1`` are all valid.
    """
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[0]
    if valid is None:
        valid = np.ones(t, bool)
    valid = np.asarray(valid, bool) & np.isfinite(x.reshape(t, -1)).all(-1)
    if t < 3:
        return np.zeros((0,) + x.shape[1:]), np.zeros(0, bool)
    acc = x[2:] - 2 * x[1:-1] + x[:-2]
    ok = valid[2:] & valid[1:-1] & valid[:-2]
    return acc, ok


def jitter(x: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, int]:
    """Mean per-joint acceleration norm (mm/frame^2) and the number of frames it averages.

    Parameters
    ----------
    x : ndarray, (T, J, 3)
        Metres.
    valid : ndarray of bool, (T,), optional

    Returns
    -------
    value : float
        NaN when no three consecutive valid frames exist.
    count : int
        Frames (triplets) averaged.
    """
    acc, ok = second_difference(x, valid)
    if not ok.any():
        return float("nan"), 0
    return float(np.linalg.norm(acc[ok], axis=-1).mean() * 1000.0), int(ok.sum())


def acceleration_error(pred: np.ndarray, gt: np.ndarray,
                       valid: np.ndarray | None = None) -> tuple[float, int]:
    """Mean norm of predicted minus true acceleration (mm/frame^2), and the frame count.

    Parameters
    ----------
    pred, gt : ndarray, (T, J, 3)
        Metres.
    valid : ndarray of bool, (T,), optional
        Frames with a prediction.
    """
    a_p, ok = second_difference(pred, valid)
    a_g, _ = second_difference(gt)
    if not ok.any():
        return float("nan"), 0
    return float(np.linalg.norm(a_p[ok] - a_g[ok], axis=-1).mean() * 1000.0), int(ok.sum())


def _fill(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over invalid frames (ends held); ``T x D``."""
    t = np.arange(x.shape[0])
    out = x.copy()
    for d in range(x.shape[1]):
        out[:, d] = np.interp(t, t[valid], x[valid, d])
    return out


def lag_curve(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None,
              max_lag: int = 10) -> np.ndarray:
    """Normalised cross-correlation of two trajectories for delays ``-max_lag..max_lag``.

    Parameters
    ----------
    pred, ref : ndarray, (T, J, 3) or (T, D)
    valid : ndarray of bool, (T,), optional
        Frames where both are defined; gaps are filled by linear interpolation.
    max_lag : int

    Returns
    -------
    ndarray, (2 * max_lag + 1,)
        Entry ``max_lag + d`` correlates ``pred[t]`` with ``ref[t - d]``; NaN if the
        trajectories are too short or constant.
    """
    p = np.asarray(pred, np.float64).reshape(len(pred), -1)
    r = np.asarray(ref, np.float64).reshape(len(ref), -1)
    t = p.shape[0]
    valid = np.ones(t, bool) if valid is None else np.asarray(valid, bool)
    valid = valid & np.isfinite(p).all(-1) & np.isfinite(r).all(-1)
    out = np.full(2 * max_lag + 1, np.nan)
    if valid.sum() < 2 * max_lag + 3:
        return out
    p, r = _fill(p, valid), _fill(r, valid)
    p = p - p.mean(0)
    r = r - r.mean(0)
    for i, d in enumerate(range(-max_lag, max_lag + 1)):
        a = p[max(d, 0): t + min(d, 0)]
        b = r[max(-d, 0): t - max(d, 0)]
        den = np.sqrt((a ** 2).sum() * (b ** 2).sum())
        out[i] = (a * b).sum() / den if den > 0 else np.nan
    return out


def lag_from_curve(curve: np.ndarray) -> float:
    """Delay (frames) at the maximum of a :func:`lag_curve` (or a sum of curves), refined
    by a parabola through the peak and its neighbours."""
    c = np.asarray(curve, np.float64)
    if not np.isfinite(c).any():
        return float("nan")
    max_lag = (len(c) - 1) // 2
    k = int(np.nanargmax(c))
    frac = 0.0
    if 0 < k < len(c) - 1 and np.isfinite(c[k - 1]) and np.isfinite(c[k + 1]):
        den = c[k - 1] - 2 * c[k] + c[k + 1]
        if den < 0:
            frac = 0.5 * (c[k - 1] - c[k + 1]) / den
    return float(k - max_lag + frac)


def trajectory_lag(pred: np.ndarray, ref: np.ndarray, valid: np.ndarray | None = None,
                   max_lag: int = 10) -> float:
    """Lag of ``pred`` behind ``ref`` in frames (see the module docstring)."""
    return lag_from_curve(lag_curve(pred, ref, valid, max_lag))


def root_relative(joints: np.ndarray, root: int = 0) -> np.ndarray:
    """``T x J x 3`` joints minus their root joint (the pose without the translation)."""
    j = np.asarray(joints, np.float64)
    return j - j[:, root:root + 1]
