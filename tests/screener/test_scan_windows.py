"""A one-day scan alerts on exactly what a backfill does on that day, at every timeframe.

The store holds New York 1-minute bars only; the scanned timeframe (5min ... 1d) is
built from them on the fly, so each rule's look-back must be read at that timeframe,
and a day is the whole New York day.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.data import MarketStore
from quantdesk.screener import rules as R
from quantdesk.screener import scan

ZONE = "America/New_York"
RULES = [
    R.gap_up(pct=0.3),
    R.gap_down(pct=0.3),
    R.volume_spike(k=1.5, n=3),
    R.new_high(n=4),
    R.new_low(n=4),
    R.ma_cross(fast=2, slow=5, direction="both"),
]
DAYS = pd.bdate_range("2024-03-04", periods=9)


def minute_bars(seed: int, density: float) -> pd.DataFrame:
    """Return random New York session 1-minute bars (some minutes missing) of two symbols."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in ("AAA", "BBB"):
        stamps = []
        for day in DAYS:
            # Trading from 04:00 to 19:59 New York: pre- and post-market cross UTC midnight.
            minutes = pd.date_range(f"{day.date()} 04:00", f"{day.date()} 19:59", freq="1min")
            stamps.append(minutes[rng.random(len(minutes)) < density])
        local = stamps[0].append(stamps[1:])
        ts = local.tz_localize(ZONE).tz_convert("UTC")
        n = len(ts)
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
        open_ = np.concatenate([[100.0], close[:-1]]) * (1 + rng.normal(0, 0.002, n))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "ts": ts,
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.001,
                    "low": np.minimum(open_, close) * 0.999,
                    "close": close,
                    "volume": rng.lognormal(8, 0.6, n),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def on_day(alerts: pd.DataFrame, day: pd.Timestamp, daily: bool) -> pd.DataFrame:
    """Return the alerts of one day: by label for daily bars, by New York date otherwise."""
    ts = alerts["ts"] if daily else alerts["ts"].dt.tz_convert(ZONE)
    picked = alerts[(ts.dt.date == day.date()).to_numpy()]
    return picked.sort_values(["ts", "rule", "symbol"], ignore_index=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    timeframe=st.sampled_from(["5min", "30min", "1h", "1d"]),
    density=st.sampled_from([0.05, 0.3]),
    new_only=st.booleans(),
)
def test_one_day_scan_equals_the_backfill_of_that_day(
    seed: int, timeframe: str, density: float, new_only: bool
) -> None:
    with tempfile.TemporaryDirectory() as home:
        store = MarketStore(Path(home, "s.duckdb"))
        zones = pd.DataFrame({"symbol": ["AAA", "BBB"], "timezone": ZONE})
        store.write_bars(minute_bars(seed, density), "1min", metadata=zones)
        first, last = DAYS[0].date().isoformat(), DAYS[-1].date().isoformat()
        backfill = scan(store, RULES, start=first, end=last, timeframe=timeframe, new_only=new_only)
        assert len(backfill)  # the rules fire: the comparison says something
        daily = timeframe == "1d"
        for day in DAYS[5:]:
            one = scan(store, RULES, date=day.date().isoformat(), timeframe=timeframe,
                       new_only=new_only)  # fmt: skip
            pd.testing.assert_frame_equal(
                one.sort_values(["ts", "rule", "symbol"], ignore_index=True),
                on_day(backfill, day, daily),
                check_exact=True,
            )
