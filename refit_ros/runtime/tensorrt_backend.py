"""TensorRT engines from the exported ONNX stages: build, cache, calibrate, run.

Written against the TensorRT 10 Python API (``tensorrt``), which is imported lazily:
refit_ros's build and test machines cannot install it (docs/ENVIRONMENT.md), so only the
parts before the import are tested there (cache key, profiles, calibration data, the
settings, the engine cache with an injected builder, the runner's return-value checks);
the engine build and execution run on a machine with an NVIDIA GPU and TensorRT.

* **Precision** per stage. ``fp32``: FP32 kernels, TF32 explicitly disabled (TensorRT
  enables TF32 by default). ``fp16``: FP16 kernels allowed everywhere. ``int8``: the
  encoder (HRNet, where nearly all the time goes) is built with INT8 + FP16 kernels,
  calibrated with :class:`EntropyCalibrator` (``IInt8EntropyCalibrator2``) on real crops;
  init/step/body stay FP16 (SMPL, the GRUs and the 64x64 lookup are small and sensitive).
* **Profile**: one optimisation profile per engine over the ``persons`` axis,
  ``min 1 / opt O / max N``; every other dimension is static in the ONNX file.
* **Settings**: ``runtime.tensorrt`` (precision, max/opt persons, calibration set) in
  ``config/refit.yaml``, read by the node and by ``refit-ros export --format tensorrt``
  through :func:`engine_options` (the export's flags override them), so both ask for the
  same engines.
* **Cache** (:class:`EngineCache`): ``<cache>/engines/<stage>-<precision>-<key>.engine`` +
  a ``.json`` with the key's fields and the engine's sha256, in the per-user cache
  (``$REFIT_ROS_CACHE``, else ``$XDG_CACHE_HOME/refit_ros``, else ``~/.cache/refit_ros``;
  never the user's ``runtime.export_dir``). The key (:func:`engine_cache_key`) is the
  sha256 of the ONNX file's sha256, the TensorRT version, the GPU name and compute
  capability, the precision, the profile and the calibration set's hash, so an engine is
  never reused for another model, TensorRT, GPU, precision or batch range. One file lock
  per key: processes starting together build an engine once, the others wait and load it.
  Engine and metadata are written atomically (unique temp file in the same folder, fsync,
  ``os.replace``); an engine whose bytes do not match its metadata (truncated, corrupt) or
  that TensorRT cannot deserialize is rebuilt, with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from refit_ros.export.onnx import ExportManifest, StageFile
from refit_ros.runtime.base import Backend, BackendError, ModelSource

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
ENGINE_DIR = "engines"
INSTALL_HINT = (
    "the TensorRT backend needs NVIDIA TensorRT's Python package `tensorrt` (TensorRT 10.x) "
    "on a machine with an NVIDIA GPU and CUDA: `pip install tensorrt` (its wheels come from "
    "NVIDIA's index, pypi.nvidia.com) or install TensorRT from "
    "https://developer.nvidia.com/tensorrt. It cannot be installed on refit_ros's build and "
    "test machines; use runtime.backend=onnxruntime (CPU) or runtime.backend=torch there")


def require_tensorrt():
    """Import ``tensorrt`` or raise :class:`~refit_ros.runtime.base.BackendError`
    saying how to install it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(f"`import tensorrt` failed ({exc}): {INSTALL_HINT}") from exc
    if not torch.cuda.is_available():
        raise BackendError("TensorRT is installed but torch sees no CUDA device; the TensorRT "
                           "backend runs on an NVIDIA GPU only")
    return trt


# ---------------------------------------------------------------------- pure parts
@dataclass(frozen=True)
class Profile:
    """Optimisation profile over the people axis.

    Attributes
    ----------
    min_persons, opt_persons, max_persons : int
    """

    min_persons: int = 1
    opt_persons: int = 1
    max_persons: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.min_persons <= self.opt_persons <= self.max_persons:
            raise ValueError(f"profile needs 1 <= min <= opt <= max persons, got "
                             f"{self.min_persons}/{self.opt_persons}/{self.max_persons}")

    def shapes(self, static: Sequence[int]) -> tuple[tuple[int, ...], ...]:
        """``(min, opt, max)`` shapes of a tensor whose non-batch dims are ``static``."""
        dims = tuple(int(d) for d in static)
        return tuple((b,) + dims for b in (self.min_persons, self.opt_persons, self.max_persons))


@dataclass(frozen=True)
class EngineOptions:
    """What the engines are built for: ``runtime.tensorrt`` with command-line overrides.

    Attributes
    ----------
    precision : str
        ``fp32``, ``fp16`` or ``int8``.
    max_persons, opt_persons : int
        The profile (``min 1 / opt / max``).
    calibration : Path or None
        INT8 calibration ``.npz``.
    """

    precision: str
    max_persons: int
    opt_persons: int
    calibration: Path | None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"TensorRT precision {self.precision!r} is not one of "
                             f"{list(PRECISIONS)}")
        Profile(1, self.opt_persons, self.max_persons)  # validates the range


def engine_options(cfg, precision: str | None = None, max_persons: int | None = None,
                   opt_persons: int | None = None,
                   calibration: str | Path | None = None) -> EngineOptions:
    """The config's ``runtime.tensorrt`` settings; a non-None argument overrides its key
    (``refit-ros export --precision`` etc.). The calibration path of the config is
    resolved like every config path (relative to the repository root)."""
    from refit_ros.paths import resolve_path

    t = cfg.runtime.tensorrt
    if calibration is None and t.calibration:
        calibration = resolve_path(t.calibration)
    return EngineOptions(precision=precision or t.precision,
                         max_persons=int(max_persons if max_persons is not None else t.max_persons),
                         opt_persons=int(opt_persons if opt_persons is not None else t.opt_persons),
                         calibration=Path(calibration) if calibration else None)


def stage_precision(stage: str, precision: str) -> str:
    """The precision a stage is built in for a requested engine precision (see module doc)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {list(PRECISIONS)}")
    if precision == "int8":
        return "int8" if stage == "encoder" else "fp16"
    return precision


def engine_cache_key(onnx_sha256: str, trt_version: str, gpu_name: str, precision: str,
                     profile: Profile, compute_capability: str = "",
                     calibration_sha256: str = "") -> str:
    """The engine cache key: sha256 of every fact an engine depends on.

    Parameters
    ----------
    onnx_sha256 : str
        Hash of the ONNX file the engine is built from.
    trt_version : str
        ``tensorrt.__version__`` (engines are not portable across versions).
    gpu_name : str
        Device name (engines are tuned for, and often only loadable on, one GPU model).
    precision : str
        The stage's precision (``fp32`` / ``fp16`` / ``int8``).
    profile : Profile
        The people range.
    compute_capability : str
        e.g. ``"9.0"``.
    calibration_sha256 : str
        Hash of the INT8 calibration inputs ("" when not INT8).

    Returns
    -------
    str
        64 hex digits.
    """
    fields = {"onnx_sha256": onnx_sha256, "tensorrt": trt_version, "gpu": gpu_name,
              "compute_capability": compute_capability, "precision": precision,
              "profile": asdict(profile), "calibration_sha256": calibration_sha256}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def engine_file_name(stage: str, precision: str, key: str) -> str:
    return f"{stage}-{precision}-{key[:16]}.engine"


def calibration_sha256(batches: Sequence[Mapping[str, np.ndarray]]) -> str:
    """Hash of a calibration set (names, shapes and bytes, in order)."""
    h = hashlib.sha256()
    for batch in batches:
        for name in sorted(batch):
            a = np.ascontiguousarray(batch[name], dtype=np.float32)
            h.update(name.encode())
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def calibration_batches(inputs: Mapping[str, np.ndarray], batch_size: int
                        ) -> list[dict[str, np.ndarray]]:
    """Split calibration encoder inputs (``N x ...`` per name) into full batches.

    Raises
    ------
    ValueError
        Fewer than ``batch_size`` samples, or inputs of different lengths.
    """
    lengths = {k: len(v) for k, v in inputs.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"calibration inputs have different lengths: {lengths}")
    n = next(iter(lengths.values()))
    if n < batch_size:
        raise ValueError(f"calibration set has {n} samples; need at least {batch_size} "
                         "(several hundred real crops are recommended)")
    return [{k: np.ascontiguousarray(v[i:i + batch_size], dtype=np.float32)
             for k, v in inputs.items()} for i in range(0, n - batch_size + 1, batch_size)]


def load_calibration_inputs(path: str | Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Calibration encoder inputs from an ``.npz`` holding one ``N x ...`` array per encoder
    input name (e.g. ``image`` for ReFit: normalised ``N x 3 x 256 x 256`` crops, as
    written by ``refit-ros export --save-calibration``)."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".npz":
        raise ValueError(f"{p}: calibration data must be an .npz with arrays {list(names)}")
    with np.load(p) as data:
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{p}: missing calibration arrays {missing} (has {list(data)})")
        return {n: np.asarray(data[n], dtype=np.float32) for n in names}


# ---------------------------------------------------------------------- TensorRT parts
def _trt_calibrator_class():
    """``IInt8EntropyCalibrator2`` subclass (defined lazily: needs ``tensorrt``)."""
    import tensorrt as trt

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        """Feeds calibration batches from host arrays through CUDA buffers."""

        def __init__(self, batches: list[dict[str, np.ndarray]], cache_file: Path):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = batches
            self.index = 0
            self.cache_file = Path(cache_file)
            self.device_buffers: dict[str, Tensor] = {}

        def get_batch_size(self) -> int:
            return int(next(iter(self.batches[0].values())).shape[0])

        def get_batch(self, names):
            if self.index >= len(self.batches):
                return None
            batch = self.batches[self.index]
            self.index += 1
            ptrs = []
            for name in names:
                buf = torch.from_numpy(batch[name]).cuda()
                self.device_buffers[name] = buf  # keep alive while TensorRT reads it
                ptrs.append(int(buf.data_ptr()))
            return ptrs

        def read_calibration_cache(self):
            return self.cache_file.read_bytes() if self.cache_file.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            atomic_write(self.cache_file, bytes(cache))

    return EntropyCalibrator


def build_engine(onnx_path: str | Path, precision: str, profile: Profile,
                 static_shapes: Mapping[str, Sequence[int]],
                 calibration: list[dict[str, np.ndarray]] | None = None,
                 calibration_cache: Path | None = None, workspace_gib: float = 4.0) -> bytes:
    """Parse an ONNX stage and build a serialized engine.

    Parameters
    ----------
    onnx_path : path
    precision : str
        ``fp32`` (TF32 off), ``fp16`` or ``int8`` (with FP16 fallback; needs ``calibration``).
    profile : Profile
    static_shapes : mapping
        Non-batch dimensions of every input (from export.yaml).
    calibration : list of dict, optional
        INT8 calibration batches (input name -> array).
    workspace_gib : float
        Builder workspace limit.

    Returns
    -------
    bytes
        The serialized engine.
    """
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    # Explicit batch is the only mode from TensorRT 10; 8.x must ask for it.
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.fspath(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)
    elif precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if not calibration:
            raise ValueError("INT8 needs calibration batches of real crops (--calibration)")
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = _trt_calibrator_class()(calibration, calibration_cache or
                                             Path(f"{onnx_path}.calib"))
        config.int8_calibrator = calibrator
    opt = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        lo, mid, hi = profile.shapes(static_shapes[name])
        opt.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(opt)
    if precision == "int8":
        config.set_calibration_profile(opt)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path} ({precision})")
    return bytes(serialized)


def gpu_identity() -> tuple[str, str]:
    """``(name, compute capability)`` of the current CUDA device."""
    dev = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(dev)
    return torch.cuda.get_device_name(dev), f"{major}.{minor}"


def engine_cache_dir() -> Path:
    """The per-user engine cache: ``<cache root>/engines`` (see
    :func:`refit_ros.export.cache.cache_root`)."""
    from refit_ros.export.cache import cache_root

    return cache_root() / ENGINE_DIR


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a unique temp file in the same folder,
    flushed and fsynced, then ``os.replace`` (readers see the old file or the new one,
    never a part; concurrent writers never share a temp file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive ``fcntl`` lock on ``path`` (created if missing), released on exit."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


#: ``build(onnx_path, precision, profile, static_shapes, calibration, calibration_cache)``
#: -> serialized engine bytes (:func:`build_engine`).
BuildFn = Callable[..., bytes]


class EngineCache:
    """TensorRT engines keyed by :func:`engine_cache_key`, in the per-user cache.

    Parameters
    ----------
    cache_dir : path, optional
        Default :func:`engine_cache_dir`.
    build : callable, optional
        Engine builder (default :func:`build_engine`); injectable for tests.
    identity : callable, optional
        Returns ``(tensorrt version, GPU name, compute capability)``; default: the
        installed ``tensorrt`` and the current CUDA device.
    """

    def __init__(self, cache_dir: str | Path | None = None, *, build: BuildFn | None = None,
                 identity: Callable[[], tuple[str, str, str]] | None = None):
        self.dir = Path(cache_dir) if cache_dir is not None else engine_cache_dir()
        self._build = build
        self._identity = identity

    def identity(self) -> tuple[str, str, str]:
        if self._identity is not None:
            return self._identity()
        trt = require_tensorrt()
        return (trt.__version__, *gpu_identity())

    def get_or_build(self, stage: str, stage_file: StageFile, onnx_path: Path, precision: str,
                     profile: Profile, calibration: list[dict[str, np.ndarray]] | None = None,
                     *, reject: bytes | None = None) -> tuple[bytes, Path, bool]:
        """The serialized engine for one stage (built and stored when not cached).

        Under the key's file lock: a cached engine whose bytes match its metadata is
        returned; a missing one is built; an unusable one (no/unreadable metadata, bytes
        not matching the recorded sha256, or equal to ``reject``: bytes TensorRT could not
        deserialize) is rebuilt with a warning.

        Returns
        -------
        engine : bytes
        path : Path
        built : bool
            False when it came from the cache.
        """
        version, gpu, cc = self.identity()
        calib_hash = calibration_sha256(calibration) if precision == "int8" and calibration else ""
        key = engine_cache_key(stage_file.sha256, version, gpu, precision, profile, cc,
                               calib_hash)
        path = self.dir / engine_file_name(stage, precision, key)
        meta = path.with_suffix(".json")
        self.dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.dir / f".{path.stem}.lock"):
            data, problem = _read_cached(path, meta, key)
            if data is not None and reject is not None and data == reject:
                data, problem = None, "TensorRT could not deserialize it"
            if data is not None:
                log.info("TensorRT engine %s from cache", path.name)
                return data, path, False
            if problem:
                log.warning("TensorRT engine %s is unusable (%s): rebuilding it", path, problem)
            static = {t.name: [int(d) for d in t.shape[1:]] for t in stage_file.inputs}
            log.info("building TensorRT %s engine for %s (%s, persons %d..%d) into %s; this "
                     "takes minutes", precision, stage, gpu, profile.min_persons,
                     profile.max_persons, self.dir)
            build = self._build or build_engine
            engine = bytes(build(onnx_path, precision, profile, static, calibration,
                                 self.dir / f"{stage}-{key[:16]}.calib"))
            atomic_write(path, engine)  # engine first: the metadata vouches for its bytes
            atomic_write(meta, json.dumps({
                "key": key, "stage": stage, "onnx": stage_file.file,
                "onnx_sha256": stage_file.sha256, "tensorrt": version, "gpu": gpu,
                "compute_capability": cc, "precision": precision, "profile": asdict(profile),
                "calibration_sha256": calib_hash,
                "engine_sha256": hashlib.sha256(engine).hexdigest(),
                "engine_bytes": len(engine)}, indent=1).encode())
            return engine, path, True


def _read_cached(path: Path, meta: Path, key: str) -> tuple[bytes | None, str]:
    """``(engine bytes, "")`` when the cached engine is intact, else ``(None, why)``
    (``why`` empty when nothing was cached)."""
    if not path.exists() and not meta.exists():
        return None, ""
    try:
        record = json.loads(meta.read_text())
    except FileNotFoundError:
        return None, "its metadata file is missing"
    except (OSError, ValueError) as exc:
        return None, f"its metadata is unreadable: {exc}"
    if not isinstance(record, dict) or record.get("key") != key:
        return None, "its metadata is for another key"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"the engine file is unreadable: {exc}"
    if (len(data) != record.get("engine_bytes")
            or hashlib.sha256(data).hexdigest() != record.get("engine_sha256")):
        return None, (f"the engine file is truncated or corrupt: {len(data)} bytes, sha256 "
                      f"not the {record.get('engine_bytes')} bytes its metadata records")
    return data, ""


class TensorRTRunner(Backend):
    """Runs the four stages as TensorRT engines on one CUDA device.

    Inputs and outputs are torch CUDA tensors (``set_tensor_address`` on their memory),
    enqueued on torch's current stream, so nothing crosses to the host between stages.

    Parameters
    ----------
    export_dir : path
        The ONNX export (only read: engines go to ``cache``).
    manifest : ExportManifest
    precision : str
        ``fp32``, ``fp16`` or ``int8`` (see the module doc).
    max_persons : int
        Profile upper bound.
    calibration : path, optional
        ``.npz`` of encoder inputs for INT8 (see :func:`load_calibration_inputs`).
    opt_persons : int
        Profile optimum.
    device : str or torch.device
        ``cuda`` (the current device) or ``cuda:N``.
    cache : EngineCache, optional
        Default: the per-user cache (:func:`engine_cache_dir`).
    """

    def __init__(self, export_dir: str | Path, manifest: ExportManifest, precision: str = "fp16",
                 max_persons: int = 8, calibration: str | Path | None = None,
                 opt_persons: int = 1, device: str | torch.device = "cuda",
                 cache: EngineCache | None = None):
        trt = require_tensorrt()
        self.feature_names = tuple(manifest.feature_names)
        self.architecture = dict(manifest.architecture)
        dev = torch.device(device)
        if dev.type != "cuda":
            raise ValueError(f"the TensorRT backend runs on a CUDA device, not {dev}; set "
                             "model.device=cuda")
        self.device = torch.device("cuda", torch.cuda.current_device() if dev.index is None
                                   else dev.index)
        self.precision = precision
        self.profile = Profile(1, min(opt_persons, max_persons), max_persons)
        self.cache = cache or EngineCache()
        self.engines: dict[str, Any] = {}
        self.contexts: dict[str, Any] = {}
        self.io: dict[str, tuple[list[str], list[str]]] = {}
        self.paths: dict[str, str] = {}
        calib = None
        if precision == "int8":
            if calibration is None:
                raise ValueError("precision int8 needs a calibration set of real crops "
                                 "(runtime.tensorrt.calibration / --calibration FILE.npz)")
            names = manifest.stages["encoder"].input_names
            calib = calibration_batches(load_calibration_inputs(calibration, names),
                                        self.profile.opt_persons)
        with torch.cuda.device(self.device):
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            for stage, s in manifest.stages.items():
                prec = stage_precision(stage, precision)
                args = (stage, s, Path(export_dir) / s.file, prec, self.profile,
                        calib if prec == "int8" else None)
                data, path, _ = self.cache.get_or_build(*args)
                engine = runtime.deserialize_cuda_engine(data)
                if engine is None:  # e.g. written by a crashed build: rebuilt once
                    data, path, _ = self.cache.get_or_build(*args, reject=data)
                    engine = runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise RuntimeError(f"TensorRT could not load {path}, even rebuilt")
                ins, outs = [], []
                for i in range(engine.num_io_tensors):
                    name = engine.get_tensor_name(i)
                    (ins if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                     else outs).append(name)
                self.engines[stage] = engine
                self.contexts[stage] = engine.create_execution_context()
                self.io[stage] = (ins, outs)
                self.paths[stage] = str(path)
        self._trt_version = trt.__version__

    name = "tensorrt"

    @classmethod
    def load(cls, source: ModelSource, device: str | torch.device | None = None,
             precision: str = "fp16", max_persons: int | None = None,
             calibration: str | Path | None = None, opt_persons: int = 1) -> TensorRTRunner:
        dev = torch.device(device if device is not None else "cuda")
        if dev.type != "cuda":
            # The config refuses this for runtime.backend=tensorrt; here for backend= callers.
            raise BackendError(f"the TensorRT backend needs model.device=cuda, got "
                               f"model.device={str(device)!r} (the pipeline's cameras and "
                               "body model live on model.device)")
        require_tensorrt()  # before anything slow: the message says how to install it
        export_dir, manifest = source.require_export(cls.name)
        return cls(export_dir, manifest, precision=precision,
                   max_persons=max_persons or manifest.max_persons, calibration=calibration,
                   opt_persons=opt_persons, device=device if device is not None else "cuda")

    @classmethod
    def options_from_config(cls, cfg, precision: str | None = None,
                            max_persons: int | None = None, **overrides):
        opts = engine_options(cfg, precision, max_persons)
        return {"precision": opts.precision, "max_persons": opts.max_persons,
                "calibration": opts.calibration, "opt_persons": opts.opt_persons}

    def run(self, stage: str, feeds: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Run one engine; outputs are CUDA tensors on :attr:`device`.

        Raises
        ------
        ValueError
            More people than the profile's maximum.
        RuntimeError
            TensorRT refused an input shape or a tensor address, or the launch failed.
        """
        ins, outs = self.io[stage]
        ctx = self.contexts[stage]
        keep = []
        batch = None
        for name in ins:
            t = feeds[name].to(self.device, torch.float32).contiguous()
            batch = int(t.shape[0])
            if batch > self.profile.max_persons:
                raise ValueError(f"{batch} people exceed the engine profile's maximum "
                                 f"{self.profile.max_persons}; raise "
                                 "runtime.tensorrt.max_persons (or --max-persons)")
            if not ctx.set_input_shape(name, tuple(t.shape)):
                raise RuntimeError(
                    f"TensorRT refused input {name!r} of the {stage} engine with shape "
                    f"{tuple(t.shape)} (profile persons {self.profile.min_persons}.."
                    f"{self.profile.max_persons}; other dimensions as exported)")
            if not ctx.set_tensor_address(name, int(t.data_ptr())):
                raise RuntimeError(f"TensorRT refused the address of input {name!r} of the "
                                   f"{stage} engine (device {t.device})")
            keep.append(t)
        result = {}
        for name in outs:
            shape = tuple(ctx.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise RuntimeError(f"TensorRT could not infer the shape of output {name!r} of "
                                   f"the {stage} engine ({shape}): an input shape is missing")
            out = torch.empty(shape, dtype=torch.float32, device=self.device)
            if not ctx.set_tensor_address(name, int(out.data_ptr())):
                raise RuntimeError(f"TensorRT refused the address of output {name!r} of the "
                                   f"{stage} engine")
            result[name] = out
        stream = torch.cuda.current_stream(self.device)
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to run the {stage} engine (batch {batch})")
        # The inputs must outlive the enqueued work: tie them to the stream.
        for t in keep:
            t.record_stream(stream)
        return result

    def describe(self) -> dict[str, Any]:
        with torch.cuda.device(self.device):
            gpu, cc = gpu_identity()
        return {"device": str(self.device), "tensorrt": self._trt_version, "gpu": gpu,
                "compute_capability": cc, "precision": self.precision,
                "profile": asdict(self.profile), "engine_cache": str(self.cache.dir),
                "engines": self.paths}
