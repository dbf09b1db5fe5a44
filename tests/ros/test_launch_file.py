"""launch/camera.launch.py and `refit-ros bringup` start the same executables with the same
parameters (the launch file is parsed with ast: `launch` is not installable here)."""

from __future__ import annotations

import ast
import os
import re

import yaml

from conftest import REPO_ROOT

from refit_ros.config import load_config
from refit_ros.ros.bringup import LAUNCH_PARAMETERS, NODES

LAUNCH = REPO_ROOT / "launch" / "camera.launch.py"


def _tree():
    return ast.parse(LAUNCH.read_text(encoding="utf-8"))


def _node_calls(tree):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", None) == "Node"]


def _kw(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_launch_starts_the_bringup_executables_under_the_same_names():
    calls = _node_calls(_tree())
    got = {(_kw(c, "executable").value, _kw(c, "name").value) for c in calls}
    assert got == {(s.executable, s.name) for s in NODES.values()}
    assert all(_kw(c, "package").value == "refit_ros" for c in calls)


def test_launch_parameters_are_bringups_and_config_keys():
    tree = _tree()
    table = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", None) == "SOURCE_PARAMETERS")
    assert ast.literal_eval(table) == LAUNCH_PARAMETERS
    assert set(LAUNCH_PARAMETERS.values()) <= set(load_config().flat())
    declared = {e.elts[0].value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", None) == "ARGUMENTS" for e in n.value.elts}
    assert set(LAUNCH_PARAMETERS) <= declared
    assert {"config", "image", "camera_info", "source", "mcap"} <= declared
    # no parameter name appears as a string literal that the config does not know
    keys = set(load_config().flat())
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                and isinstance(n.value, str) and re.fullmatch(r"[a-z_]+\.[a-z_]+", n.value)}
    assert literals <= keys, literals - keys


def test_executables_exist_run_the_same_subcommands_and_are_installed():
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    for spec in NODES.values():
        script = REPO_ROOT / "scripts" / spec.executable
        assert script.is_file() and os.access(script, os.X_OK), script
        assert f'main(["{spec.command}", *sys.argv[1:]])' in script.read_text(encoding="utf-8")
        assert f"scripts/{spec.executable}" in cmake
    from refit_ros.cli import COMMANDS

    assert {s.command for s in NODES.values()} <= set(COMMANDS) and "bringup" in COMMANDS


def test_rviz_config_shows_image_markers_and_camera_frame():
    cfg = load_config()
    rviz = yaml.safe_load((REPO_ROOT / "config" / "refit.rviz").read_text(encoding="utf-8"))
    manager = rviz["Visualization Manager"]
    displays = {d["Class"]: d for d in manager["Displays"]}
    assert displays["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == cfg.ros.markers_topic
    assert displays["rviz_default_plugins/Image"]["Topic"]["Value"] == cfg.ros.image_topic
    assert displays["rviz_default_plugins/Camera"]["Topic"]["Value"] == cfg.ros.image_topic
    assert displays["rviz_default_plugins/Axes"]["Reference Frame"] == cfg.source.frame_id
    assert manager["Global Options"]["Fixed Frame"] == cfg.source.frame_id
