"""Tick-to-candle aggregation: OHLCV bars from trades, in batch and as a stream.

:func:`aggregate` turns a frame of ticks (``symbol, ts, price, size``) into long bars
(``symbol, ts, open, high, low, close, volume``).  Its default engine is a two-pass
compiled kernel (numba); ``engine="duckdb"`` computes the same bars with a SQL
``GROUP BY`` and serves as an independent reference.

:class:`CandleAggregator` builds the same bars from a stream whose ticks may arrive a
little out of order: per symbol it keeps a watermark (the latest tick time seen), accepts
ticks up to ``tolerance`` behind it, drops (and counts) anything older, and emits a
candle once the watermark has passed the candle's end by ``tolerance``.

Bucketing rules, shared by both:

* sub-daily timeframes use epoch-aligned UTC buckets, ``floor(ts / tf) * tf``;
* ``"1d"`` buckets by the calendar date of the tick in ``tz`` (default UTC) and labels
  the bar with that date at 00:00 UTC (the project's daily-bar contract);
* open/close are the earliest/latest tick in time, ties broken by input (arrival)
  order; buckets without ticks produce no candle.

numba and duckdb are imported on first use so that ``import quantdesk`` stays fast.
"""

from __future__ import annotations

import functools
import logging
import math
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantdesk.data.schemas import BAR_COLUMNS, TICK_COLUMNS, Timeframe, parse_timeframe, to_utc_ns

__all__ = ["CandleAggregator", "CandleStats", "aggregate"]

logger = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer[Any]]

_I64_MIN = -(2**63)  # also NaT's integer value
_I64_MAX = 2**63 - 1
_NS_PER_HOUR = 3_600_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR
_ENGINES = ("auto", "numba", "duckdb")
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "utc"})
_EMPTY_I64: I64 = np.empty(0, dtype=np.int64)

# Field codes returned by the validation kernel index into TICK_COLUMNS.
_FIELD_PROBLEMS = (
    "symbol is missing",
    "ts is missing (NaT)",
    "price must be a finite positive number",
    "size must be a finite non-negative number",
)

# Slots of the counters array shared with the streaming kernel.
_C_OUT, _C_APPLIED, _C_LATE, _C_DROPPED, _C_FIRST_DROP, _C_PENDING, _C_ERROR = range(7)

# A late tick warning is logged for the first drop and then once per this many drops.
_DROP_LOG_EVERY = 1000


# --------------------------------------------------------------------------------------
# Kernels.  Plain Python functions, compiled with numba on first use (see _kernels); the
# Python versions stay importable and callable, which keeps the module light to import.
# They must not call each other: a module-level name is a Python function, not a
# compiled one, at the time numba types the caller.
# --------------------------------------------------------------------------------------


def _validate_ticks(codes: IntArray, ts: I64, price: F64, size: F64) -> tuple[int, int, bool]:
    """Return ``(first bad row or -1, field code, ts non-decreasing)`` for one tick batch."""
    n = ts.shape[0]
    # Branch-free flags let the compiler vectorise the common all-valid case; the rows
    # are only searched one by one once something is known to be wrong.  The negated
    # comparisons make NaN fail them.
    bad = 0
    for i in range(n):
        p = price[i]
        s = size[i]
        bad |= (
            (codes[i] < 0)
            | (ts[i] == _I64_MIN)
            | (not p > 0.0)
            | (not p < math.inf)
            | (not s >= 0.0)
            | (not s < math.inf)
        )
    unsorted = 0
    for i in range(1, n):
        unsorted |= ts[i] < ts[i - 1]
    if bad:
        for i in range(n):
            p = price[i]
            s = size[i]
            if codes[i] < 0:
                return i, 0, unsorted == 0
            if ts[i] == _I64_MIN:
                return i, 1, unsorted == 0
            if not (p > 0.0 and p < math.inf):
                return i, 2, unsorted == 0
            if not (s >= 0.0 and s < math.inf):
                return i, 3, unsorted == 0
    return -1, -1, unsorted == 0


def _count_candles(codes: IntArray, ts: I64, labels: I64, tf_ns: int, n_codes: int) -> int:
    """Return the number of candles in time-sorted ticks, or -1 if a bucket goes backwards.

    ``labels`` holds precomputed bucket starts (local-date daily bars) or is empty, in
    which case buckets are ``floor(ts / tf_ns) * tf_ns``.
    """
    use_labels = labels.shape[0] > 0
    cur_start = np.full(n_codes, _I64_MIN, dtype=np.int64)
    cur_end = np.full(n_codes, _I64_MIN, dtype=np.int64)
    n_out = 0
    for i in range(ts.shape[0]):
        c = codes[i]
        if use_labels:
            b = labels[i]
            if b == cur_start[c]:
                continue
            if b < cur_start[c]:
                return -1
            cur_start[c] = b
            n_out += 1
        else:
            t = ts[i]
            # Sorted input: a tick before the current end is in the current bucket, so
            # the (slow) integer division is only paid once per candle.
            if t < cur_end[c]:
                continue
            b = (t // tf_ns) * tf_ns
            cur_end[c] = b + tf_ns
            n_out += 1
    return n_out


def _fill_candles(
    codes: IntArray,
    ts: I64,
    price: F64,
    size: F64,
    labels: I64,
    tf_ns: int,
    n_codes: int,
    n_out: int,
) -> tuple[I64, I64, F64, F64, F64, F64, F64]:
    """Return ``(code, start, open, high, low, close, volume)`` arrays, one row per candle.

    Rows come out in order of each candle's first tick; ticks must be sorted by time
    (stably), so the first tick of a bucket is its open and the last its close.
    """
    out_code = np.empty(n_out, dtype=np.int64)
    out_start = np.empty(n_out, dtype=np.int64)
    out_open = np.empty(n_out, dtype=np.float64)
    out_high = np.empty(n_out, dtype=np.float64)
    out_low = np.empty(n_out, dtype=np.float64)
    out_close = np.empty(n_out, dtype=np.float64)
    out_volume = np.empty(n_out, dtype=np.float64)
    use_labels = labels.shape[0] > 0
    cur_row = np.full(n_codes, -1, dtype=np.int64)
    cur_start = np.full(n_codes, _I64_MIN, dtype=np.int64)
    cur_end = np.full(n_codes, _I64_MIN, dtype=np.int64)
    # The open candle of each symbol accumulates in a small per-symbol table (high, low,
    # close, volume) that stays in L1 cache; it is written out when the candle changes.
    # This is about twice as fast as updating the output rows in place.
    acc = np.zeros((n_codes, 4), dtype=np.float64)
    k = 0
    for i in range(ts.shape[0]):
        c = codes[i]
        p = price[i]
        s = size[i]
        b = _I64_MIN
        new = False
        if use_labels:
            b = labels[i]
            new = b != cur_start[c]
        else:
            t = ts[i]
            # Sorted input: a tick before the current end is in the current bucket, so
            # the (slow) integer division is only paid once per candle.
            if t >= cur_end[c]:
                new = True
                b = (t // tf_ns) * tf_ns
                cur_end[c] = b + tf_ns
        if new:
            r = cur_row[c]
            if r >= 0:
                out_high[r] = acc[c, 0]
                out_low[r] = acc[c, 1]
                out_close[r] = acc[c, 2]
                out_volume[r] = acc[c, 3]
            cur_start[c] = b
            cur_row[c] = k
            out_code[k] = c
            out_start[k] = b
            out_open[k] = p
            acc[c, 0] = p
            acc[c, 1] = p
            acc[c, 2] = p
            acc[c, 3] = s
            k += 1
        else:
            acc[c, 0] = max(acc[c, 0], p)
            acc[c, 1] = min(acc[c, 1], p)
            acc[c, 2] = p
            acc[c, 3] += s
    for c in range(n_codes):
        r = cur_row[c]
        if r >= 0:
            out_high[r] = acc[c, 0]
            out_low[r] = acc[c, 1]
            out_close[r] = acc[c, 2]
            out_volume[r] = acc[c, 3]
    return out_code, out_start, out_open, out_high, out_low, out_close, out_volume


def _stream_ticks(
    codes: I64,
    ts: I64,
    price: F64,
    size: F64,
    labels: I64,
    ends: I64,
    tf_ns: int,
    tol_ns: int,
    watermark: I64,
    floor: I64,
    min_end: I64,
    last_slot: I64,
    slot_i: I64,
    slot_f: F64,
    dropped_by_code: I64,
    out_code: I64,
    out_start: I64,
    out_vals: F64,
    counters: I64,
) -> None:
    """Apply a batch of ticks to the streaming state in place, appending final candles.

    State per symbol code ``c``: ``watermark[c]`` (latest tick time, ``I64_MIN`` if none),
    ``floor[c]`` (ticks before it are dropped: end of the last flushed candle),
    ``min_end[c]`` (earliest end among pending candles, ``I64_MAX`` if none),
    ``last_slot[c]`` (slot of the symbol's previous tick, a cache) and a ring of
    ``K`` pending-candle slots indexed by ``bucket_index % K``:
    ``slot_i[c, k] = (start or I64_MIN if empty, end, open_ts, close_ts)`` and
    ``slot_f[c, k] = (open, high, low, close, volume)``.
    """
    n_slots = slot_i.shape[1]
    use_labels = labels.shape[0] > 0
    n_out = 0
    applied = 0
    late = 0
    dropped = 0
    first_drop = -1
    pending = 0
    for i in range(ts.shape[0]):
        c = codes[i]
        t = ts[i]
        w = watermark[c]
        if t < floor[c] or (w != _I64_MIN and t < w - tol_ns):
            dropped += 1
            dropped_by_code[c] += 1
            if first_drop < 0:
                first_drop = i
            continue
        if t < w:
            late += 1
        elif t > w:
            watermark[c] = t
            limit = t - tol_ns
            if min_end[c] <= limit:
                # Scanning all K slots only when at least one candle is due keeps the
                # common case (tick inside the open candle) free of any loop.
                new_min = _I64_MAX
                for k in range(n_slots):
                    start = slot_i[c, k, 0]
                    if start == _I64_MIN:
                        continue
                    end = slot_i[c, k, 1]
                    if end <= limit:
                        out_code[n_out] = c
                        out_start[n_out] = start
                        for f in range(5):
                            out_vals[n_out, f] = slot_f[c, k, f]
                        n_out += 1
                        slot_i[c, k, 0] = _I64_MIN
                        pending -= 1
                    elif end < new_min:
                        new_min = end
                min_end[c] = new_min
        k = last_slot[c]
        start = slot_i[c, k, 0]
        if use_labels:
            b = labels[i]
            e = ends[i]
            if start != b:
                k = (b // tf_ns) % n_slots
        elif start != _I64_MIN and start <= t < slot_i[c, k, 1]:
            # Same bucket as this symbol's previous tick: skip two integer divisions.
            b = slot_i[c, k, 0]
            e = slot_i[c, k, 1]
        else:
            q = t // tf_ns
            b = q * tf_ns
            e = b + tf_ns
            k = q % n_slots
        last_slot[c] = k
        p = price[i]
        start = slot_i[c, k, 0]
        if start == b:
            if t < slot_i[c, k, 2]:
                slot_i[c, k, 2] = t
                slot_f[c, k, 0] = p
            if p > slot_f[c, k, 1]:
                slot_f[c, k, 1] = p
            if p < slot_f[c, k, 2]:
                slot_f[c, k, 2] = p
            if t >= slot_i[c, k, 3]:
                slot_i[c, k, 3] = t
                slot_f[c, k, 3] = p
            slot_f[c, k, 4] += size[i]
        elif start == _I64_MIN:
            slot_i[c, k, 0] = b
            slot_i[c, k, 1] = e
            slot_i[c, k, 2] = t
            slot_i[c, k, 3] = t
            slot_f[c, k, 0] = p
            slot_f[c, k, 1] = p
            slot_f[c, k, 2] = p
            slot_f[c, k, 3] = p
            slot_f[c, k, 4] = size[i]
            pending += 1
            if e < min_end[c]:
                min_end[c] = e
        else:
            # Cannot happen when K covers the tolerance window; reported, never hidden.
            counters[_C_ERROR] = i + 1
            break
        applied += 1
    counters[_C_OUT] = n_out
    counters[_C_APPLIED] = applied
    counters[_C_LATE] = late
    counters[_C_DROPPED] = dropped
    counters[_C_FIRST_DROP] = first_drop
    counters[_C_PENDING] = pending


class _Kernels(NamedTuple):
    validate: Callable[..., tuple[int, int, bool]]
    count: Callable[..., int]
    fill: Callable[..., tuple[I64, I64, F64, F64, F64, F64, F64]]
    stream: Callable[..., None]


@functools.cache
def _kernels() -> _Kernels:
    """Return the compiled kernels, importing numba and compiling (or loading its cache)."""
    import numba

    jit = numba.njit(cache=True, nogil=True)
    return _Kernels(
        validate=jit(_validate_ticks),
        count=jit(_count_candles),
        fill=jit(_fill_candles),
        stream=jit(_stream_ticks),
    )


# --------------------------------------------------------------------------------------
# Input handling shared by the batch and streaming paths.
# --------------------------------------------------------------------------------------


class _TickArrays(NamedTuple):
    codes: IntArray  # index into categories; -1 for a missing symbol
    categories: pd.Index  # the distinct symbols (any dtype; see _symbol_names)
    ts: I64  # UTC epoch nanoseconds
    price: F64
    size: F64


def _check_columns(ticks: pd.DataFrame) -> None:
    if not isinstance(ticks, pd.DataFrame):
        raise TypeError(f"ticks must be a pandas DataFrame, got {type(ticks).__name__}")
    missing = [c for c in TICK_COLUMNS if c not in ticks.columns]
    if missing:
        raise ValueError(
            f"ticks is missing column(s) {', '.join(map(repr, missing))}; "
            f"expected {list(TICK_COLUMNS)}, got {list(map(str, ticks.columns))}"
        )


def _utc_ns(ts: pd.Series) -> I64:
    dtype = ts.dtype
    if not (
        isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns" and str(dtype.tz) == "UTC"
    ):
        try:
            ts = to_utc_ns(ts)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"ticks column 'ts' is not convertible to UTC datetimes: {exc}"
            ) from exc
    values: I64 = ts.array.asi8  # type: ignore[attr-defined]
    return values


def _float_values(values: pd.Series, name: str) -> F64:
    if values.dtype == np.float64:
        out: F64 = values.to_numpy()
        return out
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        # Plain integer columns cannot hold NaN: skip the (slower) missing-value path.
        return values.to_numpy().astype(np.float64)
    try:
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ticks column {name!r} is not numeric: {exc}") from exc


def _tick_arrays(ticks: pd.DataFrame) -> _TickArrays:
    symbol = ticks["symbol"]
    codes: IntArray
    if isinstance(symbol.dtype, pd.CategoricalDtype):
        codes = symbol.cat.codes.to_numpy()
        categories = symbol.cat.categories
    else:
        codes, categories = pd.factorize(symbol, use_na_sentinel=True)
    return _TickArrays(
        codes=codes,
        categories=categories,
        ts=_utc_ns(ticks["ts"]),
        price=_float_values(ticks["price"], "price"),
        size=_float_values(ticks["size"], "size"),
    )


def _symbol_names(categories: pd.Index) -> npt.NDArray[np.object_]:
    """Return the symbols as an object array of ``str``."""
    if pd.api.types.is_string_dtype(categories.dtype):
        names: npt.NDArray[np.object_] = categories.to_numpy(dtype=object)
        if categories.dtype != object or all(isinstance(s, str) for s in names):
            return names
    return np.asarray([str(s) for s in categories], dtype=object)


def _raise_if_invalid(ticks: pd.DataFrame, arrays: _TickArrays) -> bool:
    """Return whether ``ts`` is non-decreasing; raise ValueError naming the first bad row."""
    row, field, is_sorted = _kernels().validate(arrays.codes, arrays.ts, arrays.price, arrays.size)
    if row >= 0:
        column = TICK_COLUMNS[field]
        value = ticks[column].iloc[row]
        raise ValueError(
            f"ticks row {row} (index {ticks.index[row]!r}), field {column!r}: "
            f"{_FIELD_PROBLEMS[field]}, got {value!r}"
        )
    return bool(is_sorted)


def _resolve_zone(tz: str | None) -> str | None:
    """Return the IANA zone name to bucket daily bars in, or None for UTC."""
    if tz is None or str(tz) in _UTC_NAMES:
        return None
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc
    return str(tz)


def _local_day_labels(ts: I64, zone: str) -> I64:
    """Return each tick's local calendar date in ``zone`` as epoch ns of that date 00:00 UTC."""
    local = pd.DatetimeIndex(ts.view("M8[ns]")).tz_localize("UTC").tz_convert(zone)
    wall: I64 = local.tz_localize(None).asi8
    return np.floor_divide(wall, _NS_PER_DAY) * _NS_PER_DAY


def _local_day_ends(labels: I64, zone: str) -> I64:
    """Return, per label, the UTC instant (ns) at which that local calendar day ends."""
    days, inverse = np.unique(labels, return_inverse=True)
    next_midnight = pd.DatetimeIndex((days + _NS_PER_DAY).view("M8[ns]"))
    # A midnight that occurs twice (clocks back from 01:00 to 00:00) already belongs to
    # the next day the first time, so the day ends at the first (DST) occurrence; a
    # skipped midnight (clocks forward at 00:00) ends it at the first valid instant after.
    ends: I64 = next_midnight.tz_localize(
        zone, ambiguous=np.ones(len(days), dtype=bool), nonexistent="shift_forward"
    ).asi8
    return ends[inverse]


def _symbol_ranks(names: npt.NDArray[np.object_]) -> I64:
    ranks = np.empty(len(names), dtype=np.int64)
    ranks[np.argsort(names, kind="stable")] = np.arange(len(names), dtype=np.int64)
    return ranks


def _bars_frame(
    symbols: npt.NDArray[np.object_],
    start: I64,
    open_: F64,
    high: F64,
    low: F64,
    close: F64,
    volume: F64,
) -> pd.DataFrame:
    """Return long bars with :data:`BAR_COLUMNS` from per-candle arrays (already ordered)."""
    # Built column by column from plain arrays: the streaming path calls this once per
    # batch, and pandas' frame construction overhead is most of its cost.
    ts = pd.DatetimeIndex(np.asarray(start, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")
    columns = (symbols, ts.array, open_, high, low, close, volume)
    return pd.DataFrame(dict(zip(BAR_COLUMNS, columns, strict=True)))


def _empty_bars() -> pd.DataFrame:
    empty_f = np.empty(0, dtype=np.float64)
    bars = _bars_frame(np.empty(0, dtype=object), _EMPTY_I64, *([empty_f] * 5))
    # An empty object column would not get the text dtype that non-empty frames infer.
    return bars.astype({"symbol": pd.Series(["x"]).dtype})


# --------------------------------------------------------------------------------------
# Batch aggregation.
# --------------------------------------------------------------------------------------


def aggregate(
    ticks: pd.DataFrame,
    timeframe: str | Timeframe,
    *,
    tz: str | None = None,
    engine: str = "auto",
) -> pd.DataFrame:
    """Return OHLCV candles of ``timeframe`` built from ``ticks``, sorted by (symbol, ts).

    Parameters
    ----------
    ticks
        Frame with columns ``symbol, ts, price, size``.  ``ts`` may be tz-aware or naive
        (taken as UTC) in any datetime unit; ``symbol`` may be categorical or text.  Rows
        need not be sorted.
    timeframe
        Bar length such as ``"1s"``, ``"1min"``, ``"5min"``, ``"1h"`` or ``"1d"``.
    tz
        Time zone whose calendar dates define daily buckets (default UTC).  It has no
        effect on sub-daily bars, which are always epoch-aligned UTC buckets.
    engine
        ``"numba"`` (the ``"auto"`` default): a compiled two-pass kernel.  ``"duckdb"``:
        the same result from a SQL ``GROUP BY`` in an in-memory DuckDB.

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol, ts, open, high, low, close, volume``; ``ts`` is the bucket start
        as ``datetime64[ns, UTC]`` (for ``"1d"``: the local date at 00:00 UTC), ``volume``
        the sum of ``size``.  open/close are the first/last tick in time, ties broken by
        row order.  Buckets without ticks have no row.

    Raises
    ------
    ValueError
        If a column is missing, or a row has a missing symbol or ts, a NaN/non-positive
        price or a NaN/negative size (the message names the first such row and field).

    Examples
    --------
    >>> ticks = pd.DataFrame({
    ...     "symbol": ["A", "A", "A"],
    ...     "ts": pd.to_datetime(["2024-01-02 09:30:05", "2024-01-02 09:30:40",
    ...                           "2024-01-02 09:31:10"], utc=True),
    ...     "price": [10.0, 10.5, 10.2], "size": [100, 50, 25]})
    >>> aggregate(ticks, "1min")[["ts", "open", "high", "close", "volume"]]
                             ts  open  high  close  volume
    0 2024-01-02 09:30:00+00:00  10.0  10.5   10.5   150.0
    1 2024-01-02 09:31:00+00:00  10.2  10.2   10.2    25.0
    """
    tf = parse_timeframe(timeframe)
    if engine not in _ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {_ENGINES}")
    _check_columns(ticks)
    zone = _resolve_zone(tz) if tf.is_daily else None
    arrays = _tick_arrays(ticks)
    is_sorted = _raise_if_invalid(ticks, arrays)
    if len(arrays.ts) == 0:
        return _empty_bars()
    if engine == "duckdb":
        return _aggregate_duckdb(arrays, tf, zone)
    return _aggregate_numba(arrays, tf, zone, is_sorted)


def _aggregate_numba(
    arrays: _TickArrays, tf: Timeframe, zone: str | None, is_sorted: bool
) -> pd.DataFrame:
    kernels = _kernels()
    codes, ts, price, size = arrays.codes, arrays.ts, arrays.price, arrays.size
    labels = _local_day_labels(ts, zone) if zone is not None else _EMPTY_I64
    if not is_sorted:
        order = np.argsort(ts, kind="stable")
        codes, ts, price, size = codes[order], ts[order], price[order], size[order]
        if zone is not None:
            labels = labels[order]
    names = _symbol_names(arrays.categories)
    n_codes = len(names)
    n_out = kernels.count(codes, ts, labels, tf.nanos, n_codes)
    if n_out < 0:
        # A local date went backwards in time (a fall-back transition at midnight): order
        # by (date, ts) so every symbol's buckets are contiguous again.
        order = np.lexsort((ts, labels))
        codes, ts, price, size, labels = (
            codes[order],
            ts[order],
            price[order],
            size[order],
            labels[order],
        )
        n_out = kernels.count(codes, ts, labels, tf.nanos, n_codes)
    code, start, open_, high, low, close, volume = kernels.fill(
        codes, ts, price, size, labels, tf.nanos, n_codes, n_out
    )
    # Few candles relative to ticks, so this final sort is cheap.
    order = np.lexsort((start, _symbol_ranks(names)[code]))
    return _bars_frame(
        names[code[order]],
        start[order],
        open_[order],
        high[order],
        low[order],
        close[order],
        volume[order],
    )


# The bucket expressions are fixed SQL text; every value they use is a bound parameter.
_SQL_BUCKET_EPOCH = "ts_ns - (((ts_ns % $tf_ns) + $tf_ns) % $tf_ns)"  # floor, also below 0
_SQL_BUCKET_LOCAL_DATE = (
    "CAST(date_diff('day', DATE '1970-01-01', CAST(timezone($tz, ts) AS DATE)) AS BIGINT) * $day_ns"
)
_SQL_CANDLES = """
WITH bucketed AS (
    SELECT code, ts_ns, rownum, price, size, {bucket} AS bucket FROM ticks
), candles AS (
    SELECT
        code,
        bucket,
        arg_min(price, (ts_ns, rownum)) AS open,
        max(price) AS high,
        min(price) AS low,
        arg_max(price, (ts_ns, rownum)) AS close,
        sum(size) AS volume
    FROM bucketed
    GROUP BY code, bucket
)
SELECT s.symbol, c.bucket, c.open, c.high, c.low, c.close, c.volume
FROM candles AS c JOIN symbols AS s USING (code)
ORDER BY s.symbol, c.bucket
"""


def _aggregate_duckdb(arrays: _TickArrays, tf: Timeframe, zone: str | None) -> pd.DataFrame:
    import duckdb

    frame = pd.DataFrame(
        {
            "code": np.asarray(arrays.codes, dtype=np.int64),
            "ts_ns": arrays.ts,
            "rownum": np.arange(len(arrays.ts), dtype=np.int64),
            "price": arrays.price,
            "size": arrays.size,
        }
    )
    symbols = pd.DataFrame(
        {
            "code": np.arange(len(arrays.categories), dtype=np.int64),
            "symbol": _symbol_names(arrays.categories),
        }
    )
    params: dict[str, object]
    if zone is None:
        bucket = _SQL_BUCKET_EPOCH
        params = {"tf_ns": tf.nanos}
    else:
        frame["ts"] = pd.DatetimeIndex(arrays.ts.view("M8[ns]")).tz_localize("UTC")
        bucket = _SQL_BUCKET_LOCAL_DATE
        params = {"tz": zone, "day_ns": _NS_PER_DAY}
    with duckdb.connect(":memory:") as con:
        con.register("ticks", frame)
        con.register("symbols", symbols)
        result = con.execute(_SQL_CANDLES.format(bucket=bucket), params).fetchnumpy()
    return _bars_frame(
        np.asarray(result["symbol"], dtype=object),
        np.asarray(result["bucket"], dtype=np.int64),
        np.asarray(result["open"], dtype=np.float64),
        np.asarray(result["high"], dtype=np.float64),
        np.asarray(result["low"], dtype=np.float64),
        np.asarray(result["close"], dtype=np.float64),
        np.asarray(result["volume"], dtype=np.float64),
    )


# --------------------------------------------------------------------------------------
# Streaming aggregation.
# --------------------------------------------------------------------------------------


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
        self._zone = _resolve_zone(tz) if self.timeframe.is_daily else None
        self._tol_ns = int(tol.value)
        self._tf_ns = self.timeframe.nanos
        # Pending candles of a symbol span at most ceil(tolerance / bar length) + 1
        # consecutive buckets; local days can be as short as 23 h, hence the 20 h floor.
        shortest = 20 * _NS_PER_HOUR if self._zone is not None else self._tf_ns
        self._n_slots = -(-self._tol_ns // shortest) + 2 + (self._zone is not None)
        self._codes: dict[str, int] = {}
        self._names: list[str] = []
        self._ranks: I64 | None = None
        self._lut_key: object = None
        self._lut: I64 = _EMPTY_I64
        self._n_pending = 0
        self._seen = 0
        self._applied = 0
        self._late_applied = 0
        self._late_dropped = 0
        self._allocate(0)

    # -- state -------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        k = self._n_slots
        self._watermark: I64 = np.full(capacity, _I64_MIN, dtype=np.int64)
        self._floor: I64 = np.full(capacity, _I64_MIN, dtype=np.int64)
        self._min_end: I64 = np.full(capacity, _I64_MAX, dtype=np.int64)
        self._last_slot: I64 = np.zeros(capacity, dtype=np.int64)
        self._slot_i: I64 = np.full((capacity, k, 4), _I64_MIN, dtype=np.int64)
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

    def _global_codes(self, arrays: _TickArrays, categorical: bool) -> I64:
        # Batches sliced from one categorical frame share its categories object, so the
        # symbol -> code table is built once per categories rather than once per batch.
        if categorical and arrays.categories is self._lut_key:
            lut = self._lut
        else:
            names = _symbol_names(arrays.categories)
            lut = np.fromiter((self._code_of(s) for s in names), dtype=np.int64)
            self._grow(len(self._names))
            self._lut_key, self._lut = arrays.categories, lut
        return lut[arrays.codes] if len(lut) else np.zeros(len(arrays.codes), dtype=np.int64)

    def _symbol_ranks(self) -> I64:
        if self._ranks is None:
            self._ranks = _symbol_ranks(np.asarray(self._names, dtype=object))
        return self._ranks

    # -- processing --------------------------------------------------------------------

    def _process(self, codes: I64, ts: I64, price: F64, size: F64) -> pd.DataFrame:
        if self._zone is not None:
            labels = _local_day_labels(ts, self._zone)
            ends = _local_day_ends(labels, self._zone)
        else:
            labels = ends = _EMPTY_I64
        capacity = len(ts) + self._n_pending
        out_code = np.empty(capacity, dtype=np.int64)
        out_start = np.empty(capacity, dtype=np.int64)
        out_vals = np.empty((capacity, 5), dtype=np.float64)
        counters = np.zeros(7, dtype=np.int64)
        _kernels().stream(
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
        if counters[_C_ERROR]:
            row = int(counters[_C_ERROR]) - 1
            raise RuntimeError(
                f"CandleAggregator internal error: no pending-candle slot for tick {row} "
                f"({self._names[codes[row]]!r} at {pd.Timestamp(int(ts[row]), tz='UTC')})"
            )
        self._n_pending += int(counters[_C_PENDING])
        self._seen += len(ts)
        self._applied += int(counters[_C_APPLIED])
        self._late_applied += int(counters[_C_LATE])
        n_dropped = int(counters[_C_DROPPED])
        if n_dropped:
            self._log_drops(n_dropped, codes, ts, int(counters[_C_FIRST_DROP]))
        n_out = int(counters[_C_OUT])
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
            return _empty_bars()
        order = np.lexsort((start, self._symbol_ranks()[code]))
        code, start, vals = code[order], start[order], vals[order]
        names = np.asarray(self._names, dtype=object)
        return _bars_frame(
            names[code], start, vals[:, 0], vals[:, 1], vals[:, 2], vals[:, 3], vals[:, 4]
        )

    def _pending(self) -> tuple[I64, I64, I64, F64]:
        code, slot = np.nonzero(self._slot_i[:, :, 0] != _I64_MIN)
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
        _check_columns(ticks)
        arrays = _tick_arrays(ticks)
        _raise_if_invalid(ticks, arrays)
        if len(arrays.ts) == 0:
            return _empty_bars()
        categorical = isinstance(ticks["symbol"].dtype, pd.CategoricalDtype)
        codes = self._global_codes(arrays, categorical)
        return self._process(codes, arrays.ts, arrays.price, arrays.size)

    def update(self, symbol: str, ts: Any, price: float, size: float) -> list[dict[str, Any]]:
        """Return the candles (as dicts of bar fields) made final by one tick.

        ``ts`` is anything :class:`pandas.Timestamp` accepts; naive times are UTC.
        """
        stamp = pd.Timestamp(ts)
        if pd.isna(stamp):
            raise ValueError(f"tick of {symbol!r}, field 'ts': ts is missing (NaT), got {ts!r}")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        p, s = float(price), float(size)
        if not (p > 0.0 and p < math.inf):
            raise ValueError(
                f"tick of {symbol!r}, field 'price': {_FIELD_PROBLEMS[2]}, got {price!r}"
            )
        if not (s >= 0.0 and s < math.inf):
            raise ValueError(
                f"tick of {symbol!r}, field 'size': {_FIELD_PROBLEMS[3]}, got {size!r}"
            )
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
        self._slot_i[:, :, 0] = _I64_MIN
        self._min_end[:] = _I64_MAX
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
