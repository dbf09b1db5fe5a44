"""ROS 2 message definitions as MCAP ``ros2msg`` schema text (the .msg files + dependencies).

The text is the type's own ``.msg`` followed, for every nested type, by a line of 80 ``=``,
``MSG: pkg/Type`` and that type's ``.msg`` (the concatenation Foxglove and rosbag2 use).
The files are found in ``share/<pkg>/msg`` of every prefix in ``AMENT_PREFIX_PATH`` and of
this Python environment (where ``make setup`` installs them).
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64", "string", "wstring",
}
SEPARATOR = "=" * 80


class MessageDefinitionError(LookupError):
    """A .msg file cannot be found; the message lists where it was looked for."""


def _prefixes() -> list[Path]:
    paths = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return paths + [Path(sys.prefix)]


def _split(type_name: str) -> tuple[str, str]:
    parts = type_name.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise MessageDefinitionError(f"not a message type name: {type_name!r} (want pkg/msg/Type)")


@lru_cache(maxsize=None)
def msg_file_text(type_name: str) -> str:
    """Text of the ``.msg`` file of ``pkg/msg/Type`` (or ``pkg/Type``)."""
    pkg, name = _split(type_name)
    tried = []
    for prefix in _prefixes():
        path = prefix / "share" / pkg / "msg" / f"{name}.msg"
        tried.append(str(path))
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise MessageDefinitionError(f"no .msg file for {type_name}; looked in: {', '.join(tried)}")


def _dependencies(pkg: str, text: str) -> list[str]:
    deps = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        field_type = line.split()[0]
        base = field_type.split("[", 1)[0].split("<=", 1)[0]
        if base in PRIMITIVES:  # constants are always primitives
            continue
        if "/" not in base:
            base = f"{pkg}/{base}"
        deps.append("/".join(_split(base)))
    return deps


def schema_text(type_name: str) -> str:
    """The MCAP ``ros2msg`` schema of ``type_name`` (e.g. ``sensor_msgs/msg/Image``)."""
    pkg, name = _split(type_name)
    root = msg_file_text(type_name)
    order: list[str] = []
    stack = list(reversed(_dependencies(pkg, root)))
    while stack:
        dep = stack.pop()
        if dep in order:
            continue
        order.append(dep)
        dep_pkg = dep.split("/")[0]
        stack.extend(reversed(_dependencies(dep_pkg, msg_file_text(dep))))
    parts = [root.rstrip("\n")]
    for dep in order:
        parts.append(f"{SEPARATOR}\nMSG: {dep}\n{msg_file_text(dep).rstrip(chr(10))}")
    return "\n".join(parts) + "\n"


def type_name_of(msg_class) -> str:
    """``sensor_msgs.msg.Image`` -> ``sensor_msgs/msg/Image``."""
    module = msg_class.__module__.split(".")
    return f"{module[0]}/msg/{msg_class.__name__}"
