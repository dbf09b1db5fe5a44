"""`ros2 launch refit_ros camera.launch.py` itself, as a user runs it (issue 17).

refit_ros is installed colcon-style into a temporary prefix (scripts/install_colcon_style.sh)
and the real launch tooling from ../shared/tools/ros2launch beside it (not on PyPI; a user's
ROS 2 has it). The launch starts the node, the camera source (raw 1768x994 frames of the demo
clip at 10 fps, in its own process) and the recorder; bodies are counted on /human/smpl from
another process; SIGINT ends it and every process must finish cleanly. No DDS profile comes
from the test: only what refit_ros sets itself.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, REPO_ROOT, product_env, require_ros
from test_transport import _demo_clip, count_bodies, frames_it_could

TOOLING = Path(os.environ.get("REFIT_ROS2LAUNCH_DIR",
                              REPO_ROOT.parent / "shared" / "tools" / "ros2launch"))
NODES = ("refit_node", "refit_source", "refit_recorder")

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def launch_env(tmp_path_factory):
    """Environment with refit_ros installed colcon-style and the launch tooling on top."""
    require_ros()
    if not (TOOLING / "install.sh").is_file():
        if IN_CI:
            pytest.fail(f"ros2 launch tooling missing at {TOOLING} (../shared/tools/ros2launch)")
        pytest.skip(f"ros2 launch tooling not found at {TOOLING}")
    venv = Path(sys.prefix)
    root = tmp_path_factory.mktemp("ros2launch")
    tools, install = root / "tools", root / "install"
    for cmd in (["bash", str(TOOLING / "install.sh"), str(venv), str(tools)],
                ["bash", str(REPO_ROOT / "scripts" / "install_colcon_style.sh"), str(install)]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, VENV=str(venv)))
        assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    site = "lib/python3.11/site-packages"
    env = product_env(
        AMENT_PREFIX_PATH=os.pathsep.join(map(str, (install, tools, venv))),
        PYTHONPATH=os.pathsep.join((str(install / site), str(tools / site))),
        LD_LIBRARY_PATH=os.pathsep.join(filter(None, (str(install / "lib"), str(tools / "lib"),
                                                      os.environ.get("LD_LIBRARY_PATH")))),
        PATH=os.pathsep.join((str(tools / "bin"), str(venv / "bin"), os.environ["PATH"])),
        ROS_DOMAIN_ID=str(random.randint(231, 232)),
        PYTHONUNBUFFERED="1")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env, install


def test_ros2_launch_camera_source_node_recorder_and_a_clean_ctrl_c(launch_env, tmp_path):
    env, install = launch_env
    clip = _demo_clip()
    mcap = tmp_path / "run.mcap"
    log_path = tmp_path / "launch.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["ros2", "launch", "refit_ros", "camera.launch.py", "source:=true",
             f"input:={clip}", "rate:=10", "loop:=true", f"mcap:={mcap}"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            result = count_bodies(20.0, "refit_node", env)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait(10)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    tail = text[-4000:]
    # installed package, not this checkout: the launch found the installed share directory
    assert str(install / "share" / "refit_ros" / "config" / "fastdds_shm.xml") in text, tail
    # raw 5.3 MB images at 10 frames/s for 20 s: the node processes >= 80% of what it could
    could = frames_it_could(result, 10.0)
    assert result["messages"] >= 0.8 * could, (result, could, tail)
    assert result["with_bodies"] >= 0.8 * result["messages"], (result, tail)
    assert code == 0, f"ros2 launch exited with {code}:\n{tail}"
    for name in NODES:
        assert any(f"[{name}-" in line and "process has finished cleanly" in line
                   for line in text.splitlines()), f"{name} did not finish cleanly:\n{tail}"
    for bad in ("Traceback", "Failed to publish log message", "process has died"):
        assert bad not in text, f"{bad!r} in the launch log:\n{tail}"
    assert mcap.is_file() and "wrote " in text, tail
