"""The detector interface: one RGB image in, a list of people (box, score, keypoints) out."""

from __future__ import annotations

import abc
import dataclasses

import numpy as np

#: The 33 BlazePose landmarks, in the model's output order.
LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
#: name -> index into ``Detection.keypoints2d`` / ``keypoints3d``
LANDMARK_INDEX: dict[str, int] = {name: i for i, name in enumerate(LANDMARK_NAMES)}
NUM_LANDMARKS = len(LANDMARK_NAMES)


class ImageFormatError(ValueError):
    """The image given to a detector is not something it can convert to H x W x 3 uint8 RGB."""


@dataclasses.dataclass
class Detection:
    """One person in one image.

    "left"/"right" are the person's own sides (a person facing the camera has the left
    shoulder on the image's right).

    Attributes
    ----------
    bbox : ndarray, (4,) float32
        ``x_min, y_min, x_max, y_max`` in image pixels, inside the image.
    score : float
        Person confidence in [0, 1] (each detector documents what it measures).
    keypoints2d : ndarray, (33, 3) float32 or None
        BlazePose landmarks in :data:`LANDMARK_NAMES` order: ``x, y`` in image pixels (may lie
        outside the image for parts the model places out of view) and a confidence in [0, 1].
        ``None`` for box-only detectors.
    keypoints3d : ndarray, (33, 3) float32 or None
        Metric 3D landmarks in metres, origin at the centre between the hips (BlazePose
        "world landmarks"). Axes roughly those of the camera (x right, y down, z away from
        the camera), as estimated by the model from the person's crop: no translation and
        only an approximate camera rotation. ``None`` for box-only detectors.
    """

    bbox: np.ndarray
    score: float
    keypoints2d: np.ndarray | None = None
    keypoints3d: np.ndarray | None = None

    landmark_names = LANDMARK_NAMES

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.bbox[3] - self.bbox[1])


class Detector(abc.ABC):
    """Finds people in ``H x W x 3`` uint8 RGB images.

    A detector may keep state between calls (temporal smoothing, tracking); :meth:`reset`
    forgets it, e.g. after a seek or when a new video starts. Use as a context manager or
    call :meth:`close` to free native resources deterministically.
    """

    #: True when detections carry ``keypoints2d``/``keypoints3d``.
    has_keypoints: bool = False

    @abc.abstractmethod
    def detect(self, image_rgb: np.ndarray, timestamp_s: float | None = None) -> list[Detection]:
        """Detect people.

        Parameters
        ----------
        image_rgb : ndarray, (H, W, 3) uint8
            RGB image. Detectors also accept ``H x W`` / ``H x W x 1`` grey and ``H x W x 4``
            RGBA (alpha dropped) uint8 images, via :func:`as_rgb_uint8`.
        timestamp_s : float, optional
            Capture time in seconds, for detectors that smooth over time (must increase
            within one sequence); ``None`` = the detector's own clock.

        Returns
        -------
        list of Detection
            Sorted by decreasing score, at most the configured number of people.
        """

    def reset(self) -> None:
        """Forget temporal state (no-op for per-frame detectors)."""

    def close(self) -> None:
        """Release native resources (no-op by default)."""

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Convert grey / RGB / RGBA uint8 images to a C-contiguous ``H x W x 3`` uint8 RGB array.

    Parameters
    ----------
    image : ndarray, (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8
        Grey is replicated to three channels; the alpha channel of RGBA is dropped.

    Raises
    ------
    ImageFormatError
        Not a NumPy array, not uint8 (floats are ambiguous: [0, 1] or [0, 255]?), empty,
        or a channel count other than 1, 3 or 4.
    """
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageFormatError(
            f"image must be uint8 (0..255), got {image.dtype}; convert it first, e.g. "
            "(np.clip(img, 0, 1) * 255).astype(np.uint8) for a float image in [0, 1]"
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageFormatError(
            f"image must be H x W (grey), H x W x 1, H x W x 3 (RGB) or H x W x 4 (RGBA); "
            f"got shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageFormatError(f"image is empty (shape {image.shape})")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``N x 4`` and ``M x 4`` boxes (``x_min, y_min, x_max, y_max``) -> ``N x M``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
