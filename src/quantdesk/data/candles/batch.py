"""Tick-to-candle aggregation: OHLCV bars from trades, in batch and as a stream.

:func:`aggregate` turns a frame of ticks (``symbol, ts, price, size``) into long bars
(``symbol, ts, open, high, low, close, volume``).  Its default engine is a two-pass
compiled kernel (numba); ``engine="duckdb"`` computes the same bars with a SQL
``GROUP BY`` and serves as an independent reference.

:class:`~quantdesk.data.candles.stream.CandleAggregator` builds the same bars from a
stream whose ticks may arrive a little out of order: per symbol it keeps a watermark
(the latest tick time seen), accepts ticks up to ``tolerance`` behind it, drops (and
counts) anything older, and emits a candle once the watermark has passed the candle's
end by ``tolerance``.

Bucketing rules, shared by both:

* sub-daily timeframes use epoch-aligned UTC buckets, ``floor(ts / tf) * tf``;
* ``"1d"`` buckets by the calendar date of the tick in ``tz`` (default UTC) and labels
  the bar with that date at 00:00 UTC (the project's daily-bar contract);
* open/close are the earliest/latest tick in time, ties broken by input (arrival)
  order; buckets without ticks produce no candle.

The bucketing helpers and the bar frame builder here are what the stream uses too;
the kernels live in :mod:`~quantdesk.data.candles.kernels`, the tick checks in
:mod:`~quantdesk.data.candles.ticks`.  numba and duckdb are imported on first use so that
``import quantdesk`` stays fast.
"""

from __future__ import annotations

import functools
import zoneinfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantdesk.data.candles.kernels import EMPTY_I64, F64, I64, NS_PER_DAY, kernels
from quantdesk.data.candles.ticks import (
    TickArrays,
    check_columns,
    raise_if_invalid,
    symbol_names,
    tick_arrays,
)
from quantdesk.data.schemas import BAR_COLUMNS, Timeframe, parse_timeframe

__all__ = [
    "aggregate",
    "bars_frame",
    "empty_bars",
    "local_day_ends",
    "local_day_labels",
    "resolve_zone",
    "symbol_ranks",
]

_ENGINES = ("auto", "numba", "duckdb")
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "utc"})


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
    check_columns(ticks)
    zone = resolve_zone(tz) if tf.is_daily else None
    arrays = tick_arrays(ticks)
    is_sorted = raise_if_invalid(ticks, arrays)
    if len(arrays.ts) == 0:
        return empty_bars()
    if engine == "duckdb":
        return _aggregate_duckdb(arrays, tf, zone)
    return _aggregate_numba(arrays, tf, zone, is_sorted)


def _aggregate_numba(
    arrays: TickArrays, tf: Timeframe, zone: str | None, is_sorted: bool
) -> pd.DataFrame:
    compiled = kernels()
    codes, ts, price, size = arrays.codes, arrays.ts, arrays.price, arrays.size
    labels = local_day_labels(ts, zone) if zone is not None else EMPTY_I64
    if not is_sorted:
        order = np.argsort(ts, kind="stable")
        codes, ts, price, size = codes[order], ts[order], price[order], size[order]
        if zone is not None:
            labels = labels[order]
    names = symbol_names(arrays.categories)
    n_codes = len(names)
    n_out = compiled.count(codes, ts, labels, tf.nanos, n_codes)
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
        n_out = compiled.count(codes, ts, labels, tf.nanos, n_codes)
    code, start, open_, high, low, close, volume = compiled.fill(
        codes, ts, price, size, labels, tf.nanos, n_codes, n_out
    )
    # Few candles relative to ticks, so this final sort is cheap.
    order = np.lexsort((start, symbol_ranks(names)[code]))
    return bars_frame(
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


def _aggregate_duckdb(arrays: TickArrays, tf: Timeframe, zone: str | None) -> pd.DataFrame:
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
            "symbol": symbol_names(arrays.categories),
        }
    )
    params: dict[str, object]
    if zone is None:
        bucket = _SQL_BUCKET_EPOCH
        params = {"tf_ns": tf.nanos}
    else:
        frame["ts"] = pd.DatetimeIndex(arrays.ts.view("M8[ns]")).tz_localize("UTC")
        bucket = _SQL_BUCKET_LOCAL_DATE
        params = {"tz": zone, "day_ns": NS_PER_DAY}
    with duckdb.connect(":memory:") as con:
        con.register("ticks", frame)
        con.register("symbols", symbols)
        result = con.execute(_SQL_CANDLES.format(bucket=bucket), params).fetchnumpy()
    return bars_frame(
        np.asarray(result["symbol"], dtype=object),
        np.asarray(result["bucket"], dtype=np.int64),
        np.asarray(result["open"], dtype=np.float64),
        np.asarray(result["high"], dtype=np.float64),
        np.asarray(result["low"], dtype=np.float64),
        np.asarray(result["close"], dtype=np.float64),
        np.asarray(result["volume"], dtype=np.float64),
    )


# -- bucketing and the bar frame, shared with the stream -------------------------------


def resolve_zone(tz: str | None) -> str | None:
    """Return the IANA zone name to bucket daily bars in, or None for UTC."""
    if tz is None or str(tz) in _UTC_NAMES:
        return None
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc
    return str(tz)


def local_day_labels(ts: I64, zone: str) -> I64:
    """Return each tick's local calendar date in ``zone`` as epoch ns of that date 00:00 UTC."""
    local = pd.DatetimeIndex(ts.view("M8[ns]")).tz_localize("UTC").tz_convert(zone)
    wall: I64 = local.tz_localize(None).asi8
    return np.floor_divide(wall, NS_PER_DAY) * NS_PER_DAY


def local_day_ends(labels: I64, zone: str) -> I64:
    """Return, per label, the UTC instant (ns) at which that local calendar day ends."""
    days, inverse = np.unique(labels, return_inverse=True)
    next_midnight = pd.DatetimeIndex((days + NS_PER_DAY).view("M8[ns]"))
    # A midnight that occurs twice (clocks back from 01:00 to 00:00) already belongs to
    # the next day the first time, so the day ends at the first (DST) occurrence; a
    # skipped midnight (clocks forward at 00:00) ends it at the first valid instant after.
    ends: I64 = next_midnight.tz_localize(
        zone, ambiguous=np.ones(len(days), dtype=bool), nonexistent="shift_forward"
    ).asi8
    return ends[inverse]


def symbol_ranks(names: npt.NDArray[np.object_]) -> I64:
    ranks = np.empty(len(names), dtype=np.int64)
    ranks[np.argsort(names, kind="stable")] = np.arange(len(names), dtype=np.int64)
    return ranks


def bars_frame(
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


def empty_bars() -> pd.DataFrame:
    # A copy of one template: the streaming aggregator returns this for every batch that
    # closes no candle, and building it (astype included) costs ten times the copy.
    return _empty_bars_template().copy()


@functools.cache
def _empty_bars_template() -> pd.DataFrame:
    empty_f = np.empty(0, dtype=np.float64)
    bars = bars_frame(np.empty(0, dtype=object), EMPTY_I64, *([empty_f] * 5))
    # An empty object column would not get the text dtype that non-empty frames infer.
    return bars.astype({"symbol": pd.Series(["x"]).dtype})
