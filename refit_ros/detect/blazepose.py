"""BlazePose (MediaPipe Tasks ``PoseLandmarker``): people, 33 image landmarks, 33 metric landmarks.

Runs the ``.task`` bundle shipped in ``refit_ros/detect/data/`` (rebuilt from the mediapipe
0.10.21 wheel by ``scripts/build_pose_bundle.py``; provenance in ``data/NOTICE.md``), fully
offline: the model is never downloaded.

Two running modes:

* ``video=True`` (MediaPipe VIDEO mode): people found in one frame are tracked into the next
  (the person detector runs only when fewer than ``max_people`` are tracked) and landmarks are
  smoothed over time. Needs increasing timestamps: see :meth:`BlazePoseDetector.detect`.
* ``video=False`` (IMAGE mode): every image on its own (photos, unordered frames).

``PoseLandmarker`` returns no box and no per-person score, so both are derived from the
landmarks (see :meth:`BlazePoseDetector.detect`). Wide (e.g. 16:9) or tall images are split
into overlapping square tiles, one landmarker each, because BlazePose's person detector
sees a 224 x 224 letterbox and misses people who are small in it; poses found twice (two
tiles, or MediaPipe's tracker) are merged.
"""

from __future__ import annotations

import atexit
import logging
import time
import weakref
import zipfile
from pathlib import Path

import numpy as np

from refit_ros.detect.base import NUM_LANDMARKS, Detection, Detector, as_rgb_uint8

log = logging.getLogger(__name__)

#: The bundle shipped with refit_ros.
DEFAULT_MODEL = Path(__file__).resolve().parent / "data" / "pose_landmarker_full.task"
REBUILD_COMMAND = "python3.11 scripts/build_pose_bundle.py"

#: A timestamp this far (ms) before the previous one starts a new sequence (video looped,
#: bag replayed) instead of being nudged forward.
_RESTART_JUMP_MS = 1000


class BlazePoseDetector(Detector):
    """MediaPipe BlazePose person + landmark detector (CPU).

    Parameters
    ----------
    model_path : str or Path, optional
        ``.task`` bundle; default :data:`DEFAULT_MODEL`.
    max_people : int
        Most people returned per image (``detector.max_people``).
    min_score : float
        Minimum person-detection, pose-presence and tracking confidence handed to MediaPipe
        (``detector.min_score``).
    video : bool
        VIDEO running mode (tracking + temporal smoothing) instead of IMAGE mode.
    box_padding : float
        The landmark box grows by this fraction of its width/height on each side (landmarks
        stop at the eyes and the wrists/feet), then is clipped to the image.
    duplicate_distance : float
        Two poses whose landmarks lie within this fraction of the pose's size of each other
        (median over landmarks) are one person; only the higher-scoring one is kept.
        (VIDEO mode occasionally reports a tracked person and a fresh detection of them.)
    tile_aspect : float
        Images wider (or taller) than this aspect ratio are split into ``ceil(aspect)``
        overlapping square tiles, each run through its own landmarker, and the poses merged
        (duplicates across tiles dropped as below). The person detector sees a 224 x 224
        letterbox of its input, so in a 16:9 frame a standing person shrinks to ~1/8 of that
        and is often missed; a square tile is 1.8x larger. Costs one landmarker run per tile.
        ``0`` disables tiling.
    complete_cut : bool
        Re-detect a person whose landmarks run past an inner tile edge (a person taller
        than the tiles' overlap) on a square crop around their whole extent
        (:meth:`_complete_cut_poses`); one extra landmarker run per such person.
    complete_padding : float
        That crop's margin on each side, as a fraction of the landmarks' extent.
    complete_size : int
        That crop is cut at most this many pixels wide (MediaPipe downsizes it anyway).
    recover_frames : int
        VIDEO mode: a person detected in the previous frame but missed now is looked for
        again on a crop around their last landmarks, for at most this many frames in a row
        (:meth:`_recover_lost`); 0 = off.
    recover_score : float
        A recovered person's score is scaled by this (each frame it is recovered again).
    duplicate_overlap : float
        Two poses whose boxes of confidently visible landmarks overlap by more than this
        fraction of the smaller box are one person (VIDEO mode also produces partial copies, e.g. a person's legs alone, and
        poses spanning two people); only the one with the higher median landmark confidence
        is kept. People truly standing one behind the other that much are then reported
        once.
    """

    has_keypoints = True

    def __init__(
        self,
        model_path: str | Path | None = None,
        max_people: int = 4,
        min_score: float = 0.5,
        video: bool = True,
        box_padding: float = 0.1,
        duplicate_distance: float = 0.1,
        duplicate_overlap: float = 0.8,
        tile_aspect: float = 1.5,
        complete_cut: bool = True,
        complete_padding: float = 0.15,
        complete_size: int = 512,
        recover_frames: int = 10,
        recover_score: float = 0.9,
    ) -> None:
        self._landmarkers: list = []
        self._refiner = None
        self._previous: list[tuple[Detection, int]] = []
        self.recover_frames = int(recover_frames)
        self.recover_score = float(recover_score)
        self.complete_cut = bool(complete_cut)
        self.complete_padding = float(complete_padding)
        self.complete_size = int(complete_size)
        self._closed = False
        self.model_path = Path(model_path) if model_path else DEFAULT_MODEL
        if max_people < 1:
            raise ValueError(f"max_people={max_people} must be >= 1")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score={min_score} must be in [0, 1]")
        self.max_people = int(max_people)
        self.min_score = float(min_score)
        self.video = bool(video)
        self.box_padding = float(box_padding)
        self.duplicate_distance = float(duplicate_distance)
        self.duplicate_overlap = float(duplicate_overlap)
        self.tile_aspect = float(tile_aspect)
        if self.tile_aspect and self.tile_aspect < 1.0:
            raise ValueError(f"tile_aspect={tile_aspect} must be 0 (off) or >= 1")
        self._check_model_file()
        self._last_ts_ms: int | None = None
        self._clock_origin = time.monotonic()
        self._landmarkers.append(self._create())  # fail early on a bad bundle
        _LIVE.add(self)

    # -- construction ------------------------------------------------------------------
    def _check_model_file(self) -> None:
        path = self.model_path
        if not path.is_file():
            raise FileNotFoundError(
                f"BlazePose model bundle not found: {path}. It ships with refit_ros "
                f"(refit_ros/detect/data/pose_landmarker_full.task); rebuild it from the "
                f"mediapipe 0.10.21 wheel with `{REBUILD_COMMAND}` (see scripts/build_pose_bundle.py "
                f"and refit_ros/detect/data/NOTICE.md)."
            )
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"{path} is not a MediaPipe .task bundle (a zip file; e.g. a Git LFS pointer or "
                f"a truncated copy). Rebuild it with `{REBUILD_COMMAND}`."
            )

    def _create(self, video: bool | None = None):
        from mediapipe.tasks.python import BaseOptions, vision

        video = self.video if video is None else video
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_poses=self.max_people,
            min_pose_detection_confidence=self.min_score,
            min_pose_presence_confidence=self.min_score,
            min_tracking_confidence=self.min_score,
            output_segmentation_masks=False,
        )
        try:
            landmarker = vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise RuntimeError(
                f"MediaPipe could not load {self.model_path}: {exc}. Rebuild the bundle with "
                f"`{REBUILD_COMMAND}`."
            ) from exc
        log.debug("BlazePose %s mode, max_people=%d, min_score=%.2f, model %s",
                  "VIDEO" if video else "IMAGE", self.max_people, self.min_score,
                  self.model_path)
        return landmarker

    # -- Detector API ------------------------------------------------------------------
    def detect(self, image_rgb: np.ndarray, timestamp_s: float | None = None) -> list[Detection]:
        """Detect people and their landmarks.

        Parameters
        ----------
        image_rgb : ndarray, (H, W, 3) uint8
            RGB (grey and RGBA uint8 are converted, see :func:`as_rgb_uint8`).
        timestamp_s : float, optional
            VIDEO mode only: capture time in seconds (e.g. the frame's time in a video or the
            ROS header stamp), used for tracking and smoothing. ``None`` = a monotonic clock
            started with the detector (do not mix the two within one sequence).
            MediaPipe needs strictly increasing timestamps: a repeated or slightly earlier one
            is moved 1 ms past the previous; one more than 1 s earlier (a video that
            looped, a replayed bag) restarts tracking (:meth:`reset`).

        Returns
        -------
        list of Detection
            By decreasing score. ``keypoints2d[:, 2] = visibility * presence`` (MediaPipe's
            probabilities that the landmark is unoccluded and inside the image). ``score`` =
            mean presence of the best-present half (17) of the 33 landmarks: high when at
            least half the body is in view; MediaPipe's own pose-presence score, already
            thresholded at ``min_score``, is not exposed by its API. ``bbox`` = the
            landmarks' extent, padded by ``box_padding`` and clipped to the image (to the
            tile the pose was found in, when tiling).
        """
        import mediapipe as mp

        if self._closed:
            raise RuntimeError("BlazePoseDetector is closed")
        rgb = as_rgb_uint8(image_rgb)
        height, width = rgb.shape[:2]
        ts_ms = self._timestamp_ms(timestamp_s) if self.video else 0  # may reset: call first
        tiles = tile_boxes(width, height, self.tile_aspect)
        while len(self._landmarkers) < len(tiles):
            self._landmarkers.append(self._create())
        dets = []
        for landmarker, (x0, y0, tw, th) in zip(self._landmarkers, tiles):
            crop = rgb if (tw, th) == (width, height) else np.ascontiguousarray(
                rgb[y0:y0 + th, x0:x0 + tw])
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=crop)
            if self.video:
                result = landmarker.detect_for_video(image, ts_ms)
            else:
                result = landmarker.detect(image)
            for lms, world in zip(result.pose_landmarks, result.pose_world_landmarks):
                det = self._to_detection(lms, world, (x0, y0, tw, th), width, height)
                if det is not None:
                    dets.append((det, (x0, y0, tw, th)))
        if len(tiles) > 1 and self.complete_cut:
            dets = self._complete_cut_poses(rgb, dets)
        kept = self._drop_duplicates([d for d, _ in dets])
        if self.video and self.recover_frames > 0:
            kept = self._recover_lost(rgb, kept)
        return kept[: self.max_people]

    def reset(self) -> None:
        """Start a new sequence: forget tracked people and smoothing state (VIDEO mode)."""
        if self.video and not self._closed:
            for i, landmarker in enumerate(self._landmarkers):
                landmarker.close()
                self._landmarkers[i] = self._create()
        self._previous = []
        self._last_ts_ms = None

    def close(self) -> None:
        """Free the MediaPipe graphs (also done at garbage collection and interpreter exit)."""
        self._closed = True
        while self._landmarkers:
            self._landmarkers.pop().close()
        if self._refiner is not None:
            self._refiner.close()
            self._refiner = None
        _LIVE.discard(self)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to free
            pass

    # -- helpers -----------------------------------------------------------------------
    def _timestamp_ms(self, timestamp_s: float | None) -> int:
        if timestamp_s is None:
            ts = int(round((time.monotonic() - self._clock_origin) * 1000.0))
        else:
            ts = int(round(float(timestamp_s) * 1000.0))
        last = self._last_ts_ms
        if last is not None and ts <= last:
            if last - ts > _RESTART_JUMP_MS:
                log.info("timestamp went back %.3f s: restarting BlazePose tracking",
                         (last - ts) / 1000.0)
                self.reset()
            else:
                ts = last + 1
        self._last_ts_ms = ts
        return ts

    def _to_detection(self, landmarks, world_landmarks, tile: tuple[int, int, int, int],
                      width: int, height: int) -> Detection | None:
        raw = np.array(
            [(lm.x, lm.y, _prob(lm.visibility), _prob(lm.presence)) for lm in landmarks],
            dtype=np.float64,
        )
        if raw.shape != (NUM_LANDMARKS, 4):  # pragma: no cover - another model in the bundle
            raise RuntimeError(f"expected {NUM_LANDMARKS} BlazePose landmarks, got {raw.shape[0]}")
        x0, y0, tw, th = tile
        xy = raw[:, :2] * (tw, th) + (x0, y0)
        kp2d = np.concatenate([xy, (raw[:, 2] * raw[:, 3])[:, None]], axis=1).astype(np.float32)
        kp3d = np.array([(lm.x, lm.y, lm.z) for lm in world_landmarks], dtype=np.float32)
        if kp3d.shape != (NUM_LANDMARKS, 3):
            kp3d = None
        presence = np.sort(raw[:, 3])[::-1]
        score = float(np.mean(presence[: (NUM_LANDMARKS + 1) // 2]))
        # The box spans the landmarks inside the region the model saw and the confident ones
        # beyond it (a pose cut by a tile edge is completed by _complete_cut_poses); the
        # unconfident guesses past the region's edge are left out; clipped to the image.
        seen = np.all((xy >= (x0, y0)) & (xy <= (x0 + tw, y0 + th)), axis=1) | (kp2d[:, 2] >= 0.5)
        pts = xy[seen] if seen.sum() >= 2 else xy
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = (hi - lo) * self.box_padding
        lo = np.clip(lo - pad, 0, (width, height))
        hi = np.clip(hi + pad, 0, (width, height))
        if np.any(hi - lo < 1.0):  # the whole pose lies outside the image
            return None
        bbox = np.array([lo[0], lo[1], hi[0], hi[1]], dtype=np.float32)
        return Detection(bbox=bbox, score=score, keypoints2d=kp2d, keypoints3d=kp3d)

    def _complete_cut_poses(self, rgb: np.ndarray,
                            found: list[tuple[Detection, tuple[int, int, int, int]]]
                            ) -> list[tuple[Detection, tuple[int, int, int, int]]]:
        """Re-detect people cut by a tile edge on a square crop around their whole extent.

        A person taller than the overlap of two tiles is seen in part by each tile: the
        landmarks outside a tile are the model's guesses (low presence), so the pose is
        poor, its score low and its box stops near the tile edge. For such a pose the
        landmarker runs again (IMAGE mode) on a square crop of the full image around the
        extent of all 33 landmarks, padded by ``complete_padding``, and its pose there
        replaces the cut one. Poses of the same person from two tiles are completed once.
        """
        height, width = rgb.shape[:2]
        out: list[tuple[Detection, tuple[int, int, int, int]]] = []
        done: list[Detection] = []
        for det, tile in sorted(found, key=lambda dt: -float(np.median(dt[0].keypoints2d[:, 2]))):
            if not _cut_by_tile(det, tile, width, height):
                out.append((det, tile))
                continue
            if any(_same_person(det, d, self.duplicate_distance * 2) for d in done):
                continue   # already completed from another tile
            better = self._redetect(rgb, det)
            if better is None:
                out.append((det, tile))
                continue
            done.append(better[0])
            out.append(better)
        return out

    def _recover_lost(self, rgb: np.ndarray, dets: list[Detection]) -> list[Detection]:
        """Look again for people of the previous frame that this frame's detection missed.

        MediaPipe's person detector misses people who overlap (one in front of the other)
        or are small in its letterboxed input, while its landmark model finds them when
        given a crop around them. So a person seen in the previous frame without a match
        now is re-detected on a square crop around their last landmarks
        (:meth:`_redetect`), for at most ``recover_frames`` frames in a row; a result that
        duplicates a detected person is dropped. Returns the detections plus the recovered
        ones (with ``score`` scaled by ``recover_score``), by decreasing score.
        """
        out = list(dets)
        ages: list[int] = [0] * len(dets)
        for prev, age in self._previous:
            if age >= self.recover_frames or len(out) >= self.max_people:
                continue
            if any(_same_person(d, prev, self.duplicate_distance * 3)
                   or _overlap_of_smaller(_visible_box(d), _visible_box(prev)) > self.duplicate_overlap
                   for d in out):
                continue   # still detected
            found = self._redetect(rgb, prev)
            if found is None:
                continue
            det = found[0]
            if any(_same_person(det, d, self.duplicate_distance)
                   or _overlap_of_smaller(_visible_box(det), _visible_box(d)) > self.duplicate_overlap
                   for d in out):
                continue   # the crop found someone already detected
            det.score *= self.recover_score
            out.append(det)
            ages.append(age + 1)
        self._previous = list(zip(out, ages))
        order = sorted(range(len(out)), key=lambda i: -out[i].score)
        return [out[i] for i in order]

    def _redetect(self, rgb: np.ndarray, det: Detection
                  ) -> tuple[Detection, tuple[int, int, int, int]] | None:
        import cv2
        import mediapipe as mp

        height, width = rgb.shape[:2]
        xy = det.keypoints2d[:, :2].astype(np.float64)
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        centre = 0.5 * (lo + hi)
        side = float(max(hi - lo)) * (1.0 + 2 * self.complete_padding)
        if side < 16:
            return None
        size = int(min(self.complete_size, round(side)))
        k = size / side
        x0, y0 = centre - side / 2
        m = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], dtype=np.float64)
        # Bilinear, not anti-aliased (warpAffine ignores INTER_AREA): MediaPipe resamples the
        # crop to its 224/256 px inputs itself.
        crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        if self._refiner is None:
            self._refiner = self._create(video=False)
        result = self._refiner.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                               data=np.ascontiguousarray(crop)))
        region = (x0, y0, side, side)
        best, best_d = None, np.inf
        conf = det.keypoints2d[:, 2] >= 0.5
        ref = xy[conf] if conf.sum() >= 3 else xy
        for lms, world in zip(result.pose_landmarks, result.pose_world_landmarks):
            cand = self._to_detection(lms, world, region, width, height)
            if cand is None:
                continue
            d = float(np.median(np.linalg.norm(cand.keypoints2d[:, :2][conf if conf.sum() >= 3 else slice(None)]
                                               - ref, axis=1)))
            if d < best_d:
                best, best_d = cand, d
        if best is None or best_d > 0.15 * side:
            return None
        return best, (int(round(x0)), int(round(y0)), int(round(side)), int(round(side)))

    def _drop_duplicates(self, dets: list[Detection]) -> list[Detection]:
        """Keep one pose per person (see ``duplicate_distance`` / ``duplicate_overlap``).

        Candidates are visited by decreasing median landmark confidence, so of two
        duplicates the better-supported pose survives (the landmark-presence ``score``
        saturates near 1 and cannot tell them apart).
        """
        order = sorted(dets, key=lambda d: float(np.median(d.keypoints2d[:, 2])), reverse=True)
        kept: list[Detection] = []
        for det in order:
            xy = det.keypoints2d[:, :2]
            size = float(np.linalg.norm(xy.max(axis=0) - xy.min(axis=0)))
            for k in kept:
                near = np.median(np.linalg.norm(xy - k.keypoints2d[:, :2], axis=1))
                if near < self.duplicate_distance * max(size, 1.0):
                    break
                if _overlap_of_smaller(_visible_box(det), _visible_box(k)) > self.duplicate_overlap:
                    break
            else:
                kept.append(det)
                continue
            log.debug("dropped a duplicate BlazePose pose (box %s)", det.bbox.round())
        kept.sort(key=lambda d: d.score, reverse=True)
        return kept


def _cut_by_tile(det: Detection, tile: tuple[int, int, int, int], width: int, height: int,
                 margin: float = 0.01) -> bool:
    """Whether the pose's landmarks reach past an edge of its tile that is inside the image."""
    x0, y0, tw, th = tile
    xy = det.keypoints2d[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    m = margin * max(tw, th)
    return bool((x0 > 0 and lo[0] < x0 - m) or (y0 > 0 and lo[1] < y0 - m)
                or (x0 + tw < width and hi[0] > x0 + tw + m)
                or (y0 + th < height and hi[1] > y0 + th + m))


def _same_person(a: Detection, b: Detection, frac: float) -> bool:
    """``a``'s confident landmarks lie within ``frac`` of ``b``'s size of ``b``'s (median)."""
    conf = a.keypoints2d[:, 2] >= 0.5
    if conf.sum() < 3:
        conf = np.ones(len(conf), dtype=bool)
    xy = b.keypoints2d[:, :2]
    size = float(np.linalg.norm(xy.max(axis=0) - xy.min(axis=0)))
    d = np.linalg.norm(a.keypoints2d[conf, :2] - xy[conf], axis=1)
    return bool(np.median(d) < frac * max(size, 1.0))


def _visible_box(det: Detection, min_conf: float = 0.5) -> np.ndarray:
    """Extent of the confidently visible landmarks (all landmarks if fewer than 3 are).

    Used to compare poses: ``bbox`` also spans guessed, out-of-view parts (e.g. legs below
    a tile or behind another person), which would make unrelated people look nested.
    """
    kp = det.keypoints2d
    pts = kp[kp[:, 2] >= min_conf, :2]
    if len(pts) < 3:
        return det.bbox
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area / area of the smaller of two ``x_min, y_min, x_max, y_max`` boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / max(smaller, 1e-9))


def tile_boxes(width: int, height: int, tile_aspect: float) -> list[tuple[int, int, int, int]]:
    """Square tiles ``(x0, y0, w, h)`` covering a wide or tall image, or the whole image.

    An image whose long side exceeds ``tile_aspect`` x its short side (``tile_aspect > 0``)
    is covered by ``ceil(long / short)`` evenly spaced, overlapping squares of the short side.
    """
    long_side, short_side = max(width, height), min(width, height)
    if tile_aspect <= 0 or long_side <= tile_aspect * short_side:
        return [(0, 0, width, height)]
    n = int(np.ceil(long_side / short_side))
    starts = [int(round(k * (long_side - short_side) / (n - 1))) for k in range(n)]
    if width >= height:
        return [(s, 0, short_side, short_side) for s in starts]
    return [(0, s, short_side, short_side) for s in starts]


def _close_all() -> None:
    """Close live detectors before interpreter teardown (MediaPipe's own finaliser fails then)."""
    for det in list(_LIVE):
        try:
            det.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


_LIVE: "weakref.WeakSet[BlazePoseDetector]" = weakref.WeakSet()
atexit.register(_close_all)


def _prob(value: float | None) -> float:
    """MediaPipe leaves visibility/presence unset (None) for models without them: treat as 1."""
    return 1.0 if value is None else float(value)
