"""``refit_ros.evaluation.multiview_metrics`` on fake outputs made from the dev set's GT.

The numbers must agree with the team's evaluator (``shared/tools/multiview_eval.py``)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refit_ros.evaluation.multiview_metrics import (FixtureError, evaluate, load_fixture,
                                                    read_bodies_jsonl, smooth_in_time)


def _fake_bodies(fix, noise=0.0, seed=0, swap_from=None, drop_every=0, scale=1.0, pred=None):
    """view -> frame -> [(24 x 3 joints, track_id)] from the GT (or ``pred``, F x P x 12 x 3 world)."""
    rng = np.random.default_rng(seed)
    src = fix.joints_world if pred is None else pred
    out = {}
    for name, cam in fix.cameras.items():
        frames = {}
        for f in range(fix.frames):
            if drop_every and f % drop_every == 0:
                continue
            bodies = []
            for p in reversed(range(fix.persons)):
                x = cam.to_cam(src[f, p])
                ok = np.isfinite(x).all(1)
                if ok.sum() < 3:
                    continue
                centre = x[ok].mean(0)
                j = np.tile(centre, (24, 1))
                j[fix.smpl_idx] = np.where(ok[:, None], x, centre)
                j = j * scale + rng.normal(0.0, noise, j.shape)
                tid = p if swap_from is None or f < swap_from else 1 - p
                bodies.append((j, tid))
            frames[f] = bodies
        out[name] = frames
    return out


def _write(root: Path, bodies) -> None:
    for name, frames in bodies.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        with open(root / name / "bodies.jsonl", "w") as fh:
            for f, bs in sorted(frames.items()):
                fh.write(json.dumps({"frame": f, "bodies": [
                    {"joints": j.tolist(), "track_id": t} for j, t in bs]}) + "\n")


def _team_evaluator(fixture_dir: Path):
    path = fixture_dir.parent.parent / "tools" / "multiview_eval.py"
    if not path.is_file():
        pytest.skip(f"team evaluator not found at {path}")
    spec = importlib.util.spec_from_file_location("multiview_eval", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_exact_gt_scores_zero_with_full_coverage(multiview_fixture_dir):
    fix = load_fixture(multiview_fixture_dir)
    res = evaluate(fix, _fake_bodies(fix))
    o = res["overall"]
    assert o["coverage"] == pytest.approx(1.0)
    assert o["median"]["mpjpe_mm"] < 1e-6 and o["median"]["root_err_m"] < 1e-9
    assert o["id_switches"] == 0
    assert res["eligible_frames_per_person"] == [97, 72]


def test_agrees_with_the_team_evaluator(multiview_fixture_dir, tmp_path):
    """Noise, one track-id swap, dropped frames, a body scaled about the camera: same numbers."""
    team = _team_evaluator(multiview_fixture_dir)
    fix = load_fixture(multiview_fixture_dir)
    bodies = _fake_bodies(fix, noise=0.03, swap_from=50, drop_every=7, scale=1.08)
    _write(tmp_path, bodies)
    ours = evaluate(fix, {v: read_bodies_jsonl(tmp_path / v / "bodies.jsonl", fix.frames)
                          for v in fix.cameras})
    ref = team.evaluate(str(multiview_fixture_dir), str(tmp_path), warn=lambda m: None)
    for key in ("mpjpe_mm", "pa_mpjpe_mm", "root_err_m"):
        assert ours["overall"]["median"][key] == pytest.approx(ref["overall"]["median"][key], rel=1e-6)
        for v in fix.cameras:
            assert ours["views"][v]["median"][key] == pytest.approx(ref["views"][v]["median"][key], rel=1e-6)
    assert ours["overall"]["coverage"] == pytest.approx(ref["overall"]["coverage"])
    for v in fix.cameras:
        for pk in ("P0", "P1"):
            assert ours["views"][v]["persons"][pk]["id_switches"] == \
                ref["views"][v]["persons"][pk]["id_switches"]
    assert ours["per_joint_mean_mm"]["pooled"] == pytest.approx(ref["per_joint_mean_mm"]["pooled"])
    assert ours["overall"]["id_switches"] == 8     # one swap per person and view


def test_acceleration_error_is_zero_on_the_smoothed_gt_and_grows_with_jitter(multiview_fixture_dir):
    fix = load_fixture(multiview_fixture_dir)
    g = fix.joints_world
    valid = np.isfinite(g).all(-1).all(-1)     # frames with every joint of a person
    smooth = np.stack([smooth_in_time(g[:, p], np.isfinite(g[:, p]).all(-1).any(-1))
                       for p in range(fix.persons)], 1)
    smooth = np.where(np.isfinite(smooth), smooth, g)
    exact = evaluate(fix, _fake_bodies(fix, pred=smooth))["overall"]
    assert exact["accel_err_mm"] < 2.0, exact
    errs = [evaluate(fix, _fake_bodies(fix, pred=smooth, noise=s, seed=1))["overall"]["accel_err_mm"]
            for s in (0.005, 0.02)]
    assert errs[0] > exact["accel_err_mm"] + 3 and errs[1] > 3 * errs[0]
    assert valid.any()


def test_a_missing_fixture_is_a_clear_error(tmp_path):
    with pytest.raises(FixtureError, match="gt.npz"):
        load_fixture(tmp_path)


def test_eval_multiview_command_scores_existing_outputs(multiview_fixture_dir, tmp_path):
    fix = load_fixture(multiview_fixture_dir)
    _write(tmp_path, _fake_bodies(fix, noise=0.01))
    cmd = [sys.executable, "-m", "refit_ros.cli", "eval", "multiview", str(multiview_fixture_dir),
           str(tmp_path), "--out", str(tmp_path), "--score-only", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["overall"]["coverage"] == pytest.approx(1.0)
    assert 5 < res["overall"]["median"]["mpjpe_mm"] < 30
    assert set(res["views"]) == set(fix.cameras)
    assert (tmp_path / "eval.json").is_file()
    bad = subprocess.run(cmd[:5] + [str(tmp_path / "nowhere"), str(tmp_path), "--out",
                                    str(tmp_path), "--score-only"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "gt.npz" in bad.stderr
    missing = subprocess.run(cmd[:6] + [str(tmp_path / "novideos"), "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "cam01.mp4" in missing.stderr
