"""The store with users' series: close-only bars, weeks and months, unknown symbols, info."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantdesk.data import MarketStore, UnknownSymbolError
from quantdesk.data.frequency import periods_per_year

from ..conftest import make_bars


def close_only(symbol: str, dates: pd.DatetimeIndex, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": dates,
            "open": np.nan,
            "high": np.nan,
            "low": np.nan,
            "close": values,
            "volume": np.nan,
        }
    )


def test_close_only_series_is_stored_and_read_back_missing(store: MarketStore) -> None:
    dates = pd.bdate_range("2024-01-01", periods=30, tz="UTC")
    values = np.linspace(70.0, 80.0, 30)
    report = store.write_bars(close_only("WTI", dates, values), "1d")
    assert report.inserted == 30 and report.rejected == 0
    bars = store.bars("WTI")
    assert bars[["open", "high", "low", "volume"]].isna().all().all()
    np.testing.assert_array_equal(bars["close"], values)
    close = store.panel("close", symbols=["WTI"])
    assert close["WTI"].tolist() == values.tolist()
    # volume missing, never zero, also after aggregation into weeks
    weekly = store.bars("WTI", timeframe="1w")
    assert weekly["volume"].isna().all() and weekly["open"].isna().all()
    assert store.write_bars(close_only("WTI", dates, values), "1d").unchanged == 30


def test_a_store_file_from_before_close_only_series_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE bars (symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, "
        "ts TIMESTAMPTZ NOT NULL, open DOUBLE NOT NULL, high DOUBLE NOT NULL, "
        "low DOUBLE NOT NULL, close DOUBLE NOT NULL, volume DOUBLE, "
        "PRIMARY KEY (symbol, timeframe, ts))"
    )
    con.close()
    store = MarketStore(path)
    dates = pd.bdate_range("2024-01-01", periods=3, tz="UTC")
    assert store.write_bars(close_only("X", dates, np.ones(3)), "1d").inserted == 3


def test_weekly_and_monthly_bars_from_daily_match_pandas_resample(store: MarketStore) -> None:
    bars = make_bars(["A", "B"], 90, seed=3)
    store.write_bars(bars, "1d")
    for timeframe, rule in (("1w", "W-SUN"), ("1mo", "MS")):
        got = store.bars(["A", "B"], timeframe=timeframe)
        for symbol, own in bars.groupby("symbol"):
            daily = own.set_index("ts")
            expected = daily.resample(rule, label="left" if rule == "MS" else "right").agg(
                {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
            )
            if rule == "W-SUN":  # pandas labels weeks by their Sunday; the store by Monday
                expected.index = expected.index - pd.Timedelta(days=6)
            expected = expected.dropna(subset=["close"])
            mine = got[got["symbol"] == symbol].set_index("ts")
            assert mine.index.tolist() == expected.index.as_unit("ns").tolist()
            np.testing.assert_allclose(mine[list(expected.columns)], expected, rtol=1e-12)
    panel = store.panel("close", timeframe="1mo")
    assert panel.attrs["timeframe"] == "1mo"
    assert periods_per_year(panel) == 12.0


def test_monthly_bars_written_on_any_day_are_labelled_by_month_start(store: MarketStore) -> None:
    month_ends = pd.date_range("2023-01-31", periods=4, freq="ME", tz="UTC")
    report = store.write_bars(close_only("CPI", month_ends, np.arange(1.0, 5.0)), "1mo")
    assert report.inserted == 4
    assert any("labelled by its 1st" in note for note in report.notes)
    ts = store.bars("CPI", timeframe="1mo")["ts"]
    assert ts.dt.strftime("%Y-%m-%d").tolist() == [
        "2023-01-01",
        "2023-02-01",
        "2023-03-01",
        "2023-04-01",
    ]
    # a monthly series cannot make daily or weekly bars: it says so, with what is stored
    with pytest.raises(UnknownSymbolError, match=r"at 1d: stored only at \{'CPI': \['1mo'\]\}"):
        store.bars("CPI")


def test_unknown_symbols_raise_listing_what_is_stored(store: MarketStore) -> None:
    # bug 6 of issue 10: panel(symbols=["SPX", "NOPE"]) dropped NOPE without a word
    store.write_bars(make_bars(["SPX", "IXIC"], 5), "1d")
    for read in (
        lambda: store.panel("close", symbols=["SPX", "NOPE"]),
        lambda: store.panels(["close"], symbols=["NOPE"]),
        lambda: store.bars(["NOPE", "SPX", "ZZZ"]),
    ):
        with pytest.raises(UnknownSymbolError) as info:
            read()
        assert isinstance(info.value, KeyError)
        assert "IXIC, SPX" in str(info.value)
        assert "NOPE" in info.value.unknown and "SPX" not in info.value.unknown
    assert store.panel("close", symbols=["SPX"]).columns.tolist() == ["SPX"]


def test_every_panel_carries_its_timeframe(store: MarketStore) -> None:
    store.write_bars(make_bars(["A"], 10), "1d")
    panels = store.panels(["close", "volume"])
    assert {frame.attrs["timeframe"] for frame in panels.values()} == {"1d"}
    assert periods_per_year(store.panel("close")) == 252.0


def test_info_lists_every_series(store: MarketStore) -> None:
    store.write_bars(make_bars(["A", "B"], 10), "1d", source="unit")
    months = pd.date_range("2020-01-01", periods=3, freq="MS", tz="UTC")
    store.write_bars(close_only("M", months, np.ones(3)), "1mo", source="fred")
    series = store.info()["series"]
    assert [(s["symbol"], s["timeframe"], s["rows"]) for s in series] == [
        ("A", "1d", 10),
        ("B", "1d", 10),
        ("M", "1mo", 3),
    ]
    assert series[2]["first"] == "2020-01-01T00:00:00+00:00"
    assert series[2]["last"] == "2020-03-01T00:00:00+00:00"
    assert series[0]["source"] == "unit" and series[2]["source"] == "fred"
