"""The YAML config is the single source of defaults and rejects bad keys/values."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from refit_ros.config import ConfigError, default_config_path, load_config, parse_set


def test_defaults_match_yaml_file():
    cfg = load_config()
    raw = yaml.safe_load(default_config_path().read_text())
    assert cfg.to_dict() == raw  # nothing added or changed on the way in


def test_overrides_are_typed_and_validated():
    cfg = load_config(overrides=["model.iterations=3", "tracking.enabled=false", "source.rate=12"])
    assert cfg.model.iterations == 3
    assert cfg.tracking.enabled is False
    assert cfg.source.rate == 12.0 and isinstance(cfg.source.rate, float)
    assert cfg.flat()["model.iterations"] == 3


@pytest.mark.parametrize(
    "item, match",
    [
        ("model.nope=1", "unknown config key"),
        ("nosection.x=1", "unknown config key"),
        ("model=1", "section"),
        ("model.iterations=abc", "integer"),
        ("model.name=resnet", "model.name"),
        ("detector.min_score=2", "min_score"),
        ("tracking.enabled=7", "true/false"),
        ("ros.max_image_pixels=0", "ros.max_image_pixels=0 must be > 0"),
    ],
)
def test_bad_overrides_are_errors(item, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=[item])


def test_user_file_partial_and_unknown(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("model:\n  iterations: 2\n")
    assert load_config(good).model.iterations == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  iteratons: 2\n")
    with pytest.raises(ConfigError, match="model.iteratons"):
        load_config(bad)


def test_parse_set_requires_equals():
    with pytest.raises(ConfigError):
        parse_set(["model.iterations"])


def test_cli_config_command_reports_errors():
    ok = subprocess.run([sys.executable, "-m", "refit_ros.cli", "config", "--set", "model.iterations=4"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(ok.stdout)["model"]["iterations"] == 4
    bad = subprocess.run([sys.executable, "-m", "refit_ros.cli", "config", "--set", "model.bogus=1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "model.bogus" in bad.stderr
