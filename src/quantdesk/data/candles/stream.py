"""Streaming candles: OHLCV bars built tick by tick from a feed that may run a little late.

:class:`CandleAggregator` keeps, per symbol, a watermark (the latest tick time seen),
accepts ticks up to ``tolerance`` behind it, drops (and counts) anything older, and
emits a candle once the watermark has passed the candle's end by ``tolerance``.  Its
buckets follow the rules of :mod:`quantdesk.data.candles.batch`, and with no drops its
candles equal :func:`~quantdesk.data.candles.batch.aggregate` of the same ticks.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_utc
from quantdesk.data.candles.batch import (
    bars_frame,
    empty_bars,
    local_day_ends,
    local_day_labels,
    resolve_zone,
    symbol_ranks,
)
from quantdesk.data.candles.kernels import (
    C_APPLIED,
    C_DROPPED,
    C_ERROR,
    C_FIRST_DROP,
    C_LATE,
    C_OUT,
    C_PENDING,
    EMPTY_I64,
    F64,
    I64,
    I64_MAX,
    I64_MIN,
    NS_PER_HOUR,
    kernels,
)
from quantdesk.data.candles.ticks import (
    FIELD_PROBLEMS,
    TickArrays,
    check_columns,
    raise_if_invalid,
    symbol_names,
    tick_arrays,
)
from quantdesk.data.schemas import Timeframe, parse_timeframe

__all__ = ["CandleAggregator", "CandleStats"]

logger = logging.getLogger(__name__)

# A late tick warning is logged for the first drop and then once per this many drops.
_DROP_LOG_EVERY = 1000


@dataclass(frozen=True)
class CandleStats:
    """Counts of ticks a :class:`CandleAggregator` has seen, applied and dropped."""

    ticks_seen: int = 0
    ticks_applied: int = 0
    late_applied: int = 0
    late_dropped: int = 0

    def summary(self) -> str:
        """Return a one-line human-readable account of the counts."""
        return (
            f"{self.ticks_seen} ticks seen: {self.ticks_applied} applied "
            f"({self.late_applied} of them late), {self.late_dropped} dropped as too late"
        )


class CandleAggregator:
    """Streaming OHLCV candles from ticks that may arrive slightly out of order.

    Per symbol the aggregator keeps a watermark ``W``, the latest tick time seen.  A tick
    with ``ts >= W - tolerance`` is applied to its bucket's candle; an older one is
    dropped, counted in :attr:`stats` and :attr:`dropped`, and logged (the first drop,
    then every 1000th).  A candle ``[b, b + tf)`` is final, and emitted once, when
    ``W >= b + tf + tolerance``: with zero tolerance, as soon as a tick of a later bucket
    of the same symbol arrives.  A symbol that goes quiet keeps its last candle open
    until :meth:`flush`.  With no drops, the candles equal :func:`aggregate` of the same
    ticks in arrival order, whatever that order.

    Parameters
    ----------
    timeframe
        Bar length, ``"1s"`` to ``"1d"``.
    tolerance
        How far behind a symbol's watermark a tick may be and still count (``"0s"``).
    tz
        Time zone whose calendar dates define daily buckets (default UTC); see
        :func:`aggregate`.

    Examples
    --------
    >>> agg = CandleAggregator("1min")
    >>> agg.update("A", "2024-01-02 09:30:05", 10.0, 100)
    []
    >>> [c["close"] for c in agg.update("A", "2024-01-02 09:31:00", 10.2, 5)]
    [10.0]
    >>> agg.flush()[["symbol", "open", "volume"]]
      symbol  open  volume
    0      A  10.2     5.0
    """

    def __init__(
        self,
        timeframe: str | Timeframe,
        *,
        tolerance: str | pd.Timedelta = "0s",
        tz: str | None = None,
    ) -> None:
        self.timeframe = parse_timeframe(timeframe)
        tol = pd.Timedelta(tolerance)
        if pd.isna(tol) or tol < pd.Timedelta(0):
            raise ValueError(f"tolerance must be a non-negative duration, got {tolerance!r}")
        self.tolerance: pd.Timedelta = tol
        self.tz = tz
        self._zone = resolve_zone(tz) if self.timeframe.is_daily else None
        self._tol_ns = int(tol.value)
        self._tf_ns = self.timeframe.nanos
        # Pending candles of a symbol span at most ceil(tolerance / bar length) + 1
        # consecutive buckets; local days can be as short as 23 h, hence the 20 h floor.
        shortest = 20 * NS_PER_HOUR if self._zone is not None else self._tf_ns
        self._n_slots = -(-self._tol_ns // shortest) + 2 + (self._zone is not None)
        self._codes: dict[str, int] = {}
        self._names: list[str] = []
        self._ranks: I64 | None = None
        self._lut_key: object = None
        self._lut: I64 = EMPTY_I64
        self._n_pending = 0
        self._seen = 0
        self._applied = 0
        self._late_applied = 0
        self._late_dropped = 0
        self._allocate(0)

    # -- state -------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        k = self._n_slots
        self._watermark: I64 = np.full(capacity, I64_MIN, dtype=np.int64)
        self._floor: I64 = np.full(capacity, I64_MIN, dtype=np.int64)
        self._min_end: I64 = np.full(capacity, I64_MAX, dtype=np.int64)
        self._last_slot: I64 = np.zeros(capacity, dtype=np.int64)
        self._slot_i: I64 = np.full((capacity, k, 4), I64_MIN, dtype=np.int64)
        self._slot_f: F64 = np.zeros((capacity, k, 5), dtype=np.float64)
        self._dropped_by_code: I64 = np.zeros(capacity, dtype=np.int64)

    def _state(self) -> tuple[np.ndarray, ...]:
        """Return the per-symbol state arrays (first axis: symbol code)."""
        return (
            self._watermark,
            self._floor,
            self._min_end,
            self._last_slot,
            self._slot_i,
            self._slot_f,
            self._dropped_by_code,
        )

    def _grow(self, needed: int) -> None:
        capacity = len(self._watermark)
        if needed <= capacity:
            return
        old = self._state()
        self._allocate(max(needed, 2 * capacity, 16))
        for dst, src in zip(self._state(), old, strict=True):
            dst[:capacity] = src

    def _code_of(self, symbol: str) -> int:
        code = self._codes.get(symbol)
        if code is None:
            code = len(self._names)
            self._codes[symbol] = code
            self._names.append(symbol)
            self._ranks = None
        return code

    def _global_codes(self, arrays: TickArrays, categorical: bool) -> I64:
        # Batches sliced from one categorical frame share its categories object, so the
        # symbol -> code table is built once per categories rather than once per batch.
        if categorical and arrays.categories is self._lut_key:
            lut = self._lut
        else:
            names = symbol_names(arrays.categories)
            lut = np.fromiter((self._code_of(s) for s in names), dtype=np.int64)
            self._grow(len(self._names))
            self._lut_key, self._lut = arrays.categories, lut
        return lut[arrays.codes] if len(lut) else np.zeros(len(arrays.codes), dtype=np.int64)

    def _symbol_ranks(self) -> I64:
        if self._ranks is None:
            self._ranks = symbol_ranks(np.asarray(self._names, dtype=object))
        return self._ranks

    # -- processing --------------------------------------------------------------------

    def _process(self, codes: I64, ts: I64, price: F64, size: F64) -> pd.DataFrame:
        if self._zone is not None:
            labels = local_day_labels(ts, self._zone)
            ends = local_day_ends(labels, self._zone)
        else:
            labels = ends = EMPTY_I64
        capacity = len(ts) + self._n_pending
        out_code = np.empty(capacity, dtype=np.int64)
        out_start = np.empty(capacity, dtype=np.int64)
        out_vals = np.empty((capacity, 5), dtype=np.float64)
        counters = np.zeros(7, dtype=np.int64)
        kernels().stream(
            codes,
            ts,
            price,
            size,
            labels,
            ends,
            self._tf_ns,
            self._tol_ns,
            *self._state(),
            out_code,
            out_start,
            out_vals,
            counters,
        )
        if counters[C_ERROR]:
            row = int(counters[C_ERROR]) - 1
            raise RuntimeError(
                f"CandleAggregator internal error: no pending-candle slot for tick {row} "
                f"({self._names[codes[row]]!r} at {pd.Timestamp(int(ts[row]), tz='UTC')})"
            )
        self._n_pending += int(counters[C_PENDING])
        self._seen += len(ts)
        self._applied += int(counters[C_APPLIED])
        self._late_applied += int(counters[C_LATE])
        n_dropped = int(counters[C_DROPPED])
        if n_dropped:
            self._log_drops(n_dropped, codes, ts, int(counters[C_FIRST_DROP]))
        n_out = int(counters[C_OUT])
        return self._candles(out_code[:n_out], out_start[:n_out], out_vals[:n_out])

    def _log_drops(self, n_dropped: int, codes: I64, ts: I64, first: int) -> None:
        before = self._late_dropped
        self._late_dropped = after = before + n_dropped
        if before == 0 or after // _DROP_LOG_EVERY > before // _DROP_LOG_EVERY:
            code = int(codes[first])
            logger.warning(
                "CandleAggregator(%s, tolerance=%s): dropped %d tick(s) older than their "
                "symbol's watermark minus tolerance (%d dropped so far); e.g. %r at %s, "
                "watermark %s",
                self.timeframe,
                self.tolerance,
                n_dropped,
                after,
                self._names[code],
                pd.Timestamp(int(ts[first]), tz="UTC"),
                pd.Timestamp(int(self._watermark[code]), tz="UTC"),
            )

    def _candles(self, code: I64, start: I64, vals: F64) -> pd.DataFrame:
        if len(code) == 0:
            return empty_bars()
        order = np.lexsort((start, self._symbol_ranks()[code]))
        code, start, vals = code[order], start[order], vals[order]
        names = np.asarray(self._names, dtype=object)
        return bars_frame(
            names[code], start, vals[:, 0], vals[:, 1], vals[:, 2], vals[:, 3], vals[:, 4]
        )

    def _pending(self) -> tuple[I64, I64, I64, F64]:
        code, slot = np.nonzero(self._slot_i[:, :, 0] != I64_MIN)
        return (
            code.astype(np.int64),
            self._slot_i[code, slot, 0],
            self._slot_i[code, slot, 1],
            self._slot_f[code, slot],
        )

    # -- public API --------------------------------------------------------------------

    def update_many(self, ticks: pd.DataFrame) -> pd.DataFrame:
        """Return the candles that became final while applying a batch of ticks.

        Parameters
        ----------
        ticks
            Frame with columns ``symbol, ts, price, size`` (as for :func:`aggregate`),
            in arrival order.  The batch is validated before any tick is applied.

        Returns
        -------
        pandas.DataFrame
            Final candles with the columns of :func:`aggregate`, sorted by (symbol, ts).
        """
        check_columns(ticks)
        arrays = tick_arrays(ticks)
        raise_if_invalid(ticks, arrays)
        if len(arrays.ts) == 0:
            return empty_bars()
        categorical = isinstance(ticks["symbol"].dtype, pd.CategoricalDtype)
        codes = self._global_codes(arrays, categorical)
        return self._process(codes, arrays.ts, arrays.price, arrays.size)

    def update(self, symbol: str, ts: Any, price: float, size: float) -> list[dict[str, Any]]:
        """Return the candles (as dicts of bar fields) made final by one tick.

        ``ts`` is anything :class:`pandas.Timestamp` accepts; naive times are UTC.
        """
        parsed = pd.Timestamp(ts)
        if pd.isna(parsed):
            raise ValueError(f"tick of {symbol!r}, field 'ts': ts is missing (NaT), got {ts!r}")
        stamp = as_utc(parsed)
        assert stamp is not None  # not NaT, checked above
        p, s = float(price), float(size)
        if not (p > 0.0 and p < math.inf):
            raise ValueError(
                f"tick of {symbol!r}, field 'price': {FIELD_PROBLEMS[2]}, got {price!r}"
            )
        if not (s >= 0.0 and s < math.inf):
            raise ValueError(f"tick of {symbol!r}, field 'size': {FIELD_PROBLEMS[3]}, got {size!r}")
        code = self._code_of(str(symbol))
        self._grow(len(self._names))
        bars = self._process(
            np.array([code], dtype=np.int64),
            np.array([stamp.as_unit("ns").value], dtype=np.int64),
            np.array([p]),
            np.array([s]),
        )
        return bars.to_dict("records")  # type: ignore[return-value]

    def flush(self) -> pd.DataFrame:
        """Return all still-open candles, sorted by (symbol, ts), and close them.

        Watermarks are kept, and ticks older than the end of a symbol's last flushed
        candle are dropped from then on, so no candle is ever emitted twice.
        """
        code, start, end, vals = self._pending()
        if len(code):
            np.maximum.at(self._floor, code, end)
        self._slot_i[:, :, 0] = I64_MIN
        self._min_end[:] = I64_MAX
        self._n_pending = 0
        return self._candles(code, start, vals)

    def open_candles(self) -> pd.DataFrame:
        """Return the candles still open (not yet final), sorted by (symbol, ts)."""
        code, start, _, vals = self._pending()
        return self._candles(code, start, vals)

    @property
    def stats(self) -> CandleStats:
        """Return counts of ticks seen, applied (and of those, late) and dropped."""
        return CandleStats(
            ticks_seen=self._seen,
            ticks_applied=self._applied,
            late_applied=self._late_applied,
            late_dropped=self._late_dropped,
        )

    @property
    def dropped(self) -> dict[str, int]:
        """Return the number of too-late ticks dropped, per symbol (symbols with drops)."""
        counts = self._dropped_by_code[: len(self._names)]
        return {self._names[i]: int(counts[i]) for i in np.flatnonzero(counts)}

    @property
    def symbols(self) -> list[str]:
        """Return the symbols seen so far, in order of first appearance."""
        return list(self._names)

    def __repr__(self) -> str:
        return (
            f"CandleAggregator({self.timeframe.name!r}, tolerance={str(self.tolerance)!r}, "
            f"tz={self.tz!r}): {len(self._names)} symbols, {self._n_pending} open candles; "
            f"{self.stats.summary()}"
        )
