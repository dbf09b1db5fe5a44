"""Shared test fixtures and the rule that ROS tests never silently skip under CI."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# ROS traffic of the tests stays on this machine (also for a bare `pytest` run).
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

# What a user's camera driver process is told to set (README, "Running on your camera"):
# this test process publishes raw images to `refit-ros` subprocesses as a driver would, so it
# follows the same instruction, through the product's own function. The processes the tests
# start never inherit it (:func:`product_env`): they get only what refit_ros itself sets
# (`ros.transport`), as on a user's machine.
from refit_ros.ros.transport import BUILTIN_ENV, PROFILE_ENV, configure_transport  # noqa: E402

_FASTDDS_VARS = (PROFILE_ENV, BUILTIN_ENV)
_USER_FASTDDS = {k: os.environ[k] for k in _FASTDDS_VARS if k in os.environ}
configure_transport("shm")


def product_env(**extra: str) -> dict[str, str]:
    """The environment for a `refit-ros` / `ros2 launch` subprocess: this process's, without
    the Fast DDS settings it made for itself as a camera driver (settings the user had before
    the tests started are kept)."""
    env = {k: v for k, v in os.environ.items() if k not in _FASTDDS_VARS}
    env.update(_USER_FASTDDS)
    env.update(extra)
    return env


def require_ros():
    """Import rclpy + the generated messages; skip locally, fail under CI=true."""
    try:
        import rclpy  # noqa: F401
        from refit_ros.msg import SMPL, SMPLArray  # noqa: F401
    except ImportError as exc:  # pragma: no cover - environment dependent
        if IN_CI:
            pytest.fail(f"ROS test cannot run under CI (rclpy/messages missing): {exc}")
        pytest.skip(f"rclpy or refit_ros messages unavailable: {exc} (run `make setup`)")


def require_module(name: str, hint: str = ""):
    """Import a test dependency (``onnx``, ``onnxruntime``, ...): skip locally when it is
    missing, fail under CI=true (``onnxruntime`` runs the default backend: a CI run that
    skipped its tests would pass without having checked it). Usable at module level."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        msg = f"{name} is not importable ({exc}){': ' + hint if hint else ''}"
        if IN_CI:
            pytest.fail(f"test dependency missing under CI: {msg}", pytrace=False)
        pytest.skip(f"{msg} (pip install -r requirements/base.txt; CI=true fails instead)",
                    allow_module_level=True)


def _shared_fixture(env: str, name: str, marker: str) -> Path:
    """``../shared/fixtures/<name>`` (or ``$<env>``): skip when absent, fail under CI=true."""
    cand = Path(os.environ.get(env, REPO_ROOT.parent / "shared/fixtures" / name))
    if not (cand / marker).is_file():
        if IN_CI:
            pytest.fail(f"fixture {name} missing at {cand}")
        pytest.skip(f"fixture {name} not found at {cand} (set {env})")
    return cand


@pytest.fixture(scope="session")
def reference_fixture_dir() -> Path:
    """The shared ReFit reference fixture (``../shared/fixtures/refit_reference``)."""
    return _shared_fixture("REFIT_FIXTURE", "refit_reference", "manifest.json")


@pytest.fixture(scope="session")
def multiview_fixture_dir() -> Path:
    """The real 3D dev set's ground truth (``../shared/fixtures/p2s_multi``)."""
    return _shared_fixture("REFIT_MULTIVIEW_FIXTURE", "p2s_multi", "gt.npz")


@pytest.fixture(scope="session")
def dev_videos_dir() -> Path:
    """The dev set's videos (``scripts/fetch_dev_set.sh``; ``make test`` fetches them)."""
    cand = REPO_ROOT / ".cache/p2s_multi/videos"
    if not all((cand / f"cam0{i}.mp4").is_file() for i in range(1, 5)):
        if IN_CI:
            pytest.fail(f"dev-set videos missing in {cand} (bash scripts/fetch_dev_set.sh)")
        pytest.skip(f"dev-set videos not in {cand}: run `bash scripts/fetch_dev_set.sh`")
    return cand
