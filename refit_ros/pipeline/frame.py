"""Frame -> bodies: detect, crop, fit (cold or warm per track), pose the body, package.

No ROS here: the node, ``refit-ros video`` and the evaluations all call
:meth:`RefitPipeline.process`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Sequence

import numpy as np
import torch

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.intrinsics import Intrinsics
from refit_ros.geometry.rotation import rot6d_to_rotmat, rotmat_to_axis_angle
from refit_ros.geometry.crop import square_boxes
from refit_ros.models.refit.warm import normalise_pose6d
from refit_ros.pipeline.models import FittingModel, concat, select
from refit_ros.pipeline.metric_scale import MetricScale
from refit_ros.pipeline.types import Body, FrameResult
from refit_ros.tracking import OneEuroFilter, Track, Tracker
from refit_ros.tracking.label_swaps import LabelSwapGuard, mirror_labels

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrackFit:
    """What the pipeline remembers of one tracked person's fit (keyed by track id).

    Attributes
    ----------
    state : Any
        The model's recurrent state after this person's last frame (warm start), or None.
    camera : Any
        The crop camera ``state`` is expressed in (its box and intrinsics).
    betas_sum, betas_weight
        Running, confidence-weighted accumulation of the shape (it does not change over time).
    mean_betas : ndarray or None
        The accumulated shape (see :meth:`add_betas`).
    poor_fits : int
        Consecutive warm frames whose fit missed the detections (``tracking.warm_max_error``).
    warm_ok : bool
        Whether this frame's fit continues the last one: the track is continuous
        (:attr:`refit_ros.tracking.Track.continuous`) and has a last fit, and the fit check
        did not replace the warm fit by a cold one.
    """

    state: Any = None
    camera: Any = None
    betas_sum: np.ndarray | None = None
    betas_weight: float = 0.0
    mean_betas: np.ndarray | None = None
    poor_fits: int = 0
    warm_ok: bool = False

    def add_betas(self, betas: np.ndarray, weight: float) -> np.ndarray:
        """Accumulate this frame's shape; returns the track's current mean shape."""
        betas = np.asarray(betas, dtype=np.float64)
        if self.betas_sum is None:
            self.betas_sum, self.betas_weight = np.zeros_like(betas), 0.0
        self.betas_sum = self.betas_sum + weight * betas
        self.betas_weight += weight
        return (self.betas_sum / max(self.betas_weight, 1e-9)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """Pipeline knobs (from config: ``model.iterations``, ``tracking.*``, ``detector.*``).

    ``warm_start=False`` fits every person cold every frame but keeps the tracker (ids,
    shape accumulation, One-Euro continuity): the comparison baseline.
    """

    iterations: int = 5
    warm_start: bool = True
    warm_iterations: int = 2
    warm_hidden: str = "keep"
    warm_max_error: float = 0.0
    warm_check_frames: int = 2
    max_people: int = 4
    min_score: float = 0.5
    accumulate_shape: bool = True
    label_swap_guard: bool = True
    cold_blend: float = 0.0
    one_euro: bool = False
    one_euro_min_cutoff: float = 1.0
    one_euro_beta: float = 0.0

    @classmethod
    def from_config(cls, cfg) -> PipelineSettings:
        """The settings of a :class:`~refit_ros.config.Config`: ``model.iterations``,
        ``detector.max_people`` / ``min_score`` and the rest from ``tracking``."""
        keys = {f.name for f in dataclasses.fields(cls)}
        values = {k: getattr(cfg.tracking, k) for k in keys if hasattr(cfg.tracking, k)}
        return cls(**values, iterations=cfg.model.iterations,
                   max_people=cfg.detector.max_people, min_score=cfg.detector.min_score)


class ImageError(ValueError):
    """The input image cannot be processed (wrong shape/dtype, empty)."""


def check_image(image_rgb: np.ndarray) -> np.ndarray:
    """Validate an ``H x W x 3`` uint8 RGB image (clear message otherwise)."""
    if not isinstance(image_rgb, np.ndarray):
        raise ImageError(f"image must be a numpy array, got {type(image_rgb).__name__}")
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ImageError(f"image must be H x W x 3 RGB, got shape {image_rgb.shape}")
    if image_rgb.shape[0] == 0 or image_rgb.shape[1] == 0:
        raise ImageError(f"image is empty ({image_rgb.shape[1]}x{image_rgb.shape[0]})")
    if image_rgb.dtype != np.uint8:
        raise ImageError(f"image must be uint8, got {image_rgb.dtype}")
    return np.ascontiguousarray(image_rgb)


class RefitPipeline:
    """Detector + recurrent fitter + body model (+ tracker with warm starts).

    Parameters
    ----------
    detector
        Object with ``detect(image_rgb) -> list[Detection]`` (``bbox``, ``score``,
        ``keypoints2d``).
    model : FittingModel
    settings : PipelineSettings
    tracker : Tracker, optional
        ``None`` = every person fitted cold every frame, ``track_id`` = -1.
    device : str
    """

    def __init__(self, detector, model: FittingModel, settings: PipelineSettings,
                 tracker: Tracker | None = None, device: str = "cpu",
                 metric_scale: MetricScale | None = None) -> None:
        self.detector = detector
        self.model = model
        self.settings = settings
        self.tracker = tracker
        self.device = torch.device(device)
        self.faces = model.body.faces.detach().cpu().numpy().astype(np.int32)
        self._filters: dict[int, OneEuroFilter] = {}
        #: Per track id: what the pipeline remembers of that person's fit (warm starts).
        self.fits: dict[int, TrackFit] = {}
        self._label_swaps = LabelSwapGuard()
        self._fallback_logged = False
        # body size from the detector's metric landmarks (scale.*; None = off)
        self.metric_scale = metric_scale if metric_scale is not None and metric_scale.available else None

    @property
    def body_model_name(self) -> str:
        return self.model.body.name

    def reset(self) -> None:
        if self.tracker is not None:
            self.tracker.reset()
        self._filters.clear()
        self.fits.clear()
        self._label_swaps.reset()
        if self.metric_scale is not None:
            self.metric_scale.reset()

    # ------------------------------------------------------------------ main entry
    def process(self, image_rgb: np.ndarray, intrinsics: Intrinsics | None = None,
                stamp: float = 0.0) -> FrameResult:
        """Recover the bodies in one ``H x W x 3`` uint8 RGB image (see FramePipeline)."""
        t_start = time.perf_counter()
        image_rgb = check_image(image_rgb)
        h, w = image_rgb.shape[:2]
        if intrinsics is None:
            intrinsics = Intrinsics.fallback(w, h)
            if not self._fallback_logged:
                log.info("no camera intrinsics given: using the fallback f = sqrt(W^2 + H^2) "
                         "= %.1f px, principal point at the image centre", intrinsics.fx)
                self._fallback_logged = True
        timings: dict[str, float] = {}

        t0 = time.perf_counter()
        dets = [d for d in self.detector.detect(image_rgb, stamp) if d.score >= self.settings.min_score]
        dets = sorted(dets, key=lambda d: -d.score)[: self.settings.max_people]
        timings["detect"] = _ms(t0)

        tracks: list[Track | None] = [None] * len(dets)
        if self.tracker is not None:
            tracks = self.tracker.update(
                np.array([d.bbox for d in dets]).reshape(-1, 4), [d.score for d in dets],
                [getattr(d, "keypoints2d", None) for d in dets])
        if self.tracker is not None and self.settings.label_swap_guard:
            dets = self._undo_label_swaps(dets, tracks, stamp)
        fits = self._track_fits(tracks)
        if not dets:
            timings["total"] = _ms(t_start)
            return FrameResult([], self.faces, intrinsics, timings)

        center, side = square_boxes(np.array([d.bbox for d in dets]))
        f32 = dict(dtype=torch.float32, device=self.device)
        camera = CropCamera.from_intrinsics(torch.as_tensor(center, **f32),
                                            torch.as_tensor(side, **f32), [intrinsics] * len(dets))
        with torch.inference_mode():
            t0 = time.perf_counter()
            features = self.model.encode(image_rgb, dets, camera)
            timings["encode"] = _ms(t0)
            t0 = time.perf_counter()
            state = self._fit(features, camera, fits)
            timings["iterate"] = _ms(t0)
            t0 = time.perf_counter()
            bodies = self._bodies(state, camera, dets, tracks, fits, stamp)
            timings["body"] = _ms(t0)
        timings["total"] = _ms(t_start)
        return FrameResult(bodies, self.faces, intrinsics, timings)

    # ------------------------------------------------------------------ stages
    def _track_fits(self, tracks: Sequence[Track | None]) -> list[TrackFit | None]:
        """This frame's :class:`TrackFit` per detection (None: untracked); the fits of
        tracks the tracker dropped are forgotten."""
        if self.tracker is None:
            return [None] * len(tracks)
        live = {t.track_id for t in self.tracker.tracks}
        for k in [k for k in self.fits if k not in live]:
            del self.fits[k]
        out: list[TrackFit | None] = []
        for t in tracks:
            if t is None:
                out.append(None)
                continue
            fit = self.fits.setdefault(t.track_id, TrackFit())
            fit.warm_ok = t.continuous and fit.state is not None
            out.append(fit)
        return out

    def _undo_label_swaps(self, dets: list, tracks: Sequence[Track | None], stamp: float) -> list:
        """Swap back the left/right labels of tracked people the detector mirrored
        (:class:`refit_ros.tracking.label_swaps.LabelSwapGuard`)."""
        out = list(dets)
        for i, (d, t) in enumerate(zip(dets, tracks)):
            kp = getattr(d, "keypoints2d", None)
            if t is None or kp is None:
                continue
            if self._label_swaps.check(t.track_id, kp, stamp):
                log.debug("track %d: left/right landmark labels swapped back", t.track_id)
                out[i] = dataclasses.replace(d, keypoints2d=mirror_labels(kp),
                                             keypoints3d=mirror_labels(getattr(d, "keypoints3d", None)))
        self._label_swaps.forget({t.track_id for t in self.tracker.tracks})
        return out

    def _fit(self, features: Any, camera: CropCamera, fits: Sequence[TrackFit | None]) -> Any:
        """Cold start for new/lost/jumped people, warm start for continuing tracks."""
        n = len(fits)
        warm = [i for i, f in enumerate(fits)
                if self.settings.warm_start and f is not None and f.warm_ok]
        cold = [i for i in range(n) if i not in warm]
        parts: list[tuple[list[int], Any]] = []
        if cold:
            parts.append((cold, self._cold(features, camera, cold)))
        if warm and self.settings.warm_iterations >= 0:
            cam_w, feat_w = select(camera, warm), select(features, warm)
            prev = concat([fits[i].state for i in warm])
            old_cam = concat([fits[i].camera for i in warm])
            betas = None
            if self.settings.accumulate_shape:
                mean = [fits[i].mean_betas for i in warm]
                if all(m is not None for m in mean):
                    betas = torch.as_tensor(np.stack(mean), dtype=prev.betas.dtype,
                                            device=prev.betas.device)
            s = self.model.warm_start(prev, old_cam, cam_w, betas,
                                      reset_hidden=self.settings.warm_hidden == "reset")
            for _ in range(self.settings.warm_iterations):
                s = self.model.step(s, feat_w, cam_w)
            cold_w = None
            if self.settings.cold_blend > 0:
                cold_w = self._cold(features, camera, warm)
                s = self._blend_cold(s, cold_w)
            parts.append((warm, self._check_warm(s, features, camera, warm, fits, cold_w)))
        order = [i for idx, _ in parts for i in idx]
        merged = concat([s for _, s in parts]) if len(parts) > 1 else parts[0][1]
        inverse = np.argsort(order)
        return select(merged, inverse.tolist()) if order != list(range(n)) else merged

    def _blend_cold(self, state: Any, cold: Any) -> Any:
        """Mix this frame's cold fit into the warm fits (``tracking.cold_blend``).

        A complementary filter: the warm fit is smooth but keeps the 3D solution it started
        from (on real footage it drifts from the one a cold fit reads off the evidence), a
        cold fit is unbiased but jittery. The result, ``(1 - b) warm + b cold`` on the 6D pose
        (re-orthonormalised) and the crop camera, is also the state the next frame starts
        from; the accumulated shape and the warm hidden states are kept.
        """
        b = self.settings.cold_blend
        return dataclasses.replace(
            state, pose6d=normalise_pose6d((1 - b) * state.pose6d + b * cold.pose6d),
            cam=(1 - b) * state.cam + b * cold.cam,
            **{k: None for k in ("joints", "vertices") if getattr(state, k, None) is not None})

    def _cold(self, features: Any, camera: CropCamera, index: Sequence[int]) -> Any:
        """Fit people ``index`` from the mean body (``iterations`` steps)."""
        cam_c, feat_c = select(camera, index), select(features, index)
        s = self.model.init_state(feat_c, cam_c)
        for _ in range(self.settings.iterations):
            s = self.model.step(s, feat_c, cam_c)
        return s

    def _check_warm(self, state: Any, features: Any, camera: CropCamera, warm: list[int],
                    fits: Sequence[TrackFit | None], cold_w: Any = None) -> Any:
        """Refit cold the warm-started people whose fit no longer explains their evidence.

        A warm start that went wrong (a mirrored body after a left/right swap in the
        detections, a drift, a lag behind fast motion) shows as a large distance between
        the fitted landmark points and the detected ones (``fit_error`` of the model, as a
        fraction of the crop side). After ``tracking.warm_check_frames`` consecutive warm
        frames above ``tracking.warm_max_error`` the person is also fitted cold and the fit
        that explains the detections better is kept; a kept cold fit counts as a cold frame
        (``warm_ok`` False). Waiting for a second frame leaves one-frame detector glitches
        (a swap, an outlier) to the steadier warm fit instead of following them.
        """
        limit = self.settings.warm_max_error
        # A model without the attribute (a test double) checks when it has a fit_error.
        if limit <= 0 or not getattr(self.model, "has_fit_check",
                                     hasattr(self.model, "fit_error")):
            return state
        fit_error = self.model.fit_error
        err = fit_error(state, select(features, warm), select(camera, warm))
        bad = []
        for k, i in enumerate(warm):
            f = fits[i]
            f.poor_fits = f.poor_fits + 1 if float(err[k]) > limit else 0
            if f.poor_fits >= self.settings.warm_check_frames:
                bad.append(k)
        if not bad:
            return state
        index = [warm[k] for k in bad]
        # this frame's cold fits of the warm people, when cold_blend already made them
        cold = self._cold(features, camera, index) if cold_w is None else select(cold_w, bad)
        cold_err = fit_error(cold, select(features, index), select(camera, index))
        take = {k: j for j, k in enumerate(bad) if float(cold_err[j]) < float(err[k])}
        for k in bad:  # checked: wait another warm_check_frames before refitting again
            fits[warm[k]].poor_fits = 0
        if not take:
            return state
        for k in take:
            fits[warm[k]].warm_ok = False
        rows = [len(warm) + take[k] if k in take else k for k in range(len(warm))]
        return select(concat([state, cold]), rows)

    def _bodies(self, state: Any, camera: CropCamera, dets: Sequence[Any],
                tracks: Sequence[Track | None], fits: Sequence[TrackFit | None],
                stamp: float) -> list[Body]:
        pose6d, betas, cam = state.pose6d, state.betas, state.cam
        transl = camera.translation(cam)
        for i, f in enumerate(fits):
            if f is None:
                continue
            f.state = select(state, [i])
            f.camera = select(camera, [i])
            if self.settings.accumulate_shape:
                f.mean_betas = f.add_betas(betas[i].cpu().numpy(), float(dets[i].score))
        if self.settings.one_euro:
            pose6d, betas, transl = self._filter(pose6d, betas, transl, tracks, fits, stamp)
        n = pose6d.shape[0]
        rotmat = rot6d_to_rotmat(pose6d).reshape(n, 24, 3, 3)
        if self.metric_scale is not None:
            ids = [None if t is None else t.track_id for t in tracks]
            betas, transl = self.metric_scale.apply(rotmat, betas, transl, dets, ids)
            if self.tracker is not None:
                self.metric_scale.forget({t.track_id for t in self.tracker.tracks})
        out = self.model.body(rotmat, betas)
        verts = (out.vertices + transl[:, None]).cpu().numpy()
        joints = (out.joints + transl[:, None]).cpu().numpy()
        aa = rotmat_to_axis_angle(rotmat.reshape(-1, 3, 3)).reshape(n, 72).cpu().numpy()
        betas_np, transl_np = betas.cpu().numpy(), transl.cpu().numpy()
        bodies = []
        for i, d in enumerate(dets):
            kp = getattr(d, "keypoints2d", None)
            bodies.append(Body(
                track_id=-1 if tracks[i] is None else tracks[i].track_id,
                body_model=self.model.body.name,
                # the gender of the mesh's body model (a genderless body is "neutral")
                gender=str(getattr(self.model.body, "gender", "neutral")),
                pose=aa[i].astype(np.float32), betas=_pad(betas_np[i], 10),
                transl=transl_np[i].astype(np.float32), joints=joints[i].astype(np.float32),
                vertices=verts[i].astype(np.float32),
                bbox=np.asarray(d.bbox, dtype=np.float32), score=float(d.score),
                keypoints2d=None if kp is None else np.asarray(kp, dtype=np.float32)))
        return bodies

    def _filter(self, pose6d, betas, transl, tracks, fits, stamp):
        """One-Euro baseline on (6D pose, shape, translation) per track."""
        p = pose6d.clone()
        b = betas.clone()
        t_ = transl.clone()
        live = set()
        for i, t in enumerate(tracks):
            if t is None:
                continue
            live.add(t.track_id)
            f = self._filters.get(t.track_id)
            if f is None or not fits[i].warm_ok:
                f = OneEuroFilter(self.settings.one_euro_min_cutoff, self.settings.one_euro_beta)
                self._filters[t.track_id] = f
            x = torch.cat([pose6d[i], betas[i], transl[i]]).cpu().numpy()
            y = torch.as_tensor(f(x, stamp), dtype=pose6d.dtype, device=pose6d.device)
            p[i], b[i], t_[i] = y[:144], y[144:144 + betas.shape[1]], y[-3:]
        for k in list(self._filters):
            if k not in live and (self.tracker is None or all(t.track_id != k for t in self.tracker.tracks)):
                del self._filters[k]
        return normalise_pose6d(p), b, t_   # filtered 6D vectors -> proper rotations


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, x.shape[0])] = x[:n]
    return out


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
