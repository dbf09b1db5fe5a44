"""Configuration: ``config/refit.yaml`` read once into frozen, validated dataclasses.

The YAML file is the single source of default values; the dataclasses below declare only
names and types, so a default cannot drift between the node, the launch file and the CLI.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from refit_ros.paths import PACKAGE_ROOT, REPO_ROOT, resolve_path  # noqa: F401 (re-exported)
from refit_ros.runtime.base import BACKENDS


def default_config_path() -> Path:
    """Path of the shipped ``refit.yaml`` (source checkout or installed share dir)."""
    candidates = [REPO_ROOT / "config" / "refit.yaml", PACKAGE_ROOT / "config" / "refit.yaml"]
    # colcon install: share/refit_ros/config/refit.yaml under an ament prefix
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / "refit_ros" / "config" / "refit.yaml")
    for cand in candidates:
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        "refit_ros default config not found; looked in: " + ", ".join(map(str, candidates))
    )


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


def _choice(value: str, key: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of {list(choices)}")


def _positive(value: float, key: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}={value!r} must be {'>= 0' if allow_zero else '> 0'}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    weights: str
    data_dir: str
    backbone: str
    iterations: int
    device: str

    def __post_init__(self) -> None:
        _choice(self.name, "model.name", ("refit_kp", "refit", "hmr"))
        if self.name == "hmr":
            raise ConfigError("model.name=hmr: the HMR baseline (refit_ros.models.hmr) has no "
                              "weights and does not run in the pipeline yet; use "
                              "model.name=refit_kp (default) or refit")
        _choice(self.backbone, "model.backbone", ("hrnet_w48", "hrnet_w32"))
        _positive(self.iterations, "model.iterations", allow_zero=True)
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"model.device={self.device!r} must be 'cpu' or 'cuda[:N]'")


#: Fitting networks whose betas are regressed for a neutral body, and which body: with
#: these, body.gender must be "neutral" (a gendered mesh would change the fitted shape).
NEUTRAL_BETA_MODELS: dict[str, str] = {
    "refit": "the official ReFit is trained with SMPL_NEUTRAL",
    "hmr": "HMR is trained with SMPL_NEUTRAL",
    "refit_kp": "ReFit-KP is trained on the genderless open body",
}


@dataclasses.dataclass(frozen=True)
class BodyConfig:
    model: str
    smpl_dir: str
    gender: str

    def __post_init__(self) -> None:
        _choice(self.model, "body.model", ("open", "smpl"))
        _choice(self.gender, "body.gender", ("neutral", "male", "female"))
        if self.model == "open" and self.gender != "neutral":
            raise ConfigError(
                f"body.gender={self.gender!r} with body.model=open: the open body has no "
                "gendered variants (one genderless shape space); set body.gender=neutral")


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    name: str
    max_people: int
    min_score: float
    onnx_model: str

    def __post_init__(self) -> None:
        _choice(self.name, "detector.name", ("blazepose", "onnx"))
        _positive(self.max_people, "detector.max_people")
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"detector.min_score={self.min_score!r} must be in [0, 1]")
        if self.name == "onnx" and not self.onnx_model:
            raise ConfigError("detector.name=onnx needs detector.onnx_model (path to the .onnx file)")


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    fallback: str

    def __post_init__(self) -> None:
        _choice(self.fallback, "camera.fallback", ("diagonal",))


@dataclasses.dataclass(frozen=True)
class TensorRTConfig:
    """TensorRT engines: shared by runtime.backend=tensorrt and ``refit-ros export``."""

    precision: str
    max_persons: int
    opt_persons: int
    calibration: str

    def __post_init__(self) -> None:
        _choice(self.precision, "runtime.tensorrt.precision", ("fp16", "fp32", "int8"))
        _positive(self.max_persons, "runtime.tensorrt.max_persons")
        if not 1 <= self.opt_persons <= self.max_persons:
            raise ConfigError(f"runtime.tensorrt.opt_persons={self.opt_persons!r} must be in "
                              f"[1, runtime.tensorrt.max_persons={self.max_persons}]")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    backend: str
    export_dir: str
    threads: int
    tensorrt: TensorRTConfig

    def __post_init__(self) -> None:
        _choice(self.backend, "runtime.backend", ("auto", *BACKENDS))
        if self.threads < 0:
            raise ConfigError(f"runtime.threads must be >= 0, got {self.threads}")


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
    enabled: bool
    warm_start: bool
    warm_iterations: int
    warm_hidden: str
    warm_max_error: float
    warm_check_frames: int
    cold_blend: float
    iou_threshold: float
    birth_score: float
    keep_score: float
    max_age: int
    warm_min_iou: float
    keypoint_gate: float
    reacquire_distance: float
    accumulate_shape: bool
    label_swap_guard: bool
    one_euro: bool
    one_euro_min_cutoff: float
    one_euro_beta: float

    def __post_init__(self) -> None:
        _positive(self.warm_iterations, "tracking.warm_iterations", allow_zero=True)
        _choice(self.warm_hidden, "tracking.warm_hidden", ("keep", "reset"))
        _positive(self.warm_max_error, "tracking.warm_max_error", allow_zero=True)
        _positive(self.warm_check_frames, "tracking.warm_check_frames")
        if not 0.0 <= self.cold_blend <= 1.0:
            raise ConfigError(f"tracking.cold_blend={self.cold_blend!r} must be in [0, 1]")
        _positive(self.max_age, "tracking.max_age", allow_zero=True)
        _positive(self.one_euro_min_cutoff, "tracking.one_euro_min_cutoff")
        _positive(self.one_euro_beta, "tracking.one_euro_beta", allow_zero=True)
        _positive(self.reacquire_distance, "tracking.reacquire_distance", allow_zero=True)
        for key in ("iou_threshold", "birth_score", "keep_score", "warm_min_iou", "keypoint_gate"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"tracking.{key}={getattr(self, key)!r} must be in [0, 1]")
        if self.keep_score > self.birth_score:
            raise ConfigError("tracking.keep_score must be <= tracking.birth_score (hysteresis)")


@dataclasses.dataclass(frozen=True)
class ScaleConfig:
    world_weight: float
    window: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.world_weight <= 1.0:
            raise ConfigError(f"scale.world_weight={self.world_weight!r} must be in [0, 1]")
        _positive(self.window, "scale.window")


@dataclasses.dataclass(frozen=True)
class RosConfig:
    image_topic: str
    camera_info_topic: str
    compressed: bool
    smpl_topic: str
    markers_topic: str
    publish_markers: bool
    max_image_pixels: int
    transport: str

    def __post_init__(self) -> None:
        _positive(self.max_image_pixels, "ros.max_image_pixels")
        _choice(self.transport, "ros.transport", ("shm", "system"))


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    input: str
    rate: float
    loop: bool
    camera_info: str
    frame_id: str

    def __post_init__(self) -> None:
        _positive(self.rate, "source.rate", allow_zero=True)


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig
    body: BodyConfig
    detector: DetectorConfig
    camera: CameraConfig
    runtime: RuntimeConfig
    tracking: TrackingConfig
    scale: ScaleConfig
    ros: RosConfig
    source: SourceConfig

    def __post_init__(self) -> None:
        if self.runtime.backend == "tensorrt":
            _check_tensorrt(self)
        beta_body = NEUTRAL_BETA_MODELS.get(self.model.name)
        if beta_body is not None and self.body.gender != "neutral":
            raise ConfigError(
                f"body.gender={self.body.gender!r} with model.name={self.model.name}: the "
                f"network regresses betas for the neutral body ({beta_body}); on the "
                f"{self.body.gender} SMPL mesh the same betas describe a different shape "
                "(height, proportions) than the one fitted to the image, so set "
                "body.gender=neutral")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML-serialisable), e.g. to save beside weights."""
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"section.key": value}`` for every leaf (ROS parameters use these names)."""
        return dict(_flatten(self.to_dict()))

    def replace(self, overrides: Mapping[str, Any]) -> "Config":
        """A copy with dotted-key overrides applied (validated like the file)."""
        data = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(data, key, value)
        return _build(Config, data, "")


def _check_tensorrt(cfg: Config) -> None:
    """runtime.backend=tensorrt: the settings the engines and the pipeline must agree on."""
    if not cfg.model.device.startswith("cuda"):
        raise ConfigError(
            f"runtime.backend=tensorrt needs model.device=cuda (or cuda:N), got "
            f"model.device={cfg.model.device!r}: TensorRT engines run on an NVIDIA GPU, and "
            "the pipeline's crop cameras and body model live on model.device; set "
            "model.device=cuda, or use runtime.backend=onnxruntime/torch on the CPU")
    trt = cfg.runtime.tensorrt
    if cfg.detector.max_people > trt.max_persons:
        raise ConfigError(
            f"detector.max_people={cfg.detector.max_people} exceeds "
            f"runtime.tensorrt.max_persons={trt.max_persons}: the engines' profile covers at "
            "most max_persons people per call; raise runtime.tensorrt.max_persons or lower "
            "detector.max_people")
    if trt.precision == "int8" and not trt.calibration:
        raise ConfigError(
            "runtime.tensorrt.precision=int8 needs runtime.tensorrt.calibration (an .npz of "
            "real encoder inputs: `refit-ros export --format tensorrt --precision int8 "
            "--calibration-source VIDEO` writes one)")


def _flatten(data: Mapping[str, Any], prefix: str = ""):
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def _check_type(value: Any, typ: Any, key: str) -> Any:
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true/false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if typ is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {typ!r}")  # pragma: no cover


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            "unknown config key(s): "
            + ", ".join(prefix + k for k in unknown)
            + f" (known under {prefix.rstrip('.') or 'top level'}: {', '.join(names)})"
        )
    missing = [n for n in names if n not in data]
    if missing:
        raise ConfigError("missing config key(s): " + ", ".join(prefix + n for n in missing))
    kwargs = {}
    for name in names:
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, data[name], f"{prefix}{name}.")
        else:
            kwargs[name] = _check_type(data[name], typ, prefix + name)
    return cls(**kwargs)


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"unknown config key: {key} (no section {'.'.join(parts[: i + 1])})")
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ConfigError(f"unknown config key: {key}")
    if isinstance(node[parts[-1]], dict):
        raise ConfigError(f"{key} is a section; set one of its keys instead")
    node[parts[-1]] = value


def _merge(base: dict, update: Mapping[str, Any], prefix: str = "") -> None:
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"unknown config key: {prefix}{key}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{prefix}{key} must be a mapping")
            _merge(base[key], value, f"{prefix}{key}.")
        else:
            base[key] = value


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``["a.b=1", "c.d=text"]``; values are read as YAML scalars (1 -> int, true -> bool)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return data


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> Config:
    """Load the defaults, merge a user YAML (partial is fine) and dotted overrides.

    Parameters
    ----------
    path
        A user YAML; only the keys it sets change. ``None`` = defaults only.
    overrides
        ``{"model.iterations": 3}`` or ``["model.iterations=3"]``.
    """
    data = _read_yaml(default_config_path())
    if path is not None and Path(path).resolve() != default_config_path().resolve():
        _merge(data, _read_yaml(Path(path)))
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_set(list(overrides))
        for key, value in overrides.items():
            _set_dotted(data, key, value)
    return _build(Config, data, "")
