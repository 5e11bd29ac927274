"""Wide panels from long bars, checked against pandas' own pivot on real price files."""

from __future__ import annotations

import doctest
from pathlib import Path

import backtesting
import numpy as np
import pandas as pd
import pytest

from quantdesk.data import wide
from quantdesk.data.wide import VALUE_FIELDS, check_fields, panels_from_bars, to_wide

CSV_DIR = Path(backtesting.__file__).parent / "test"


def long_bars() -> pd.DataFrame:
    """Return GOOG (daily) and BTCUSD (its own calendar) as long bars, rows shuffled."""
    parts = []
    for name in ("GOOG", "BTCUSD"):
        frame = pd.read_csv(CSV_DIR / f"{name}.csv", index_col=0, parse_dates=True)
        frame.columns = [c.lower() for c in frame.columns]
        frame = frame.rename_axis("ts").reset_index()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.normalize()
        frame = frame.drop_duplicates("ts")
        parts.append(frame.assign(symbol=name))
    bars = pd.concat(parts, ignore_index=True)
    return bars.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_doctests() -> None:
    assert doctest.testmod(wide, raise_on_error=False).failed == 0


def test_to_wide_equals_pandas_pivot_on_real_files() -> None:
    bars = long_bars()
    panels = to_wide(bars, list(VALUE_FIELDS))
    for field in VALUE_FIELDS:
        expected = bars.pivot(index="ts", columns="symbol", values=field).astype("float64")
        expected.columns = pd.Index(list(expected.columns))
        got = panels[field]
        assert got.index.is_monotonic_increasing and got.index.name == "ts"
        assert list(got.columns) == ["BTCUSD", "GOOG"]
        pd.testing.assert_frame_equal(got, expected, check_names=False, check_freq=False)
    # the two calendars differ: each symbol is NaN exactly where it has no bar
    close = panels["close"]
    assert close["GOOG"].notna().sum() == (bars["symbol"] == "GOOG").sum()
    assert close["BTCUSD"].notna().sum() == (bars["symbol"] == "BTCUSD").sum()


def test_panels_from_bars_share_one_grid_and_carry_the_timeframe() -> None:
    bars = long_bars()
    panels = panels_from_bars(bars, ["open", "close"], "1d")
    assert panels["open"].index.equals(panels["close"].index)
    assert panels["open"].columns.equals(panels["close"].columns)
    assert {p.attrs["timeframe"] for p in panels.values()} == {"1d"}
    from quantdesk.data.frequency import periods_per_year

    assert periods_per_year(panels["close"]) == 252


def test_unknown_field_is_named() -> None:
    check_fields(["close", "volume"])
    with pytest.raises(ValueError, match=r"unknown field 'adj_close'; choose from \('open'"):
        check_fields(["close", "adj_close"])


def test_to_wide_of_no_bars_is_empty() -> None:
    empty = pd.DataFrame(
        {"symbol": pd.Series(dtype=str), "ts": pd.Series(dtype="datetime64[ns, UTC]"),
         "close": pd.Series(dtype=float)}
    )  # fmt: skip
    panel = to_wide(empty, ["close"])["close"]
    assert panel.shape == (0, 0)
    assert np.isnan(panel.to_numpy()).all()
