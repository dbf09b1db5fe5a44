"""Run ``refit-ros`` subprocesses for the integration tests (real node, real pipeline)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

from conftest import REPO_ROOT, product_env

#: Set to 1 to run the node tests on seeded, untrained ReFit-KP weights when the shipped
#: weights file is missing (never implicit: the tests then check plumbing, not fits).
SEEDED_ENV = "REFIT_NODE_TEST_SEEDED_WEIGHTS"


def node_test_args(tmp_dir: Path) -> list[str]:
    """Extra ``refit-ros`` arguments for the integration tests.

    ``REFIT_NODE_TEST_ARGS`` when set. Otherwise none: the node runs the default config
    with the shipped weights. When the default model's shipped weights file is missing
    the tests fail (``pytest.fail``, naming the file), unless ``REFIT_NODE_TEST_SEEDED_WEIGHTS=1``
    asks explicitly for seeded (untrained) ReFit-KP weights written to ``tmp_dir`` (the
    real detector + ReFit loop + body model still run; a warning says so).
    """
    if "REFIT_NODE_TEST_ARGS" in os.environ:
        return shlex.split(os.environ["REFIT_NODE_TEST_ARGS"])
    from refit_ros.config import load_config

    cfg = load_config()
    if cfg.model.name != "refit_kp" or cfg.model.weights:
        return []
    from refit_ros.models.refit_kp.loading import DEFAULT_WEIGHTS

    if DEFAULT_WEIGHTS.is_file():
        return []
    if os.environ.get(SEEDED_ENV) != "1":
        import pytest

        pytest.fail(f"the shipped ReFit-KP weights {DEFAULT_WEIGHTS} are missing, so the node "
                    "tests cannot run the default config (restore the file, e.g. `git lfs "
                    f"pull`); set {SEEDED_ENV}=1 to run them on seeded, untrained weights "
                    "instead, or REFIT_NODE_TEST_ARGS to choose the arguments", pytrace=False)
    import torch

    from refit_ros.models.refit_kp.config import RefitKpConfig
    from refit_ros.models.refit_kp.loading import save_refit_kp
    from refit_ros.models.refit_kp.model import RefitKp
    from refit_ros.pipeline import build_body

    torch.manual_seed(0)
    path = save_refit_kp(RefitKp(build_body(cfg), RefitKpConfig()), tmp_dir / "seeded_refit_kp.pt",
                         meta={"seeded": 0, "trained": False})
    warnings.warn(f"{SEEDED_ENV}=1 and shipped weights {DEFAULT_WEIGHTS} missing: the node "
                  f"tests use seeded, UNTRAINED weights ({path})")
    return ["--set", f"model.weights={path}"]


class RefitProcess:
    """``refit-ros <args>`` with its log captured to a file; SIGINT on stop."""

    def __init__(self, args: list[str], log_path: Path, domain_id: int) -> None:
        # No DDS profile from the tests: the process sets its own transport (ros.transport).
        env = product_env(ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1",
                          RCUTILS_LOGGING_BUFFERED_STREAM="0")
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self.log_path = log_path
        self._log = open(log_path, "wb")
        exe = Path(sys.executable).with_name("refit-ros")
        self.proc = subprocess.Popen([str(exe), *args], cwd=REPO_ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 180.0, fail_on: tuple[str, ...] = ()) -> None:
        """Wait for ``text`` in the log; fail at once if the process exits or logs ``fail_on``."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            bad = [f for f in fail_on if f in self.log()]
            if bad:
                raise AssertionError(f"refit-ros logged {bad[0]!r}:\n{self.log()[-3000:]}")
            if self.proc.poll() is not None:
                raise AssertionError(f"refit-ros exited ({self.proc.returncode}) before "
                                     f"logging {text!r}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the log within {timeout} s:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode
