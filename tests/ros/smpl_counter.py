"""Count what a refit node publishes, from a process of its own (as a user's subscriber).

    python smpl_counter.py SECONDS NODE_NAME [--timeout S]

Waits for the first SMPLArray on /human/smpl, then counts for SECONDS and prints one JSON
line: messages, messages with bodies, and the node's own per-frame processing times
(``last_ms`` of its "processing" diagnostics) seen in that window.
"""

import json
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from refit_ros.msg import SMPLArray


def main() -> int:
    seconds, node_name = float(sys.argv[1]), sys.argv[2]
    timeout = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 240.0
    rclpy.init()
    node = Node("smpl_counter")
    bodies: list[int] = []
    last_ms: list[float] = []
    counting = [False]

    def on_smpl(msg) -> None:
        counting[0] = True
        bodies.append(len(msg.bodies))

    def on_diag(msg) -> None:
        for st in msg.status:
            if counting[0] and st.name == f"{node_name}: processing":
                values = {kv.key: kv.value for kv in st.values}
                if "last_ms" in values:
                    last_ms.append(float(values["last_ms"]))

    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(SMPLArray, "/human/smpl", on_smpl, reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable)
    start = time.monotonic()
    while not bodies and time.monotonic() - start < timeout:
        rclpy.spin_once(node, timeout_sec=0.1)
    first, base = time.monotonic(), len(bodies)
    while bodies and time.monotonic() - first < seconds:
        rclpy.spin_once(node, timeout_sec=0.05)
    window = bodies[base:]
    print(json.dumps({"messages": len(window), "with_bodies": sum(1 for b in window if b),
                      "seconds": seconds, "waited_s": round(first - start, 1),
                      "last_ms": last_ms}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
