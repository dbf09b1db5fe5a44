"""Frame -> bodies pipeline (no ROS): ``build_pipeline(cfg).process(image_rgb, intrinsics)``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from refit_ros.config import Config, resolve_path
from refit_ros.pipeline.frame import ImageError, PipelineSettings, RefitPipeline
from refit_ros.pipeline.types import Body, FramePipeline, FrameResult

log = logging.getLogger(__name__)

__all__ = ["Body", "FramePipeline", "FrameResult", "ImageError", "ModelFileError",
           "RefitPipeline", "build_body", "build_fitting_model", "build_model", "build_pipeline"]

#: Files of the official ReFit ``data/`` folder the network is built from (MIT, from the
#: ReFit repository; the user copies them next to their checkpoint).
REFIT_DATA_FILES = ("smpl_mean_params.npz", "smpl_ssm.npy", "J_regressor_extra.npy")


class ModelFileError(FileNotFoundError):
    """A model, weights or body file is missing; the message says which and where to put it."""


def build_body(cfg: Config):
    """The body model named by ``body.model`` (``open`` or ``smpl``)."""
    if cfg.body.model == "open":
        from refit_ros.body.open_body import OpenBody

        return OpenBody()
    from refit_ros.body.smpl import SmplBody

    if not cfg.body.smpl_dir:
        raise ModelFileError(
            "body.model=smpl needs your SMPL files: download SMPL (https://smpl.is.tue.mpg.de, "
            "licence required), put SMPL_NEUTRAL.pkl (and SMPL_MALE.pkl, SMPL_FEMALE.pkl) in a "
            "folder and set body.smpl_dir to it (e.g. --set body.smpl_dir=/path/to/smpl)")
    return SmplBody(resolve_path(cfg.body.smpl_dir), gender=cfg.body.gender)


def _require(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise ModelFileError(f"{what} not found: {path}. {fix}")
    return path


def _official_refit(cfg: Config, device: torch.device):
    """Official ReFit from the user's checkpoint, SMPL files and ReFit data folder."""
    from refit_ros.body.smpl import find_smpl_file, read_smpl_file
    from refit_ros.models.refit.assets import RefitAssets
    from refit_ros.models.refit.checkpoint import load_checkpoint
    from refit_ros.models.refit.refit import Refit, RefitConfig
    from refit_ros.pipeline.adapters import RefitImageModel

    if not cfg.model.weights:
        raise ModelFileError(
            "model.name=refit needs the official ReFit checkpoint: download "
            "checkpoint_best.pth.tar from the ReFit authors (github.com/yufu-wang/ReFit) and set "
            "model.weights to its path")
    weights = _require(resolve_path(cfg.model.weights), "ReFit checkpoint (model.weights)",
                       "Download checkpoint_best.pth.tar from the ReFit authors and set model.weights.")
    data_dir = resolve_path(cfg.model.data_dir) if cfg.model.data_dir else weights.parent
    fix = (f"Copy {', '.join(REFIT_DATA_FILES)} from the ReFit repository's data/ folder into "
           f"{data_dir} (or set model.data_dir).")
    files = {name: _require(data_dir / name, f"ReFit data file {name}", fix) for name in REFIT_DATA_FILES}
    if cfg.body.model != "smpl":
        raise ModelFileError("model.name=refit predicts SMPL parameters: set body.model=smpl and "
                             "body.smpl_dir to the folder with your SMPL_NEUTRAL.pkl")
    body = build_body(cfg)
    smpl_dir = resolve_path(cfg.body.smpl_dir)
    arrays = {g: read_smpl_file(find_smpl_file(smpl_dir, g)) for g in ("neutral",)}
    mean = np.load(files["smpl_mean_params.npz"])
    assets = RefitAssets(
        smpl_neutral=arrays["neutral"],
        j_regressor_extra=np.load(files["J_regressor_extra.npy"]),
        markers=np.load(files["smpl_ssm.npy"]).astype(np.int64).reshape(-1),
        mean_pose=mean["pose"], mean_shape=mean["shape"],
        mean_cam=mean["cam"] if "cam" in mean else np.array([0.9, 0.0, 0.0], np.float32))
    net = Refit(assets, RefitConfig(backbone=cfg.model.backbone))
    report = load_checkpoint(net, weights)
    log.info("loaded ReFit checkpoint %s (%s)", weights, report)
    return RefitImageModel(net.to(device), body.to(device))


def _refit_kp(cfg: Config, device: torch.device):
    from refit_ros.models.refit_kp.loading import load_refit_kp
    from refit_ros.pipeline.adapters import RefitKpModel

    if cfg.body.model != "open":
        raise ModelFileError("model.name=refit_kp is trained on the open body: set body.model=open")
    body = build_body(cfg).to(device)
    net = load_refit_kp(body, resolve_path(cfg.model.weights) if cfg.model.weights else None)
    return RefitKpModel(net.to(device).eval(), body)


def build_model(cfg: Config):
    """The fitting network named by ``model.name`` behind the pipeline interface."""
    device = torch.device(cfg.model.device)
    if cfg.model.name == "refit":
        return _official_refit(cfg, device)
    if cfg.model.name == "refit_kp":
        return _refit_kp(cfg, device)
    raise ModelFileError(f"model.name={cfg.model.name!r} is not available in the pipeline yet")


def build_fitting_model(cfg: Config):
    """The fitting network on the runtime ``runtime.backend`` names.

    ``runtime.threads`` > 0 sets torch's CPU thread count (process-wide).
    ``torch`` on the CPU: :func:`build_model` (eager). ``torch`` on CUDA: the stage graphs
    replayed as CUDA graphs (:class:`refit_ros.runtime.torch_backend.TorchRunner`) behind
    :class:`~refit_ros.pipeline.adapters.BackendModel`. ``onnxruntime`` / ``tensorrt``: the backend's graphs
    (exported on first use into a cache folder when ``runtime.export_dir`` is empty, see
    :mod:`refit_ros.runtime.auto_export`) behind :class:`~refit_ros.pipeline.adapters.BackendModel`;
    for ReFit-KP the small torch network is loaded too, for the warm-start fit check.

    Raises
    ------
    ModelFileError
        Missing weights / body files.
    refit_ros.runtime.backends.BackendError
        Missing runtime package, unusable export folder.
    """
    from refit_ros.runtime.backends import build_backend, resolve_backend

    if cfg.runtime.threads > 0 and str(cfg.model.device).startswith("cpu"):
        torch.set_num_threads(cfg.runtime.threads)  # process-wide: see runtime.threads
    name = resolve_backend(cfg)
    on_cuda = str(cfg.model.device).startswith("cuda")
    if name == "torch" and not on_cuda:
        return build_model(cfg)   # eager torch on the CPU (CUDA graphs need CUDA)
    from refit_ros.pipeline.adapters import BackendModel

    if name == "torch":
        # On CUDA the node runs the stage graphs replayed as CUDA graphs (TorchRunner), the
        # path `refit-ros bench` and scripts/gpu_check.sh time and check.
        net = build_model(cfg)
        backend = build_backend(cfg, model=net)
        reference = net if cfg.model.name == "refit_kp" else None
        log.info("fitting network %s on %s", cfg.model.name, backend.describe())
        return BackendModel(backend, reference)
    reference = build_model(cfg) if cfg.model.name == "refit_kp" else None
    backend = build_backend(cfg, model=reference)
    log.info("fitting network %s on %s", cfg.model.name, backend.describe())
    return BackendModel(backend, reference)


def build_pipeline(cfg: Config, detector=None, model=None) -> RefitPipeline:
    """Detector + network (on ``runtime.backend``) + body model + tracker from the config.

    ``detector`` / ``model`` may be given to reuse instances (e.g. in evaluations).
    """
    from refit_ros.detect import build_detector
    from refit_ros.tracking import Tracker, TrackerParams

    model = model if model is not None else build_fitting_model(cfg)
    detector = detector if detector is not None else build_detector(cfg)
    t = cfg.tracking
    tracker = None
    if t.enabled:
        tracker = Tracker(TrackerParams(iou_threshold=t.iou_threshold, birth_score=t.birth_score,
                                        keep_score=t.keep_score, max_age=t.max_age,
                                        warm_min_iou=t.warm_min_iou,
                                        keypoint_gate=t.keypoint_gate,
                                        reacquire_distance=t.reacquire_distance))
    settings = PipelineSettings(
        iterations=cfg.model.iterations, warm_start=t.warm_start,
        warm_iterations=t.warm_iterations, warm_hidden=t.warm_hidden,
        warm_max_error=t.warm_max_error, warm_check_frames=t.warm_check_frames,
        max_people=cfg.detector.max_people, min_score=cfg.detector.min_score,
        accumulate_shape=t.accumulate_shape,
        label_swap_guard=t.label_swap_guard, cold_blend=t.cold_blend, one_euro=t.one_euro,
        one_euro_min_cutoff=t.one_euro_min_cutoff, one_euro_beta=t.one_euro_beta)
    if tracker is not None and t.warm_start and not hasattr(model, "fit_error"):
        log.warning("model.name=%s: warm starts run without the fit-quality check (the model "
                    "has no keypoint evidence to check against) and its weights were not "
                    "trained for warm starts; consider tracking.warm_start=false (+ "
                    "tracking.one_euro=true for smoothing)", cfg.model.name)
    from refit_ros.pipeline.metric_scale import MetricScale

    scale = MetricScale(model.body, weight=cfg.scale.world_weight, window=cfg.scale.window)
    return RefitPipeline(detector, model, settings, tracker, device=cfg.model.device,
                         metric_scale=scale)
