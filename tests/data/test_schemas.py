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
    ],
)
def test_parse_timeframe(text: str, seconds: int, name: str) -> None:
    tf = parse_timeframe(text)
    assert (tf.seconds, tf.name) == (seconds, name)
    assert tf.nanos == seconds * 10**9
    assert tf.is_daily == (seconds == 86400)


@pytest.mark.parametrize("text", ["", "min", "0s", "7min", "2d", "1ms", "1w", "abc"])
def test_parse_timeframe_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid timeframe"):
        parse_timeframe(text)


def test_timeframes_order_by_length() -> None:
    assert parse_timeframe("1min") < parse_timeframe("1h") < parse_timeframe("1d")
