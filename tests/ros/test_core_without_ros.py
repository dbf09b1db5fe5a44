"""The core (refit_ros outside refit_ros/ros) never imports rclpy or ROS message packages.

A fresh interpreter blocks rclpy and every message package, then imports every module of
refit_ros except the ROS layer; any attempt to import a blocked name fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO_ROOT

SCRIPT = r"""
import importlib, importlib.abc, json, pkgutil, sys, traceback
BLOCKED = ("rclpy", "rosidl_runtime_py", "rosidl_parser", "rcl_interfaces", "lifecycle_msgs",
           "builtin_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs",
           "visualization_msgs", "diagnostic_msgs", "refit_ros.msg", "mcap_ros2")
attempts = []

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            who = [f.filename for f in traceback.extract_stack() if "refit_ros" in f.filename]
            attempts.append([name, who[-1] if who else "?"])
            raise ImportError(f"{name} blocked: the core must not import ROS")
        return None

sys.meta_path.insert(0, Block())
import refit_ros
failed, loaded = {}, []

def walk(pkg):
    for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
        if info.name in ("refit_ros.ros", "refit_ros.msg"):
            continue
        try:
            mod = importlib.import_module(info.name)
            loaded.append(info.name)
        except Exception as exc:
            failed[info.name] = repr(exc)
            continue
        if info.ispkg:
            walk(mod)

walk(refit_ros)
print(json.dumps({"attempts": attempts, "loaded": loaded, "failed": failed}))
"""


def test_core_imports_without_rclpy():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [], report["attempts"]
    for name in ("refit_ros.config", "refit_ros.cli", "refit_ros.pipeline.types",
                 "refit_ros.geometry.intrinsics", "refit_ros.commands.node",
                 "refit_ros.commands.bringup"):
        assert name in report["loaded"], report["failed"].get(name)
