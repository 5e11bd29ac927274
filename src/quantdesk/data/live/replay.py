"""Replay of stored history as a live feed: bars (or ticks) at N x speed, historical timestamps.

:class:`ReplayFeed` turns each bar into four ticks inside the bar, so that
:class:`~quantdesk.data.candles.stream.CandleAggregator` of the same timeframe rebuilds the
stored bar exactly (see :func:`bar_ticks`), and publishes them in time order, paced so
that ``speed`` seconds of history pass per wall second.  Ticks keep their historical
timestamps: a dashboard watching a replay shows real dates.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.core.backoff import Backoff
from quantdesk.data.live.feed import MarketFeed
from quantdesk.data.live.quotes import QuoteCache
from quantdesk.data.schemas import BAR_COLUMNS, TICK_COLUMNS, parse_timeframe

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore

__all__ = ["ReplayFeed", "bar_ticks"]

logger = logging.getLogger(__name__)

# Where the four ticks of a bar fall, as fractions of the bar's length: open at the start,
# the two extremes in between, close last.
_TICK_FRACTIONS = np.array([0.0, 0.25, 0.5, 0.75])
# Upper bound on one published batch: a replay at a huge speed still hands listeners
# frames of a size they digest quickly, and stop() is honoured between them.
_MAX_BATCH = 20_000
# Longest single wait, so speed changes and stop() take effect promptly.
_MAX_WAIT_S = 0.1
_NS_PER_DAY = 86_400 * 1_000_000_000


def bar_ticks(bars: pd.DataFrame, timeframe: str = "1d") -> pd.DataFrame:
    """Return four ticks per bar, in time order, that aggregate back to exactly those bars.

    A bar ``[ts, ts + length)`` becomes an open tick at ``ts``, then its high and low
    (low first for a bar that closed above its open, high first otherwise: the path a
    rising bar most plausibly took), and its close last, at a quarter, half and three
    quarters of the bar.  The volume is split into whole-share quarters with the remainder
    on the close, so the float sum of the four sizes is the volume exactly (a missing
    volume becomes 0).  Weekly and monthly bars use a day as their length, so their ticks
    stay inside the period.

    Parameters
    ----------
    bars
        Long bars (:data:`BAR_COLUMNS`), ``ts`` timezone-aware UTC.
    timeframe
        The bars' timeframe.

    Examples
    --------
    >>> bars = pd.DataFrame({"symbol": ["A"], "ts": [pd.Timestamp("2024-01-02", tz="UTC")],
    ...                      "open": [10.0], "high": [12.0], "low": [9.0], "close": [11.0],
    ...                      "volume": [1001.0]})
    >>> bar_ticks(bars)[["ts", "price", "size"]]
                             ts  price   size
    0 2024-01-02 00:00:00+00:00   10.0  250.0
    1 2024-01-02 06:00:00+00:00    9.0  250.0
    2 2024-01-02 12:00:00+00:00   12.0  250.0
    3 2024-01-02 18:00:00+00:00   11.0  251.0
    """
    return _bar_ticks(bars, timeframe)[0]


def _bar_ticks(bars: pd.DataFrame, timeframe: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Return :func:`bar_ticks` and, per tick, the row of ``bars`` it came from."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}; expected {list(BAR_COLUMNS)}")
    tf = parse_timeframe(timeframe)
    length = _NS_PER_DAY if tf.is_calendar else tf.nanos
    n = len(bars)
    start = pd.DatetimeIndex(bars["ts"]).tz_convert("UTC").as_unit("ns").asi8
    open_ = bars["open"].to_numpy(dtype=float)
    high = bars["high"].to_numpy(dtype=float)
    low = bars["low"].to_numpy(dtype=float)
    close = bars["close"].to_numpy(dtype=float)
    volume = np.nan_to_num(bars["volume"].to_numpy(dtype=float), nan=0.0)
    rising = close > open_
    price = np.stack([open_, np.where(rising, low, high), np.where(rising, high, low), close], 1)
    # Whole-share quarters, the remainder last: 3q is exact and v - 3q is exact (Sterbenz,
    # as v / 2 <= 3q <= v once q >= 1), so q + q + q + (v - 3q) == v in floating point.
    quarter = np.floor(volume / 4.0)
    size = np.stack([quarter, quarter, quarter, volume - 3.0 * quarter], 1)
    offsets = (_TICK_FRACTIONS * length).astype(np.int64)
    ts = start[:, None] + offsets[None, :]
    symbols = bars["symbol"].to_numpy(dtype=object)
    flat_ts = ts.ravel()
    order = np.argsort(flat_ts, kind="stable")
    frame = pd.DataFrame(
        {
            "symbol": pd.array(np.repeat(symbols, 4)[order], dtype="str"),
            "ts": pd.DatetimeIndex(flat_ts[order].view("datetime64[ns]"), tz="UTC"),
            "price": price.ravel()[order],
            "size": size.ravel()[order],
        },
        columns=list(TICK_COLUMNS),
    )
    return frame, np.repeat(np.arange(n), 4)[order]


class ReplayFeed(MarketFeed):
    """Stored bars or ticks replayed as a live feed, ``speed`` times faster than history.

    Parameters
    ----------
    source
        A :class:`~quantdesk.data.store.market.MarketStore` (its bars at ``timeframe``), or a
        frame of bars (:data:`BAR_COLUMNS`) or of ticks (:data:`TICK_COLUMNS`).
    symbols
        Symbols to replay (default: all of the source).
    timeframe
        The bars' timeframe (ignored for ticks).
    speed
        Seconds of history per wall second (``math.inf``: as fast as listeners take
        them); change it while running through :attr:`speed`.
    start, end
        Inclusive bounds on the history replayed.
    loop
        Start over at the end, shifted forward by whole weeks so time keeps increasing
        and days keep their weekday; without it the feed finishes (status
        ``"finished"``) when history runs out.
    cache
        The quote cache to update; a bar's ticks carry the previous bar's close as the
        quote's ``prev_close``.

    Examples
    --------
    >>> bars = pd.DataFrame({"symbol": ["A", "A"],
    ...                      "ts": pd.to_datetime(["2024-01-02", "2024-01-03"], utc=True),
    ...                      "open": [10.0, 11.0], "high": [12.0, 11.5], "low": [9.0, 10.0],
    ...                      "close": [11.0, 10.5], "volume": [100.0, 80.0]})
    >>> feed = ReplayFeed(bars, speed=math.inf).start()
    >>> feed.wait(10), feed.status.state, feed.status.ticks
    (True, 'finished', 8)
    >>> quote = feed.cache.get("A")
    >>> quote.price, quote.prev_close
    (10.5, 11.0)
    """

    kind = "replay"

    def __init__(
        self,
        source: MarketStore | pd.DataFrame,
        symbols: Sequence[str] | None = None,
        *,
        timeframe: str = "1d",
        speed: float = 3600.0,
        start: Any = None,
        end: Any = None,
        loop: bool = False,
        cache: QuoteCache | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.timeframe = parse_timeframe(timeframe).name
        self._source = source
        self._wanted = (
            None if symbols is None else [symbols] if isinstance(symbols, str) else (list(symbols))
        )
        self._start = start
        self._end = end
        self.loop = bool(loop)
        self._speed = _check_speed(speed)
        self._ticks: pd.DataFrame | None = None
        self._prev_close: np.ndarray = np.zeros(0)
        self._final_close: dict[str, float] = {}  # each symbol's last close, for a new lap
        self._position = 0  # index of the next tick to publish
        self._lap = 0
        if isinstance(source, pd.DataFrame):
            self._load()
            subscribed = self._symbols_in_source()
        else:
            subscribed = self._wanted or source.symbols()
        super().__init__(subscribed, cache=cache, backoff=backoff)

    # -- speed ---------------------------------------------------------------------------

    @property
    def speed(self) -> float:
        """Return the seconds of history replayed per wall second."""
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._speed = _check_speed(value)

    # -- history ---------------------------------------------------------------------------

    def _symbols_in_source(self) -> list[str]:
        assert self._ticks is not None
        return sorted(self._ticks["symbol"].unique())

    def _load(self) -> None:
        """Read the source into ticks in time order, with each tick's previous close."""
        source = self._source
        if isinstance(source, pd.DataFrame):
            frame = source
            if self._wanted is not None:
                frame = frame[frame["symbol"].isin(self._wanted)]
            if "ts" in frame.columns and (self._start is not None or self._end is not None):
                ts = pd.DatetimeIndex(frame["ts"])
                keep = np.ones(len(frame), dtype=bool)
                if self._start is not None:
                    keep &= ts >= _utc(self._start)
                if self._end is not None:
                    keep &= ts <= _utc(self._end)
                frame = frame[keep]
        else:
            frame = source.bars(self._wanted, self._start, self._end, timeframe=self.timeframe)
        if set(BAR_COLUMNS) <= set(frame.columns):
            bars = frame.sort_values(["symbol", "ts"], kind="stable")
            ticks, row = _bar_ticks(bars, self.timeframe)
            # Each tick carries the close of the bar before its own (NaN for a first bar).
            prev = bars.groupby("symbol", sort=False)["close"].shift(1).to_numpy(dtype=float)
            self._prev_close = prev[row]
            last = bars.groupby("symbol", sort=False)["close"].last()
            self._final_close = {str(k): float(v) for k, v in last.items()}
        elif set(TICK_COLUMNS) <= set(frame.columns):
            ticks = frame[list(TICK_COLUMNS)].sort_values("ts", kind="stable")
            ticks = ticks.reset_index(drop=True)
            self._prev_close = np.full(len(ticks), np.nan)
        else:
            raise ValueError(
                f"replay needs bars {list(BAR_COLUMNS)} or ticks {list(TICK_COLUMNS)}, "
                f"got columns {list(frame.columns)}"
            )
        if ticks.empty:
            raise ValueError(
                f"nothing to replay: no {self.timeframe} history for symbols "
                f"{self._wanted or 'all'} between {self._start} and {self._end}"
            )
        self._ticks = ticks.reset_index(drop=True)

    @property
    def history(self) -> pd.DataFrame:
        """Return the ticks the feed replays, in time order (loaded on first use)."""
        if self._ticks is None:
            self._load()
        assert self._ticks is not None
        return self._ticks

    # -- the session -----------------------------------------------------------------------

    def _session(self, stop: threading.Event, ready: Callable[[], None]) -> None:
        if self._ticks is None:
            self._load()  # a store that cannot be read fails start() with FeedError
        ticks = self.history
        ts_ns = pd.DatetimeIndex(ticks["ts"]).as_unit("ns").asi8
        span = int(ts_ns[-1] - ts_ns[0])
        week = 7 * _NS_PER_DAY
        lap_shift = (span // week + 1) * week
        symbols = ticks["symbol"].to_numpy(dtype=object)
        prices = ticks["price"].to_numpy(dtype=float)
        ready()
        # The history clock: hist = anchor_hist + (wall - anchor_wall) * speed, re-anchored
        # whenever the speed changes, so a change applies from now on without a jump.
        shift = self._lap * lap_shift
        anchor_hist = int(ts_ns[self._position]) + shift if self._position < len(ticks) else 0
        anchor_wall = time.monotonic()
        speed = self._speed
        while not stop.is_set():
            if self._position >= len(ticks):
                if not self.loop:
                    logger.info("replay finished: %d ticks", len(ticks))
                    return
                self._lap += 1
                self._position = 0
                shift = self._lap * lap_shift
                anchor_hist, anchor_wall = int(ts_ns[0]) + shift, time.monotonic()
            now = time.monotonic()
            next_ts = int(ts_ns[self._position]) + shift
            if self._speed != speed:
                # Never past the next tick: leaving an infinite speed does not skip ahead.
                anchor_hist = min(anchor_hist + _elapsed_ns(now - anchor_wall, speed), next_ts)
                anchor_wall, speed = now, self._speed
            hist_now = anchor_hist + _elapsed_ns(now - anchor_wall, speed)
            due = int(np.searchsorted(ts_ns, hist_now - shift, side="right"))
            end = min(due, self._position + _MAX_BATCH)
            if end > self._position:
                self._publish_slice(self._position, end, shift, symbols, prices)
                self._position = end
                continue
            wait = (next_ts - hist_now) / 1e9 / speed
            stop.wait(min(max(wait, 0.0), _MAX_WAIT_S))

    def _publish_slice(
        self, lo: int, hi: int, shift: int, symbols: np.ndarray, prices: np.ndarray
    ) -> None:
        assert self._ticks is not None
        batch = self._ticks.iloc[lo:hi]
        if shift:
            batch = batch.assign(ts=batch["ts"] + pd.Timedelta(shift, "ns"))
        # Each symbol's quote ends on its last tick here: give it that bar's previous close
        # (on a later lap the first bar's reference is the previous lap's last close).
        sym = symbols[lo:hi]
        names, first_rev = np.unique(sym[::-1], return_index=True)
        last = lo + (hi - lo - 1 - first_rev)
        prev = self._prev_close[last]
        closes = {str(s): float(p) for s, p in zip(names, prev, strict=True) if math.isfinite(p)}
        if self._lap:
            for s, p in zip(names, prev, strict=True):
                if not math.isfinite(p) and str(s) in self._final_close:
                    closes[str(s)] = self._final_close[str(s)]
        if closes:
            self.cache.set_prev_close(closes)
        self.publish(batch)

    def __repr__(self) -> str:
        return (
            f"ReplayFeed({len(self.symbols)} symbols, {self.timeframe}, speed={self._speed:g}, "
            f"{self.status.state})"
        )


def _elapsed_ns(wall_seconds: float, speed: float) -> int:
    if math.isinf(speed):
        return 2**62
    return int(wall_seconds * speed * 1e9)


def _check_speed(value: float) -> float:
    speed = float(value)
    if not speed > 0:
        raise ValueError(f"speed must be positive (history seconds per wall second), got {value!r}")
    return speed


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
