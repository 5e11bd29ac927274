"""Notebooks stay stories: one helper opens every notebook, and none stores outputs.

Issue 22 item 7: each notebook opened with its own copy of the store / symbols /
panel / empty-check block.  :func:`quantdesk.data.research.open_research` is that block,
once; a notebook that opens the store itself again fails here.  What the sentiment and
paper reports compute lives in the package (``sentiment.report``,
``portfolio.paper_report``), so their notebooks only call it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))

# What the opening block did by hand; open_research does each once.
REIMPLEMENTED = {
    "opens a store itself": re.compile(r"\bMarketStore\s*\("),
    "chooses symbols itself": re.compile(r"\bselect_symbols\s*\("),
    "reads bars from the store itself": re.compile(r"\bstore\s*\.\s*(panel|panels|bars)\s*\("),
}
# The computations that moved into the package, by the names the notebooks used.
MOVED = {
    "sentiment_report": [
        r"\bingest_synthetic_news\b",
        r"\bscore_news\b",
        r"\bsimulate\s*\(",
        r"\bRegimeModel\b",
        r"\bdaily_sentiment\b",
        r"\binformation_coefficient\b",
    ],
    "paper_portfolio": [
        r"\bvol_target_trend\b",
        r"\bfollow_strategy\b",
        r"\bdrift_from_backtest\b",
    ],
}


def code_of(path: Path, parameters: bool = True) -> str:
    """Return the notebook's code (without the cell tagged ``parameters`` if asked)."""
    nb = nbformat.read(path, as_version=4)
    return "\n".join(
        c.source
        for c in nb.cells
        if c.cell_type == "code"
        and (parameters or "parameters" not in c.get("metadata", {}).get("tags", []))
    )


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 10


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_opens_with_the_one_helper(path: Path) -> None:
    code = code_of(path)
    assert code.count("open_research(") >= 1, f"{path.name}: does not call open_research"
    for what, pattern in REIMPLEMENTED.items():
        found = pattern.search(code)
        assert found is None, f"{path.name} {what}: {found.group(0)!r} (use open_research)"


@pytest.mark.parametrize("name", sorted(MOVED))
def test_report_computations_live_in_the_package(name: str) -> None:
    # the parameters cell names the strategy ("vol_target_trend"): a name, not a computation
    code = code_of(ROOT / "notebooks" / f"{name}.ipynb", parameters=False)
    for pattern in MOVED[name]:
        assert re.search(pattern, code) is None, f"{name}: {pattern} is computed in the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


def test_the_checks_catch_the_old_opening_block() -> None:
    """The patterns above match what every notebook did before (so they guard something)."""
    old = (
        "store = qd.data.MarketStore()\n"
        "chosen = qd.data.samples.select_symbols(store, symbols, universe=universe)\n"
        'close = store.panel("close", symbols=chosen, start=start, end=end)\n'
    )
    assert all(pattern.search(old) for pattern in REIMPLEMENTED.values())


CHARTING = re.compile(r"^\s*(?:import|from)\s+(hvplot|holoviews|panel|bokeh)\b", re.M)
QUANTDESK = re.compile(r"^\s*(?:import|from)\s+quantdesk\b", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_quantdesk_is_imported_before_any_charting_library(path: Path) -> None:
    # In a JupyterLab kernel, `import quantdesk` installs the hook that makes chart
    # outputs load their JavaScript from the Jupyter server; a chart library imported
    # first emits a loader that points at a CDN, and every chart is blank offline
    # (tests/dashboards/test_lab_front_door.py shows it in a browser).
    code = code_of(path, parameters=False)
    first_chart = CHARTING.search(code)
    if first_chart is None:
        return
    first_quantdesk = QUANTDESK.search(code)
    assert first_quantdesk is not None and first_quantdesk.start() < first_chart.start(), (
        f"{path.name}: import quantdesk before {first_chart.group(1)}"
    )
