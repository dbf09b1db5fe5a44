"""Shared by the tests/test_runtime_*.py files: one ONNX export of the fixture model per
test session (HRNet-W48 export takes minutes on the 2-core CPU)."""

from __future__ import annotations

import os
from pathlib import Path

_CACHE: dict[str, Path] = {}


def fixture_export(fixture_dir: Path, tmp_path_factory) -> Path:
    """The fixture model exported once per session (or into ``$REFIT_EXPORT_CACHE``, which
    is reused across sessions when its export.yaml names the fixture)."""
    key = str(fixture_dir)
    if key not in _CACHE:
        from refit_ros.parity.fixture import load_fixture
        from refit_ros.parity.official import build_fixture_model
        from refit_ros.parity.backends import export_for_fixture

        out = os.environ.get("REFIT_EXPORT_CACHE") or tmp_path_factory.mktemp("fixture-export")
        fx = load_fixture(fixture_dir)
        model, _ = build_fixture_model(fx)
        _CACHE[key] = Path(export_for_fixture(fx, model, out))
    return _CACHE[key]
