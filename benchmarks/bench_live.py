"""Benchmark: the live simulator feeding the quote cache and a streaming candle aggregator.

Rows returned by :func:`run` (throughput in ticks per second, higher is better):

* ``SimulatedFeed.generate`` -> ``publish`` (``QuoteCache.update_many`` + a
  ``CandleAggregator("1min")`` listener) in 10k-tick batches, for 50 and 500 symbols,
  against a plain-Python per-tick loop that updates a dict of quotes and a dict of open
  candles from the same generated ticks (generation included on both sides);
* the same pipeline in 10-tick batches (what 50 symbols at 2 ticks/s make every 0.1 s):
  the fixed cost per batch, reported;
* the live session itself, 500 symbols at 200 ticks/s each (100k ticks/s asked) for a
  few seconds of wall time: ticks actually published per second, and how far the last
  one lags the wall clock.

Run with ``python -m benchmarks.bench_live``.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from typing import Any

import pandas as pd

from quantdesk.data.candles.stream import CandleAggregator
from quantdesk.data.live import SimulatedFeed

__all__ = ["run"]

TICKS = 400_000
BATCH = 10_000
SMALL_BATCH = 10
SMALL_TICKS = 20_000
LIVE_SYMBOLS, LIVE_RATE, LIVE_SECONDS = 500, 200.0, 3.0
TARGET = 100_000
SEED = 20240102


def _pipeline(n_symbols: int, n_ticks: int, batch: int) -> tuple[float, int]:
    """Return (seconds, candles closed) to generate, publish and aggregate ``n_ticks``."""
    feed = SimulatedFeed(n_symbols, rate=2.0, seed=SEED)
    agg = CandleAggregator("1min")
    closed = [0]

    def listen(ticks: pd.DataFrame) -> None:
        closed[0] += len(agg.update_many(ticks))

    feed.add_listener(listen)
    feed.publish(feed.generate(batch))  # warm: numba kernels loaded, symbols known
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n_ticks // batch):
        feed.publish(feed.generate(batch))
    return time.perf_counter() - t0, closed[0]


def _python_loop(n_symbols: int, n_ticks: int, batch: int) -> float:
    """Return seconds for the plain-Python peer: per-tick dict quotes and dict candles."""
    feed = SimulatedFeed(n_symbols, rate=2.0, seed=SEED)
    tf_ns = 60 * 10**9
    quotes: dict[str, tuple[int, float, float]] = {}
    candles: dict[str, list[Any]] = {}
    closed: list[tuple[Any, ...]] = []
    feed.generate(batch)
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n_ticks // batch):
        ticks = feed.generate(batch)
        rows = zip(
            ticks["symbol"].tolist(),
            ticks["ts"].array.asi8.tolist(),
            ticks["price"].tolist(),
            ticks["size"].tolist(),
            strict=True,
        )
        for sym, t, p, s in rows:
            old = quotes.get(sym)
            quotes[sym] = (t, p, old[2] if old else p)
            bucket = t - t % tf_ns
            bar = candles.get(sym)
            if bar is None or bar[0] != bucket:
                if bar is not None:
                    closed.append((sym, *bar))
                candles[sym] = [bucket, p, p, p, p, float(s)]
            else:
                bar[2] = max(bar[2], p)
                bar[3] = min(bar[3], p)
                bar[4] = p
                bar[5] += s
    return time.perf_counter() - t0


def _live(n_symbols: int, rate: float, seconds: float) -> tuple[float, float]:
    """Return (ticks published per wall second, lag in s of the last tick) of a live session."""
    feed = SimulatedFeed(n_symbols, rate=rate, interval=0.1, seed=SEED)
    agg = CandleAggregator("1min")
    feed.add_listener(agg.update_many)
    span = threading.Event()
    feed.start()
    t0 = time.perf_counter()
    start_ticks = feed.status.ticks
    span.wait(seconds)  # the measured span itself, not a synchronisation
    status = feed.status
    elapsed = time.perf_counter() - t0
    now = pd.Timestamp.now(tz="UTC")
    feed.stop()
    lag = (now - status.last_tick).total_seconds() if status.last_tick is not None else math.inf
    return (status.ticks - start_ticks) / elapsed, lag


def run() -> list[dict[str, Any]]:
    """Return benchmark rows (task, quantdesk, peer, unit, ratio, target, met, note)."""
    rows: list[dict[str, Any]] = []
    unit = "ticks/s"
    for n_symbols in (50, 500):
        ours_s, closed = _pipeline(n_symbols, TICKS, BATCH)
        peer_s = _python_loop(n_symbols, TICKS, BATCH)
        ours, peer = TICKS / ours_s, TICKS / peer_s
        rows.append(
            {
                "task": f"live sim -> cache+candles: {n_symbols} symbols, {BATCH // 1000}k batches",
                "quantdesk": ours,
                "peer": peer,
                "unit": unit,
                "ratio": ours / peer,
                "target": f">= {TARGET:,} ticks/s",
                "met": ours >= TARGET,
                "note": f"generate+publish(QuoteCache)+CandleAggregator('1min'), {TICKS:,} ticks, "
                f"{closed} candles; peer: per-tick Python dict quotes + dict candles",
            }
        )
    small_s, _ = _pipeline(50, SMALL_TICKS, SMALL_BATCH)
    small_peer_s = _python_loop(50, SMALL_TICKS, SMALL_BATCH)
    rows.append(
        {
            "task": f"live sim -> cache+candles: 50 symbols, {SMALL_BATCH}-tick batches",
            "quantdesk": SMALL_TICKS / small_s,
            "peer": SMALL_TICKS / small_peer_s,
            "unit": unit,
            "ratio": small_peer_s / small_s,
            "target": "report",
            "met": None,
            "note": f"{small_s / (SMALL_TICKS / SMALL_BATCH) * 1e6:,.0f} us per batch: the "
            "fixed cost of one 0.1 s batch at 50 symbols x 2/s",
        }
    )
    live, lag = _live(LIVE_SYMBOLS, LIVE_RATE, LIVE_SECONDS)
    asked = LIVE_SYMBOLS * LIVE_RATE
    rows.append(
        {
            "task": f"live session: {LIVE_SYMBOLS} symbols x {LIVE_RATE:g}/s, {LIVE_SECONDS:g} s",
            "quantdesk": live,
            "peer": float("nan"),
            "unit": unit,
            "ratio": float("nan"),
            "target": "keeps up: >= 95% of the asked rate, lag < 0.5 s",
            "met": live >= 0.95 * asked and lag < 0.5,
            "note": f"SimulatedFeed.start() (0.1 s batches) with a CandleAggregator listener; "
            f"{live / asked:.0%} of the asked {asked:,.0f}/s, last tick {lag * 1e3:.0f} ms "
            "behind the wall clock (up to one batch interval is expected)",
        }
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(
            f"{row['task']:<64} quantdesk={row['quantdesk']:>12,.0f} peer={row['peer']:>12,.0f} "
            f"{row['unit']}  target: {row['target']}  met: {row['met']}\n    {row['note']}",
            file=sys.stdout,
        )
