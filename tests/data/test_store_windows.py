"""Day bounds are whole days in the symbol's zone; a file's --tz is the symbol's zone.

The data is a CSV written the way a vendor would: New York local times, 1-minute bars,
from 04:00 to 19:59 (pre- and post-market, so an evening bar lies past UTC midnight).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore
from quantdesk.screener import rules as R
from quantdesk.screener import scan

ZONE = "America/New_York"
DAYS = ("2024-03-07", "2024-03-08", "2024-03-11")


@pytest.fixture
def vendor_csv(tmp_path: Path) -> Path:
    local = pd.DatetimeIndex([])
    for day in DAYS:
        local = local.append(pd.date_range(f"{day} 04:00", f"{day} 19:59", freq="1min"))
    n = len(local)
    close = 100.0 + np.arange(n) * 0.001
    frame = pd.DataFrame(
        {
            "Date": local.strftime("%Y-%m-%d %H:%M"),
            "Open": close,
            "High": close + 0.05,
            "Low": close - 0.05,
            "Close": close,
            "Volume": np.arange(n) % 7 + 1,
        }
    )
    path = tmp_path / "AAPL_1min.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def store(tmp_path: Path, vendor_csv: Path) -> MarketStore:
    path = tmp_path / "s.duckdb"
    result = CliRunner().invoke(
        app,
        ["ingest", "file", str(vendor_csv), "--symbol", "AAPL", "--timeframe", "1min",
         "--tz", ZONE, "--store", str(path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return MarketStore(path)


def _expected_daily(vendor_csv: Path) -> pd.DataFrame:
    """Return daily bars computed with pandas from the file's New York dates."""
    raw = pd.read_csv(vendor_csv)
    raw["day"] = pd.to_datetime(raw["Date"]).dt.normalize()
    daily = raw.groupby("day").agg(
        open=("Open", "first"),
        high=("High", "max"),
        low=("Low", "min"),
        close=("Close", "last"),
        volume=("Volume", "sum"),
    )
    daily.index = daily.index.tz_localize("UTC").as_unit("ns").rename("ts")
    return daily.astype(float)


def test_ingest_tz_is_the_symbols_zone_and_days_follow_it(
    store: MarketStore, vendor_csv: Path
) -> None:
    assert store.metadata("AAPL")["timezone"].tolist() == [ZONE]
    daily = store.bars("AAPL", timeframe="1d").set_index("ts").drop(columns="symbol")
    pd.testing.assert_frame_equal(daily, _expected_daily(vendor_csv), check_freq=False)
    # The 19:30 New York bar of Mar 7 (00:30 UTC Mar 8) is in Mar 7's daily bar.
    assert (
        daily.loc["2024-03-07", "close"]
        == pd.read_csv(vendor_csv).query("Date == '2024-03-07 19:59'")["Close"].item()
    )


def test_day_bounds_are_whole_days_in_the_symbols_zone(store: MarketStore) -> None:
    one = store.bars(["AAPL"], start="2024-03-08", end="2024-03-08", timeframe="1min")
    assert len(one) == 16 * 60
    local = one["ts"].dt.tz_convert(ZONE)
    assert (local.dt.date.astype(str) == "2024-03-08").all()
    # bars, panel and coarser bars built on the fly agree on the day
    close = store.panel("close", "AAPL", start="2024-03-08", end="2024-03-08", timeframe="5min")
    assert len(close) == 16 * 12
    assert store.bars("AAPL", end="2024-03-08", timeframe="1d")["ts"].dt.day.tolist() == [7, 8]
    # a bound with a time part stays an instant (inclusive)
    last = store.bars("AAPL", end="2024-03-07 13:00+00:00", timeframe="1min")
    assert last["ts"].iloc[-1] == pd.Timestamp("2024-03-07 13:00", tz="UTC")


def test_scan_end_day_keeps_that_whole_day(store: MarketStore) -> None:
    always = R.rule("always", lambda data: data["close"] > 0, lookback=0)
    alerts = scan(store, [always], start="2024-03-08", end="2024-03-11", timeframe="5min")
    days = alerts["ts"].dt.tz_convert(ZONE).dt.date.astype(str).value_counts()
    assert days.to_dict() == {"2024-03-08": 16 * 12, "2024-03-11": 16 * 12}
