"""Frame -> bodies pipeline (no ROS): ``build_pipeline(cfg).process(image_rgb, intrinsics)``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from refit_ros.body import create_body_model
from refit_ros.config import Config, resolve_path
from refit_ros.export import cache as export_cache
from refit_ros.export.families import family_for
from refit_ros.export.onnx import ExportError, expectations_from_config, load_export
from refit_ros.pipeline.frame import ImageError, PipelineSettings, RefitPipeline
from refit_ros.pipeline.models import FittingModel
from refit_ros.pipeline.types import Body, FramePipeline, FrameResult
from refit_ros.runtime import backend_class
from refit_ros.paths import ModelFileError
from refit_ros.runtime.base import BackendError, ModelSource

log = logging.getLogger(__name__)

__all__ = ["Body", "FittingModel", "FramePipeline", "FrameResult", "ImageError", "ModelFileError",
           "RefitPipeline", "build_backend", "build_body", "build_fitting_model", "build_network",
           "build_pipeline", "resolve_backend"]

#: Files of the official ReFit ``data/`` folder the network is built from (MIT, from the
#: ReFit repository; the user copies them next to their checkpoint).
REFIT_DATA_FILES = ("smpl_mean_params.npz", "smpl_ssm.npy", "J_regressor_extra.npy")


def build_body(cfg: Config):
    """The body model of the config's ``body`` section
    (:func:`refit_ros.body.create_body_model`, paths resolved)."""
    b = cfg.body
    return create_body_model(b.model, resolve_path(b.smpl_dir) if b.smpl_dir else "", b.gender)


def _require(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise ModelFileError(f"{what} not found: {path}. {fix}")
    return path


def _official_refit(cfg: Config, device: torch.device, body=None) -> torch.nn.Module:
    """Official ReFit from the user's checkpoint, SMPL files and ReFit data folder."""
    from refit_ros.body.smpl import find_smpl_file, read_smpl_file
    from refit_ros.models.refit.assets import RefitAssets
    from refit_ros.models.refit.checkpoint import load_checkpoint
    from refit_ros.models.refit.refit import Refit, RefitConfig

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
    return net.to(device).eval()


def _refit_kp(cfg: Config, device: torch.device, body=None) -> torch.nn.Module:
    from refit_ros.models.refit_kp.loading import load_refit_kp

    if cfg.body.model != "open":
        raise ModelFileError("model.name=refit_kp is trained on the open body: set body.model=open")
    body = (body if body is not None else build_body(cfg)).to(device)
    net = load_refit_kp(body, resolve_path(cfg.model.weights) if cfg.model.weights else None)
    return net.to(device).eval()


#: ``model.name`` -> the function building its torch network from the config.
NETWORKS = {"refit": _official_refit, "refit_kp": _refit_kp}


def build_network(cfg: Config, body=None) -> torch.nn.Module:
    """The torch network named by ``model.name``, weights loaded, on ``model.device``, in
    eval mode (``body``: the body model to build it on, default :func:`build_body`)."""
    if cfg.model.name not in NETWORKS:
        raise ModelFileError(f"model.name={cfg.model.name!r} is not available in the pipeline yet")
    return NETWORKS[cfg.model.name](cfg, torch.device(cfg.model.device), body)


def build_fitting_model(cfg: Config) -> FittingModel:
    """The fitting network on the runtime ``runtime.backend`` names (:func:`build_backend`).

    ``runtime.threads`` > 0 sets torch's CPU thread count (process-wide). ``torch``: the
    stage graphs with PyTorch (:class:`refit_ros.runtime.torch_backend.TorchRunner`),
    replayed as CUDA graphs on CUDA. ``onnxruntime`` / ``tensorrt``: the backend's graphs,
    exported on first use into a cache folder when ``runtime.export_dir`` is empty (see
    :mod:`refit_ros.export.cache`). The fit check and the warm starts are the family's, the
    same on every backend.

    Raises
    ------
    ModelFileError
        Missing weights / body files.
    refit_ros.runtime.base.BackendError
        Missing runtime package, unusable export folder.
    """
    if cfg.runtime.threads > 0 and str(cfg.model.device).startswith("cpu"):
        torch.set_num_threads(cfg.runtime.threads)  # process-wide: see runtime.threads
    model = build_backend(cfg)
    log.info("fitting network %s on %s", cfg.model.name, model.describe())
    return model


def resolve_backend(cfg) -> str:
    """``runtime.backend`` with ``auto`` decided: ``onnxruntime`` for ReFit-KP on the CPU
    when the package is installed (its small graphs run ~3x faster than torch's eager
    ops), ``torch`` otherwise."""
    name = cfg.runtime.backend
    if name != "auto":
        return name
    if cfg.model.name == "refit_kp" and str(cfg.model.device).startswith("cpu"):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            log.warning("runtime.backend=auto: onnxruntime is not installed, using torch "
                        "(ReFit-KP ~3x slower); pip install onnxruntime==1.31.1")
            return "torch"
        return "onnxruntime"
    return "torch"


def export_dir_from_config(cfg) -> Path:
    """``runtime.export_dir`` resolved; when empty, the per-user cache folder of the
    configured model (:func:`refit_ros.export.cache.default_export_dir`)."""
    return (resolve_path(cfg.runtime.export_dir) if cfg.runtime.export_dir
            else export_cache.default_export_dir(cfg))


def build_backend(cfg: Config, network: torch.nn.Module | None = None, *,
                  backend: str | None = None, precision: str | None = None,
                  max_persons: int | None = None, cuda_graphs: bool = True) -> FittingModel:
    """The fitting model of the config on the runtime ``runtime.backend`` names.

    Parameters
    ----------
    cfg : Config
    network : nn.Module, optional
        An already built torch network (:func:`build_network`) to run or export.
    backend : str, optional
        Overrides ``runtime.backend``.
    precision : str, optional
        Overrides ``runtime.tensorrt.precision`` (``fp32``, ``fp16``, ``int8``).
    max_persons : int, optional
        Overrides ``runtime.tensorrt.max_persons`` (the TensorRT profile's upper bound).
    cuda_graphs : bool
        torch on CUDA: capture the stage graphs.

    Raises
    ------
    BackendError
        Unknown backend, missing package, unusable export folder, TensorRT asked for with
        a CPU ``model.device``.
    """
    name = backend or resolve_backend(cfg)
    runner_cls = backend_class(name)
    built: dict[str, Any] = {}  # built on first use: the backend checks its needs first

    def body():
        if "body" not in built:
            built["body"] = build_body(cfg).to(cfg.model.device)
        return built["body"]

    def net() -> torch.nn.Module:
        if "net" not in built:
            built["net"] = network if network is not None else build_network(cfg, body())
        return built["net"]

    def export():
        expect = expectations_from_config(cfg)
        if cfg.runtime.export_dir:  # the user's export: checked, never overwritten
            export_dir = export_dir_from_config(cfg)
            manifest = load_export(export_dir, expect)
            export_cache.check_weights(manifest, cfg, export_dir)
            return export_dir, manifest
        # the cache folder: exported here when missing or made from other weights
        return export_cache.ensure_export(cfg, net)

    options = runner_cls.options_from_config(cfg, precision=precision, max_persons=max_persons)
    if name == "torch":
        options["cuda_graphs"] = cuda_graphs
    source = ModelSource(family_for(cfg.model.name), network=net, export=export)
    try:
        runner = runner_cls.load(source, device=cfg.model.device, **options)
    except ExportError as exc:
        raise BackendError(f"runtime.backend={name}: {exc}") from exc
    return FittingModel.from_runner(runner, source.family, name, body())


def build_pipeline(cfg: Config, detector=None, model=None) -> RefitPipeline:
    """Detector + network (on ``runtime.backend``) + body model + tracker from the config.

    ``detector`` / ``model`` may be given to reuse instances (e.g. in evaluations).
    """
    from refit_ros.detect import build_detector
    from refit_ros.tracking import Tracker, TrackerParams

    model = model if model is not None else build_fitting_model(cfg)
    detector = detector if detector is not None else build_detector(cfg)
    t = cfg.tracking
    tracker = Tracker(TrackerParams.from_config(t)) if t.enabled else None
    settings = PipelineSettings.from_config(cfg)
    if tracker is not None and t.warm_start and not getattr(model, "has_fit_check",
                                                             hasattr(model, "fit_error")):
        log.warning("model.name=%s: warm starts run without the fit-quality check (the model "
                    "has no keypoint evidence to check against) and its weights were not "
                    "trained for warm starts; consider tracking.warm_start=false (+ "
                    "tracking.one_euro=true for smoothing)", cfg.model.name)
    from refit_ros.pipeline.metric_scale import MetricScale

    scale = MetricScale(model.body, weight=cfg.scale.world_weight, window=cfg.scale.window)
    return RefitPipeline(detector, model, settings, tracker, device=cfg.model.device,
                         metric_scale=scale)
