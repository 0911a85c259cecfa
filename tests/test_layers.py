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
    state: dict[str, int] = {}

    def visit(unit: str, path: list[str]) -> None:
        state[unit] = 1
        for nxt in sorted(edges.get(unit, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, unit, nxt]))
            if nxt not in state:
                visit(nxt, [*path, unit])
        state[unit] = 2

    for unit in sorted(edges):
        if unit not in state:
            visit(unit, [])
