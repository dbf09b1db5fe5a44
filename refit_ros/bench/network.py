"""Per-stage latency and frame rate of a runtime backend (``refit-ros bench network``).

A frame is timed the way the pipeline runs it, stage by stage, on one backend:

* ``preprocess`` -- square crops cut and normalised (ReFit) / keypoints mapped into the
  crops (ReFit-KP), from a synthetic 1280x720 frame and N person boxes;
* ``encode`` -- the encoder graph;
* ``init`` -- the cold start (cold frames only);
* ``step_1`` .. ``step_K`` -- each refinement step, timed separately;
* ``body`` -- the body-model graph (mesh, joints, translation) of the final state;
* ``postprocess`` -- rotations to axis-angle, mesh and joints to the camera frame, to host
  arrays (what the pipeline publishes).

A *cold* frame is preprocess + encode + init + ``cold_iters`` steps + body + postprocess,
its *network* time encode + init + the steps (the network alone, per frame and per person),
a *warm* frame (tracked person, state from the previous frame) the same without init and
with ``warm_iters`` steps. Median and p95 are over ``repeats`` timed frames after
``warmup`` untimed ones; on CUDA every stage boundary synchronises the device.
Latency does not depend on weight values, so ReFit runs with random weights and the
synthetic SMPL unless an export of real weights is given.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from refit_ros.geometry.camera import CropCamera
from refit_ros.geometry.rotation import rotmat_to_axis_angle
from refit_ros.pipeline.models import BodyPose, FittingModel

log = logging.getLogger(__name__)


@dataclass
class StageStats:
    """Latency of one stage over the timed repeats (milliseconds)."""

    median_ms: float
    p95_ms: float
    min_ms: float
    n: int

    @classmethod
    def of(cls, times_ms: list[float]) -> "StageStats":
        a = np.asarray(times_ms, dtype=np.float64)
        return cls(float(np.median(a)), float(np.percentile(a, 95)), float(a.min()), int(a.size))


@dataclass
class BenchResult:
    """What :func:`run_bench` measured (printed as JSON by ``refit-ros bench network``)."""

    backend: dict[str, Any]
    persons: int
    cold_iters: int
    warm_iters: int
    repeats: int
    warmup: int
    stages: dict[str, StageStats] = field(default_factory=dict)
    frames: dict[str, dict[str, float]] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Det:
    bbox: np.ndarray
    score: float
    keypoints2d: np.ndarray | None


def synthetic_frame(persons: int, width: int = 1280, height: int = 720, seed: int = 0
                    ) -> tuple[np.ndarray, list[_Det]]:
    """A noise image and ``persons`` standing-person boxes with BlazePose-like keypoints."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    dets = []
    for i in range(persons):
        cx = width * (i + 0.5) / persons
        w, h = min(220.0, width / persons * 0.9), 520.0
        box = np.array([cx - w / 2, 100.0, cx + w / 2, 100.0 + h], np.float32)
        kp = np.column_stack([rng.uniform(box[0], box[2], 33), rng.uniform(box[1], box[3], 33),
                              rng.uniform(0.5, 1.0, 33)]).astype(np.float32)
        dets.append(_Det(box, 0.9, kp))
    return image, dets


def postprocess(backend: FittingModel, state, pose: BodyPose) -> dict[str, np.ndarray]:
    """What the pipeline publishes per person: axis-angle pose, shape, translation, mesh and
    joints in the camera frame, as host arrays."""
    n = state.pose6d.shape[0]
    rotmat = backend.rotmat(state)
    aa = rotmat_to_axis_angle(rotmat.reshape(-1, 3, 3)).reshape(n, 72)
    t = pose.translation[:, None]
    return {"pose": aa.cpu().numpy(), "betas": state.betas.cpu().numpy(),
            "transl": pose.translation.cpu().numpy(),
            "vertices": (pose.vertices + t).cpu().numpy(),
            "joints": (pose.joints + t).cpu().numpy()}


def run_bench(backend: FittingModel, persons: int = 1, cold_iters: int = 5,
              warm_iters: int = 2, repeats: int = 3, warmup: int = 1) -> BenchResult:
    """Time cold and warm frames stage by stage (see the module doc)."""
    if persons < 1 or repeats < 1 or cold_iters < 0 or warm_iters < 0 or warmup < 0:
        raise ValueError("persons and repeats must be >= 1; iterations and warmup >= 0")
    device = backend.device
    sync: Callable[[], None] = ((lambda: torch.cuda.synchronize(device))
                                if device.type == "cuda" else (lambda: None))
    image, dets = synthetic_frame(persons)
    from refit_ros.geometry.intrinsics import Intrinsics
    from refit_ros.geometry.crop import square_boxes

    center, side = square_boxes(np.array([d.bbox for d in dets]))
    camera = CropCamera.from_intrinsics(
        torch.as_tensor(center, dtype=torch.float32), torch.as_tensor(side, dtype=torch.float32),
        [Intrinsics.fallback(image.shape[1], image.shape[0])] * persons,
        backend.crop_size).to(device)

    times: dict[str, list[float]] = {}
    frames: dict[str, list[float]] = {"cold": [], "warm": []}
    network: dict[str, list[float]] = {"cold": [], "warm": []}

    def timed(name: str, record: bool, fn: Callable[[], Any]) -> Any:
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        if record:
            times.setdefault(name, []).append((time.perf_counter() - t0) * 1e3)
        return out

    prev_state = None
    for rep in range(warmup + repeats):
        record = rep >= warmup
        for kind in ("cold", "warm"):
            if kind == "warm" and prev_state is None:
                continue
            t_frame = time.perf_counter()
            inputs = timed("preprocess", record, lambda: backend.preprocess(image, dets, camera))
            feats = timed("encode", record, lambda: backend.encode_arrays(inputs))
            if kind == "cold":
                state = timed("init", record, lambda: backend.init_state(feats, camera))
                iters = cold_iters
            else:
                state = prev_state
                iters = warm_iters
            for k in range(iters):
                s = state
                state = timed(f"{kind}_step_{k + 1}", record,
                              lambda: backend.step(s, feats, camera))
            pose = timed("body", record, lambda: backend.pose(state, camera))
            timed("postprocess", record, lambda: postprocess(backend, state, pose))
            sync()
            if record:
                frames[kind].append((time.perf_counter() - t_frame) * 1e3)
                # the network alone: encoder, cold start, steps (no host work, no body)
                steps = sum(times[n][-1] for n in times if n.startswith(f"{kind}_step_"))
                start = times["init"][-1] if kind == "cold" else 0.0
                network[kind].append(times["encode"][-1] + start + steps)
            prev_state = state
    result = BenchResult(backend=backend.describe(), persons=persons, cold_iters=cold_iters,
                         warm_iters=warm_iters, repeats=repeats, warmup=warmup)
    result.stages = {k: StageStats.of(v) for k, v in times.items()}
    steps = [v for k, v in times.items() if "_step_" in k]
    if steps:
        result.stages["step_all"] = StageStats.of([t for v in steps for t in v])
    for kind, ts in frames.items():
        if ts:
            st = StageStats.of(ts)
            net = StageStats.of(network[kind])
            result.frames[kind] = {**asdict(st), "fps": 1e3 / st.median_ms,
                                   "iterations": cold_iters if kind == "cold" else warm_iters,
                                   "network_median_ms": net.median_ms,
                                   "network_median_ms_per_person": net.median_ms / persons}
    result.host = {"machine": platform.machine(), "processor": platform.processor(),
                   "cpu_count": __import__("os").cpu_count(),
                   "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__)}
    return result
