"""The package's import structure: no cycles, and every import points down the layers.

Imports are read from the source (module level and inside functions alike, since a lazy import
is still a dependency; ``if TYPE_CHECKING:`` blocks excepted) and grouped by top-level unit: a
subpackage (``synsample.nn``) or a module (``synsample.engine``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "synsample"

#: lowest first; a unit may import only from units of a lower layer (and from itself)
LAYERS = [
    {"errors"},
    {"io", "checks", "machine", "randomness", "papers", "config_args", "__init__"},
    {"data"},
    {"devices", "kernels", "paths"},
    {"nn"},
    {"metrics", "models", "adaptive", "tuning"},
    {"prediction"},
    {"engine"},
    {"hardware", "checkpoint", "cluster", "tracking"},
    {"methods"},
    {"shards", "report", "train"},
    {"evaluate", "benchmarks"},
    {"export"},
    {"experiments"},
    {"cli"},
    {"__main__"},
]


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path) -> set[str]:
    """The top-level units of synsample that ``path`` imports."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = ([f"{node.module}.{a.name}" for a in node.names]
                     if node.module == "synsample" else [node.module])
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "synsample" and len(parts) > 1:
                found.add("__init__" if parts[1] == "__version__" else parts[1])
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        unit = _unit(path)
        edges.setdefault(unit, set()).update(_imports(path) - {unit})
    return edges


def test_every_unit_has_a_layer():
    placed = set().union(*LAYERS)
    assert set(graph()) <= placed, f"give these a layer: {sorted(set(graph()) - placed)}"


def test_imports_point_down_the_layers():
    layer = {unit: i for i, units in enumerate(LAYERS) for unit in units}
    upward = sorted(f"{a} (layer {layer[a]}) imports {b} (layer {layer[b]})"
                    for a, targets in graph().items() for b in targets
                    if a != "__init__" and layer[b] >= layer[a])
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    edges = graph()
    edges["__init__"] = set()  # the package's lazy front door (synsample.convert, .predict)
    cycles = _cycles(edges)
    assert not cycles, "\n".join(cycles)


def _cycles(edges: dict[str, set[str]]) -> list[str]:
    """Each import cycle a depth-first walk of ``edges`` meets, as ``a -> b -> a``."""
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append("import cycle: " + " -> ".join([*path, node, nxt]))
            elif nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return cycles


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> dict[str, set[str]]:
    """Module -> the synsample modules it imports (module level, inside functions and
    type-only imports alike): ``from synsample.a import b`` names ``synsample.a.b`` when that
    is a module, else ``synsample.a``. The package's lazy front door is left out."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {}
    for module, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(owner(a.name) for a in node.names if a.name.startswith("synsample"))
            elif (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                  and node.module.startswith("synsample")):
                found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                             else owner(node.module) for a in node.names)
        edges[module] = found - {module, "synsample"}
    edges["synsample"] = set()
    return edges


def test_no_import_cycle_between_any_two_modules():
    cycles = _cycles(module_graph())
    assert not cycles, "\n".join(cycles)


def test_the_module_cycle_test_finds_a_cycle(monkeypatch):
    edges = {"synsample.a": {"synsample.b"}, "synsample.b": {"synsample.a"}}
    import sys

    import pytest

    monkeypatch.setattr(sys.modules[__name__], "module_graph", lambda: edges)
    with pytest.raises(AssertionError, match="synsample.a -> synsample.b"):
        test_no_import_cycle_between_any_two_modules()
