"""Person detectors: BlazePose (people + 33 landmarks, default) or a user's ONNX person model.

``build_detector(cfg)`` picks one by ``detector.name``; both implement :class:`Detector`.
"""

from __future__ import annotations

from refit_ros.detect.base import (
    LANDMARK_INDEX,
    LANDMARK_NAMES,
    NUM_LANDMARKS,
    Detection,
    Detector,
    ImageFormatError,
    as_rgb_uint8,
)

__all__ = [
    "LANDMARK_INDEX",
    "LANDMARK_NAMES",
    "NUM_LANDMARKS",
    "Detection",
    "Detector",
    "ImageFormatError",
    "as_rgb_uint8",
    "build_detector",
]


def build_detector(cfg, *, video: bool = True) -> Detector:
    """The detector named by ``cfg.detector.name``.

    Parameters
    ----------
    cfg : refit_ros.config.Config
        Reads ``detector.name``, ``detector.max_people``, ``detector.min_score``,
        ``detector.onnx_model`` and ``model.device`` (``cuda*`` -> ONNX Runtime's CUDA
        provider first, when installed).
    video : bool
        BlazePose: VIDEO running mode (tracking + smoothing across consecutive frames);
        ``False`` for independent images.
    """
    det = cfg.detector
    if det.name == "blazepose":
        from refit_ros.detect.blazepose import BlazePoseDetector

        return BlazePoseDetector(max_people=det.max_people, min_score=det.min_score, video=video)
    if det.name == "onnx":
        from refit_ros.paths import resolve_path
        from refit_ros.detect.onnx_person import OnnxPersonDetector

        providers = ["CPUExecutionProvider"]
        if cfg.model.device.startswith("cuda"):
            import onnxruntime as ort

            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
        path = resolve_path(det.onnx_model) if det.onnx_model else ""
        return OnnxPersonDetector(path, max_people=det.max_people, min_score=det.min_score,
                                  providers=providers)
    raise ValueError(f"detector.name={det.name!r}: unknown detector")  # config validates first
