"""The house rules of docs/architecture.md, checked on the source of every module.

Each module of ``src/quantdesk`` sits on a floor; it may import from its own floor and
the floors below, never above.  Inside the decisions floor the packages are ordered
too (:data:`DECISIONS_ORDER`): ``strategies`` lowest, then ``backtest`` and
``screener`` beside each other, then ``portfolio``; a package imports only the ones
below it (the ledger may import backtest and strategies, backtest strategies, the
screener strategies; strategies none of them), so an arrow back up fails the build.
Only ``reports`` and ``dashboards`` may know papermill, Voila or Panel, and no package
imports another package's private (``_name``) names.
Imports inside functions count, and so do module paths given as strings (the lazy
``_EXPORTS`` tables, ``importlib.import_module("quantdesk...")``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "quantdesk"

# The floors, bottom first.  ``quantdesk.core`` is the bottom floor whether or not it
# exists yet in this checkout; top-level modules not named here (and the package root
# ``quantdesk`` itself, which lazily exposes every package) sit where listed below.
FLOORS: dict[str, int] = {
    "core": 0,
    "_lazy": 0,
    "config": 0,
    "errors": 0,
    "numba_cache": 0,
    "data": 1,
    "signals": 2,
    "regimes": 2,
    "sentiment": 2,
    "forecast": 2,
    "strategies": 3,
    "portfolio": 3,
    "backtest": 3,
    "screener": 3,
    "reports": 4,
    "dashboards": 4,
    "pipeline": 4,
    "cli": 5,
    "__main__": 5,
}
FLOOR_NAMES = ["core", "data", "analytics", "decisions", "publishing", "cli"]
DECISIONS = 3
# The order inside the decisions floor, bottom first.  Packages on one step do not
# import each other (backtest and screener are siblings), so no step holds a circle.
DECISIONS_ORDER: dict[str, int] = {"strategies": 0, "backtest": 1, "screener": 1, "portfolio": 2}
ROOT_FLOOR = 5  # ``quantdesk/__init__.py`` names every package (lazily): the facade.

# Only publishing knows these: docs/architecture.md, "the only packages that may import
# papermill, Voila or Panel".
PUBLISHING_ONLY = {"papermill", "voila", "panel"}
PUBLISHING = {"reports", "dashboards"}

# Known breaks of the rules, each with who removes it: (importing module, imported
# module); an entry covers that module and every name imported from it.  Empty since
# issue 11 landed; a new entry needs a reason and an owner, and leaves when its import goes.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

# Modules may grow past this many lines only when they hold one concept; each such
# module is named here with that concept, and one that shrinks below leaves the list.
MAX_LINES = 800
LONG_MODULES: dict[str, str] = {
    "quantdesk.data.sources.simulator": (
        "the regime-switching market simulator: its parameters, the correlated daily "
        "path, its true regimes and the intraday ticks drawn from the same path"
    ),
    "quantdesk.backtest.metrics": (
        "the performance statistics of a return series (one numpy function per metric, "
        "cross-checked against empyrical), and the table that gathers them"
    ),
    "quantdesk.regimes.model": (
        "RegimeModel: the 9-state HMM's fit, filter, labels and summary, one class"
    ),
}

_MODULE_PATH = re.compile(r"quantdesk(\.[A-Za-z_]\w*)+")


@dataclass(frozen=True)
class Import:
    """One import of a module: where it is and what it names."""

    module: str  # the importing module
    target: str  # the imported module or ``module.name``
    line: int


def module_name(path: Path, src: Path = SRC) -> str:
    """Return the dotted module name of a file under ``src``."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """Return the absolute module of a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path, src: Path = SRC) -> list[Import]:
    """Return every import of ``path``: statements anywhere, and quantdesk paths as strings."""
    module = module_name(path, src)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, path.name == "__init__.py", node)
            found += [Import(module, source, node.lineno)]
            found += [Import(module, f"{source}.{a.name}", node.lineno) for a in node.names]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_PATH.fullmatch(node.value)
        ):
            found.append(Import(module, node.value, node.lineno))
    return found


def floor_of(module: str) -> int | None:
    """Return the floor of a quantdesk module (None outside quantdesk or unknown)."""
    parts = module.split(".")
    if parts[0] != "quantdesk":
        return None
    if len(parts) == 1:
        return ROOT_FLOOR
    return FLOORS.get(parts[1])


def violations(found: list[Import]) -> list[str]:
    """Return the broken rules among ``found``, one readable line each."""
    out: list[str] = []
    for imp in found:
        here, there = imp.module.split("."), imp.target.split(".")
        where = f"{imp.module} (line {imp.line}) imports {imp.target}"
        if there[0] in PUBLISHING_ONLY and (len(here) < 2 or here[1] not in PUBLISHING):
            out.append(f"{where}: only reports and dashboards may use {there[0]}")
        if there[0] != "quantdesk" or len(there) < 2:
            continue
        mine, theirs = floor_of(imp.module), floor_of(imp.target)
        if mine is not None and theirs is not None and theirs > mine:
            out.append(
                f"{where}: {FLOOR_NAMES[mine]} may not import {FLOOR_NAMES[theirs]} "
                f"(a higher floor)"
            )
        if (
            mine == theirs == DECISIONS
            and len(here) > 1
            and here[1] != there[1]
            and DECISIONS_ORDER[there[1]] >= DECISIONS_ORDER[here[1]]
        ):
            out.append(
                f"{where}: inside decisions, {here[1]} may not import {there[1]} "
                "(order: strategies < backtest, screener < portfolio)"
            )
        # ``quantdesk._lazy`` is a module of the whole project; private names *inside*
        # another package (``quantdesk.backtest.figures._holoviews``) are that package's.
        other_package = len(here) < 2 or here[1] != there[1]
        private = [p for p in there[2:] if p.startswith("_") and not p.startswith("__")]
        if other_package and private:
            out.append(f"{where}: {private[0]} is private to quantdesk.{there[1]}")
    return out


def known(imp: Import, entry: tuple[str, str]) -> bool:
    """Return whether the allow-list ``entry`` covers ``imp``."""
    module, target = entry
    return imp.module == module and (imp.target + ".").startswith(target + ".")


def all_imports() -> list[Import]:
    """Return the imports of every module under ``src/quantdesk``."""
    return [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports_of(path)]


def test_every_module_sits_on_a_known_floor() -> None:
    unknown = {
        module_name(path) for path in PACKAGE.rglob("*.py") if floor_of(module_name(path)) is None
    }
    assert not unknown, f"give these a floor in FLOORS and in docs/architecture.md: {unknown}"


def test_modules_stay_short_unless_they_are_one_named_concept() -> None:
    lengths = {
        module_name(path): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    too_long = {m: n for m, n in lengths.items() if n > MAX_LINES and m not in LONG_MODULES}
    assert too_long == {}, f"cut these by concept, or name their one concept: {too_long}"
    short_again = {m for m in LONG_MODULES if lengths.get(m, 0) <= MAX_LINES}
    assert short_again == set(), f"under {MAX_LINES} lines now: drop from LONG_MODULES"


def test_every_decisions_package_has_a_place_in_the_order() -> None:
    decisions = {name for name, floor in FLOORS.items() if floor == DECISIONS}
    assert decisions == set(DECISIONS_ORDER)


def test_no_module_imports_from_a_higher_floor_or_a_private_name() -> None:
    found = [imp for imp in all_imports() if not any(known(imp, e) for e in KNOWN_VIOLATIONS)]
    assert violations(found) == []


def test_the_known_violations_still_exist() -> None:
    # An allow-list entry whose import is gone must leave the list, so it cannot hide
    # a new break later.
    found = all_imports()
    stale = {e for e in KNOWN_VIOLATIONS if not any(known(imp, e) for imp in found)}
    assert stale == set()


def _check(tmp_path: Path, name: str, source: str) -> list[str]:
    path = tmp_path / "src" / Path(*name.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return violations(imports_of(path, tmp_path / "src"))


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        # data knows nothing above it, even inside a function
        (
            "quantdesk.data.thing",
            "def f():\n    from quantdesk.signals import trend\n",
            "data may not import analytics",
        ),
        # analytics never import decisions or publishing
        ("quantdesk.regimes.thing", "import quantdesk.backtest.engine\n", "analytics may not"),
        ("quantdesk.signals.thing", "from quantdesk.reports import runner\n", "analytics may not"),
        # core is the bottom floor, whether or not it exists yet
        ("quantdesk.core.thing", "from quantdesk.data import store\n", "core may not import data"),
        # a relative import is resolved before it is judged
        ("quantdesk.data.thing", "from ..backtest import run\n", "data may not import decisions"),
        # a lazy export table names a module as a string
        (
            "quantdesk.data.__init__",
            "_EXPORTS = {'x': 'quantdesk.regimes.model'}\n",
            "data may not import analytics",
        ),
        # papermill, Voila and Panel belong to publishing
        ("quantdesk.backtest.thing", "import panel as pn\n", "only reports and dashboards"),
        ("quantdesk.regimes.thing", "def f():\n    import papermill\n", "only reports"),
        # another package's private name
        (
            "quantdesk.backtest.thing",
            "from quantdesk.data.sources.simulator import _symbol_names\n",
            "_symbol_names is private to quantdesk.data",
        ),
        (
            "quantdesk.signals.thing",
            "from quantdesk.backtest._order_kernel import k\n",
            "_order_kernel is private",
        ),
        # inside decisions: strategies are the lowest, the ledger the highest
        (
            "quantdesk.strategies.x",
            "from quantdesk.portfolio import PaperLedger\n",
            "strategies may not import portfolio",
        ),
        (
            "quantdesk.strategies.x",
            "def f():\n    import quantdesk.backtest.engine\n",
            "strategies may not import backtest",
        ),
        ("quantdesk.backtest.x", "from ..portfolio import ledger\n", "backtest may not import"),
        (
            "quantdesk.screener.x",
            "from quantdesk.portfolio.ledger import PaperLedger\n",
            "screener may not import portfolio",
        ),
        # siblings on one step do not import each other
        ("quantdesk.backtest.x", "import quantdesk.screener.rules\n", "backtest may not import"),
        (
            "quantdesk.strategies.__init__",
            "_EXPORTS = {'x': 'quantdesk.portfolio.follow'}\n",
            "strategies may not import portfolio",
        ),
    ],
)
def test_a_broken_rule_is_reported(tmp_path: Path, name: str, source: str, expected: str) -> None:
    problems = _check(tmp_path, name, source)
    assert len(problems) >= 1 and any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("quantdesk.backtest.thing", "from quantdesk.data.frequency import periods_per_year\n"),
        ("quantdesk.data.thing", "from quantdesk.core import provenance\n"),
        ("quantdesk.data.thing", "from quantdesk.data.sources.simulator import _symbol_names\n"),
        ("quantdesk.reports.thing", "import papermill\nfrom quantdesk.backtest import run\n"),
        ("quantdesk.cli", "from quantdesk.reports.commands import report_app\n"),
        ("quantdesk.signals.thing", "from quantdesk._lazy import lazy_attributes\n"),
        ("quantdesk.signals.thing", "LOG = 'quantdesk.signals uses this text'\n"),
        ("quantdesk.portfolio.x", "from quantdesk.backtest.order_rules import fill_order\n"),
        ("quantdesk.portfolio.x", "from quantdesk.strategies import get_strategy\n"),
        ("quantdesk.backtest.x", "from quantdesk.strategies.sizing import Rebalance\n"),
        ("quantdesk.screener.x", "from quantdesk.strategies import vol_target_trend\n"),
        ("quantdesk.strategies.x", "from quantdesk.signals.trend import blended_tsmom\n"),
    ],
)
def test_allowed_imports_pass(tmp_path: Path, name: str, source: str) -> None:
    assert _check(tmp_path, name, source) == []


def test_no_file_cites_a_document_outside_the_repository() -> None:
    # The team's design notes live outside the repository; what the code relies on is
    # written in docs/architecture.md, so a citation must point there.
    outside = ("DESIGN" + ".md", "STYLE" + ".md")
    root = SRC.parent
    files = [
        p
        for folder in ("src", "tests", "benchmarks", "docs", "notebooks", "research")
        for p in (root / folder).rglob("*")
        if p.suffix in {".py", ".md", ".ipynb", ".yaml", ".yml"}
    ] + [root / "README.md"]
    cited = [str(p.relative_to(root)) for p in files if any(d in p.read_text() for d in outside)]
    assert cited == []
