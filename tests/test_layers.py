"""Imports as a map: the layers (hwinfo -> bench -> results on disk -> reports, model beside) and no circles.

Every import in the product code is read from its source (module level and inside functions alike: a
function-level import still ties two modules together), so a circle broken only by moving an import into
a function is still a circle here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hwinfo", "bench", "reports", "model")
# What each package may not import (DESIGN.md, "Data flow"): reports never torch; hwinfo never bench or
# reports; model none of the others; bench never reports.
FORBIDDEN = {
    "reports": ("torch",),
    "hwinfo": ("bench", "reports"),
    "model": ("hwinfo", "bench", "reports"),
    "bench": ("reports",),
}
# Known breaches, each to be removed with its fix; an entry that no longer happens fails the test, so the list
# only shrinks. (bench tune's tips table is now printed by bench.cli, above both: none left.)
KNOWN: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str) -> set[str]:
    """Every module name `path` imports, at any depth of its code (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def import_graph(
    root: Path, packages: tuple[str, ...] = PACKAGES
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(edges between the product modules, every name each module imports)."""
    files = {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    edges: dict[str, set[str]] = {}
    raw: dict[str, set[str]] = {}
    for name, path in files.items():
        raw[name] = imports(path, name)
        for target in raw[name]:
            while target and target not in files:
                target = target.rpartition(".")[0]
            # a package and its own submodules import each other by design (re-exports, lazy loaders)
            family = (
                target
                and (name.startswith(target + ".") or target.startswith(name + "."))
                and (files[target].name == "__init__.py" or files[name].name == "__init__.py")
            )
            if target and target != name and not family:
                edges.setdefault(name, set()).add(target)
    return edges, raw


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def breaches(raw: dict[str, set[str]]) -> set[tuple[str, str]]:
    out = set()
    for name, targets in raw.items():
        for bad in FORBIDDEN.get(name.split(".")[0], ()):
            out.update((name, t) for t in targets if t == bad or t.startswith(bad + "."))
    return {(a, b) for a, b in out if not any(b.startswith(o + ".") for x, o in out if x == a and o != b)}


def test_no_import_circles():
    edges, _ = import_graph(REPO)
    assert cycles(edges) == [], (
        "import circles (function-level imports count): move the shared part below both"
    )


def test_the_layers_hold():
    _, raw = import_graph(REPO)
    found = breaches(raw)
    assert found - KNOWN == set(), "a layer imports one above it (DESIGN.md, Data flow)"
    assert KNOWN - found == set(), "a known breach is fixed: remove it from KNOWN"


def test_the_checker_catches_what_it_should(tmp_path):
    def write(rel: str, text: str = "") -> None:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    write("bench/__init__.py")
    write("bench/a.py", "from bench.b import x\n")
    write("bench/b.py", "def f():\n    from bench import a  # a function-level import is still an edge\n")
    write("bench/pkg/__init__.py", "from bench.pkg.c import y\n")
    write("bench/pkg/c.py", "from bench.pkg import z\nfrom . import d\n")  # a package and its own modules
    write("bench/pkg/d.py", "import reports.load\n")
    write("reports/__init__.py")
    write("reports/load.py", "def g():\n    import torch.nn\n")
    edges, raw = import_graph(tmp_path, ("bench", "reports"))
    assert cycles(edges) == [["bench.a", "bench.b"]]
    assert "bench.pkg.d" in edges["bench.pkg.c"]
    assert breaches(raw) == {("bench.pkg.d", "reports.load"), ("reports.load", "torch.nn")}


@pytest.mark.parametrize("module", ["bench.results", "bench.metrics", "hwinfo.energy", "hwinfo.units"])
def test_the_format_and_its_checks_sit_low(module):
    """The results format and the checks every layer shares import nothing from reports or torch."""
    _, raw = import_graph(REPO)
    assert not [t for t in raw[module] if t.split(".")[0] in ("reports", "torch", "pandas")], raw[module]
