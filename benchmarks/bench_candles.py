"""Benchmark: ticks to 1-minute candles, batch (numba, duckdb) and streaming, against pandas.

Rows returned by :func:`run` (throughput in ticks per second, higher is better):

* batch ``aggregate(engine="numba")`` cold (first call in the process: numba import and
  compile or cache load included) and warm (best of 3), against pandas
  ``groupby("symbol").resample("1min")`` OHLC + sum on the same frame;
* batch ``aggregate(engine="duckdb")`` against the same pandas figure;
* streaming ``CandleAggregator("1min").update_many`` in 10k-tick batches, against a
  plain-Python dict-per-symbol loop (run on the first 500k ticks only).

Run with ``python -m benchmarks.bench_candles``.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.data.candles import batch as candles
from quantdesk.data.candles import kernels as candle_kernels
from quantdesk.data.candles.stream import CandleAggregator

__all__ = ["make_ticks", "run"]

N_TICKS = 10_000_000
N_SYMBOLS = 100
SESSION_SECONDS = 6.5 * 3600  # one US equity session
BATCH = 10_000
PYTHON_PEER_TICKS = 500_000
SEED = 20240102


def make_ticks(n: int = N_TICKS, n_symbols: int = N_SYMBOLS, seed: int = SEED) -> pd.DataFrame:
    """Return ``n`` time-ordered ticks over one session: categorical symbols, ns UTC times.

    Prices follow a per-symbol geometric random walk; sizes are whole shares.
    """
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(SESSION_SECONDS * 1e9 / n, size=n)
    start = pd.Timestamp("2024-01-02 14:30", tz="UTC").value
    ts = start + np.cumsum(gaps).astype(np.int64)
    codes = rng.integers(0, n_symbols, size=n).astype(np.int8)
    # Per-symbol random walk: cumulative sums within each symbol's ticks (stable order).
    steps = rng.normal(0.0, 2e-4, size=n)
    order = np.argsort(codes, kind="stable")
    walk_sorted = np.cumsum(steps[order])
    group_start = np.searchsorted(codes[order], np.arange(n_symbols))
    walk_sorted -= np.repeat(
        np.concatenate(([0.0], walk_sorted[group_start[1:] - 1])),
        np.diff(np.append(group_start, n)),
    )
    walk = np.empty(n)
    walk[order] = walk_sorted
    base = rng.uniform(20.0, 500.0, size=n_symbols)
    categories = [f"SYM{i:03d}" for i in range(n_symbols)]
    return pd.DataFrame(
        {
            "symbol": pd.Categorical.from_codes(codes, categories=categories),
            "ts": pd.DatetimeIndex(ts.view("M8[ns]")).tz_localize("UTC"),
            "price": np.round(base[codes] * np.exp(walk), 4),
            "size": rng.integers(1, 500, size=n),
        }
    )


def _seconds(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    return min(_seconds(fn)[0] for _ in range(repeat))


def _pandas_candles(ticks: pd.DataFrame) -> pd.DataFrame:
    grouped = ticks.set_index("ts").groupby("symbol", observed=True)
    ohlc = grouped["price"].resample("1min").ohlc()
    volume = grouped["size"].resample("1min").sum()
    return ohlc.assign(volume=volume).dropna(subset=["open"])


def _python_stream(ticks: pd.DataFrame, tf_ns: int) -> list[tuple[Any, ...]]:
    """Return closed candles from a plain-Python loop, one dict of open candles per symbol."""
    symbols = ticks["symbol"].astype(str).tolist()
    stamps = ticks["ts"].array.asi8.tolist()
    prices = ticks["price"].tolist()
    sizes = ticks["size"].tolist()
    open_by_symbol: dict[str, list[Any]] = {}
    closed: list[tuple[Any, ...]] = []
    for sym, t, p, s in zip(symbols, stamps, prices, sizes, strict=True):
        bucket = t - t % tf_ns
        bar = open_by_symbol.get(sym)
        if bar is None or bar[0] != bucket:
            if bar is not None:
                closed.append((sym, *bar))
            open_by_symbol[sym] = [bucket, p, p, p, p, float(s)]
        else:
            if p > bar[2]:
                bar[2] = p
            if p < bar[3]:
                bar[3] = p
            bar[4] = p
            bar[5] += s
    closed.extend((sym, *bar) for sym, bar in open_by_symbol.items())
    return closed


def _stream(ticks: pd.DataFrame) -> pd.DataFrame:
    agg = CandleAggregator("1min")
    parts = [agg.update_many(ticks.iloc[i : i + BATCH]) for i in range(0, len(ticks), BATCH)]
    parts.append(agg.flush())
    return pd.concat(parts, ignore_index=True)


def run() -> list[dict[str, Any]]:
    """Return benchmark rows (task, quantdesk, peer, unit, ratio, target, met, note).

    ``ratio`` is quantdesk / peer throughput (higher is better); ``met`` says whether the
    target was reached (None for rows that only report).
    """
    ticks = make_ticks()
    n = len(ticks)
    unit = "ticks/s"

    # Cold: the first call in this process pays numba's import and compile (or cache load).
    was_loaded = candle_kernels.kernels.cache_info().currsize > 0
    cold_s, bars = _seconds(lambda: candles.aggregate(ticks, "1min", engine="numba"))
    kernels = candle_kernels.kernels()
    cache_hits = sum(
        sum(k.stats.cache_hits.values())  # type: ignore[attr-defined]
        for k in (kernels.validate, kernels.count, kernels.fill)
    )
    warm_s = _best_of(lambda: candles.aggregate(ticks, "1min", engine="numba"))
    pandas_s, pandas_bars = _seconds(lambda: _pandas_candles(ticks))
    pandas_s = min(pandas_s, _best_of(lambda: _pandas_candles(ticks), repeat=1))
    duck_s = _best_of(lambda: candles.aggregate(ticks, "1min", engine="duckdb"), repeat=2)
    duck_bars = candles.aggregate(ticks, "1min", engine="duckdb")
    try:
        pd.testing.assert_frame_equal(bars, duck_bars, check_exact=False, rtol=1e-12)
        same = "numba == duckdb"
    except AssertionError:
        same = "numba != duckdb (MISMATCH)"
    if len(pandas_bars) != len(bars):
        same += f"; pandas gave {len(pandas_bars)} candles vs {len(bars)} (MISMATCH)"

    stream_s, streamed = _seconds(lambda: _stream(ticks))
    stream_same = len(streamed) == len(bars)
    peer_ticks = ticks.iloc[:PYTHON_PEER_TICKS]
    python_s = _best_of(lambda: _python_stream(peer_ticks, 60 * 10**9), repeat=1)

    cold_note = (
        "kernels already loaded in this process"
        if was_loaded
        else ("numba cache hit" if cache_hits else "numba compile (no cache)")
    )
    pandas_rate = n / pandas_s
    return [
        {
            "task": f"candles: {n / 1e6:.0f}M ticks x {N_SYMBOLS} symbols -> 1min, warm",
            "quantdesk": n / warm_s,
            "peer": pandas_rate,
            "unit": unit,
            "ratio": (n / warm_s) / pandas_rate,
            "target": ">= 30M ticks/s and >= 10x pandas",
            "met": n / warm_s >= 30e6 and (n / warm_s) / pandas_rate >= 10,
            "note": f"aggregate(engine='numba') best of 3 vs pandas groupby.resample ohlc+sum "
            f"(best of 2); "
            f"{len(bars)} candles; {same}",
        },
        {
            "task": f"candles: {n / 1e6:.0f}M ticks -> 1min, cold (first call)",
            "quantdesk": n / cold_s,
            "peer": pandas_rate,
            "unit": unit,
            "ratio": (n / cold_s) / pandas_rate,
            "target": "report",
            "met": None,
            "note": f"{cold_s:.2f} s incl. numba import + {cold_note}",
        },
        {
            "task": f"candles: {n / 1e6:.0f}M ticks -> 1min, duckdb engine",
            "quantdesk": n / duck_s,
            "peer": pandas_rate,
            "unit": unit,
            "ratio": (n / duck_s) / pandas_rate,
            "target": "report (reference path)",
            "met": None,
            "note": "aggregate(engine='duckdb'): GROUP BY with arg_min/arg_max, best of 2",
        },
        {
            "task": f"candles stream: {n / 1e6:.0f}M ticks in {BATCH // 1000}k batches -> 1min",
            "quantdesk": n / stream_s,
            "peer": PYTHON_PEER_TICKS / python_s,
            "unit": unit,
            "ratio": (n / stream_s) / (PYTHON_PEER_TICKS / python_s),
            "target": ">= 1M ticks/s",
            "met": n / stream_s >= 1e6 and stream_same,
            "note": f"CandleAggregator.update_many + flush (slicing included); peer: plain "
            f"Python dict-per-symbol loop on first {PYTHON_PEER_TICKS // 1000}k ticks; "
            f"candle count {'matches' if stream_same else 'DIFFERS from'} batch",
        },
    ]


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print(
            f"{row['task']:<58} quantdesk={row['quantdesk']:>14,.0f} peer={row['peer']:>14,.0f} "
            f"{row['unit']:<8} ratio={row['ratio']:>7.1f}  target: {row['target']}\n"
            f"{'':<4}{row['note']}",
            file=sys.stdout,
        )


if __name__ == "__main__":
    _print_rows(run())
