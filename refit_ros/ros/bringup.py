"""Several refit_ros nodes in one process, from one YAML: what ``launch/camera.launch.py``
starts with ``ros2 launch``, for machines without ``launch`` (``refit-ros bringup``).

:data:`NODES` and :data:`LAUNCH_PARAMETERS` are the shared vocabulary of both entry points;
``tests/ros/test_launch_file.py`` checks the launch file uses exactly these names.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

from refit_ros.config import Config
from refit_ros.ros.spin import NodeFactory


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node: its colcon executable, ``refit-ros`` subcommand and default node name."""

    executable: str
    command: str
    name: str


NODES: dict[str, NodeSpec] = {
    "node": NodeSpec("refit_node", "node", "refit_node"),
    "source": NodeSpec("refit_source", "source", "camera_source"),
    "recorder": NodeSpec("refit_recorder", "record", "refit_recorder"),
}

#: Launch arguments that set a ROS parameter of the camera source (argument -> config key).
LAUNCH_PARAMETERS: dict[str, str] = {
    "input": "source.input",
    "rate": "source.rate",
    "loop": "source.loop",
    "camera_info_file": "source.camera_info",
}


def remap_args(remaps: dict[str, str]) -> list[str]:
    """``{"/camera/image_raw": "/cam/image"}`` -> ``["--ros-args", "-r", "a:=b", ...]``."""
    args: list[str] = []
    for src, dst in remaps.items():
        if dst and dst != src:
            args += ["-r", f"{src}:={dst}"]
    return ["--ros-args", *args] if args else []


@dataclasses.dataclass
class Bringup:
    """The nodes to start and, once started, the node objects (for ``done`` tracking).

    Parameters
    ----------
    cfg : Config
    source : bool
        Start the camera source (publishing ``source.input``).
    mcap : str or None
        Start the recorder writing this file.
    remaps : dict
        Topic remaps applied to every node (``{"/camera/image_raw": "/my/image"}``).
    """

    cfg: Config
    source: bool = False
    mcap: str | None = None
    remaps: dict[str, str] = dataclasses.field(default_factory=dict)
    nodes: dict[str, object] = dataclasses.field(default_factory=dict)

    def factories(self) -> list[NodeFactory]:
        """Node constructors in start order (refit node first: it takes longest to load)."""
        from refit_ros.ros.node import RefitNode

        cli = remap_args(self.remaps)
        out: list[NodeFactory] = [self._keep("node", lambda: RefitNode(
            self.cfg, node_name=NODES["node"].name, cli_args=cli))]
        if self.mcap:
            from refit_ros.ros.recorder import Recorder

            out.append(self._keep("recorder", lambda: Recorder(
                self.cfg, self.mcap, node_name=NODES["recorder"].name, cli_args=cli)))
        if self.source:
            from refit_ros.ros.source import CameraSource

            out.append(self._keep("source", lambda: CameraSource(
                self.cfg, node_name=NODES["source"].name, cli_args=cli)))
        return out

    def _keep(self, key: str, make: Callable[[], object]) -> NodeFactory:
        def build():
            self.nodes[key] = node = make()
            return node

        return build

    def stop_after_source(self, done: threading.Event, settle_s: float = 2.0,
                          timeout_s: float = 600.0) -> threading.Thread:
        """Set ``done`` once the source has finished and the refit node has caught up
        (no new processed frame for ``settle_s``)."""

        def watch() -> None:
            t0 = time.monotonic()
            while "source" not in self.nodes and time.monotonic() - t0 < timeout_s:
                time.sleep(0.1)
            src = self.nodes.get("source")
            if src is not None:
                src.finished.wait(timeout_s)
            last, since = -1, time.monotonic()
            while time.monotonic() - since < settle_s and time.monotonic() - t0 < timeout_s:
                node = self.nodes.get("node")
                processed = node.stats["processed"] if node is not None else 0
                if processed != last:
                    last, since = processed, time.monotonic()
                time.sleep(0.1)
            done.set()

        thread = threading.Thread(target=watch, name="bringup-stop", daemon=True)
        thread.start()
        return thread
