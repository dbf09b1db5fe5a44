"""``refit-ros export --format onnx|tensorrt --out DIR``: the fitting network for the runtimes.

``--format onnx`` writes ``encoder.onnx``, ``init.onnx``, ``step.onnx``, ``body.onnx`` and
``export.yaml`` (see :mod:`refit_ros.export.onnx`). The network is the config's
(``model.name``, ``model.weights``, ``body.*``), or with ``--fixture DIR`` the official
ReFit with a reference fixture's rule weights (tests, parity). ``--format tensorrt`` also
builds (or finds in the per-user engine cache, ``<cache>/engines``) the TensorRT engines
for the config's ``runtime.tensorrt`` settings (precision, max/opt persons, calibration
set; the node reads the same keys, so it loads these engines); ``--precision``,
``--max-persons``, ``--opt-persons`` and ``--calibration`` override them. It needs the
``tensorrt`` package and an NVIDIA GPU.

Prints a JSON summary; exit 0 on success, 2 when the inputs or packages are missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from refit_ros.cli import add_config_arguments, config_from_args

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--format", default="onnx", choices=["onnx", "tensorrt"],
                        help="onnx: ONNX files + export.yaml; tensorrt: also TensorRT engines")
    parser.add_argument("--out", default=None,
                        help="output folder (default: runtime.export_dir, else the per-user cache "
                        "folder the pipeline reads, ~/.cache/refit_ros/export/MODEL-BODY)")
    parser.add_argument("--fixture", default=None, metavar="DIR",
                        help="export the official ReFit with this reference fixture's rule "
                        "weights instead of the config's model (tests, parity)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 16)")
    parser.add_argument("--exporter", default="dynamo", choices=["dynamo", "torchscript"],
                        help="torch.export-based exporter (default) or the legacy tracer")
    parser.add_argument("--max-persons", type=int, default=None,
                        help="largest number of people per call the TensorRT profile covers "
                        "(default: runtime.tensorrt.max_persons)")
    parser.add_argument("--opt-persons", type=int, default=None,
                        help="TensorRT profile optimum, people per call (default: "
                        "runtime.tensorrt.opt_persons)")
    parser.add_argument("--precision", default=None, choices=["fp32", "fp16", "int8"],
                        help="TensorRT engines: fp32 (TF32 off), fp16, or int8 encoder "
                        "(calibrated) with fp16 loop stages (default: runtime.tensorrt.precision)")
    parser.add_argument("--calibration", default=None, metavar="FILE.npz",
                        help="int8: encoder inputs of real people (see --calibration-source; "
                        "default: runtime.tensorrt.calibration)")
    parser.add_argument("--calibration-source", default=None, metavar="VIDEO|FOLDER",
                        help="int8: cut the calibration set from this video / image folder "
                        "with the configured detector (saved as OUT/calibration.npz)")
    parser.add_argument("--calibration-size", type=int, default=512,
                        help="people in the calibration set cut from --calibration-source")
    parser.add_argument("--force", action="store_true",
                        help="re-export even if OUT already holds this model's export")


def run(args: argparse.Namespace) -> int:
    from refit_ros.export.cache import same_weights
    from refit_ros.pipeline import export_dir_from_config
    from refit_ros.runtime.base import BackendError
    from refit_ros.export.onnx import ExportError, export_onnx, load_export

    from refit_ros.runtime.tensorrt_backend import engine_options

    cfg = config_from_args(args)
    out = Path(args.out) if args.out else export_dir_from_config(cfg)
    try:
        opts = engine_options(cfg, args.precision, args.max_persons, args.opt_persons,
                              args.calibration)
        if args.format == "tensorrt":
            from refit_ros.runtime.tensorrt_backend import require_tensorrt

            require_tensorrt()  # fail before a long ONNX export
        if args.fixture:
            from refit_ros.parity.fixture import load_fixture
            from refit_ros.parity.official import build_fixture_model
            from refit_ros.parity.backends import fixture_weights_source

            fx = load_fixture(args.fixture)
            body, weights, iterations = "smpl", fixture_weights_source(fx), int(fx.inputs.get("iters", 5))

            def build_net():
                return build_fixture_model(fx)[0]
        else:
            from refit_ros.pipeline import build_network
            from refit_ros.export.cache import weights_record

            body, weights, iterations = cfg.body.model, weights_record(cfg), cfg.model.iterations

            def build_net():  # only when exporting: a current export needs no network
                return build_network(cfg)
        manifest = None
        if not args.force:
            try:
                manifest = load_export(out)
                if (not same_weights(manifest.weights, weights) or manifest.body != body
                        or manifest.iterations != iterations or manifest.opset != args.opset
                        or manifest.exporter != args.exporter):
                    manifest = None
                else:
                    log.info("%s already holds this export (sha256 checked); --force re-exports", out)
            except ExportError:
                manifest = None
        seconds = {}
        if manifest is None:
            result = export_onnx(build_net(), out, body=body, iterations=iterations, weights=weights,
                                 opset=args.opset, exporter=args.exporter,
                                 max_persons=max(opts.max_persons, 2))
            manifest, seconds = result.manifest, result.seconds
        summary = {"out": str(out), "model": manifest.model, "backbone": manifest.backbone,
                   "body": manifest.body, "opset": manifest.opset, "exporter": manifest.exporter,
                   "files": {k: {"file": s.file, "sha256": s.sha256,
                                 "inputs": s.input_names, "outputs": s.output_names}
                             for k, s in manifest.stages.items()},
                   "export_seconds": seconds}
        if args.format == "tensorrt":
            summary["tensorrt"] = _build_engines(args, cfg, out, manifest, opts)
    except (ExportError, BackendError, ValueError, FileNotFoundError) as exc:
        print(f"refit-ros export: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


def _build_engines(args, cfg, out: Path, manifest, opts) -> dict:
    """Build (or find in the per-user cache) the engines for ``opts``
    (:class:`~refit_ros.runtime.tensorrt_backend.EngineOptions`)."""
    from refit_ros.export.families import family_for
    from refit_ros.runtime.tensorrt_backend import TensorRTRunner

    calibration = opts.calibration
    if opts.precision == "int8" and calibration is None:
        if not args.calibration_source:
            raise ValueError("--precision int8 needs real crops: --calibration FILE.npz or "
                             "--calibration-source VIDEO|FOLDER")
        from refit_ros.detect import build_detector
        from refit_ros.export.calibration import collect_calibration_inputs, save_calibration
        from refit_ros.io.frames import open_source

        inputs = collect_calibration_inputs(
            open_source(args.calibration_source), build_detector(cfg, video=False), family_for(manifest.model),
            limit=args.calibration_size, crop_size=int(manifest.architecture["crop_size"]))
        calibration = save_calibration(inputs, out / "calibration.npz")
    runner = TensorRTRunner(out, manifest, precision=opts.precision,
                            max_persons=opts.max_persons, calibration=calibration,
                            opt_persons=opts.opt_persons,
                            device=cfg.model.device if cfg.model.device.startswith("cuda")
                            else "cuda")
    return runner.describe()
