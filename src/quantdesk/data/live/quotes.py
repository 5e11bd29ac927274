"""The latest-quote cache: one writer (a feed), any number of cheap pollers.

Every update bumps a global version counter and stamps the changed quotes with it, so a
reader that remembers the version it last saw asks :meth:`QuoteCache.changed_since` for
only what moved (a dashboard patches those rows instead of rebuilding its table).
Quotes follow :data:`~quantdesk.data.schemas.QUOTE_COLUMNS`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantdesk.data.schemas import QUOTE_COLUMNS

__all__ = ["Direction", "Quote", "QuoteCache"]

Direction = Literal["up", "down", "flat"]


@dataclass(frozen=True)
class Quote:
    """Return the latest state of one symbol: last price, reference close, move, version.

    ``change`` is ``price - prev_close``; ``direction`` compares ``price`` with the price
    before it (what a watchlist flashes); ``version`` is the cache version of the update
    that produced this quote.
    """

    symbol: str
    ts: pd.Timestamp
    price: float
    prev_close: float
    change: float
    direction: Direction
    version: int

    @property
    def change_pct(self) -> float:
        """Return the change as a fraction of the previous close (NaN without one)."""
        return self.change / self.prev_close if self.prev_close else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return the quote as a plain dict in :data:`QUOTE_COLUMNS` order."""
        return asdict(self)


def _direction(new: float, old: float | None) -> Direction:
    if old is None or new == old:
        return "flat"
    return "up" if new > old else "down"


class QuoteCache:
    """Thread-safe latest quote per symbol, with a version counter.

    Writers call :meth:`update` (one tick) or :meth:`update_many` (a batch; only the last
    tick of each symbol is kept).  Readers poll :attr:`version` (a plain int read) and
    call :meth:`changed_since` or :meth:`snapshot` when it moved.

    The previous close of a symbol is what :meth:`set_prev_close` gave it, else the
    first price the cache saw for it.

    Examples
    --------
    >>> cache = QuoteCache()
    >>> cache.set_prev_close({"A": 100.0})
    >>> cache.update("A", "2024-01-02 14:30", 101.0)
    1
    >>> q = cache.get("A")
    >>> (q.price, q.change, q.direction, q.version)
    (101.0, 1.0, 'up', 1)
    >>> version, changed = cache.changed_since(0)
    >>> version, [c.symbol for c in changed]
    (1, ['A'])
    >>> cache.changed_since(version)
    (1, [])
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._quotes: dict[str, Quote] = {}
        self._prev_close: dict[str, float] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """Return the number of updates applied so far (0 for an empty cache)."""
        return self._version

    def __len__(self) -> int:
        return len(self._quotes)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._quotes

    def symbols(self) -> list[str]:
        """Return the symbols with a quote, sorted."""
        with self._lock:
            return sorted(self._quotes)

    def set_prev_close(self, closes: Mapping[str, float]) -> None:
        """Set the reference close of symbols (their ``change`` is measured from it)."""
        with self._lock:
            for symbol, close in closes.items():
                self._prev_close[symbol] = float(close)
                old = self._quotes.get(symbol)
                if old is not None:
                    self._quotes[symbol] = Quote(
                        symbol,
                        old.ts,
                        old.price,
                        float(close),
                        old.price - float(close),
                        old.direction,
                        old.version,
                    )

    def _apply(self, symbol: str, ts: pd.Timestamp, price: float, version: int) -> None:
        old = self._quotes.get(symbol)
        before = old.price if old is not None else self._prev_close.get(symbol)
        prev_close = self._prev_close.setdefault(symbol, price)
        self._quotes[symbol] = Quote(
            symbol,
            ts,
            price,
            prev_close,
            price - prev_close,
            _direction(price, before),
            version,
        )

    def update(self, symbol: str, ts: Any, price: float) -> int:
        """Return the new version after recording one tick's price for ``symbol``."""
        stamp = pd.Timestamp(ts)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        with self._lock:
            self._version += 1
            self._apply(symbol, stamp, float(price), self._version)
            return self._version

    def update_many(
        self,
        symbols: Sequence[str] | np.ndarray | pd.Series,
        ts: np.ndarray | pd.Series | pd.DatetimeIndex,
        prices: np.ndarray | pd.Series | Sequence[float],
    ) -> int:
        """Return the new version after recording a batch of ticks (one version bump).

        ``ts`` are UTC nanoseconds (int64) or timezone-aware timestamps; the ticks of a
        symbol are taken in the order given and only the last one is kept.
        """
        n = len(symbols)
        if n == 0:
            return self._version
        ts_ns = _as_ns(ts)
        px = np.asarray(prices, dtype=np.float64)
        if not (n == len(ts_ns) == len(px)):
            raise ValueError(
                f"symbols, ts and prices differ in length: {n}, {len(ts_ns)}, {len(px)}"
            )
        # The last tick of each symbol: hash the symbols once (no string sort), then the
        # first occurrence of each code in the reversed batch.
        codes, names = pd.factorize(np.asarray(symbols, dtype=object))
        _, first_rev = np.unique(codes[::-1], return_index=True)
        last = n - 1 - first_rev
        names = np.asarray(names, dtype=object)[codes[last]]
        stamps = pd.DatetimeIndex(ts_ns[last].view("datetime64[ns]"), tz="UTC")
        prices_last = px[last].tolist()
        with self._lock:
            self._version += 1
            version = self._version
            for name, stamp, price in zip(names, stamps, prices_last, strict=True):
                self._apply(str(name), stamp, price, version)
            return version

    def get(self, symbol: str) -> Quote | None:
        """Return the latest quote of ``symbol``, or ``None`` before its first tick."""
        return self._quotes.get(symbol)

    def changed_since(self, version: int) -> tuple[int, list[Quote]]:
        """Return the current version and the quotes updated after ``version``."""
        with self._lock:
            current = self._version
            if version >= current:
                return current, []
            return current, [q for q in self._quotes.values() if q.version > version]

    def snapshot(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """Return the latest quotes as a frame with :data:`QUOTE_COLUMNS`, sorted by symbol."""
        with self._lock:
            quotes = list(self._quotes.values())
        if symbols is not None:
            wanted = set(symbols)
            quotes = [q for q in quotes if q.symbol in wanted]
        frame = pd.DataFrame(
            [q.to_dict() for q in sorted(quotes, key=lambda q: q.symbol)],
            columns=list(QUOTE_COLUMNS),
        )
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame


def _as_ns(ts: np.ndarray | pd.Series | pd.DatetimeIndex) -> np.ndarray:
    if isinstance(ts, np.ndarray) and ts.dtype == np.int64:
        return ts
    index = pd.DatetimeIndex(ts)
    if index.tz is None:
        index = index.tz_localize("UTC")
    return np.asarray(index.tz_convert("UTC").as_unit("ns").asi8)
