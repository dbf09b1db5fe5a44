"""The TensorRT engine cache (issue 14, item 7) with the engine builder injected (TensorRT
cannot be installed here; the fake builder returns made-up bytes and counts its calls):
one key, one file lock (two processes build one engine once), atomic engine and metadata
writes, corrupt engines rebuilt with a log line, the per-user cache folder, and the
runner's checks of set_input_shape / set_tensor_address."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
import torch

from refit_ros.runtime import tensorrt_backend as trtb
from refit_ros.export.onnx import StageFile, TensorInfo
from refit_ros.runtime.tensorrt_backend import EngineCache, Profile

STAGE = StageFile(file="step.onnx", sha256="a" * 64,
                  inputs=[TensorInfo("feature_map", ["persons", 67, 64, 64])],
                  outputs=[TensorInfo("pose6d_next", ["persons", 144])])
IDENTITY = ("10.3.0", "Fake GPU (test)", "9.0")


def _identity():
    return IDENTITY


class CountingBuild:
    """Fake builder: appends one line per call to ``log`` (shared across processes) and
    returns bytes made from its arguments after ``delay`` seconds."""

    def __init__(self, log: Path, delay: float = 0.0):
        self.log, self.delay = Path(log), delay
        self.args: list[tuple] = []

    def __call__(self, onnx_path, precision, profile, static, calibration, calib_cache):
        self.args.append((precision, profile, static, calibration is not None))
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(self.delay)
        return f"ENGINE {precision} {profile} {static}".encode() * 100

    def count(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


def _cache(tmp_path, build):
    return EngineCache(tmp_path / "engines", build=build, identity=_identity)


def test_builds_once_then_reads_the_cache_and_the_key_reaches_the_builder(tmp_path):
    build = CountingBuild(tmp_path / "builds.log")
    cache = _cache(tmp_path, build)
    data, path, built = cache.get_or_build("step", STAGE, tmp_path / "step.onnx", "fp16",
                                           Profile(1, 2, 6))
    assert built and build.count() == 1 and path.read_bytes() == data
    assert build.args == [("fp16", Profile(1, 2, 6), {"feature_map": [67, 64, 64]}, False)]
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["precision"] == "fp16" and meta["profile"]["max_persons"] == 6
    assert meta["gpu"] == IDENTITY[1] and meta["engine_bytes"] == len(data)
    again, path2, built2 = cache.get_or_build("step", STAGE, tmp_path / "step.onnx", "fp16",
                                              Profile(1, 2, 6))
    assert (again, path2, built2) == (data, path, False) and build.count() == 1
    # Another precision or profile is another key, hence another engine.
    cache.get_or_build("step", STAGE, tmp_path / "step.onnx", "fp32", Profile(1, 2, 6))
    cache.get_or_build("step", STAGE, tmp_path / "step.onnx", "fp16", Profile(1, 1, 6))
    assert build.count() == 3
    assert not list(path.parent.glob("*.tmp"))  # no temp file left behind


def _race(cache_dir: str, log: str, barrier, results) -> None:
    cache = EngineCache(cache_dir, build=CountingBuild(Path(log), delay=1.0), identity=_identity)
    barrier.wait()
    data, _, built = cache.get_or_build("step", STAGE, Path("step.onnx"), "fp16", Profile())
    results.put((built, len(data)))


def test_two_processes_building_one_key_at_once_build_it_once(tmp_path):
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "engines"),
                                             str(tmp_path / "builds.log"), barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len((tmp_path / "builds.log").read_text().splitlines()) == 1  # one build
    assert sorted(b for b, _ in got) == [False, True] and got[0][1] == got[1][1]
    assert len(list((tmp_path / "engines").glob("*.engine"))) == 1


def test_a_truncated_or_unreadable_engine_is_rebuilt_with_a_log_line(tmp_path, caplog):
    build = CountingBuild(tmp_path / "builds.log")
    cache = _cache(tmp_path, build)
    args = ("step", STAGE, tmp_path / "step.onnx", "fp16", Profile())
    data, path, _ = cache.get_or_build(*args)
    path.write_bytes(data[: len(data) // 2])  # a crash mid-copy, a full disk
    with caplog.at_level(logging.WARNING, logger=trtb.__name__):
        again, _, built = cache.get_or_build(*args)
    assert built and again == data and path.read_bytes() == data and build.count() == 2
    assert any("truncated or corrupt" in r.getMessage() and "rebuilding" in r.getMessage()
               for r in caplog.records)
    path.with_suffix(".json").write_text("{not json")  # unreadable metadata
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=trtb.__name__):
        assert cache.get_or_build(*args)[2] and build.count() == 3
    assert any("metadata is unreadable" in r.getMessage() for r in caplog.records)
    # Bytes TensorRT could not deserialize (same size and hash as recorded) are rebuilt too.
    assert cache.get_or_build(*args, reject=data)[2] and build.count() == 4


def test_engine_and_metadata_are_written_atomically(tmp_path, monkeypatch):
    build = CountingBuild(tmp_path / "builds.log")
    cache = _cache(tmp_path, build)
    args = ("step", STAGE, tmp_path / "step.onnx", "fp16", Profile())
    data, path, _ = cache.get_or_build(*args)
    meta = path.with_suffix(".json")
    old_meta = meta.read_text()
    replaced = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    path.write_bytes(b"corrupt")
    cache.get_or_build(*args)
    assert [d for _, d in replaced] == [path, meta]  # engine first, then its metadata
    for src, dst in replaced:
        assert src.parent == dst.parent and src.name.startswith(f".{dst.name}.")
    # A crash while writing the metadata (here: fsync fails) leaves the old file whole
    # and no temp file behind.
    path.write_bytes(b"corrupt")
    real_fsync = os.fsync

    def failing_fsync(fd):
        if ".json." in os.path.realpath(f"/proc/self/fd/{fd}"):  # the metadata's temp file
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        cache.get_or_build(*args)
    assert meta.read_text() == old_meta and json.loads(meta.read_text())["key"]
    assert not list(path.parent.glob(".*.tmp"))


def test_engines_go_to_the_per_user_cache_not_the_export_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REFIT_ROS_CACHE", str(tmp_path / "cache"))
    cache = EngineCache(build=CountingBuild(tmp_path / "b.log"), identity=_identity)
    assert cache.dir == tmp_path / "cache" / "engines"
    _, path, _ = cache.get_or_build("step", STAGE, tmp_path / "export" / "step.onnx", "fp16",
                                    Profile())
    assert path.parent == tmp_path / "cache" / "engines"
    assert not (tmp_path / "export").exists()


class _Context:
    """An execution context stub whose set_* calls return what the test says."""

    def __init__(self, shape_ok=True, address_ok=True):
        self.shape_ok, self.address_ok = shape_ok, address_ok

    def set_input_shape(self, name, shape):
        return self.shape_ok

    def set_tensor_address(self, name, ptr):
        return self.address_ok

    def get_tensor_shape(self, name):
        return (1, 144)

    def execute_async_v3(self, stream):  # pragma: no cover - never reached here
        raise AssertionError("must fail before launching")


def _runner(ctx):
    r = object.__new__(trtb.TensorRTRunner)
    r.device, r.profile = torch.device("cpu"), Profile()
    r.io, r.contexts = {"step": (["feature_map"], ["pose6d_next"])}, {"step": ctx}
    return r


def test_refused_input_shapes_and_addresses_raise_clear_errors():
    feeds = {"feature_map": torch.zeros(1, 67, 64, 64)}
    with pytest.raises(RuntimeError, match="refused input 'feature_map' of the step engine "
                                           r"with shape \(1, 67, 64, 64\)"):
        _runner(_Context(shape_ok=False)).run("step", feeds)
    with pytest.raises(RuntimeError, match="refused the address of input 'feature_map'"):
        _runner(_Context(address_ok=False)).run("step", feeds)
