"""node_test_args never swaps in untrained weights silently (issue 14, item 8)."""

from __future__ import annotations

import os

import pytest

import node_process


def test_missing_shipped_weights_fail_unless_seeded_weights_are_asked_for(monkeypatch, tmp_path):
    from refit_ros.models.refit_kp import loading

    monkeypatch.delenv("REFIT_NODE_TEST_ARGS", raising=False)
    monkeypatch.delenv(node_process.SEEDED_ENV, raising=False)
    monkeypatch.setattr(loading, "DEFAULT_WEIGHTS", tmp_path / "missing.pt")
    with pytest.raises(pytest.fail.Exception, match="missing.pt.*SEEDED_WEIGHTS=1"):
        node_process.node_test_args(tmp_path)
    monkeypatch.setenv(node_process.SEEDED_ENV, "1")
    with pytest.warns(UserWarning, match="UNTRAINED"):
        args = node_process.node_test_args(tmp_path)
    assert args[0] == "--set" and args[1].startswith("model.weights=")
    assert (tmp_path / "seeded_refit_kp.pt").is_file()


def test_shipped_weights_mean_the_default_config(monkeypatch, tmp_path):
    from refit_ros.models.refit_kp.loading import DEFAULT_WEIGHTS

    assert DEFAULT_WEIGHTS.is_file(), f"shipped weights {DEFAULT_WEIGHTS} missing"
    monkeypatch.delenv("REFIT_NODE_TEST_ARGS", raising=False)
    assert node_process.node_test_args(tmp_path) == []
    assert not list(tmp_path.iterdir())
