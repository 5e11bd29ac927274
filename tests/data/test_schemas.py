from __future__ import annotations

import pytest

from quantdesk.data.schemas import parse_timeframe


@pytest.mark.parametrize(
    ("text", "seconds", "name"),
    [
        ("1s", 1, "1s"),
        ("30s", 30, "30s"),
        ("1min", 60, "1min"),
        ("5m", 300, "5min"),
        ("15 mins", 900, "15min"),
        ("1h", 3600, "1h"),
        ("4hours", 14400, "4h"),
        ("1d", 86400, "1d"),
        ("1D", 86400, "1d"),
        ("1w", 7 * 86400, "1w"),
        ("1 week", 7 * 86400, "1w"),
        ("1mo", 30 * 86400, "1mo"),
        ("1 month", 30 * 86400, "1mo"),
    ],
)
def test_parse_timeframe(text: str, seconds: int, name: str) -> None:
    tf = parse_timeframe(text)
    assert (tf.seconds, tf.name) == (seconds, name)
    assert tf.nanos == seconds * 10**9
    assert tf.is_daily == (seconds >= 86400)
    assert tf.is_calendar == (name in ("1w", "1mo"))


@pytest.mark.parametrize("text", ["", "min", "0s", "7min", "2d", "2w", "1ms", "abc"])
def test_parse_timeframe_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid timeframe"):
        parse_timeframe(text)


def test_timeframes_order_by_length() -> None:
    assert parse_timeframe("1min") < parse_timeframe("1h") < parse_timeframe("1d")


def test_capital_m_is_refused_as_ambiguous_never_minutes() -> None:
    # bug 2 of issue 10: "1M" used to be lower-cased to one-minute bars
    with pytest.raises(ValueError, match=r"ambiguous timeframe '1M'.*'1mo'.*'1min'"):
        parse_timeframe("1M")


def test_calendar_floor_labels_by_period_start() -> None:
    import pandas as pd

    ts = pd.Series(pd.to_datetime(["2024-01-31", "2024-02-15", "2024-03-01"], utc=True))
    assert parse_timeframe("1mo").floor(ts).dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
    ]
    friday = pd.Series(pd.to_datetime(["2024-01-05", "2024-01-07"], utc=True))  # Fri, Sun
    assert parse_timeframe("1w").floor(friday).dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-01",
    ]
