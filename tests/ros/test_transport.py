"""Raw camera images across processes, as on a user's machine (issue 17).

The DDS transport is whatever refit_ros itself sets (``ros.transport``); the processes get
no profile from the tests (``conftest.product_env``).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import IN_CI, REPO_ROOT, product_env, require_ros
from node_process import RefitProcess, node_test_args

from refit_ros.config import ConfigError, load_config
from refit_ros.ros.transport import BUILTIN_ENV, PROFILE_ENV, configure_transport, profile_path

DEMO = REPO_ROOT / ".cache" / "demo" / "demo.mp4"
COUNTER = Path(__file__).with_name("smpl_counter.py")


# ----------------------------------------------------------------- ros.transport
def test_shm_loads_the_shipped_profile_into_a_clean_environment():
    env: dict[str, str] = {}
    said = configure_transport("shm", env)
    assert env == {PROFILE_ENV: str(profile_path())} and str(profile_path()) in said
    assert profile_path() == REPO_ROOT / "config" / "fastdds_shm.xml"


@pytest.mark.parametrize("user", [{PROFILE_ENV: "/my/profile.xml"}, {BUILTIN_ENV: "LARGE_DATA"},
                                  {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}])
def test_a_users_own_dds_choice_wins(user):
    env = dict(user)
    said = configure_transport("shm", env)
    assert env == user, "refit_ros must not override what the user configured"
    assert next(iter(user)) in said


def test_system_leaves_the_environment_alone_and_bad_values_are_refused():
    env: dict[str, str] = {}
    assert "left to the environment" in configure_transport("system", env) and env == {}
    with pytest.raises(ValueError, match="ros.transport"):
        configure_transport("tcp", env)
    with pytest.raises(ConfigError, match="ros.transport='tcp' is not one of"):
        load_config(overrides=["ros.transport=tcp"])
    assert load_config().ros.transport == "shm"


def test_profile_gives_a_large_segment_and_keeps_udp_on_every_interface():
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(profile_path()).getroot()
    descriptors = {d.findtext("d:transport_id", namespaces=ns): d
                   for d in root.iterfind(".//d:transport_descriptor", ns)}
    kinds = {d.findtext("d:type", namespaces=ns): d for d in descriptors.values()}
    assert set(kinds) == {"SHM", "UDPv4"}
    # five raw 1920x1080 rgb8 images fit in the segment
    assert int(kinds["SHM"].findtext("d:segment_size", namespaces=ns)) >= 5 * 1920 * 1080 * 3
    # no interface allow-list: other machines still receive the topics
    assert kinds["UDPv4"].find("d:interfaceWhiteList", ns) is None
    assert kinds["UDPv4"].find("d:interfaces", ns) is None
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    used = [t.text for t in participant.iterfind(".//d:userTransports/d:transport_id", ns)]
    assert sorted(used) == sorted(descriptors)


# ----------------------------------------------------------------- separate processes
def _demo_clip() -> Path:
    if not DEMO.is_file():
        if IN_CI:
            pytest.fail(f"demo clip missing at {DEMO} (make test fetches it)")
        pytest.skip(f"demo clip not fetched ({DEMO}; bash scripts/fetch_demo_video.sh)")
    return DEMO


def count_bodies(seconds: float, node_name: str, env: dict[str, str],
                 timeout: float = 240.0) -> dict:
    """Run :mod:`smpl_counter` in its own process and return its JSON line."""
    out = subprocess.run([sys.executable, str(COUNTER), str(seconds), node_name,
                          "--timeout", str(timeout)], env=env, capture_output=True, text=True,
                         timeout=timeout + seconds + 60)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def frames_it_could(result: dict, rate: float) -> float:
    """Frames the node could have processed in the window: the source's frames, or fewer
    when its own per-frame processing time (median of its diagnostics) is the limit."""
    assert result["last_ms"], f"no processing diagnostics from the node: {result}"
    per_frame_s = sorted(result["last_ms"])[len(result["last_ms"]) // 2] / 1000.0
    return result["seconds"] * min(rate, 1.0 / per_frame_s)


@pytest.mark.ros
def test_raw_frames_from_a_separate_source_process_reach_the_node_at_its_rate(tmp_path):
    """`refit-ros source` (1768x994 rgb8 frames, 5.3 MB each, best effort) and `refit-ros
    node` in two processes, no profile set by the test: the node processes >= 80% of the
    frames it could (with Fast DDS's defaults almost none arrive: see config/fastdds_shm.xml)."""
    require_ros()
    clip = _demo_clip()
    domain = random.randint(201, 230)
    extra = node_test_args(tmp_path)
    node = RefitProcess(["node", *extra], tmp_path / "node.log", domain)
    source = None
    try:
        node.wait_log("ready:", timeout=240, fail_on=("cannot load the pipeline",))
        assert "DDS transport: shared memory" in node.log()
        rate = 10.0
        source = RefitProcess(["source", "--set", f"source.input={clip}", "--set",
                               f"source.rate={rate}", "--set", "source.loop=true"],
                              tmp_path / "source.log", domain)
        env = product_env(ROS_DOMAIN_ID=str(domain))
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        result = count_bodies(20.0, "refit_node", env)
        could = frames_it_could(result, rate)
        assert result["messages"] >= 0.8 * could, (result, could, node.log()[-2000:])
        assert result["with_bodies"] >= 0.8 * result["messages"], result
    finally:
        if source is not None:
            assert source.stop() == 0, source.log()[-2000:]
        assert node.stop() == 0, node.log()[-2000:]
    assert "Failed to publish log message" not in node.log() + source.log()
