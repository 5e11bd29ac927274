"""Optional online source: daily bars from Yahoo Finance through ``yfinance``.

Install with ``pip install 'quantdesk[online]'``.  Without a network the source fails
within a few seconds with :class:`SourceUnavailableError`; it never hangs.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import socket
from collections.abc import Sequence
from typing import Any

import pandas as pd

from quantdesk.data.schemas import BAR_COLUMNS

__all__ = ["SourceUnavailableError", "check_reachable", "fetch_yahoo"]

logger = logging.getLogger(__name__)

YAHOO_HOST = "query2.finance.yahoo.com"


class SourceUnavailableError(RuntimeError):
    """Raised when an online source cannot be used: missing extra or no network."""


def check_reachable(host: str, port: int = 443, timeout: float = 3.0) -> None:
    """Return None if ``host:port`` accepts a TCP connection within ``timeout`` seconds.

    Name resolution runs in a worker thread because ``getaddrinfo`` ignores socket
    timeouts and can block for much longer on a machine without DNS.
    """

    def connect() -> None:
        with socket.create_connection((host, port), timeout=timeout):
            pass

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(connect).result(timeout=timeout)
    except (OSError, concurrent.futures.TimeoutError) as exc:
        raise SourceUnavailableError(
            f"cannot reach {host}:{port} ({type(exc).__name__}: {exc or 'timed out'}); "
            "this source needs a network. Offline, use `quantdesk ingest sample`, "
            "`quantdesk ingest simulate` or `quantdesk ingest file`."
        ) from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _yfinance() -> Any:
    try:
        return importlib.import_module("yfinance")
    except ImportError as exc:
        raise SourceUnavailableError(
            "the Yahoo source needs the optional extra: pip install 'quantdesk[online]'"
        ) from exc


def fetch_yahoo(
    symbols: str | Sequence[str], start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Return daily long bars for ``symbols`` from Yahoo Finance (unadjusted OHLCV)."""
    yf = _yfinance()
    check_reachable(YAHOO_HOST)
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    raw = yf.download(names, start=start, end=end, auto_adjust=False, progress=False)
    if raw.empty:
        raise SourceUnavailableError(f"Yahoo returned no data for {names}")
    frames = []
    for name in names:
        part = raw.xs(name, axis=1, level=1) if isinstance(raw.columns, pd.MultiIndex) else raw
        frames.append(
            pd.DataFrame(
                {
                    "symbol": name,
                    "ts": pd.to_datetime(part.index).normalize().tz_localize("UTC"),
                    "open": part["Open"].to_numpy(),
                    "high": part["High"].to_numpy(),
                    "low": part["Low"].to_numpy(),
                    "close": part["Close"].to_numpy(),
                    "volume": part["Volume"].to_numpy(),
                }
            ).dropna(subset=["close"])
        )
    return pd.concat(frames, ignore_index=True)[list(BAR_COLUMNS)]
