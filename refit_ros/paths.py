"""Where things are: the package and repository roots, and config paths resolved."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
#: The repository (or, installed, the folder above the package): config paths are relative to it.
REPO_ROOT = PACKAGE_ROOT.parent


class ModelFileError(FileNotFoundError):
    """A model, weights or body file is missing; the message says which and where to put it."""


def resolve_path(value: str) -> Path:
    """Resolve a config path: absolute, ``~``, or relative to the repository root."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p)
