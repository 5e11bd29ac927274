"""Daily sentiment signals: hand-worked sessions, decay and shocks, and causality of each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.signals.sentiment import (
    daily_sentiment,
    join_sentiment,
    sentiment_shock,
    session_close,
    session_positions,
)

from .causality import assert_causal

nan = np.nan
NY = "America/New_York"


def _news(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["symbol", "ts", "score"])
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize(NY).dt.tz_convert("UTC")
    return frame


# Fri 1 March 2024, then Mon 4, Tue 5, Wed 6 (New York is on EST, UTC-5)
CALENDAR = pd.DatetimeIndex(["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06"], tz="UTC")
NEWS = _news(
    [
        ("A", "2024-03-01 15:00", 0.5),  # before Friday's close: Friday
        ("A", "2024-03-01 16:00", -1.0),  # at the close: the next session, Monday
        ("A", "2024-03-02 12:00", 0.25),  # Saturday: rolls forward to Monday
        ("A", "2024-03-05 09:00", 1.0),  # before Tuesday's open: Tuesday
        ("A", "2024-03-06 17:00", 0.3),  # after the last session's close: none yet
        ("B", "2024-03-04 15:59", -0.5),  # a minute before Monday's close: Monday
    ]
)


def test_session_positions_by_hand() -> None:
    assert session_positions(NEWS["ts"], CALENDAR).tolist() == [0, 1, 1, 2, -1, 1]
    # another exchange: Tokyo (UTC+9) closes at 15:00; Friday 15:00 New York is Saturday
    # 05:00 there (Monday's session), Tuesday 09:00 New York is Tuesday 23:00 (Wednesday's)
    tokyo = session_positions(NEWS["ts"], CALENDAR, timezone="Asia/Tokyo", close="15:00")
    assert tokyo.tolist() == [1, 1, 1, 3, -1, 2]


def test_a_holiday_rolls_forward_to_the_next_bar() -> None:
    no_monday = CALENDAR.delete(1)
    assert session_positions(NEWS["ts"], no_monday).tolist() == [0, 1, 1, 1, -1, 1]


def test_daily_mean_count_and_decay_by_hand() -> None:
    daily = daily_sentiment(NEWS, CALENDAR, halflife=1.0)
    expected_mean = pd.DataFrame(
        {"A": [0.5, -0.375, 1.0, nan], "B": [nan, -0.5, nan, nan]}, index=CALENDAR
    )
    pd.testing.assert_frame_equal(daily.mean, expected_mean, check_names=False)
    assert daily.count.to_numpy().tolist() == [[1, 0], [2, 1], [1, 0], [0, 0]]
    # weights halve every session, a session without news counts 0, from the first story:
    # A on Monday is (0.5 * 0.5 - 0.375) / (0.5 + 1), on Wednesday (no news)
    # (0.125 * 0.5 - 0.375 * 0.25 + 1.0 * 0.5 + 0) / (0.125 + 0.25 + 0.5 + 1)
    expected_decayed = {
        "A": [0.5, -0.125 / 1.5, 0.9375 / 1.75, 0.46875 / 1.875],
        "B": [nan, -0.5, -0.25 / 1.5, -0.125 / 1.75],
    }
    for symbol, values in expected_decayed.items():
        np.testing.assert_allclose(daily.decayed[symbol], values)
    # the same as pandas' adjusted EWM of the daily means (0 without news) from the first story
    for symbol in ("A", "B"):
        series = daily.mean[symbol]
        first = series.first_valid_index()
        reference = series.fillna(0.0)[first:].ewm(halflife=1.0, adjust=True).mean()
        np.testing.assert_allclose(daily.decayed[symbol][first:], reference)
    assert "4 sessions x 2 symbols, 5 stories" in daily.summary()


def test_session_close_follows_daylight_saving() -> None:
    closes = session_close(pd.DatetimeIndex(["2024-03-08", "2024-03-11"], tz="UTC"))
    assert [t.hour for t in closes] == [21, 20]  # EST, then EDT from 10 March


def test_shock_flags_values_beyond_k_std_of_their_past() -> None:
    values = pd.DataFrame({"A": [0.1, -0.1, 0.1, -0.1, nan, 0.9, 0.0, -0.9]})
    # history of row 5: [0.1, -0.1, 0.1, -0.1], mean 0, std 0.11547; z = 7.8
    # row 6: mean 0.18, std 0.4147, z = -0.43; row 7: mean 0.15, std 0.3782, z = -2.78
    shock = sentiment_shock(values, k=2.0, min_periods=4)
    np.testing.assert_array_equal(shock["A"].to_numpy(), [nan, nan, nan, nan, nan, 1, 0, -1])
    rolling = sentiment_shock(values, k=2.0, window=3, min_periods=3)
    # row 7 sees only [nan, 0.9, 0.0] in a 3-row window: 2 values, too few
    assert np.isnan(rolling["A"].iloc[7])


def test_join_puts_sentiment_beside_prices() -> None:
    prices = pd.DataFrame(
        {"A": [10.0, 11.0, 12.0, 13.0], "C": [1.0, 2.0, 3.0, 4.0]}, index=CALENDAR
    )
    joined = join_sentiment(prices, daily_sentiment(NEWS, CALENDAR, halflife=1.0))
    assert joined.columns.get_level_values(0).unique().tolist() == [
        "price",
        "mean",
        "count",
        "decayed",
    ]
    assert joined[("count", "A")].tolist() == [1, 2, 1, 0]
    assert joined[("count", "C")].tolist() == [0, 0, 0, 0]  # no news about C
    assert joined[("mean", "C")].isna().all()
    pd.testing.assert_frame_equal(joined["price"], prices, check_names=False)


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    index = pd.bdate_range("2023-01-02", periods=90, tz="UTC", name="ts")
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (90, 3)), axis=0)),
        index=index,
        columns=["A", "B", "C"],
    )
    n = 900
    start = pd.Timestamp("2023-01-01", tz="UTC").value
    span = pd.Timedelta(days=130).value
    news = pd.DataFrame(
        {
            "symbol": rng.choice(["A", "B", "C"], n),
            "ts": pd.to_datetime(np.sort(rng.integers(start, start + span, n)), utc=True),
            "score": rng.uniform(-1, 1, n),
        }
    )
    return prices, news


def _known_by(news: pd.DataFrame, calendar: pd.DatetimeIndex) -> pd.DataFrame:
    """Return the news published before the close of the calendar's last session."""
    return news[news["ts"] < session_close(calendar)[-1]]


CUTS = [5, 30, 61, 89]


@pytest.mark.parametrize("field", ["mean", "count", "decayed"])
def test_daily_sentiment_is_causal(market: tuple[pd.DataFrame, pd.DataFrame], field: str):
    prices, news = market

    def fn(panel: pd.DataFrame) -> pd.DataFrame:
        daily = daily_sentiment(
            _known_by(news, panel.index), panel.index, symbols=["A", "B", "C"], halflife=3
        )
        frame: pd.DataFrame = getattr(daily, field)
        return frame

    assert_causal(fn, prices, CUTS)


def test_shock_is_causal(market: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    prices, news = market

    def fn(panel: pd.DataFrame) -> pd.DataFrame:
        daily = daily_sentiment(_known_by(news, panel.index), panel.index, symbols=["A", "B", "C"])
        return sentiment_shock(daily.decayed, k=1.0, min_periods=3)

    assert_causal(fn, prices, [10, 30, 61, 89])


def test_join_is_causal(market: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    prices, news = market

    def fn(panel: pd.DataFrame) -> pd.DataFrame:
        daily = daily_sentiment(_known_by(news, panel.index), panel.index, halflife=2)
        return join_sentiment(panel, daily)

    assert_causal(fn, prices, CUTS)


def test_news_after_the_close_would_break_causality_if_counted_the_same_day(
    market: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    # The check above can fail: counting after-close news for the same session (a
    # close at midnight) is look-ahead, and the truncation test catches it.
    prices, news = market

    def leaky(panel: pd.DataFrame) -> pd.DataFrame:
        daily = daily_sentiment(
            _known_by(news, panel.index), panel.index, symbols=["A", "B", "C"], close="23:59"
        )
        return daily.count

    with pytest.raises(AssertionError):
        assert_causal(leaky, prices, CUTS)


def _session_twin(ts: pd.Timestamp, dates: list, timezone: str, close: str) -> int:
    """Plain-Python twin of session_positions for one time: zoneinfo and a loop."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    local = ts.to_pydatetime().astimezone(ZoneInfo(timezone))
    hour, minute = map(int, close.split(":"))
    day = local.date()
    if (local.hour, local.minute, local.second, local.microsecond) >= (hour, minute, 0, 0):
        day += dt.timedelta(days=1)
    for i, session in enumerate(dates):
        if session >= day:
            return i
    return -1


@pytest.mark.parametrize(
    ("timezone", "close"), [("America/New_York", "16:00"), ("Europe/London", "16:30")]
)
def test_session_positions_match_a_plain_python_twin(timezone: str, close: str) -> None:
    rng = np.random.default_rng(5)
    calendar = pd.bdate_range("2024-03-01", "2024-11-29", tz="UTC")
    calendar = calendar.delete(rng.choice(len(calendar), 15, replace=False))  # holidays
    start = pd.Timestamp("2024-02-25", tz="UTC").value
    stamps = pd.to_datetime(
        rng.integers(start, start + pd.Timedelta(days=290).value, 3000), utc=True
    ).floor("s")  # whole seconds: Python datetimes have no nanoseconds
    dates = [d.date() for d in calendar]
    expected = [_session_twin(t, dates, timezone, close) for t in stamps]
    assert session_positions(stamps, calendar, timezone, close).tolist() == expected
