"""The demo's modules (``medrestore/tasks/demo*.py``) import each other without a circle, also a
section added later that the import-linter contract in ``pyproject.toml`` does not list yet."""

from __future__ import annotations

import ast
from pathlib import Path

import medrestore.tasks

TASKS = Path(medrestore.tasks.__file__).parent


def _demo_imports(source: str) -> set[str]:
    """Names of the ``medrestore.tasks.demo*`` modules ``source`` imports (TYPE_CHECKING blocks included)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["medrestore", "tasks"] and len(parts) > 2 and parts[2].startswith("demo"):
                found.add(parts[2])
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (module → modules it imports) as a path, or ``None``."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target):], target] if target in path else [*path, target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"demo": {"demo_oct"}, "demo_oct": {"demo_common"}, "demo_common": set()}) is None
    assert _cycle({"demo": {"demo_oct"}, "demo_oct": {"demo"}}) == ["demo", "demo_oct", "demo"]
    assert _demo_imports("if TYPE_CHECKING:\n    from medrestore.tasks.demo import DemoContext\n") == {"demo"}
    assert _demo_imports("from medrestore.tasks import demo_oct\n") == {"demo_oct"}


def test_no_import_circle_among_the_demo_modules() -> None:
    modules = {path.stem: path for path in TASKS.glob("demo*.py")}
    assert {"demo", "demo_common", "demo_oct"} <= set(modules)
    graph = {name: _demo_imports(path.read_text(encoding="utf-8")) & set(modules) - {name} for name, path in modules.items()}
    assert _cycle(graph) is None, f"import circle: {' → '.join(_cycle(graph) or [])}"
    assert graph["demo_common"] == set()  # what the sections share imports none of them
