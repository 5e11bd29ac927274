"""Live candles from a feed: kept in memory for pollers and written to the store in batches.

A :class:`CandleRecorder` listens to a :class:`~quantdesk.data.live.feed.MarketFeed`,
runs its ticks through a :class:`~quantdesk.data.candles.stream.CandleAggregator` and
keeps the recent closed candles of each symbol plus the open ones.  Given a store, it
writes closed candles from one writer thread of its own, in batches (by size or age), so
the feed thread never waits for DuckDB and the store keeps its one-writer rule; a failed
write is logged and retried with backoff, and nothing is dropped.

Live candles of a simulated market are not research data: the monitor records them into
a live store beside the research store (:func:`live_store_path`), never into the
research store itself unless the user asks (``quantdesk dashboard --record-to-store``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from quantdesk.core.backoff import Backoff
from quantdesk.data.candles.batch import empty_bars
from quantdesk.data.candles.stream import CandleAggregator
from quantdesk.data.schemas import BAR_COLUMNS, parse_timeframe

if TYPE_CHECKING:
    from collections.abc import Callable

    from quantdesk.data.live.feed import MarketFeed
    from quantdesk.data.store.market import MarketStore

__all__ = ["LIVE_STORE_SUFFIX", "CandleRecorder", "CandleSource", "live_store_path"]

logger = logging.getLogger(__name__)

_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")

LIVE_STORE_SUFFIX = ".live.duckdb"
"""What the live store's file name ends with, after the research store's stem."""


def live_store_path(store_path: str | Path) -> Path:
    """Return the live store's file beside a research store: ``<stem>.live.duckdb``.

    The monitor's simulated candles and alerts go there, so research queries on the
    store (``symbols()``, scans, reports) never see them; a notebook opens it with
    ``MarketStore(live_store_path(store.path))``.  Each research store has its own.

    Examples
    --------
    >>> live_store_path("/data/quantdesk.duckdb").as_posix()
    '/data/quantdesk.live.duckdb'
    """
    path = Path(store_path)
    return path.with_name(path.name.removesuffix(".duckdb") + LIVE_STORE_SUFFIX)


class CandleSource(Protocol):
    """What a reader of live candles needs (a chart, the live scan); a recorder has it."""

    @property
    def version(self) -> int:
        """Return the number of closed-candle batches recorded so far."""

    def recent(self, symbol: str, n: int) -> pd.DataFrame:
        """Return the last ``n`` closed candles of ``symbol``."""

    def open_candle(self, symbol: str) -> dict[str, Any] | None:
        """Return the candle still forming for ``symbol``, or ``None``."""

    def closed_since(self, version: int) -> tuple[int, pd.DataFrame]:
        """Return the current version and the candles closed after ``version``."""


class CandleRecorder:
    """Candles built from a feed's ticks, for cheap polling and batched store writes.

    Parameters
    ----------
    timeframe
        Candle length (``"1s"`` to ``"1d"``).
    store
        Where closed candles go (source ``live:<feed kind>``); ``None`` keeps them in
        memory only.
    keep
        Closed candles kept in memory per symbol.
    batch_size, max_delay
        A write starts once this many candles wait, or the oldest has waited
        ``max_delay`` seconds.
    tolerance
        Lateness the aggregator accepts (see
        :class:`~quantdesk.data.candles.stream.CandleAggregator`).
    backoff
        Retry policy of failed writes.

    Examples
    --------
    >>> rec = CandleRecorder("1min")
    >>> ticks = pd.DataFrame({"symbol": ["A", "A", "A"],
    ...                       "ts": pd.to_datetime(["2024-01-02 14:30:01", "2024-01-02 14:30:30",
    ...                                             "2024-01-02 14:31:00"], utc=True),
    ...                       "price": [10.0, 10.5, 10.2], "size": [100.0, 50.0, 10.0]})
    >>> rec.on_ticks(ticks)
    >>> rec.recent("A")[["open", "high", "close", "volume"]]
       open  high  close  volume
    0  10.0  10.5   10.5   150.0
    >>> rec.open_candle("A")["close"], rec.version
    (10.2, 1)
    """

    def __init__(
        self,
        timeframe: str = "1min",
        *,
        store: MarketStore | None = None,
        keep: int = 500,
        batch_size: int = 1000,
        max_delay: float = 2.0,
        tolerance: str | pd.Timedelta = "0s",
        backoff: Backoff | None = None,
    ) -> None:
        if keep < 1 or batch_size < 1 or not max_delay > 0:
            raise ValueError(
                f"keep and batch_size must be >= 1 and max_delay > 0, got {keep}, "
                f"{batch_size}, {max_delay}"
            )
        self.timeframe = parse_timeframe(timeframe).name
        self.store = store
        self.keep = int(keep)
        self.batch_size = int(batch_size)
        self.max_delay = float(max_delay)
        self.backoff = backoff if backoff is not None else Backoff(base=0.2, cap=10.0)
        self.source = "live:feed"
        self.aggregator = CandleAggregator(self.timeframe, tolerance=tolerance)
        self._lock = threading.Lock()
        self._closed: dict[str, deque[tuple[Any, ...]]] = {}
        # (version, candles closed by that update), for closed_since(); bounded like the
        # per-symbol history, so a reader that fell far behind gets what is kept.
        self._log: deque[tuple[int, pd.DataFrame]] = deque(maxlen=max(self.keep, 100))
        self._version = 0
        self._open_cache: tuple[int, pd.DataFrame] = (-1, empty_bars())
        self._detach: Callable[[], None] | None = None
        # The writer's queue; guarded by _cond.
        self._cond = threading.Condition()
        self._pending: list[pd.DataFrame] = []
        self._pending_rows = 0
        self._pending_since: float | None = None
        self._queued = 0  # candles ever queued
        self._written = 0  # candles ever written
        self._write_errors = 0
        self._flush_requested = False
        self._closing = False
        self._writer: threading.Thread | None = None
        if store is not None:
            self._writer = threading.Thread(
                target=self._write_loop, name="quantdesk-candle-writer", daemon=True
            )
            self._writer.start()

    # -- feed side -------------------------------------------------------------------------

    def attach(self, feed: MarketFeed) -> CandleRecorder:
        """Return the recorder after subscribing it to ``feed``'s ticks (one feed at a time)."""
        self.detach()
        self.source = f"live:{feed.kind}"
        self._detach = feed.add_listener(self.on_ticks)
        return self

    def detach(self) -> None:
        """Stop listening to the attached feed (candles and pending writes are kept)."""
        if self._detach is not None:
            self._detach()
            self._detach = None

    def on_ticks(self, ticks: pd.DataFrame) -> None:
        """Apply a batch of ticks (a feed listener); closed candles are kept and queued."""
        with self._lock:
            closed = self.aggregator.update_many(ticks)
            self._version += 1
            if not closed.empty:
                self._keep_closed(closed)
        if not closed.empty:
            self._enqueue(closed)

    def _keep_closed(self, closed: pd.DataFrame) -> None:
        """Remember candles that just closed (lock held)."""
        self._log.append((self._version, closed))
        symbols = closed["symbol"].to_numpy(dtype=object)
        values = closed[["ts", *_VALUE_COLUMNS]].itertuples(index=False, name=None)
        for symbol, row in zip(symbols, values, strict=True):
            history = self._closed.get(symbol)
            if history is None:
                history = self._closed[symbol] = deque(maxlen=self.keep)
            history.append(row)

    # -- readers ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Return a counter bumped by every tick batch applied (open or closed candles moved)."""
        return self._version

    def symbols(self) -> list[str]:
        """Return the symbols with at least one candle (closed or open), sorted."""
        with self._lock:
            return sorted(set(self._closed) | set(self.aggregator.symbols))

    def recent(self, symbol: str, n: int | None = None) -> pd.DataFrame:
        """Return the last ``n`` (default: all kept) closed candles of ``symbol`` (BAR_COLUMNS)."""
        with self._lock:
            rows = list(self._closed.get(symbol, ()))
        if n is not None:
            rows = rows[-n:] if n > 0 else []
        if not rows:
            return empty_bars()
        frame = pd.DataFrame(rows, columns=["ts", *_VALUE_COLUMNS])
        frame.insert(0, "symbol", pd.Series([symbol] * len(frame), dtype="str"))
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame[list(BAR_COLUMNS)]

    def open_candles(self) -> pd.DataFrame:
        """Return every symbol's open (not yet closed) candle, BAR_COLUMNS."""
        with self._lock:
            version, frame = self._open_cache
            if version != self._version:
                frame = self.aggregator.open_candles()
                self._open_cache = (self._version, frame)
        return frame

    def open_candle(self, symbol: str) -> dict[str, Any] | None:
        """Return the open candle of ``symbol`` as a dict of bar fields, or ``None``."""
        frame = self.open_candles()
        rows = frame[frame["symbol"] == symbol]
        if rows.empty:
            return None
        record = rows.iloc[[-1]].to_dict("records")[0]  # plain Python values
        return {str(k): v for k, v in record.items()}

    def closed_since(self, version: int) -> tuple[int, pd.DataFrame]:
        """Return the current version and the candles closed by updates after ``version``.

        Only the last updates are remembered (as many as ``keep``, at least 100); a
        reader further behind gets those and should reload with :meth:`recent`.
        """
        with self._lock:
            current = self._version
            frames = [f for v, f in self._log if v > version]
        if not frames:
            return current, empty_bars()
        return current, pd.concat(frames, ignore_index=True)

    # -- writer ----------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Return the number of candles written to the store so far."""
        return self._written

    @property
    def pending(self) -> int:
        """Return the number of closed candles waiting to be written."""
        return self._pending_rows

    @property
    def write_errors(self) -> int:
        """Return the number of failed write attempts (each one was retried)."""
        return self._write_errors

    def _enqueue(self, candles: pd.DataFrame) -> None:
        if self.store is None:
            return
        with self._cond:
            self._pending.append(candles)
            self._pending_rows += len(candles)
            self._queued += len(candles)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
                # The writer sleeps without a timeout while nothing is pending: wake it
                # so that it starts the max_delay clock of this batch.
                self._cond.notify_all()
            elif self._pending_rows >= self.batch_size:
                self._cond.notify_all()

    def _due(self) -> bool:
        """Return whether the pending candles should be written now (cond held)."""
        if not self._pending:
            return False
        if self._flush_requested or self._closing or self._pending_rows >= self.batch_size:
            return True
        assert self._pending_since is not None
        return time.monotonic() - self._pending_since >= self.max_delay

    def _write_loop(self) -> None:
        assert self.store is not None
        attempt = 0
        rng = random.Random()
        while True:
            with self._cond:
                while not self._due():
                    if self._closing:  # and nothing pending, or it would be due
                        return
                    if self._pending_since is None:
                        self._cond.wait()
                    else:
                        left = self.max_delay - (time.monotonic() - self._pending_since)
                        self._cond.wait(max(left, 0.0))
                batch = pd.concat(self._pending, ignore_index=True)
                count = len(batch)
            try:
                self.store.write_bars(batch, self.timeframe, source=self.source)
            except Exception as exc:  # logged and retried: a live candle is never dropped
                delay = self.backoff.delay(attempt, rng)
                attempt += 1
                with self._cond:
                    self._write_errors += 1
                    self._cond.notify_all()
                logger.warning(
                    "writing %d live candles to %s failed (%s: %s); retry %d in %.2f s",
                    count,
                    self.store.path,
                    type(exc).__name__,
                    exc,
                    attempt,
                    delay,
                )
                time.sleep(delay)  # the writer's own thread: nobody waits on it but flush()
                continue
            attempt = 0
            with self._cond:
                # Candles queued during the write stay queued for the next batch.
                rest = _drop_rows(self._pending, count)
                self._pending = rest
                self._pending_rows -= count
                self._written += count
                self._pending_since = time.monotonic() if rest else None
                if not rest:
                    self._flush_requested = False
                self._cond.notify_all()
            logger.debug("wrote %d live candles (%d in all)", count, self._written)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Return whether every candle closed so far was written within ``timeout`` seconds."""
        if self.store is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._queued
            while self._written < target:
                self._flush_requested = True
                self._cond.notify_all()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if self._writer is None or not self._writer.is_alive():
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float | None = 30.0) -> pd.DataFrame:
        """Return the open candles after detaching, closing them and writing everything.

        The aggregator's open candles are closed (:meth:`CandleAggregator.flush`), kept
        and written with the rest; the writer thread then ends.  A store that stays
        unwritable past ``timeout`` leaves the unwritten candles counted in
        :attr:`pending` and logged as an error.
        """
        self.detach()
        with self._lock:
            last = self.aggregator.flush()
            self._version += 1
            if not last.empty:
                self._keep_closed(last)
        if not last.empty:
            self._enqueue(last)
        ok = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join(timeout)
        if not ok:
            logger.error(
                "%d live candles could not be written to %s before close",
                self._pending_rows,
                self.store.path if self.store is not None else None,
            )
        return last

    def __enter__(self) -> CandleRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"CandleRecorder({self.timeframe!r}, {len(self._closed)} symbols, "
            f"version={self._version}, written={self._written}, pending={self._pending_rows})"
        )


def _drop_rows(frames: list[pd.DataFrame], count: int) -> list[pd.DataFrame]:
    """Return ``frames`` without their first ``count`` rows."""
    out: list[pd.DataFrame] = []
    for frame in frames:
        if count >= len(frame):
            count -= len(frame)
            continue
        out.append(frame.iloc[count:] if count else frame)
        count = 0
    return out
