"""Start nodes in one process and shut them down cleanly (Ctrl-C, SIGTERM, or when done)."""

from __future__ import annotations

import signal
import threading
from typing import Callable, Sequence

#: A zero-argument callable that constructs a node once rclpy is initialised.
NodeFactory = Callable[[], object]


def run_nodes(factories: Sequence[NodeFactory], ros_args: Sequence[str] = (),
              done: threading.Event | None = None, threads: int | None = None,
              transport: str = "shm") -> int:
    """Set the DDS transport, initialise rclpy, build the nodes, spin them on a
    SingleThreadedExecutor; on Ctrl-C / SIGTERM destroy the nodes, then shut rclpy down.

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
    transport
        ``ros.transport`` (:func:`refit_ros.ros.transport.configure_transport`): applied to
        this process's environment before rclpy creates its DDS participant.

    Ctrl-C and SIGTERM stop spinning and the nodes are destroyed while ROS is still up (rclpy's
    own handlers would shut the context down first, and a node's last log lines, e.g. the
    recorder's summary, then fail to reach ``/rosout``).

    Returns
    -------
    int
        0 after a normal stop (including Ctrl-C / SIGTERM), 1 when a node failed to
        configure, 2 when a node could not be constructed (bad config or input; logged).
    """
    from refit_ros.ros.transport import configure_transport

    said = configure_transport(transport)
    import rclpy
    from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                                 SingleThreadedExecutor)
    from rclpy.signals import SignalHandlerOptions

    logger = rclpy.logging.get_logger("refit_ros")
    nodes: list = []
    status = 0
    previous_term = _interrupt_on_sigterm()
    try:
        with rclpy.init(args=["refit-ros", *ros_args],
                        signal_handler_options=SignalHandlerOptions.NO):
            logger.info(said)
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
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return status


def _interrupt_on_sigterm():
    """SIGTERM (``ros2 launch``'s second stop signal, ``kill``) -> KeyboardInterrupt, as
    Ctrl-C; returns the previous handler (None off the main thread, where it can't be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _autostart(node) -> bool:
    start = getattr(node, "autostart", None)
    return bool(start()) if start is not None else True


def _spin(executor, done: threading.Event | None) -> None:
    # spin_once with a timeout, never a blocking spin(): Python delivers Ctrl-C / SIGTERM
    # between calls, so the process stops within 0.1 s even when no message arrives.
    while done is None or not done.is_set():
        executor.spin_once(timeout_sec=0.1)


def _stop(node, logger) -> None:
    try:
        node.destroy_node()
    except Exception as exc:  # noqa: BLE001 - shutting down: report and go on with the others
        logger.error(f"error while destroying a node: {exc!r}")
