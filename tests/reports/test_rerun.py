"""Research you can rerun: a report records the snapshot version it read; a rerun reads it.

Real parts: a DuckDB store file, a Parquet snapshot folder, papermill runs of a small
notebook that opens its data the way every project notebook does (``open_research``),
and ``quantdesk report rerun`` through the CLI.  The kernels import the checkout
under test (``PYTHONPATH`` is handed on).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore, simulate
from quantdesk.reports import run_report
from quantdesk.reports.rerun import find_run, rerun_report

from .test_runner import write_notebook

pytestmark = pytest.mark.slow

# The notebook prints what a report shows: the span, and figures computed from the bars.
NUMBERS = """\
from quantdesk.data.research import open_research
research = open_research(symbols, start=start)
close = research.panel("close")
returns = close.pct_change(fill_method=None)
print("bars", len(close), "last", close.index[-1].date())
print("mean", returns.mean().round(12).to_dict())
print("vol", (returns.std() * 252 ** 0.5).round(12).to_dict())
"""


def printed(record) -> str:
    """Return the text the notebook printed (its stream outputs)."""
    nb = nbformat.read(record.ipynb_path, as_version=4)
    return "".join(
        o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name")
    )


@pytest.fixture
def setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[MarketStore, Path, Path]:
    store = MarketStore(tmp_path / "store.duckdb")
    bars = simulate(n_symbols=2, n_days=400, seed=3).bars
    first = bars["ts"].sort_values().unique()[300]
    store.write_bars(bars[bars["ts"] < first], "1d", source="first 300 days")
    monkeypatch.setenv("QUANTDESK_STORE", str(store.path))
    notebook = write_notebook(
        tmp_path / "nb" / "numbers.ipynb", 'symbols = "SIM000,SIM001"\nstart = None', NUMBERS
    )
    return store, notebook, tmp_path / "snapshots"


def test_a_rerun_after_new_bars_shows_the_same_numbers(
    setting: tuple[MarketStore, Path, Path], tmp_path: Path
) -> None:
    store, notebook, url = setting
    reports = tmp_path / "reports"
    first = run_report(notebook, reports_dir=reports, snapshot=str(url), take_snapshot=True)
    assert first.ok, first.reason
    assert first.snapshot == {"url": str(url), "version": 1}
    assert "bars 300" in printed(first)
    assert first.code["sha256"] and "pandas" in first.versions
    # New bars arrive, and the house snapshot moves on to version 2.
    more = simulate(n_symbols=2, n_days=400, seed=3).bars
    store.write_bars(more[more["ts"] >= more["ts"].sort_values().unique()[300]], "1d")
    assert int(store.snapshot(str(url))) == 2
    today = run_report(notebook, reports_dir=reports, snapshot=str(url))
    assert today.snapshot == {"url": str(url), "version": 2}
    assert "bars 400" in printed(today) and printed(today) != printed(first)
    # The rerun reads version 1: the same numbers, to the last digit printed.
    result = CliRunner().invoke(
        app, ["report", "rerun", first.run_id, "--reports-dir", str(reports), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["original"] == first.run_id
    assert doc["snapshot"] == {"url": str(url), "version": 1}
    assert doc["code_differs"] is False and doc["libraries_differ"] is False
    again = find_run(doc["rerun"]["run_id"], reports)
    assert again.rerun_of == first.run_id and again.run_id != first.run_id
    assert printed(again) == printed(first)


def test_a_rerun_says_when_the_code_differs(
    setting: tuple[MarketStore, Path, Path], tmp_path: Path
) -> None:
    _, notebook, url = setting
    reports = tmp_path / "reports"
    first = run_report(notebook, reports_dir=reports, snapshot=str(url), take_snapshot=True)
    assert first.ok, first.reason
    # The notebook is edited after the run: the rerun still runs it, and says so.
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[-1].source += '\nprint("edited")'
    nbformat.write(nb, notebook)
    rerun = rerun_report(first.run_id, reports_dir=reports)
    assert rerun.ok
    assert set(rerun.code) == {"sha256"}
    assert "code differs: sha256" in rerun.summary()
    assert printed(rerun.record) == printed(first) + "edited\n"


def test_a_run_that_read_the_store_cannot_be_rerun(
    setting: tuple[MarketStore, Path, Path], tmp_path: Path
) -> None:
    _, notebook, _ = setting
    reports = tmp_path / "reports"
    record = run_report(notebook, reports_dir=reports)
    assert record.ok and record.snapshot is None
    with pytest.raises(ValueError, match="read the store, not a snapshot"):
        rerun_report(record.run_id, reports_dir=reports)
    with pytest.raises(LookupError, match="no report run 'nope'"):
        rerun_report("nope", reports_dir=reports)
    result = CliRunner().invoke(app, ["report", "rerun", "nope", "--reports-dir", str(reports)])
    assert result.exit_code == 1 and "no report run 'nope'" in result.output
