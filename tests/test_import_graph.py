"""The import graph of ``refit_ros`` has no circles (issue 15).

Every ``import`` counts, also the ones inside functions (a circle hidden in a function
body is still a circle: the two modules cannot be understood or moved one without the
other). Checked from the source with :mod:`ast`, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "refit_ros"

#: The library's layers: among them not even a circle between packages is allowed.
CORE = {"refit_ros.config", "refit_ros.geometry", "refit_ros.body", "refit_ros.models",
        "refit_ros.detect", "refit_ros.export", "refit_ros.runtime", "refit_ros.parity",
        "refit_ros.pipeline", "refit_ros.tracking", "refit_ros.bench"}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``refit_ros`` modules it imports (module level and inside functions)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {resolve(a.name) for a in node.names if a.name.startswith("refit_ros")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    pkg = pkg[:len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                if not base.startswith("refit_ros"):
                    continue
                for a in node.names:  # `from pkg import module` names the module
                    full = f"{base}.{a.name}"
                    targets.add(full if full in mods else resolve(base))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_graph_sees_function_level_imports():
    graph = import_graph()
    assert "refit_ros.models.refit.refit" in graph["refit_ros.export.families"]  # in a function
    assert "refit_ros.export.onnx" in graph["refit_ros.pipeline"]


def test_no_module_imports_itself_back():
    assert _cycles(import_graph()) == []


def test_core_packages_form_layers():
    pkgs: dict[str, set[str]] = {}
    for mod, targets in import_graph().items():
        a = _package(mod)
        if a not in CORE:
            continue
        pkgs.setdefault(a, set())
        pkgs[a] |= {_package(t) for t in targets if _package(t) in CORE and _package(t) != a}
    assert _cycles(pkgs) == []


@pytest.mark.parametrize("lower, upper", [("refit_ros.runtime", "refit_ros.pipeline"),
                                          ("refit_ros.export", "refit_ros.pipeline"),
                                          ("refit_ros.export", "refit_ros.runtime"),
                                          ("refit_ros.pipeline", "refit_ros.parity")])
def test_lower_layer_does_not_import_upper(lower, upper):
    graph = import_graph()
    bad = sorted((m, t) for m, ts in graph.items() for t in ts
                 if _package(m) == lower and _package(t) == upper)
    assert bad == []
