"""How many raw images cross between two processes, per DDS transport and QoS
(``refit-ros bench transport``).

Each case starts a subscriber process and a publisher process (this module run with ``-m``)
on a private domain: the publisher sends ``W x H`` rgb8 ``sensor_msgs/Image`` at ``rate`` for
``seconds`` (RELIABLE writer, depth 2, as ``refit-ros source``); the subscriber (depth 1,
BEST_EFFORT as the node, or RELIABLE) counts what arrives and the publish-to-callback latency.

Transports (set in both processes' environment):
``default`` Fast DDS's defaults (no profile, what a user gets without refit_ros's setting);
``shm`` the shipped ``config/fastdds_shm.xml`` (``ros.transport: shm``);
``large_data`` ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` (UDP discovery, TCP + SHM data).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

from refit_ros.ros.transport import BUILTIN_ENV, PROFILE_ENV, configure_transport

TRANSPORT_CASES = ("default", "shm", "large_data")


def case_env(transport: str, domain: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of both processes for one transport case."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in (PROFILE_ENV, BUILTIN_ENV)}
    env.update(ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if transport == "shm":
        configure_transport("shm", env)
    elif transport == "large_data":
        env[BUILTIN_ENV] = "LARGE_DATA"
    elif transport != "default":
        raise ValueError(f"transport {transport!r} is not one of {list(TRANSPORT_CASES)}")
    return env


def run_case(transport: str, reliability: str, width: int, height: int, rate: float,
             seconds: float) -> dict:
    """One publisher -> subscriber run; returns counts and latencies."""
    domain = random.randint(100, 230)
    env = case_env(transport, domain)
    args = [str(width), str(height), str(rate), str(seconds), reliability]
    cmd = [sys.executable, "-m", "refit_ros.ros.transport_bench"]
    sub = subprocess.Popen([*cmd, "sub", *args], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    time.sleep(1.0)
    pub = subprocess.run([*cmd, "pub", *args], env=env, capture_output=True, text=True,
                         timeout=seconds + 60)
    out, _ = sub.communicate(timeout=seconds + 60)
    published = json.loads(pub.stdout.strip().splitlines()[-1])["published"]
    got = json.loads(out.strip().splitlines()[-1])
    lat = sorted(got["latency_ms"])
    return {"transport": transport, "reliability": reliability, "width": width,
            "height": height, "mb_per_image": round(width * height * 3 / 1e6, 2), "rate": rate,
            "published": published, "received": len(lat),
            "received_fraction": round(len(lat) / max(published, 1), 3),
            "latency_ms_median": round(lat[len(lat) // 2], 1) if lat else None,
            "latency_ms_p95": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None}


def _probe(role: str, width: int, height: int, rate: float, seconds: float,
           reliability: str) -> None:
    import numpy as np
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = Node(f"transport_bench_{role}")
    if role == "pub":
        pub = node.create_publisher(Image, "/transport_bench/image", QoSProfile(
            depth=2, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST))
        msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        msg.data = np.random.default_rng(0).integers(0, 255, height * width * 3,
                                                     dtype=np.uint8).tobytes()
        t0 = time.monotonic()
        while pub.get_subscription_count() == 0 and time.monotonic() - t0 < 15:
            time.sleep(0.05)
        time.sleep(0.5)
        t0, sent = time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            msg.header.stamp = node.get_clock().now().to_msg()
            pub.publish(msg)
            sent += 1
            time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
        time.sleep(1.0)  # let the last ones out before the participant goes
        print(json.dumps({"published": sent}), flush=True)
    else:
        latency: list[float] = []

        def on_image(m) -> None:
            sent_ns = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
            latency.append((node.get_clock().now().nanoseconds - sent_ns) / 1e6)

        rel = (ReliabilityPolicy.RELIABLE if reliability == "reliable"
               else ReliabilityPolicy.BEST_EFFORT)
        node.create_subscription(Image, "/transport_bench/image", on_image, QoSProfile(
            depth=1, reliability=rel, history=HistoryPolicy.KEEP_LAST))
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds + 18:
            rclpy.spin_once(node, timeout_sec=0.05)
        print(json.dumps({"latency_ms": latency}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    _role, _w, _h, _rate, _secs, _rel = sys.argv[1:7]
    _probe(_role, int(_w), int(_h), float(_rate), float(_secs), _rel)
