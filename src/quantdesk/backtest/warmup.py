"""Compile the kernels a first backtest needs into numba's shared on-disk cache.

It lives on the decisions floor because it runs kernels of ``data``, ``signals`` and
``backtest``; where the cache is lives in :mod:`quantdesk.numba_cache` (core).
"""

from __future__ import annotations

from quantdesk.numba_cache import configure_numba_cache

__all__ = ["warm_numba_cache"]


def warm_numba_cache() -> str:
    """Return the cache directory after compiling the kernels of a first backtest into it.

    Runs a tiny backtest (the order simulation, which writes the equity too; again with
    lots, volume caps and both, which compile their own specialisations of it), the
    rolling windows of the signals and a candle aggregation; each kernel compiles once,
    or loads from the cache when it is already there.
    """
    import numpy as np
    import pandas as pd

    from quantdesk.backtest import run
    from quantdesk.data.candles.batch import aggregate
    from quantdesk.signals.windows import rolling_mean, rolling_std

    directory = configure_numba_cache()
    index = pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC")
    close = pd.DataFrame({"A": np.linspace(10.0, 12.0, 8), "B": np.linspace(20.0, 18.0, 8)}, index)
    volume = close * 0 + 1e6
    run(close, close * 0 + 0.4)
    run(close, close * 0 + 0.4, lot_size=1.0)
    run(close, close * 0 + 0.4, volume=volume, max_volume_share=0.1)
    run(close, close * 0 + 0.4, volume=volume, max_volume_share=0.1, lot_size=1.0)
    rolling_mean(close, 3), rolling_std(close, 3)
    ticks = pd.DataFrame({"symbol": "A", "ts": index, "price": close["A"].to_numpy(), "size": 1.0})
    aggregate(ticks, "1d")
    return directory
