"""The ONNX export the pipeline runs on when ``runtime.backend`` is not ``torch``.

``runtime.export_dir`` set
    That folder must hold an export of the configured model (``model.name``, ``body.model``,
    ``model.iterations``, ``model.backbone``) made from the configured weights (sha256 in
    ``export.yaml``); otherwise loading fails with a message naming ``refit-ros export``.
``runtime.export_dir`` empty (the default)
    A per-user cache folder, ``<cache>/export/<model>-<body>[-<backbone>]`` with
    ``<cache>`` = ``$REFIT_ROS_CACHE``, else ``$XDG_CACHE_HOME/refit_ros``, else
    ``~/.cache/refit_ros``. It is exported automatically the first time it is needed
    (about 25 s for ReFit-KP on a 2-core CPU) and again whenever the weights file changes.
    Processes starting together (a launch file with several nodes) take a file lock, so
    one exports and the others wait and reuse it.

No network is involved: the export is made from the local weights with ``torch.onnx``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from refit_ros.export.onnx import (DEFAULT_OPSET, ExportError, ExportManifest,
                                      expectations_from_config, export_onnx, load_export,
                                      sha256_file)

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Where refit_ros keeps per-user generated files (exports)."""
    env = os.environ.get("REFIT_ROS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "refit_ros"


def default_export_dir(cfg) -> Path:
    """The cache folder of the configured model's export (``runtime.export_dir`` empty)."""
    name = f"{cfg.model.name}-{cfg.body.model}"
    if cfg.model.name == "refit":
        name += f"-{cfg.model.backbone}"
    return cache_root() / "export" / name


def weights_path(cfg) -> Path | None:
    """The weights file the config names (ReFit-KP: the shipped file when empty)."""
    from refit_ros.paths import resolve_path

    if cfg.model.weights:
        return resolve_path(cfg.model.weights)
    if cfg.model.name == "refit_kp":
        from refit_ros.models.refit_kp.loading import DEFAULT_WEIGHTS

        return Path(DEFAULT_WEIGHTS)
    return None


def weights_record(cfg) -> dict[str, str]:
    """``source`` (and ``sha256`` when the file exists) of the configured weights, as
    recorded in ``export.yaml``."""
    path = weights_path(cfg)
    record = {"source": str(path) if path else f"{cfg.model.name} (no weights file)"}
    if path is not None and path.is_file():
        record["sha256"] = sha256_file(path)
    return record


def same_weights(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two weights records name the same weights (by sha256 when either has one)."""
    if "sha256" in a or "sha256" in b:
        return a.get("sha256") == b.get("sha256")
    return a.get("source") == b.get("source")


def check_weights(manifest: ExportManifest, cfg, export_dir: Path) -> None:
    """Refuse an export made from other weights than the configured ones."""
    want = weights_record(cfg)
    if not same_weights(manifest.weights, want):
        raise ExportError(
            f"{export_dir} was exported from {manifest.weights.get('source')} (sha256 "
            f"{str(manifest.weights.get('sha256', '?'))[:12]}...) but the config uses "
            f"{want['source']} (sha256 {want.get('sha256', '?')[:12]}...); run `refit-ros "
            f"export --format onnx --out {export_dir} --force` with this config")


def ensure_export(cfg, build_net: Callable[[], nn.Module], export_dir: Path | None = None, *,
                  opset: int = DEFAULT_OPSET, exporter: str = "dynamo",
                  max_persons: int = 8) -> tuple[Path, ExportManifest]:
    """An up-to-date export of the configured model, made now if missing or stale.

    Parameters
    ----------
    cfg : Config
    build_net : callable
        Returns the torch network with the configured weights (only called to export).
    export_dir : Path, optional
        Default: :func:`default_export_dir`.
    opset, exporter, max_persons
        As for :func:`refit_ros.export.onnx.export_onnx`.

    Returns
    -------
    (Path, ExportManifest)
    """
    out = Path(export_dir) if export_dir is not None else default_export_dir(cfg)
    expect = expectations_from_config(cfg)
    weights = weights_record(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        try:
            manifest = load_export(out, expect)
            if same_weights(manifest.weights, weights):
                return out, manifest
            reason = f"it was made from other weights ({manifest.weights.get('source')})"
        except ExportError as exc:
            reason = str(exc).split(";")[0]
        log.warning("exporting %s to ONNX for runtime.backend=%s into %s (once; ~30 s on a "
                    "small CPU): %s", cfg.model.name, cfg.runtime.backend, out, reason)
        t0 = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        try:
            export_onnx(build_net(), tmp, body=cfg.body.model, iterations=int(cfg.model.iterations),
                        weights=weights, opset=opset, exporter=exporter,
                        max_persons=max(max_persons, 2))
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("export ready in %.0f s: %s", time.perf_counter() - t0, out)
        return out, load_export(out, expect)
