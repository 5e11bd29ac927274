"""Real sample data that ships inside installed packages (no network needed).

The ``arch`` package bundles daily OHLCV for the S&P 500 index (``sp500``) and the
NASDAQ Composite (``nasdaq``), January 1999 to December 2018.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pandas as pd

from quantdesk.data.schemas import BAR_COLUMNS

__all__ = ["SAMPLES", "Sample", "load_sample"]


@dataclass(frozen=True)
class Sample:
    """A bundled data set: its ``arch.data`` module and the symbol metadata it becomes."""

    module: str
    symbol: str
    name: str
    asset_class: str = "index"
    currency: str = "USD"
    timezone: str = "America/New_York"


SAMPLES: dict[str, Sample] = {
    "sp500": Sample("arch.data.sp500", "SPX", "S&P 500 index"),
    "nasdaq": Sample("arch.data.nasdaq", "IXIC", "NASDAQ Composite index"),
}


def load_sample(name: str = "sp500") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(bars, metadata)`` for a bundled sample: long daily bars and one metadata row.

    Examples
    --------
    >>> bars, meta = load_sample("sp500")
    >>> bars["symbol"].iloc[0], str(bars["ts"].iloc[0].date())
    ('SPX', '1999-01-04')
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; available: {sorted(SAMPLES)}")
    sample = SAMPLES[name]
    raw = importlib.import_module(sample.module).load()
    dates = pd.to_datetime(raw.index).normalize().tz_localize("UTC").as_unit("ns")
    bars = pd.DataFrame(
        {
            "symbol": sample.symbol,
            "ts": dates,
            "open": raw["Open"].to_numpy(float),
            "high": raw["High"].to_numpy(float),
            "low": raw["Low"].to_numpy(float),
            "close": raw["Close"].to_numpy(float),
            "volume": raw["Volume"].to_numpy(float),
        }
    )[list(BAR_COLUMNS)]
    meta = pd.DataFrame(
        [
            {
                "symbol": sample.symbol,
                "name": sample.name,
                "asset_class": sample.asset_class,
                "currency": sample.currency,
                "timezone": sample.timezone,
                "source": f"arch:{name}",
            }
        ]
    )
    return bars, meta
