"""Ingest jobs called as a library: the same accounts the CLI prints, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data import MarketStore
from quantdesk.data.sources.ingest import (
    ingest_file,
    ingest_samples,
    ingest_simulated,
    ingest_yahoo,
)
from quantdesk.data.store.inventory import rejected_rows, store_contents


def _data_file(package: str, *parts: str) -> Path:
    module = pytest.importorskip(package)
    return Path(module.__file__).parent.joinpath(*parts)


def test_ingest_file_counts_every_row_of_a_file_nobody_here_wrote(tmp_path: Path) -> None:
    goog = _data_file("backtesting", "test", "GOOG.csv")
    expected = pd.read_csv(goog, index_col=0, parse_dates=True)  # pandas' own reading
    path = tmp_path / "s.duckdb"
    result = ingest_file(goog, path, symbol="GOOG")
    assert result.ok and result.problem is None
    (report,) = result.reports
    assert report.inserted == len(expected) and report.rejected == 0
    close = MarketStore(path, read_only=True).panel("close", symbols=["GOOG"])["GOOG"]
    assert close.to_numpy() == pytest.approx(expected["Close"].to_numpy())
    assert close.index[0].date() == expected.index[0].date()
    # the same file again changes nothing, and the account says so
    again = ingest_file(goog, MarketStore(path), symbol="GOOG")
    assert again.reports[0].unchanged == len(expected)
    assert json.loads(json.dumps(again.to_dict()))["reports"][0]["unchanged"] == len(expected)


def test_rejected_rows_are_reported_and_listed(tmp_path: Path) -> None:
    wti = _data_file("arch", "data", "wti", "wti.csv.gz")
    raw = pd.read_csv(wti)
    missing = int((raw["DCOILWTICO"] == ".").sum())  # FRED writes '.' for a missing day
    path = tmp_path / "s.duckdb"
    result = ingest_file(wti, path, symbol="WTI", columns={"DCOILWTICO": "close", "Date": "ts"})
    assert result.ok
    assert result.reports[0].rejected == missing > 0
    assert f"{missing} rejected rows stored with their reasons" in result.summary()
    rows = rejected_rows(path, result.reports[0].ingest_id, limit=3)
    assert len(rows.frame) == 3 and len(rows.to_dict()["rejects"]) == 3
    assert "missing value '.'" in rows.summary()
    assert rejected_rows(path).frame.shape[0] == missing


def test_a_file_of_bad_rows_stores_nothing_and_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Close\n2020-01-02,-1\n2020-01-03,abc\n")
    result = ingest_file(bad, tmp_path / "s.duckdb", symbol="BAD")
    assert not result.ok
    assert result.problem is not None
    assert "bad.csv: nothing stored, all 2 rows rejected" in result.problem
    assert "non-positive price (1 rows)" in result.problem


def test_a_file_that_cannot_be_read_creates_no_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ambiguous timeframe '1M'"):
        ingest_file(tmp_path / "x.csv", tmp_path / "s.duckdb", symbol="X", timeframe="1M")
    with pytest.raises(FileNotFoundError):
        ingest_file(tmp_path / "missing.csv", tmp_path / "s.duckdb", symbol="X")
    assert not (tmp_path / "s.duckdb").exists()


def test_simulated_ingest_totals_its_chunks(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    # 30 symbols: two chunks of writes, totalled in one headline
    first = ingest_simulated(path, symbols=30, days=20, seed=3, tick_days=1, progress=False)
    assert first.headline == (
        "simulator:seed=3: 30 symbols x 20 days -> 600 inserted, 0 updated, 0 unchanged, 0 rejected"
    )
    assert [r.kind for r in first.reports] == ["ticks"]
    info = store_contents(path).to_dict()
    assert info["bars"][0]["rows"] == 600 and info["bars"][0]["symbols"] == 30
    assert info["ticks"]["rows"] == first.reports[0].inserted > 0
    again = ingest_simulated(path, symbols=30, days=20, seed=3, progress=False)
    assert "0 inserted, 0 updated, 600 unchanged" in again.summary()


def test_samples_and_store_contents_summary(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    result = ingest_samples(path, ["sp500"], progress=False)
    assert result.summary().startswith("arch:sp500: 5031 bars 1d rows in -> 5031 inserted")
    text = store_contents(path).summary()
    assert "  SPX                     1d      5,031  1999-01-04 .. 2018-12-31  arch:sp500" in text
    assert text.endswith("rejects: 0")


def test_store_contents_of_a_missing_store_creates_none(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store_contents(tmp_path / "none.duckdb")
    assert not (tmp_path / "none.duckdb").exists()


@pytest.mark.timeout(60)  # bounds a hang; asserts no speed
def test_yahoo_unreachable_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from quantdesk.data.sources import online

    # as tests/data/test_online.py: the extra importable, a host that never resolves
    monkeypatch.setitem(sys.modules, "yfinance", types.ModuleType("yfinance"))
    monkeypatch.setattr(online, "YAHOO_HOST", "quantdesk-test.invalid")
    with pytest.raises(online.SourceUnavailableError, match="needs a network"):
        ingest_yahoo(["SPY"], tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()


def test_data_info_credits_each_file_with_the_rows_it_wrote(tmp_path: Path) -> None:
    # Two files of one symbol: January 2-5, then January 5-10 with the 5th corrected.
    first, second = tmp_path / "early.csv", tmp_path / "late.csv"
    first.write_text("Date,Close\n2024-01-02,1\n2024-01-03,2\n2024-01-04,3\n2024-01-05,4\n")
    second.write_text("Date,Close\n2024-01-05,4.5\n2024-01-08,5\n2024-01-09,6\n2024-01-10,7\n")
    path = tmp_path / "s.duckdb"
    assert ingest_file(first, path, symbol="ACME").ok
    again = ingest_file(second, path, symbol="ACME")
    assert (again.reports[0].inserted, again.reports[0].updated) == (3, 1)
    info = store_contents(path)
    series = [
        (s["source"], s["rows"], s["first"][:10], s["last"][:10]) for s in info.info["series"]
    ]
    # by hand: the corrected 5th now belongs to late.csv
    assert series == [
        ("early.csv", 3, "2024-01-02", "2024-01-04"),
        ("late.csv", 4, "2024-01-05", "2024-01-10"),
    ]
    sources = {s["source"]: s["rows"] for s in info.info["sources"]}
    assert sources == {"early.csv": 3, "late.csv": 4}
    lines = [line.split() for line in info.summary().splitlines()]
    assert ["ACME", "1d", "3", "2024-01-02", "..", "2024-01-04", "early.csv"] in lines
    assert ["ACME", "1d", "4", "2024-01-05", "..", "2024-01-10", "late.csv"] in lines
    # the first file again: it puts the 5th back (that row is its own again); its three
    # unchanged rows keep their account
    back = ingest_file(first, path, symbol="ACME")
    assert (back.reports[0].updated, back.reports[0].unchanged) == (1, 3)
    after = {s["source"]: s["rows"] for s in store_contents(path).info["sources"]}
    assert after == {"early.csv": 4, "late.csv": 3}
