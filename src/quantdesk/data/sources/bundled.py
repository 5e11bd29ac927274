"""Real sample data that ships inside installed packages (no network needed).

The ``arch`` package bundles daily OHLCV for the S&P 500 index (``sp500``) and the
NASDAQ Composite (``nasdaq``), January 1999 to December 2018.  :func:`load_sample`
reads one as long bars and its symbol metadata;
:func:`~quantdesk.data.sources.ingest.ingest_samples` stores them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from quantdesk.data.schemas import BAR_COLUMNS

__all__ = ["SAMPLES", "Sample", "load_sample"]


@dataclass(frozen=True)
class Sample:
    """A bundled data set: its ``arch.data`` module and the symbol metadata it becomes."""

    module: str
    file: str
    symbol: str
    name: str
    asset_class: str = "index"
    currency: str = "USD"
    timezone: str = "America/New_York"


SAMPLES: dict[str, Sample] = {
    "sp500": Sample("arch.data.sp500", "sp500.csv.gz", "SPX", "S&P 500 index"),
    "nasdaq": Sample("arch.data.nasdaq", "nasdaq.csv.gz", "IXIC", "NASDAQ Composite index"),
}


def _data_file(sample: Sample) -> Path:
    """Return the bundled file's path without importing ``arch``.

    Importing ``arch.data`` pulls in arch, statsmodels and matplotlib (about 2.5 s);
    the data is a plain gzipped CSV inside the installed package.
    """
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the sample data ships with the `arch` package: pip install arch")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    return package_dir.joinpath(*sample.module.split(".")[1:], sample.file)


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
    raw = pd.read_csv(_data_file(sample), index_col="Date")
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
