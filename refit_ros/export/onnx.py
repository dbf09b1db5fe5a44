"""Export a fitting network to ONNX: four stage graphs and an ``export.yaml`` beside them.

``DIR/encoder.onnx``, ``DIR/init.onnx``, ``DIR/step.onnx`` and ``DIR/body.onnx`` are the
stage graphs of :mod:`refit_ros.export.graphs` (dynamic ``persons`` axis, every other
dimension static, opset >= 16 for ``GridSample``), each checked with ``onnx.checker``.
``DIR/export.yaml`` records what they were made from (model, backbone, body, iterations,
weights), their input/output names and shapes, the opset and the sha256 of every file;
:func:`load_export` refuses a folder whose files or settings do not match.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml
from torch import nn

from refit_ros.export.families import (BATCH_AXIS, CAMERA_NAMES, STATE_NAMES, ModelFamily,
                                        camera_tensors, example_camera, family_of)
from refit_ros.export.graphs import build_stage_graphs, signatures

log = logging.getLogger(__name__)

#: Version of the export.yaml layout; bump when it changes incompatibly.
FORMAT_VERSION = 1
MANIFEST_NAME = "export.yaml"
STAGES: tuple[str, ...] = ("encoder", "init", "step", "body")
#: ONNX ``GridSample`` (the marker lookup) exists from opset 16.
MIN_OPSET = 16
DEFAULT_OPSET = 18
EXPORTERS = ("dynamo", "torchscript")


class ExportError(ValueError):
    """An export folder cannot be used; the message names the file or key and the fix."""


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output as written in the ONNX file."""

    name: str
    shape: list[int | str]
    dtype: str = "float32"


@dataclass(frozen=True)
class StageFile:
    """One exported stage graph.

    Attributes
    ----------
    file : str
        File name inside the export folder.
    sha256 : str
        Hash of the file's bytes.
    inputs, outputs : list of TensorInfo
        As in the ONNX graph (inputs the graph does not use are pruned by the exporter).
    """

    file: str
    sha256: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


@dataclass(frozen=True)
class ExportManifest:
    """Contents of ``export.yaml``.

    Attributes
    ----------
    model : str
        ``model.name`` (``refit`` or ``refit_kp``).
    backbone : str
        ``model.backbone`` for ``refit``; ``keypoints`` for ``refit_kp``.
    body : str
        ``body.model`` of the pipeline (``smpl`` or ``open``).
    iterations : int
        ``model.iterations`` (cold-start steps) the export was made for.
    opset : int
    exporter : str
        ``dynamo`` (torch.export) or ``torchscript``.
    weights : dict
        ``source`` (what the weights are) and ``sha256`` of the weights file when there is one.
    feature_names : list of str
        Features passed from the encoder to init/step, in order.
    stages : dict[str, StageFile]
    architecture : dict
        Family-specific facts (crop size, markers, ...).
    max_persons : int
        Upper bound of the ``persons`` axis the graphs were traced for (TensorRT profiles
        are built up to it by default; ONNX Runtime accepts any batch).
    torch_version : str
    created : str
    format_version : int
    """

    model: str
    backbone: str
    body: str
    iterations: int
    opset: int
    exporter: str
    weights: dict[str, Any]
    feature_names: list[str]
    stages: dict[str, StageFile]
    architecture: dict[str, Any] = field(default_factory=dict)
    max_persons: int = 16
    torch_version: str = ""
    created: str = ""
    format_version: int = FORMAT_VERSION
    state_names: list[str] = field(default_factory=lambda: list(STATE_NAMES))
    camera_names: list[str] = field(default_factory=lambda: list(CAMERA_NAMES))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = MANIFEST_NAME) -> "ExportManifest":
        """Parse and type-check ``export.yaml`` contents.

        Raises
        ------
        ExportError
            Missing or unknown keys, wrong types, an unsupported format version.
        """
        if not isinstance(d, Mapping):
            raise ExportError(f"{source}: expected a mapping, got {type(d).__name__}")
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise ExportError(f"{source}: format_version {version!r} is not {FORMAT_VERSION}; "
                              "re-run `refit-ros export --format onnx --out DIR`")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(d))
        unknown = sorted(set(d) - names)
        if missing or unknown:
            raise ExportError(f"{source}: missing keys {missing}, unknown keys {unknown}")
        stages = d["stages"]
        if not isinstance(stages, Mapping) or sorted(stages) != sorted(STAGES):
            raise ExportError(f"{source}: stages must be exactly {list(STAGES)}, got "
                              f"{sorted(stages) if isinstance(stages, Mapping) else stages!r}")
        parsed = {}
        for name, s in stages.items():
            try:
                parsed[name] = StageFile(
                    file=str(s["file"]), sha256=str(s["sha256"]),
                    inputs=[TensorInfo(**t) for t in s["inputs"]],
                    outputs=[TensorInfo(**t) for t in s["outputs"]])
            except (KeyError, TypeError) as exc:
                raise ExportError(f"{source}: stages.{name} is malformed ({exc}); re-export") from exc
        kw = dict(d)
        kw["stages"] = parsed
        for key, typ in (("iterations", int), ("opset", int), ("max_persons", int)):
            if not isinstance(kw[key] if key in kw else 0, typ):
                raise ExportError(f"{source}: {key} must be an integer, got {kw[key]!r}")
        if kw["opset"] < MIN_OPSET:
            raise ExportError(f"{source}: opset {kw['opset']} < {MIN_OPSET} (GridSample needs "
                              f"{MIN_OPSET}); re-export with --opset {DEFAULT_OPSET}")
        return cls(**kw)


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tensor_infos(values) -> list[TensorInfo]:
    import onnx

    out = []
    for v in values:
        tt = v.type.tensor_type
        dims: list[int | str] = [d.dim_param if d.dim_param else int(d.dim_value)
                                 for d in tt.shape.dim]
        out.append(TensorInfo(v.name, dims, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name))
    return out


@contextlib.contextmanager
def _quiet_exporter():
    """The exporters print progress to stdout and log every rewrite at INFO; keep the CLI's
    output to our own log lines (their text goes to DEBUG)."""
    names = ("onnx_ir", "onnxscript", "torch.onnx", "torch.export", "torch._dynamo")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)
        if buf.getvalue().strip():
            log.debug("exporter output:\n%s", buf.getvalue().rstrip())


def _export_stage(module: nn.Module, args: tuple, input_names: list[str],
                  output_names: list[str], path: Path, opset: int, exporter: str,
                  max_persons: int) -> None:
    """Export one stage with a dynamic first axis on every input and output."""
    with torch.no_grad(), warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")  # tracer/exporter chatter; the checker decides
        if exporter == "dynamo":
            batch = torch.export.Dim(BATCH_AXIS, min=1, max=max(max_persons, 2))
            if isinstance(module, _BodyArgs):
                shapes = tuple({0: batch} for _ in args)
            else:
                shapes = (tuple({0: batch} for _ in args),)
            prog = torch.onnx.export(module, args, input_names=input_names,
                                     output_names=output_names, dynamic_shapes=shapes,
                                     opset_version=opset, dynamo=True, verbose=False)
            prog.save(str(path), external_data=False)
        else:
            torch.onnx.export(module, args, str(path), input_names=input_names,
                              output_names=output_names, opset_version=opset, dynamo=False,
                              dynamic_axes={n: {0: BATCH_AXIS} for n in input_names + output_names})


class _BodyArgs(nn.Module):
    """The body stage with one positional argument per tensor (for ``dynamic_shapes``)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, pose6d, betas, cam, center, box_size, focal, principal):
        return self.body(pose6d, betas, cam, center, box_size, focal, principal)


def _check_graph(path: Path, stage: str, opset: int) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """``onnx.checker`` (full, with shape inference) + dynamic batch / static rest."""
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    domain_opset = {o.domain: o.version for o in model.opset_import}
    if domain_opset.get("", domain_opset.get("ai.onnx", 0)) < opset:
        raise ExportError(f"{path}: opset {domain_opset} below the requested {opset}")
    inputs, outputs = _tensor_infos(model.graph.input), _tensor_infos(model.graph.output)
    for t in inputs + outputs:
        if not t.shape or t.shape[0] != BATCH_AXIS or any(isinstance(d, str) for d in t.shape[1:]):
            raise ExportError(f"{path}: {stage} tensor {t.name} has shape {t.shape}; expected "
                              f"[{BATCH_AXIS}, static dims...]")
    return inputs, outputs


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote."""

    out_dir: Path
    manifest: ExportManifest
    seconds: dict[str, float]


def export_onnx(net: nn.Module, out_dir: str | Path, *, body: str, iterations: int,
                weights: Mapping[str, Any], family: ModelFamily | None = None,
                opset: int = DEFAULT_OPSET, exporter: str = "dynamo", max_persons: int = 16,
                example_batch: int = 2) -> ExportResult:
    """Export the four stage graphs of ``net`` and write ``export.yaml``.

    Parameters
    ----------
    net : nn.Module
        ``Refit`` or ``RefitKp`` (weights loaded), any device; exported on the CPU.
    out_dir : path
        Created if needed; existing stage files are overwritten.
    body : str
        ``body.model`` the pipeline uses with this network (``smpl`` / ``open``).
    iterations : int
        ``model.iterations``.
    weights : mapping
        ``source`` (and ``sha256`` of the weights file, if any), recorded as given.
    family : ModelFamily, optional
        Defaults to the family of ``net``'s class.
    opset : int
        ONNX opset (>= 16).
    exporter : str
        ``dynamo`` (torch.export, the default) or ``torchscript`` (the legacy tracer:
        faster to export, deprecated in torch).
    max_persons : int
        Upper bound of the ``persons`` axis recorded for TensorRT profiles.
    example_batch : int
        People in the tracing example (>= 2, so no size-1 specialisation can hide).

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportError
        Bad arguments, or a graph failing the checks.
    """
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} < {MIN_OPSET}: the marker lookup (GridSample) needs "
                          f"opset >= {MIN_OPSET}")
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter {exporter!r} is not one of {list(EXPORTERS)}")
    if example_batch < 2:
        raise ExportError("example_batch must be >= 2 (a batch of 1 can be specialised away)")
    family = family or family_of(net)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = net.to("cpu").eval()
    graphs = build_stage_graphs(net, family)
    camera = camera_tensors(example_camera(example_batch))
    enc_in = family.example_inputs(net, example_batch)
    with torch.no_grad():
        feats = graphs["encoder"](*enc_in)
        state = graphs["init"](*feats, *camera)
    feature_names = list(family.feature_names(net))
    sig = signatures(net, family, {n: tuple(f.shape[1:]) for n, f in zip(feature_names, feats)})
    args = {"encoder": enc_in, "init": (*feats, *camera), "step": (*feats, *state, *camera),
            "body": (*state[:3], *camera)}
    modules = dict(graphs)
    modules["body"] = _BodyArgs(graphs["body"])
    stages: dict[str, StageFile] = {}
    seconds: dict[str, float] = {}
    for stage in STAGES:
        path = out / f"{stage}.onnx"
        t0 = time.perf_counter()
        log.info("exporting %s -> %s (%s, opset %d)", stage, path, exporter, opset)
        try:
            _export_stage(modules[stage], args[stage], list(sig[stage].input_names),
                          list(sig[stage].outputs), path, opset, exporter, max_persons)
        except Exception as exc:  # the exporters raise many types; keep the cause
            raise ExportError(f"exporting the {stage} stage of {family.name} failed "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); "
                              "try --exporter torchscript") from exc
        inputs, outputs = _check_graph(path, stage, opset)
        if [t.name for t in outputs] != list(sig[stage].outputs):
            raise ExportError(f"{path}: outputs {[t.name for t in outputs]} != "
                              f"{list(sig[stage].outputs)}")
        stages[stage] = StageFile(path.name, sha256_file(path), inputs, outputs)
        seconds[stage] = time.perf_counter() - t0
    desc = family.describe(net)
    manifest = ExportManifest(
        model=family.name, backbone=str(desc.pop("backbone")), body=body,
        iterations=int(iterations), opset=opset, exporter=exporter, weights=dict(weights),
        feature_names=feature_names, stages=stages, architecture=desc,
        max_persons=int(max_persons), torch_version=str(torch.__version__),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_manifest(manifest, out)
    log.info("export written to %s (%s)", out, ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()))
    return ExportResult(out, manifest, seconds)


def write_manifest(manifest: ExportManifest, out_dir: str | Path) -> Path:
    """Write ``export.yaml`` into ``out_dir``."""
    path = Path(out_dir) / MANIFEST_NAME
    header = ("# Written by `refit-ros export`; checked on load (sha256 of every file, model,\n"
              "# body, iterations). Re-export instead of editing.\n")
    path.write_text(header + yaml.safe_dump(manifest.to_dict(), sort_keys=False))
    return path


def load_export(export_dir: str | Path, expect: Mapping[str, Any] | None = None,
                verify_files: bool = True) -> ExportManifest:
    """Read and validate an export folder.

    Parameters
    ----------
    export_dir : path
    expect : mapping, optional
        Values the manifest must hold (``model``, ``backbone``, ``body``, ``iterations``),
        e.g. from :func:`expectations_from_config`; a mismatch is an error naming both.
    verify_files : bool
        Check that every stage file exists and its sha256 matches.

    Raises
    ------
    ExportError
    """
    d = Path(export_dir)
    path = d / MANIFEST_NAME
    fix = f"run `refit-ros export --format onnx --out {d}`"
    if not path.is_file():
        raise ExportError(f"no {MANIFEST_NAME} in {d}: not an export folder; {fix}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ExportError(f"{path}: not valid YAML ({exc}); {fix}") from exc
    manifest = ExportManifest.from_dict(raw, str(path))
    if verify_files:
        for stage, s in manifest.stages.items():
            f = d / s.file
            if not f.is_file():
                raise ExportError(f"{f} (stage {stage}) is missing; {fix}")
            digest = sha256_file(f)
            if digest != s.sha256:
                raise ExportError(f"{f} changed since export: sha256 {digest[:12]}... != "
                                  f"{s.sha256[:12]}... in {path}; {fix}")
    for key, want in (expect or {}).items():
        got = getattr(manifest, key)
        if got != want:
            raise ExportError(
                f"{path}: exported with {key}={got!r} but the config asks for {want!r} "
                f"({_CONFIG_KEYS.get(key, key)}); {fix} with this config, or set "
                f"{_CONFIG_KEYS.get(key, key)}={got}")
    return manifest


_CONFIG_KEYS = {"model": "model.name", "backbone": "model.backbone", "body": "body.model",
                "iterations": "model.iterations"}


def expectations_from_config(cfg) -> dict[str, Any]:
    """What an export must match for this config (``model``, ``backbone``, ``body``,
    ``iterations``)."""
    expect: dict[str, Any] = {"model": cfg.model.name, "body": cfg.body.model,
                              "iterations": int(cfg.model.iterations)}
    if cfg.model.name == "refit":
        expect["backbone"] = cfg.model.backbone
    return expect


def onnx_ops(path: str | Path) -> dict[str, int]:
    """Op types of an ONNX graph (subgraphs included) -> count, domain-qualified when not
    the default domain."""
    import onnx

    counts: dict[str, int] = {}

    def walk(graph) -> None:
        for node in graph.node:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
            counts[key] = counts.get(key, 0) + 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(onnx.load(str(path), load_external_data=False).graph)
    return dict(sorted(counts.items()))
