"""Cheap random daily bars for screener tests: gaps and volume spikes sprinkled in."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
