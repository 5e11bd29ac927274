"""No two modules of ``src/quantdesk`` import each other, directly or round a circle.

The graph is read with the layer test's AST reading (:func:`tests.test_layers.imports_of`):
every import statement counts, at module level, inside a function or under
``TYPE_CHECKING``, and so do module paths given as strings.  An import names a module
when it is one (``from quantdesk.data.store import market``: the module ``market``),
else the package or module that holds the name.  Two kinds of edge are not arrows
between concepts and are left out: a package's ``__init__`` naming its own submodules
(the facade, whose lazy tables load them on first use), and a module importing the
package above it (Python runs a package's ``__init__`` before any of its modules).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from ..test_layers import PACKAGE, imports_of, module_name

# Known circles outside this test's owner, each with who removes it: the circle as a
# sorted tuple of its modules.  An entry leaves when its circle goes.
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


def _as_module(target: str, modules: Iterable[str]) -> str | None:
    """Return the module ``target`` names: itself, else the nearest module holding it."""
    known = set(modules)
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in known:
            return name
        parts.pop()
    return None


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Return module -> the quantdesk modules it imports (facade and parent edges left out)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for imp in imports_of(path, package.parent):
            target = _as_module(imp.target, modules)
            if target is None or target == module:
                continue
            if is_package and target.startswith(module + "."):
                continue  # the facade names its own submodules
            if module.startswith(target + ".") and modules[target].name == "__init__.py":
                continue  # the package above runs first anyway
            graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Return each strongly connected group of two or more modules, sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(tuple(sorted(group)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_imports_round_a_circle() -> None:
    found = [c for c in cycles(import_graph()) if c not in KNOWN_CYCLES]
    assert found == [], "import circles (break them; the layer docs say where each goes):\n" + (
        "\n".join(" <-> ".join(c) for c in found)
    )


def test_the_known_cycles_still_exist() -> None:
    # An allow-list entry whose circle is gone must leave, so it cannot hide a new one.
    found = set(cycles(import_graph()))
    assert {c for c in KNOWN_CYCLES if c not in found} == set()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # a module-level import one way, a TYPE_CHECKING import back
        (
            {
                "a.py": "from quantdesk.b import thing\n",
                "b.py": "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from quantdesk.a import other\n",
            },
            [("quantdesk.a", "quantdesk.b")],
        ),
        # a function-level import closes a circle of three
        (
            {
                "a.py": "import quantdesk.b\n",
                "b.py": "from quantdesk import c\n",
                "c.py": "def f():\n    from quantdesk.a import x\n",
            },
            [("quantdesk.a", "quantdesk.b", "quantdesk.c")],
        ),
        # a package facade and its modules importing the package: no circle
        (
            {
                "p/__init__.py": "_EXPORTS = {'x': 'quantdesk.p.m'}\n",
                "p/m.py": "from quantdesk.p import n\n",
                "p/n.py": "X = 1\n",
            },
            [],
        ),
        # one way only: no circle
        ({"a.py": "from quantdesk.b import thing\n", "b.py": "X = 1\n"}, []),
    ],
)
def test_a_circle_is_found(
    tmp_path: Path, files: dict[str, str], expected: list[tuple[str, ...]]
) -> None:
    package = tmp_path / "quantdesk"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert cycles(import_graph(package)) == expected
