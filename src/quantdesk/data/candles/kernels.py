"""The compiled kernels of tick-to-candle aggregation, and the constants they share.

Plain Python functions that numba compiles on first use (:func:`kernels`, cached on
disk): validating a tick batch, counting and filling batch candles in two passes, and
the streaming update of :class:`~quantdesk.data.candles.stream.CandleAggregator`.  The
Python versions stay importable and callable, which keeps the module light to import.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "C_APPLIED",
    "C_DROPPED",
    "C_ERROR",
    "C_FIRST_DROP",
    "C_LATE",
    "C_OUT",
    "C_PENDING",
    "EMPTY_I64",
    "F64",
    "I64",
    "I64_MAX",
    "I64_MIN",
    "NS_PER_DAY",
    "NS_PER_HOUR",
    "IntArray",
    "Kernels",
    "kernels",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer[Any]]

I64_MIN = -(2**63)  # also NaT's integer value
I64_MAX = 2**63 - 1
NS_PER_HOUR = 3_600_000_000_000
NS_PER_DAY = 24 * NS_PER_HOUR
EMPTY_I64: I64 = np.empty(0, dtype=np.int64)

# Slots of the counters array shared with the streaming kernel.
C_OUT, C_APPLIED, C_LATE, C_DROPPED, C_FIRST_DROP, C_PENDING, C_ERROR = range(7)


# The kernels must not call each other: a module-level name is a Python function, not
# a compiled one, at the time numba types the caller.


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
            | (ts[i] == I64_MIN)
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
            if ts[i] == I64_MIN:
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
    cur_start = np.full(n_codes, I64_MIN, dtype=np.int64)
    cur_end = np.full(n_codes, I64_MIN, dtype=np.int64)
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
    cur_start = np.full(n_codes, I64_MIN, dtype=np.int64)
    cur_end = np.full(n_codes, I64_MIN, dtype=np.int64)
    # The open candle of each symbol accumulates in a small per-symbol table (high, low,
    # close, volume) that stays in L1 cache; it is written out when the candle changes.
    # This is about twice as fast as updating the output rows in place.
    acc = np.zeros((n_codes, 4), dtype=np.float64)
    k = 0
    for i in range(ts.shape[0]):
        c = codes[i]
        p = price[i]
        s = size[i]
        b = I64_MIN
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
        if t < floor[c] or (w != I64_MIN and t < w - tol_ns):
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
                new_min = I64_MAX
                for k in range(n_slots):
                    start = slot_i[c, k, 0]
                    if start == I64_MIN:
                        continue
                    end = slot_i[c, k, 1]
                    if end <= limit:
                        out_code[n_out] = c
                        out_start[n_out] = start
                        for f in range(5):
                            out_vals[n_out, f] = slot_f[c, k, f]
                        n_out += 1
                        slot_i[c, k, 0] = I64_MIN
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
        elif start != I64_MIN and start <= t < slot_i[c, k, 1]:
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
        elif start == I64_MIN:
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
            counters[C_ERROR] = i + 1
            break
        applied += 1
    counters[C_OUT] = n_out
    counters[C_APPLIED] = applied
    counters[C_LATE] = late
    counters[C_DROPPED] = dropped
    counters[C_FIRST_DROP] = first_drop
    counters[C_PENDING] = pending


class Kernels(NamedTuple):
    validate: Callable[..., tuple[int, int, bool]]
    count: Callable[..., int]
    fill: Callable[..., tuple[I64, I64, F64, F64, F64, F64, F64]]
    stream: Callable[..., None]


@functools.cache
def kernels() -> Kernels:
    """Return the compiled kernels, importing numba and compiling (or loading its cache)."""
    import numba

    jit = numba.njit(cache=True, nogil=True)
    return Kernels(
        validate=jit(_validate_ticks),
        count=jit(_count_candles),
        fill=jit(_fill_candles),
        stream=jit(_stream_ticks),
    )
