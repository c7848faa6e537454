"""The package's floors: arrows point down only (see the README's layout section).

Every ``import`` of a medvae module is read from the source (those inside functions too), so a lazy import
that climbs a floor fails here as surely as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medvae"


def imports(path: Path) -> set[str]:
    """The medvae modules a file imports (``from medvae import x`` counts as ``medvae.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("medvae")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("medvae"):
            found |= {f"{node.module}.{a.name}" if node.module == "medvae" else node.module for a in node.names}
    return found


def modules(room: str) -> list[Path]:
    return sorted((PACKAGE / room).rglob("*.py"))


def name_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", modules("io"), ids=lambda p: p.name)
def test_io_imports_nothing_of_medvae_but_errors(path):
    allowed = ("medvae.errors", "medvae.io", "medvae.__version__")
    assert not {m for m in imports(path) if not m.startswith(allowed) and m != "medvae"}


@pytest.mark.parametrize("path", modules("models"), ids=lambda p: p.name)
def test_models_are_a_leaf(path):
    forbidden = ("medvae.checkpoint", "medvae.data", "medvae.tasks", "medvae.train", "medvae.io",
                 "medvae.phantoms")
    assert not {m for m in imports(path) if m.startswith(forbidden)}


@pytest.mark.parametrize("room, below", [
    ("data", ("medvae.errors", "medvae.io", "medvae.data", "medvae.__version__")),
    ("phantoms", ("medvae.errors", "medvae.io", "medvae.data", "medvae.phantoms", "medvae.__version__")),
])
def test_lower_floors_do_not_reach_up(room, below):
    for path in modules(room):
        assert not {m for m in imports(path) if not m.startswith(below)}, path


def test_no_import_circles():
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        graph[name_of(path)] = {m for m in imports(path)}

    def resolve(m: str) -> str | None:  # an imported name may be a module or a name inside one
        while m and m not in graph:
            m = m.rpartition(".")[0]
        return m or None

    edges = {a: {r for m in b if (r := resolve(m)) and r != a and not a.startswith(r + ".") and r != "medvae"}
             for a, b in graph.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if not state.get(nxt):
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in edges:
        if not state.get(node):
            visit(node, [node])
