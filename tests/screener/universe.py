"""Cheap random daily bars for screener tests: gaps and volume spikes sprinkled in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from quantdesk.data import MarketStore
from quantdesk.data.store.alerts import AlertStore


def random_bars(n_symbols: int = 30, n_days: int = 120, seed: int = 0) -> pd.DataFrame:
    """Return long daily bars (``symbol, ts, open, high, low, close, volume``), sorted."""
    rng = np.random.default_rng(seed)
    ts = pd.bdate_range("2023-01-02", periods=n_days, tz="UTC").as_unit("ns")
    ret = rng.normal(0.0, 0.015, (n_days, n_symbols))
    close = 50.0 * np.exp(np.cumsum(ret, axis=0))
    gap = rng.normal(0.0, 0.01, (n_days, n_symbols))
    gap[rng.random((n_days, n_symbols)) < 0.03] *= 6.0  # some large gaps
    prev = np.vstack([close[:1], close[:-1]])
    open_ = prev * (1.0 + gap)
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0, 0.01, close.shape))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0, 0.01, close.shape))
    volume = rng.lognormal(13.0, 0.3, close.shape)
    volume[rng.random(close.shape) < 0.02] *= 5.0  # some spikes
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    return pd.DataFrame(
        {
            "symbol": np.tile(symbols, n_days),
            "ts": np.repeat(ts, n_symbols),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    ).sort_values(["symbol", "ts"], ignore_index=True)


#: Alerts around March 12, 2024 of a New York symbol (``NYC``, its zone recorded by
#: the store) and one whose zone the store does not know (``LDN``, so UTC), and the
#: calendar day each belongs to, worked by hand (New York is UTC-4 from March 10).
DAY_ALERTS: tuple[tuple[str, str, str, str], ...] = (
    # symbol, bar ts (UTC), timeframe, its day
    ("NYC", "2024-03-12 13:30", "5min", "2024-03-12"),  # 09:30 New York
    ("NYC", "2024-03-13 01:00", "5min", "2024-03-12"),  # 21:00 New York, Mar 12
    ("NYC", "2024-03-12 00:00", "1d", "2024-03-12"),  # a daily bar: its session date
    ("NYC", "2024-03-13 00:00", "1d", "2024-03-13"),
    ("LDN", "2024-03-12 23:00", "5min", "2024-03-12"),
    ("LDN", "2024-03-13 00:30", "5min", "2024-03-13"),
)


def day_alerts_store(path: Path) -> MarketStore:
    """Return a store holding NYC's New York zone and the alerts of :data:`DAY_ALERTS`."""
    market = MarketStore(path)
    bar = pd.DataFrame(
        {"symbol": ["NYC"], "ts": pd.to_datetime(["2024-03-12 13:30"], utc=True)}
    ).assign(open=10.0, high=10.0, low=10.0, close=10.0, volume=100.0)
    market.write_bars(bar, "5min", timezone="America/New_York")
    alerts = pd.DataFrame(
        {
            "symbol": [a[0] for a in DAY_ALERTS],
            "rule": "gap_up",
            "ts": pd.to_datetime([a[1] for a in DAY_ALERTS], utc=True),
            "trigger_price": 10.0,
            "conditions": [{"gap_pct": 3.0}] * len(DAY_ALERTS),
            "metadata": [{"timeframe": a[2]} for a in DAY_ALERTS],
        }
    )
    AlertStore(market).write_alerts(alerts)
    return market


def alerts_of_day(day: str) -> set[tuple[str, pd.Timestamp]]:
    """Return the (symbol, ts) of :data:`DAY_ALERTS` that belong to ``day``."""
    return {(s, pd.Timestamp(ts, tz="UTC")) for s, ts, _, d in DAY_ALERTS if d == day}
