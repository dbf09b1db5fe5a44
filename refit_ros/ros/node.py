"""RefitNode: camera images -> ``refit_ros/SMPLArray`` + RViz mesh markers.

A lifecycle node (configure: read parameters, build the pipeline, create the topics;
activate: start answering images). ``autostart()`` runs both transitions, which is what
``refit-ros node``, ``refit_node`` and ``refit-ros bringup`` do.

Threads: the executor only stores incoming images (latest-only, see
:class:`~refit_ros.ros.latest.LatestSlot`); one inference thread converts, runs the
pipeline and publishes the bodies; one marker thread builds the (large) mesh markers so
they never delay the bodies. Nothing queues: a slow pipeline drops older frames.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

from refit_ros.config import Config, ConfigError
from refit_ros.geometry.intrinsics import Intrinsics, IntrinsicsError
from refit_ros.ros.diagnostics import ERROR, OK, WARN, DiagnosticBoard
from refit_ros.ros.image_conversion import (ImageConversionError, compressed_to_rgb8,
                                            image_msg_to_rgb8)
from refit_ros.ros.latest import LatestSlot
from refit_ros.ros.markers import MeshMarkers
from refit_ros.ros.messages import frame_result_to_msg, intrinsics_from_camera_info
from refit_ros.ros.parameters import config_from_parameters, declare_config_parameters
from refit_ros.pipeline import resolve_backend

#: Camera images: drop rather than queue (best effort, newest only).
IMAGE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                       history=HistoryPolicy.KEEP_LAST)
#: Outputs: every consumer gets the latest few results reliably.
OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)
MARKER_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)
#: Repeats of the same problem are logged again at most this often (seconds).
LOG_REPEAT_S = 10.0

PipelineFactory = Callable[[Config], object]


def default_pipeline_factory(cfg: Config):
    """The real frame -> bodies pipeline (detector + ReFit + body model)."""
    from refit_ros.pipeline import build_pipeline

    return build_pipeline(cfg)


def _stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class RefitNode(LifecycleNode):
    """3D human mesh recovery on a camera stream.

    Parameters
    ----------
    cfg : Config
        Defaults of the ROS parameters (``config/refit.yaml`` + ``--config`` / ``--set``).
    pipeline_factory : callable, optional
        ``cfg -> FramePipeline``; the real pipeline by default.
    node_name : str
    **kwargs
        Passed to ``rclpy.node.Node`` (e.g. ``cli_args`` for per-node remaps).
    """

    def __init__(self, cfg: Config, pipeline_factory: PipelineFactory | None = None,
                 node_name: str = "refit_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._base_cfg = cfg
        self.cfg = cfg
        self._factory = pipeline_factory or default_pipeline_factory
        sections = [s for s in cfg.to_dict() if s != "source"]
        self._param_names = declare_config_parameters(self, cfg, sections)
        self.diag = DiagnosticBoard(self.get_name())
        self._diag_pub = self.create_publisher(
            _diag_type(), "/diagnostics", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self.create_timer(1.0, self._publish_diagnostics)
        self._logged: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._active = False
        self._pipeline = None
        self._camera_info = None
        self._intr_cache: tuple | None = None
        self._last_stamp: float | None = None
        self._threads: list[threading.Thread] = []
        self._frames: LatestSlot = LatestSlot()
        self._marker_jobs: LatestSlot = LatestSlot()
        self._subs: list = []
        self._pubs: list = []
        self.stats = {"received": 0, "processed": 0, "rejected": 0, "failed": 0, "period_s": 0.0,
                      "total_ms": 0.0}
        self.diag.set("pipeline", WARN, "not configured yet")

    # ----------------------------------------------------------------- lifecycle
    def autostart(self) -> bool:
        """Configure and activate; False (with the reason logged) when configuring failed."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.cfg = config_from_parameters(self, self._base_cfg, self._param_names)
        except ConfigError as exc:
            self._report("pipeline", ERROR, f"invalid parameter: {exc}")
            return TransitionCallbackReturn.FAILURE
        t0 = time.perf_counter()
        try:
            self._pipeline = self._factory(self.cfg)
        except Exception as exc:  # noqa: BLE001 - any load failure must be reported, not crash
            self._report("pipeline", ERROR, _load_error_text(exc), exc_info=exc)
            return TransitionCallbackReturn.FAILURE
        self.diag.set("pipeline", OK, f"loaded in {time.perf_counter() - t0:.1f} s",
                      model=self.cfg.model.name, body=self.cfg.body.model,
                      backend=resolve_backend(self.cfg))
        self._create_topics()
        self._frames, self._marker_jobs = LatestSlot(), LatestSlot()
        self._threads = [threading.Thread(target=self._inference_loop, name="refit-inference",
                                          daemon=True)]
        if self.cfg.ros.publish_markers:
            self._threads.append(threading.Thread(target=self._marker_loop, name="refit-markers",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        self.get_logger().info(  # resolved names: remaps applied
            f"ready: {self._subs[0].topic_name} (+ {self._subs[1].topic_name}) -> "
            + ", ".join(p.topic_name for p in self._pubs))
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self.diag.set("pipeline", WARN, "cleaned up (unconfigured)")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self._teardown()
        super().destroy_node()

    def _create_topics(self) -> None:
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image
        from visualization_msgs.msg import MarkerArray

        from refit_ros.msg import SMPLArray

        ros = self.cfg.ros
        compressed = ros.compressed
        self._image_topic = ros.image_topic + ("/compressed" if compressed else "")
        self._image_type = CompressedImage if compressed else Image
        # raw: the executor only keeps the CDR bytes; frames dropped by the latest-only slot
        # are never deserialised (~1.3 ms of GIL-holding work per 640x480 image saved).
        self._subs = [
            self.create_subscription(self._image_type, self._image_topic, self._on_image,
                                     IMAGE_QOS, raw=True),
            self.create_subscription(CameraInfo, ros.camera_info_topic, self._on_camera_info,
                                     IMAGE_QOS),
        ]
        self._smpl_pub = self.create_lifecycle_publisher(SMPLArray, ros.smpl_topic, OUTPUT_QOS)
        self._pubs = [self._smpl_pub]
        if ros.publish_markers:
            self._marker_pub = self.create_lifecycle_publisher(MarkerArray, ros.markers_topic,
                                                               MARKER_QOS)
            self._pubs.append(self._marker_pub)

    def _teardown(self) -> None:
        self._active = False
        self._frames.close()
        self._marker_jobs.close()
        for t in self._threads:
            t.join(timeout=10.0)
        self._threads = []
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in self._pubs:
            self.destroy_lifecycle_publisher(pub)
        self._subs, self._pubs = [], []
        self._pipeline = None
        self._camera_info, self._intr_cache, self._last_stamp = None, None, None

    # ----------------------------------------------------------------- callbacks
    def _on_image(self, data: bytes) -> None:
        if not self._active:
            return
        self.stats["received"] += 1
        self._frames.put(data)

    def _on_camera_info(self, msg) -> None:
        try:
            self._check_camera_info(msg)
        except Exception as exc:  # noqa: BLE001 - a callback must never stop the executor
            self._report("camera_info", ERROR, f"CameraInfo handling failed: {exc!r}")

    def _check_camera_info(self, msg) -> None:
        try:
            intrinsics_from_camera_info(msg, msg.width or 1, msg.height or 1)
        except IntrinsicsError as exc:
            self._report("camera_info", WARN, f"CameraInfo on {self.cfg.ros.camera_info_topic} is "
                         f"unusable ({exc}); using the fallback intrinsics instead")
            msg = None
        else:
            self._set_status("camera_info", OK, "using CameraInfo intrinsics")
        with self._lock:
            self._camera_info = msg
            self._intr_cache = None

    # ----------------------------------------------------------------- inference thread
    def _inference_loop(self) -> None:
        while True:
            data = self._frames.take()
            if data is None:
                return
            try:
                self._process(deserialize_message(data, self._image_type))
            except Exception as exc:  # noqa: BLE001 - never let one frame kill the thread
                self.stats["failed"] += 1
                self._report("processing", ERROR, f"frame failed: {exc!r}", exc_info=exc)

    def _process(self, msg) -> None:
        t0 = time.perf_counter()
        try:
            cap = self.cfg.ros.max_image_pixels
            rgb = (compressed_to_rgb8(msg, max_pixels=cap) if self.cfg.ros.compressed
                   else image_msg_to_rgb8(msg, max_pixels=cap))
        except ImageConversionError as exc:
            self.stats["rejected"] += 1
            self._report("input image", ERROR, f"image rejected on {self._image_topic}: {exc}")
            return
        self._set_status("input image", OK, "receiving images")
        height, width = rgb.shape[:2]
        intr = self._intrinsics(width, height)
        stamp = _stamp_seconds(msg.header.stamp)
        if self._last_stamp is not None and stamp < self._last_stamp:
            self.get_logger().info("image stamps went backwards (replay/loop): resetting tracks")
            self._pipeline.reset()
        self._last_stamp = stamp
        result = self._pipeline.process(rgb, intr, stamp)
        self._smpl_pub.publish(frame_result_to_msg(result, msg.header))
        # Mesh markers are megabytes per body: build them only for a listener.
        if self.cfg.ros.publish_markers and self._marker_pub.get_subscription_count() > 0:
            self._marker_jobs.put((result, msg.header))
        self._set_status("processing", OK, "ok")
        self._update_stats(t0, result)

    def _intrinsics(self, width: int, height: int) -> Intrinsics:
        with self._lock:
            info, cache = self._camera_info, self._intr_cache
        if cache is not None and cache[0] is info and cache[1] == (width, height):
            return cache[2]
        if info is None:
            intr = Intrinsics.fallback(width, height)
            self._log_once("fallback", f"no usable CameraInfo on {self.cfg.ros.camera_info_topic}: "
                           f"using the fallback intrinsics (camera.fallback={self.cfg.camera.fallback}"
                           f"): focal {intr.fx:.1f} px = sqrt(W^2+H^2), principal point at the "
                           "image centre")
        else:
            try:
                intr = intrinsics_from_camera_info(info, width, height)
                self._log_once("camera_info", f"using CameraInfo intrinsics: fx={intr.fx:.1f} "
                               f"fy={intr.fy:.1f} cx={intr.cx:.1f} cy={intr.cy:.1f}")
            except IntrinsicsError as exc:
                self._report("camera_info", WARN, f"CameraInfo unusable for a {width}x{height} "
                             f"image ({exc}); using the fallback intrinsics")
                intr = Intrinsics.fallback(width, height)
        with self._lock:
            self._intr_cache = (info, (width, height), intr)
        return intr

    def _update_stats(self, t0: float, result) -> None:
        now = time.perf_counter()
        s = self.stats
        last = s.get("_last_done")
        if last is not None:
            s["period_s"] = 0.8 * s["period_s"] + 0.2 * (now - last) if s["period_s"] else now - last
        s["_last_done"] = now
        s["processed"] += 1
        s["total_ms"] = 1000.0 * (now - t0)
        self.diag.update_values("processing", frames=s["processed"], bodies=len(result.bodies),
                                dropped=self._frames.dropped, rejected=s["rejected"],
                                period_s=f"{s['period_s']:.3f}", last_ms=f"{s['total_ms']:.1f}")

    # ----------------------------------------------------------------- marker thread
    def _marker_loop(self) -> None:
        markers = MeshMarkers()
        while True:
            job = self._marker_jobs.take()
            if job is None:
                return
            try:
                self._marker_pub.publish(markers.frame_cdr(*job))  # serialised: fast path
            except Exception as exc:  # noqa: BLE001 - markers are best effort
                self._report("markers", ERROR, f"mesh markers failed: {exc!r}", exc_info=exc)

    # ----------------------------------------------------------------- reporting
    def _set_status(self, name: str, level: int, message: str) -> None:
        if self.diag.set(name, level, message):
            self._publish_diagnostics()

    def _report(self, name: str, level: int, message: str, exc_info=None) -> None:
        """One clear log line per distinct problem (repeats at most every LOG_REPEAT_S) +
        the diagnostic status ``name`` (published at once when it changed)."""
        now = time.monotonic()
        prev = self._logged.get(name)
        if prev is None or prev[0] != message or now - prev[1] > LOG_REPEAT_S:
            self._logged[name] = (message, now)
            # rclpy fixes a severity per call site: one call per severity, never shared.
            if level >= ERROR:
                self.get_logger().error(message)
            else:
                self.get_logger().warning(message)
            if exc_info is not None and not isinstance(exc_info, (OSError, ConfigError)):
                import traceback

                self.get_logger().debug("".join(traceback.format_exception(exc_info)))
        self._set_status(name, level, message)

    def _log_once(self, key: str, message: str) -> None:
        if self._logged.get(key, ("",))[0] != message:
            self._logged[key] = (message, time.monotonic())
            self.get_logger().info(message)

    def _publish_diagnostics(self) -> None:
        try:
            self._diag_pub.publish(self.diag.to_msg(self.get_clock().now().to_msg()))
        except Exception:  # noqa: BLE001 - context shutting down
            pass


def _diag_type():
    from diagnostic_msgs.msg import DiagnosticArray

    return DiagnosticArray


def _load_error_text(exc: BaseException) -> str:
    """The pipeline's load error, with the file and the config keys that point at it."""
    text = f"cannot load the pipeline: {exc}"
    filename = getattr(exc, "filename", None)
    if filename and str(filename) not in text:
        text += f" (file: {filename})"
    if isinstance(exc, (FileNotFoundError, OSError)):
        text += ("; set model.weights / body.smpl_dir (--set key=value, your --config YAML or "
                 "ROS parameters) to where the files are")
    return text
