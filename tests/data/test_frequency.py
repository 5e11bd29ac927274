"""Bar frequencies and periods per year, on calendars built by pandas and on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.frequency import infer_timeframe, periods_per_year, timeframe_of
from quantdesk.data.schemas import parse_timeframe

BACKTESTING_DATA = Path(__import__("backtesting").__file__).parent / "test"


@pytest.mark.parametrize(
    ("text", "name"),
    [("1w", "1w"), ("1W", "1w"), ("1 week", "1w"), ("1wk", "1w"), ("1mo", "1mo"),
     ("1 month", "1mo"), ("1mth", "1mo"), ("15m", "15min"), ("1Min", "1min")],
)  # fmt: skip
def test_calendar_timeframes_parse(text: str, name: str) -> None:
    assert parse_timeframe(text).name == name


@pytest.mark.parametrize("text", ["1M", "3M"])
def test_capital_m_is_refused_as_ambiguous_never_minutes(text: str) -> None:
    with pytest.raises(ValueError, match=r"ambiguous.*'\d+mo'.*'\d+min'"):
        parse_timeframe(text)


@pytest.mark.parametrize("text", ["2w", "3mo", "2d"])
def test_only_one_unit_above_hours(text: str) -> None:
    with pytest.raises(ValueError, match="only '1d', '1w' and '1mo'"):
        parse_timeframe(text)


def test_calendar_floor_matches_pandas_periods() -> None:
    # Any day of a period is labelled by the period's start: pandas' own periods say which.
    rng = np.random.default_rng(3)
    stamps = pd.Series(
        pd.to_datetime("2000-01-01", utc=True)
        + pd.to_timedelta(rng.integers(0, 30 * 365 * 24 * 60, 2000), unit="min")
    )
    naive = stamps.dt.tz_localize(None)
    month = parse_timeframe("1mo").floor(stamps)
    week = parse_timeframe("1w").floor(stamps)
    expected_month = naive.dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
    expected_week = naive.dt.to_period("W-SUN").dt.start_time.dt.tz_localize("UTC")
    pd.testing.assert_series_equal(month, expected_month.dt.as_unit("ns"), check_names=False)
    pd.testing.assert_series_equal(week, expected_week.dt.as_unit("ns"), check_names=False)
    assert (week.dt.day_of_week == 0).all() and (month.dt.day == 1).all()
    assert parse_timeframe("1mo").is_calendar and not parse_timeframe("1d").is_calendar


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2010-01-01", periods=500), "1d"),
        (pd.date_range("2010-01-31", periods=60, freq="ME"), "1mo"),  # month-end dated
        (pd.date_range("2010-01-15", periods=60, freq="MS") + pd.Timedelta(days=14), "1mo"),
        (pd.date_range("2010-01-08", periods=60, freq="W-FRI"), "1w"),  # Friday dated
        (pd.date_range("2010-01-01", periods=500, freq="h", tz="UTC"), "1h"),
        (pd.date_range("2010-01-01", periods=500, freq="5min"), "5min"),
    ],
)
def test_infer_timeframe(index: pd.DatetimeIndex, expected: str) -> None:
    assert infer_timeframe(index).name == expected


def test_infer_refuses_what_it_cannot_tell() -> None:
    with pytest.raises(ValueError, match="fewer than two"):
        infer_timeframe(pd.DatetimeIndex(["2020-01-01"]))
    with pytest.raises(ValueError, match="fits no standard bar"):
        infer_timeframe(pd.date_range("2020-01-01", periods=10, freq="7min"))


def test_attrs_timeframe_wins_over_the_index() -> None:
    panel = pd.DataFrame({"A": 1.0}, index=pd.bdate_range("2020-01-01", periods=10))
    assert timeframe_of(panel).name == "1d"
    panel.attrs["timeframe"] = "1w"
    assert timeframe_of(panel).name == "1w"
    assert periods_per_year(panel) == 52


@pytest.mark.parametrize(
    ("timeframe", "calendar", "expected"),
    [
        ("1d", None, 252), ("1w", None, 52), ("1mo", None, 12),
        ("1h", "exchange", 6.5 * 252), ("1h", "24/5", 24 * 260), ("1h", "24/7", 24 * 365),
        ("5min", "24/7", 12 * 24 * 365), ("30min", None, 13 * 252),
    ],
)  # fmt: skip
def test_periods_per_year_of_a_timeframe(timeframe: str, calendar: str, expected: float) -> None:
    assert periods_per_year(timeframe, calendar=calendar) == pytest.approx(expected)  # type: ignore[arg-type]


def test_intraday_calendar_is_read_off_the_data() -> None:
    hours = pd.date_range("2024-01-01", periods=24 * 120, freq="h", tz="UTC")
    crypto = hours
    fx = hours[hours.day_of_week < 5]
    # A US equity session: 14:30-21:00 UTC, bars labelled on the hour, seven a day.
    equity = hours[(hours.day_of_week < 5) & (hours.hour >= 14) & (hours.hour < 21)]
    assert periods_per_year(crypto) == 24 * 365
    assert periods_per_year(fx) == 24 * 260
    assert periods_per_year(equity) == 7 * 252
    # An explicit calendar overrides what the data suggests.
    assert periods_per_year(equity, calendar="24/7") == 24 * 365


def test_real_hourly_fx_file_reads_as_24_5() -> None:
    # backtesting.py's EURUSD sample: hourly bars, Sunday evening opens, no Saturdays.
    eurusd = pd.read_csv(BACKTESTING_DATA / "EURUSD.csv", index_col=0, parse_dates=True)
    assert infer_timeframe(eurusd.index).name == "1h"
    assert periods_per_year(eurusd) == 24 * 260


def test_real_daily_and_monthly_files() -> None:
    goog = pd.read_csv(BACKTESTING_DATA / "GOOG.csv", index_col=0, parse_dates=True)
    assert periods_per_year(goog) == 252
    arch_data = Path(__import__("arch").__file__).parent / "data"
    # FRED's core CPI: monthly observations dated on the 1st.
    cpi = pd.read_csv(arch_data / "core_cpi" / "core-cpi.csv.gz", index_col=0)
    cpi.index = pd.to_datetime(cpi.index, format="%m/%d/%Y")
    assert periods_per_year(cpi) == 12
    # Brent and WTI: monthly observations dated mid-month.
    crude = pd.read_csv(arch_data / "crude" / "crude.csv.gz", index_col=0, encoding="utf-8-sig")
    crude.index = pd.to_datetime(crude.index)
    assert periods_per_year(crude) == 12


def test_periods_per_year_needs_something() -> None:
    with pytest.raises(ValueError, match="needs a timeframe"):
        periods_per_year()
    with pytest.raises(ValueError, match="unknown calendar"):
        periods_per_year("1h", calendar="24/6")  # type: ignore[arg-type]
