"""ROS parameters declared from the YAML config: names are its dotted keys.

``config/refit.yaml`` (plus ``--config`` / ``--set``) gives the defaults; ROS parameter
overrides (``--ros-args -p model.iterations:=3`` or a launch file) win; the result is
validated by :mod:`refit_ros.config` exactly like the file, so a bad value fails with the
same message everywhere.
"""

from __future__ import annotations

from typing import Iterable

from refit_ros.config import Config


def config_keys(cfg: Config, sections: Iterable[str] | None = None) -> list[str]:
    """Dotted keys of ``cfg`` (all, or only those under ``sections``)."""
    keys = list(cfg.flat())
    if sections is None:
        return keys
    wanted = tuple(f"{s}." for s in sections)
    return [k for k in keys if k.startswith(wanted)]


def declare_config_parameters(node, cfg: Config, sections: Iterable[str] | None = None) -> list[str]:
    """Declare one read-only parameter per config key; returns the declared names.

    Read-only: the pipeline is built from them once (reconfigure through the lifecycle).
    ``dynamic_typing`` lets ``-p source.rate:=10`` (an integer) reach the config's own
    validation, which accepts it for a float key, instead of a terse rclpy type error.
    """
    from rcl_interfaces.msg import ParameterDescriptor

    flat = cfg.flat()
    names = config_keys(cfg, sections)
    for key in names:
        desc = ParameterDescriptor(
            description=f"refit_ros config key {key} (default from config/refit.yaml)",
            read_only=True, dynamic_typing=True,
        )
        node.declare_parameter(key, flat[key], desc)
    return names


def config_from_parameters(node, cfg: Config, names: Iterable[str]) -> Config:
    """``cfg`` with the node's current values of ``names`` applied (validated).

    Raises
    ------
    refit_ros.config.ConfigError
        A parameter holds a value the config rejects; the message names the key.
    """
    flat = cfg.flat()
    changed = {}
    for key in names:
        value = node.get_parameter(key).value
        if value != flat[key] or type(value) is not type(flat[key]):
            changed[key] = value
    return cfg.replace(changed) if changed else cfg
