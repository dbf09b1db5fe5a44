"""``refit-ros parity FIXTURE_DIR``: check ReFit against a reference fixture.

Builds the model from the fixture (weight rule, or ``--checkpoint FILE``: the network
weights of a checkpoint in the official trainer's format; sha256 check), runs its inputs and
compares every prediction and intermediate per iteration. Exit 0 only when all are within
the fixture's tolerances, 1 when some are not, 2 when the fixture cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys

from refit_ros.parity.fixture import FixtureError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fixture_dir", help="folder in the refit_reference format "
                        "(manifest.json, inputs.npz, outputs.npz, ...)")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "tensorrt"],
                        help="inference backend; onnxruntime/tensorrt export the fixture model to "
                        "ONNX (or reuse --export-dir), run the export and also compare it with torch")
    parser.add_argument("--export-dir", default=None,
                        help="onnxruntime/tensorrt: folder for the fixture's ONNX export, reused "
                        "when its export.yaml names this fixture (default: a temporary folder)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="float64 also checks against the fixture's float64 references")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="take the network weights from this checkpoint (the official "
                        "trainer's checkpoint_best.pth.tar format, or a state dict; loaded "
                        "safely, strictly) instead of the fixture's weight rule; passes only "
                        "if it holds the weights the fixture was made with (torch backend)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")


def run(args: argparse.Namespace) -> int:
    from refit_ros.parity.official import run_parity

    checkpoint = getattr(args, "checkpoint", None)
    if args.backend != "torch" and checkpoint is not None:
        print("refit-ros parity: --checkpoint is supported with --backend torch only",
              file=sys.stderr)
        return 2
    if args.backend != "torch":
        return _run_backend_parity(args)
    try:
        report = run_parity(args.fixture_dir, backend=args.backend, device=args.device,
                            dtype=args.dtype, checkpoint=checkpoint)
    except (FixtureError, ValueError) as exc:
        print(f"refit-ros parity: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        _print_table(report)
    return 0 if report.ok else 1


def _print_table(report) -> None:
    w = report.weights
    print(f"fixture {report.fixture}  backend {report.backend}  device {report.device}  "
          f"iters {report.iters}  batch {report.batch}  dtype {report.dtype}")
    source = (f"from {w['source']} ({w['loaded']} loaded)" if "source" in w
              else f"{w['generated']} generated")
    print(f"weights: {source}, sha256 {w['sha256_ok']}/{w['entries']} match; "
          f"state_dict problems: {len(report.state_dict_problems)}")
    for problem in w.get("mismatched", [])[:5]:
        print(f"  weight {problem}")
    print(f"{'output':28s} {'max abs':>10s} {'max rel':>10s} {'atol':>9s}")
    for name, c in report.outputs.items():
        flag = "ok" if c.ok else "FAIL"
        print(f"{name:28s} {c.max_abs:10.3e} {c.max_rel:10.3e} {c.atol:9.1e}  {flag}")
    for name, c in report.float64_outputs.items():
        flag = "ok" if c.ok else "FAIL"
        print(f"{'f64 ' + name:28s} {c.max_abs:10.3e} {c.max_rel:10.3e} {c.atol:9.1e}  {flag}")
    name, ratio = report.worst()
    print(f"{'PASS' if report.ok else 'FAIL'}: worst {name} at {ratio:.2f} x atol")


def _run_backend_parity(args) -> int:
    """``refit-ros parity FIXTURE --backend onnxruntime|tensorrt`` (exit 0 pass, 1 fail,
    2 unusable fixture/export/backend)."""
    from refit_ros.parity.backends import VS_TORCH_ATOL_OVERRIDES, run_backend_parity, summary
    from refit_ros.runtime.base import BackendError

    try:
        report = run_backend_parity(args.fixture_dir, args.backend, args.device,
                                    getattr(args, "export_dir", None))
    except (FixtureError, ValueError, BackendError) as exc:
        print(f"refit-ros parity: {exc}", file=sys.stderr)
        return 2
    if args.json:
        d = report.to_dict()
        d["summary"] = summary(report)
        print(json.dumps(d, indent=1, default=str))
    else:
        print(f"fixture {report.fixture}  backend {report.backend}  device {report.device}  "
              f"iters {report.iters}  batch {report.batch}  export {report.export_dir}")
        print(f"{'output':22s} {'vs ref':>10s} {'ref atol':>9s} {'vs torch':>10s} {'bound':>9s}")
        for name, c in report.outputs.items():
            vt = report.vs_torch[name]
            bound = report.vs_torch_bound(name)
            flag = "ok" if c.ok and vt <= bound else "FAIL"
            print(f"{name:22s} {c.max_abs:10.3e} {c.atol:9.1e} {vt:10.3e} {bound:9.0e}  {flag}")
        s = summary(report)
        print(f"not exposed by any graph (not compared): {', '.join(s['not_compared']) or '-'}")
        print(f"{'PASS' if report.ok else 'FAIL'}: max |{report.backend} - torch| "
              f"{s['max_abs_vs_torch_without_overrides']:.3e} (bound {report.vs_torch_atol:.0e}; "
              f"pred_j2d {report.vs_torch.get('pred_j2d', float('nan')):.3e} px, bound "
              f"{VS_TORCH_ATOL_OVERRIDES['pred_j2d']:.0e}); "
              f"worst vs reference {s['reference_worst'][0]} at {s['reference_worst'][1]:.2f} x atol")
    return 0 if report.ok else 1
