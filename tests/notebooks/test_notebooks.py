"""Every notebook in notebooks/ runs top to bottom through papermill without an error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ..data.test_samples import contents, goog_csv
from ..reports.test_offline_html import assert_renders_offline

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
# Small parameters per notebook; a list runs the notebook once per parameter set.
SMALL_PARAMETERS: dict[str, list[dict]] = {
    "quickstart": [
        {"symbols": ["SPX"], "universe": "samples", "start": "2008-01-01", "end": "2008-12-31"}
    ],
    "market_overview": [
        {"symbols": ["SPX", "IXIC"], "universe": "samples", "start": "2015-01-01", "max_symbols": 5}
    ],
    "regime_report": [
        {"symbols": "SPX,IXIC", "universe": "samples", "start": "2006-01-01", "n_init": 1}
    ],
    "regime_explorer": [
        {"symbols": "SPX,IXIC", "universe": "samples", "start": "2015-01-01", "n_init": 1}
    ],
    "strategy_explorer": [
        {"universe": "simulated", "n_symbols": 5, "start": "2018-01-01", "lookbacks": [21, 126]}
    ],
    "screener_report": [
        {"symbols": "SPX,IXIC", "universe": "samples", "start": "2005-01-01", "store_alerts": True}
    ],
    "strategy_tearsheet": [
        {
            "symbols": "SPX,IXIC",
            "universe": "samples",
            "benchmark_symbol": "SPX",
            "start": "2005-01-01",
            "sweep_lookbacks": [63, 252],
            "sweep_target_vols": [0.1, 0.2],
            "walk_forward_train": 504,
            "walk_forward_test": 252,
        },
        {
            "universe": "simulated",
            "n_symbols": 5,
            "sweep_lookbacks": [21, 126],
            "sweep_target_vols": [0.1],
            "walk_forward_train": 504,
            "walk_forward_test": 252,
        },
    ],
    "sentiment_report": [
        {"universe": "simulated", "n_symbols": 5, "start": "2016-01-01", "horizons": [1, 5]}
    ],
    "forecast_report": [
        {
            "universe": "simulated",
            "n_symbols": 5,
            "start": "2017-01-01",
            "min_train": 504,
            "refit": 252,
        }
    ],
    "paper_portfolio": [
        {
            "universe": "simulated",
            "n_symbols": 4,
            "lookbacks": [21, 63],
            "target_vol": 0.2,
            "max_price_age_days": 100_000,  # the simulated market's bars are years old
        }
    ],
}
CASES = [
    pytest.param(path, params, id=f"{path.stem}-{i}")
    for path in NOTEBOOKS
    for i, params in enumerate(SMALL_PARAMETERS.get(path.stem, [{}]))
]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize(("path", "parameters"), CASES)
def test_notebook_executes_and_publishes(
    path: Path, parameters: dict, tmp_path: Path, page
) -> None:
    import nbformat

    from quantdesk.reports import run_report

    source = nbformat.read(path, as_version=4)
    tagged = [c for c in source.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    record = run_report(path, parameters, reports_dir=tmp_path / "reports", cwd=tmp_path)
    assert record.ok, record.summary()
    executed = nbformat.read(record.ipynb_path, as_version=4)
    errors = [
        o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells)
    # The published HTML has every section of the story and no error output.
    html = record.html_path.read_text()
    headings = [
        line.lstrip("#").strip()
        for c in source.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("#")
    ]
    assert headings
    for heading in headings:
        assert heading.replace("&", "&amp;") in html, f"{path.name}: section {heading!r} missing"
    assert "Traceback" not in html
    assert "run failed" not in html.lower()
    if path.stem == "strategy_tearsheet":
        from quantdesk.backtest.metrics import BENCHMARK_METRICS

        # The metrics table carries the benchmark-relative rows.
        assert all(name in html for name in BENCHMARK_METRICS)
    index = (tmp_path / "reports" / "index.html").read_text()
    assert record.run_id in index
    # Issue 13: the index and the report draw every chart with the network refused
    # (the report last, so the test's screenshot shows it).
    assert_renders_offline(page, tmp_path / "reports" / "index.html", figures=0)
    page.unroute("**/*")
    drawn = assert_renders_offline(page, record.html_path)
    if path.stem in ("regime_explorer", "strategy_explorer"):
        # An app's widgets are inert in a published page: its static snapshot draws.
        assert drawn, f"{path.name}: the app's chart snapshot did not draw"


# ------------------------------------------------------- notebooks on the researcher's data


@pytest.fixture
def user_store():
    """The default store (the kernel's, under this test's QUANTDESK_HOME) with GOOG only."""
    from quantdesk.data import MarketStore, read_bars_file

    store = MarketStore()
    result = read_bars_file(goog_csv(), symbol="GOOG", columns={"Unnamed: 0": "ts"})
    store.write_bars(result.good, "1d", source="GOOG.csv", validation=result)
    return store


def cell_error(record) -> str:
    assert record.error is not None, record.summary()
    return f"{record.error['ename']}: {record.error['evalue']}"


@pytest.mark.parametrize(
    ("name", "parameters", "message"),
    [
        (
            "strategy_tearsheet",
            {"symbols": "GOOG,WTI"},
            "UnknownSymbolError: unknown symbol(s)",
        ),
        # Bug 7: an unknown universe ran on five simulated symbols it wrote into the store.
        ("strategy_tearsheet", {"universe": "WTI"}, "ValueError: unknown universe 'WTI'"),
        (
            "regime_report",
            {"symbols": ["WTI", "GOOG"], "universe": "samples"},
            "UnknownSymbolError: unknown symbol(s)",
        ),
        # A stored symbol without scored news: a clear message, not an empty report.
        ("sentiment_report", {"symbols": "GOOG"}, "ValueError: no scored news for GOOG"),
    ],
)
def test_unknown_symbol_fails_the_run_and_writes_nothing(
    user_store, tmp_path: Path, name: str, parameters: dict, message: str
) -> None:
    from quantdesk.reports import run_report
    from quantdesk.reports.fingerprint import store_fingerprint

    before = contents(user_store)
    fingerprint = store_fingerprint(user_store.path)[0]
    record = run_report(name, parameters, reports_dir=tmp_path / "reports", cwd=tmp_path)
    assert not record.ok
    error = cell_error(record)
    assert error.startswith(message)
    if "WTI" in str(parameters.get("symbols")):
        assert "['WTI']" in error and "holds 1: GOOG" in error
    # The failed run is published like any other, with its reason.
    assert message.split(": ", 1)[1] in record.html_path.read_text()
    after = contents(user_store)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, obj=table)
    assert store_fingerprint(user_store.path)[0] == fingerprint == record.data_fingerprint


def test_tearsheet_and_regimes_run_on_a_users_own_series(user_store, tmp_path: Path) -> None:
    """GOOG from backtesting.py's CSV: no sample or simulated data is needed or written."""
    from quantdesk.reports import run_report

    before = contents(user_store)
    small = {
        "sweep_lookbacks": [21, 126],
        "sweep_target_vols": [0.1],
        "walk_forward_train": 504,
        "walk_forward_test": 252,
    }
    runs = [
        ("strategy_tearsheet", {"symbols": "GOOG", "start": "2006-01-01", "end": None, **small}),
        ("regime_report", {"symbols": ["GOOG"], "end": "2012-12-31", "n_init": 1}),
    ]
    for name, parameters in runs:
        record = run_report(name, parameters, reports_dir=tmp_path / "reports", cwd=tmp_path)
        assert record.ok, record.summary()
        html = record.html_path.read_text()
        assert "GOOG" in html
    assert user_store.symbols() == ["GOOG"]
    after = contents(user_store)
    for table in ("bars", "symbols", "ingest_log"):
        pd.testing.assert_frame_equal(after[table], before[table], obj=table)
