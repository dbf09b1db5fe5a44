"""Start nodes in one process and shut them down cleanly (Ctrl-C, SIGTERM, or when done)."""

from __future__ import annotations

import threading
from typing import Callable, Sequence

#: A zero-argument callable that constructs a node once rclpy is initialised.
NodeFactory = Callable[[], object]


def run_nodes(factories: Sequence[NodeFactory], ros_args: Sequence[str] = (),
              done: threading.Event | None = None, threads: int | None = None) -> int:
    """Initialise rclpy, build the nodes, spin them on a SingleThreadedExecutor.

    Single-threaded on purpose: every callback of refit_ros is short (an image callback only
    stores the message; inference and mesh markers run in the node's own threads), and
    rclpy's MultiThreadedExecutor busy-spins a whole core while a callback it handed to its
    pool has not started (ros2/rclpy#1452, fixed upstream after the Kilted wheels): under
    image load that core was taken from inference, and the processing period grew ~6x
    (issue 14, item 9; ``scripts/load_test.py``).

    Parameters
    ----------
    factories
        Node constructors, called after ``rclpy.init``. Nodes with an ``autostart()``
        method (the lifecycle nodes of refit_ros) are configured and activated; one that
        fails to configure stays up, reporting why on ``/diagnostics``.
    ros_args
        ``--ros-args ...`` arguments (remaps, ``-p`` parameters, log levels).
    done
        Optional event: when set, spinning stops and the process exits normally.
    threads
        ``> 1``: a MultiThreadedExecutor with that many threads instead (not recommended,
        see above).

    Returns
    -------
    int
        0 after a normal stop (including Ctrl-C / SIGTERM), 1 when a node failed to
        configure, 2 when a node could not be constructed (bad config or input; logged).
    """
    import rclpy
    from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                                 SingleThreadedExecutor)

    logger = rclpy.logging.get_logger("refit_ros")
    nodes: list = []
    status = 0
    try:
        with rclpy.init(args=["refit-ros", *ros_args]):
            executor = (MultiThreadedExecutor(num_threads=threads) if threads and threads > 1
                        else SingleThreadedExecutor())
            try:
                for make in factories:
                    try:
                        node = make()
                    except ValueError as exc:  # ConfigError, bad input / calibration file
                        logger.error(f"cannot start: {exc}")
                        return 2
                    nodes.append(node)
                    executor.add_node(node)
                if not all(_autostart(n) for n in nodes):
                    status = 1
                    logger.error("a node failed to configure; it stays up reporting the reason "
                                 "on /diagnostics (fix it and restart, or Ctrl-C to quit)")
                _spin(executor, done)
            finally:
                for node in reversed(nodes):
                    _stop(node, logger)
                executor.shutdown()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return status


def _autostart(node) -> bool:
    start = getattr(node, "autostart", None)
    return bool(start()) if start is not None else True


def _spin(executor, done: threading.Event | None) -> None:
    if done is None:
        executor.spin()
        return
    while not done.is_set():
        executor.spin_once(timeout_sec=0.1)


def _stop(node, logger) -> None:
    try:
        node.destroy_node()
    except Exception as exc:  # noqa: BLE001 - shutting down: report and go on with the others
        logger.error(f"error while destroying a node: {exc!r}")
