"""diagnostic_msgs helpers: named statuses that keep their latest level and message."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


@dataclasses.dataclass
class _Status:
    level: int = OK
    message: str = "ok"
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


class DiagnosticBoard:
    """Thread-safe set of named statuses (``"<node>: <name>"``) for ``/diagnostics``.

    Parameters
    ----------
    node_name : str
        Prefix of every status name and the ``hardware_id``.
    """

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self._lock = threading.Lock()
        self._statuses: dict[str, _Status] = {}

    def set(self, name: str, level: int, message: str, **values: Any) -> bool:
        """Update one status; True when its level or message changed (worth publishing now)."""
        with self._lock:
            new = name not in self._statuses
            st = self._statuses.setdefault(name, _Status())
            changed = new or (st.level, st.message) != (level, message)
            st.level, st.message = level, message
            st.values.update(values)
            return changed

    def update_values(self, name: str, **values: Any) -> None:
        """Change the key/values of a status without touching its level or message."""
        with self._lock:
            self._statuses.setdefault(name, _Status()).values.update(values)

    def level(self, name: str) -> int | None:
        with self._lock:
            st = self._statuses.get(name)
            return None if st is None else st.level

    def to_msg(self, stamp):
        """``diagnostic_msgs/DiagnosticArray`` holding every status."""
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        arr = DiagnosticArray()
        arr.header.stamp = stamp
        with self._lock:
            for name, st in self._statuses.items():
                arr.status.append(DiagnosticStatus(
                    level=bytes([st.level]), name=f"{self.node_name}: {name}",
                    message=st.message, hardware_id=self.node_name,
                    values=[KeyValue(key=str(k), value=str(v)) for k, v in st.values.items()],
                ))
        return arr
