"""Snapshot write and read throughput: a 9,000-symbol x 5-year daily universe and
500 symbols x 1 year of 1-minute bars.

quantdesk's rows: ``MarketStore.snapshot`` to a fresh local folder (hive-partitioned,
content-addressed Parquet, partition fingerprints and a manifest), a second snapshot
after one more session (incremental), and ``SnapshotReader.bars`` of the whole
universe and of one symbol's year.  Peers on the same rows: DuckDB's own ``COPY (SELECT
... FROM bars) TO 'x.parquet'`` from the store file, and pandas' ``to_parquet`` of the
frame ``store.bars()`` returns (untimed); for reads, ``pandas.read_parquet`` of the
pandas file and DuckDB reading the COPY file into a DataFrame.

The bars are random walks at cent precision (as prices compress), inserted straight
into the store's table: the setup is not what is measured.  Sizes can be scaled down
where memory or time is short: ``QUANTDESK_BENCH_DAILY_SYMBOLS`` (default 9000),
``QUANTDESK_BENCH_DAILY_DAYS`` (1260), ``QUANTDESK_BENCH_MINUTE_SYMBOLS`` (500) and
``QUANTDESK_BENCH_MINUTE_DAYS`` (252); the rows printed say which sizes ran.  The load
average of the machine at each measure is in its note.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._timing import best_of, row

_CHUNK_ROWS = 4_000_000


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _sessions(days: int, timeframe: str) -> pd.DatetimeIndex:
    dates = pd.bdate_range("2019-01-02", periods=days, tz="UTC")
    if timeframe == "1d":
        return dates
    # 390 one-minute bars a session, 14:30-21:00 UTC (New York's regular hours in winter).
    minutes = pd.to_timedelta(np.arange(390), unit="min") + pd.Timedelta(hours=14, minutes=30)
    return pd.DatetimeIndex((dates.values[:, None] + minutes.values[None, :]).ravel(), tz="UTC")


def _fill(store: Any, symbols: list[str], ts: pd.DatetimeIndex, timeframe: str, seed: int) -> int:
    """Insert random-walk bars of ``symbols`` at ``ts`` into the store's table; return rows."""
    rng = np.random.default_rng(seed)
    vol = 0.01 if timeframe == "1d" else 0.0005
    per_chunk = max(1, _CHUNK_ROWS // len(ts))
    total = 0
    store.write_symbols(pd.DataFrame({"symbol": symbols, "timezone": "UTC", "source": "bench"}))
    for lo in range(0, len(symbols), per_chunk):
        names = symbols[lo : lo + per_chunk]
        n, m = len(names), len(ts)
        close = np.round(100 * np.exp(np.cumsum(rng.normal(0, vol, (n, m)), axis=1)), 2)
        open_ = np.round(close * np.exp(rng.normal(0, vol / 3, (n, m))), 2)
        high = np.round(np.maximum(open_, close) * (1 + rng.uniform(0, vol, (n, m))), 2)
        low = np.round(np.minimum(open_, close) * (1 - rng.uniform(0, vol, (n, m))), 2)
        frame = pd.DataFrame(
            {
                "symbol": np.repeat(np.array(names, dtype=object), m),
                "ts": np.tile(ts.values, n),
                "open": open_.ravel(),
                "high": high.ravel(),
                "low": low.ravel(),
                "close": close.ravel(),
                "volume": rng.integers(100, 100_000, n * m).astype(float),
            }
        )
        frame["ts"] = frame["ts"].dt.tz_localize("UTC")
        with store._transaction() as con:
            con.register("chunk", frame)
            con.execute(
                "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume) "
                f"SELECT symbol, '{timeframe}', ts, open, high, low, close, volume FROM chunk"
            )
            con.unregister("chunk")
        total += len(frame)
    return total


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def _universe(
    tmp: Path, label: str, n_symbols: int, days: int, timeframe: str
) -> list[dict[str, Any]]:
    import duckdb

    from quantdesk.data import MarketStore, SnapshotReader

    store = MarketStore(tmp / f"{label}.duckdb")
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    ts = _sessions(days, timeframe)
    rows = _fill(store, symbols, ts, timeframe, seed=1)
    size = f"{n_symbols:,} symbols x {days} sessions {timeframe} ({rows / 1e6:.1f}M rows)"
    repeat = 2 if rows > 5e6 else 3

    def ours_write() -> Any:
        url = tmp / f"{label}-snap"
        shutil.rmtree(url, ignore_errors=True)
        return store.snapshot(url)

    def copy_write() -> None:
        con = duckdb.connect(str(store.path), read_only=True)
        try:
            con.execute(
                "COPY (SELECT symbol, timeframe, ts, open, high, low, close, volume FROM bars) "
                f"TO '{tmp / f'{label}-copy.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            con.close()

    t_write, version = best_of(ours_write, repeat)
    load_write = _load()
    t_copy, _ = best_of(copy_write, repeat)
    expected = store.bars(timeframe=timeframe)
    t_pandas, _ = best_of(lambda: expected.to_parquet(tmp / f"{label}-pandas.parquet"), repeat)
    url = tmp / f"{label}-snap"
    snap_mb = sum(p.stat().st_size for p in url.rglob("*.parquet")) / 1e6
    copy_mb = (tmp / f"{label}-copy.parquet").stat().st_size / 1e6

    def ours_read() -> pd.DataFrame:
        return SnapshotReader(url).bars(timeframe=timeframe)

    def copy_read() -> pd.DataFrame:
        con = duckdb.connect()
        try:
            path = tmp / f"{label}-copy.parquet"
            return con.sql(f"SELECT * FROM read_parquet('{path}')").to_arrow_table().to_pandas()
        finally:
            con.close()

    t_read, got = best_of(ours_read, repeat)
    load_read = _load()
    assert len(got) == rows and got.equals(expected)  # the same rows back
    got = expected = pd.DataFrame()  # free the memory before the next measures
    t_pread, _ = best_of(lambda: pd.read_parquet(tmp / f"{label}-pandas.parquet"), repeat)
    t_cread, _ = best_of(copy_read, repeat)
    t_store, _ = best_of(lambda: store.bars(timeframe=timeframe), repeat)

    one = symbols[len(symbols) // 2]
    window = {"start": str(ts[-1].year) + "-01-01", "end": str(ts[-1].year) + "-12-31"}
    t_narrow, narrow = best_of(lambda: SnapshotReader(url).bars(one, timeframe=timeframe, **window))
    t_narrow_store, _ = best_of(lambda: store.bars(one, timeframe=timeframe, **window))
    assert len(narrow) > 0

    # One more session for every symbol, then a second (incremental) snapshot.
    nxt = _sessions(days + 1, timeframe)[len(ts) :]
    _fill(store, symbols, nxt, timeframe, seed=2)
    t_incr, second = best_of(lambda: store.snapshot(url), 1)
    written = {t.table: t for t in second.tables}["bars"]
    files = {t.table: t for t in version.tables}["bars"].files
    peers = (
        f"DuckDB COPY {rows / t_copy / 1e6:.2f}M/s, "
        f"pandas to_parquet {rows / t_pandas / 1e6:.2f}M/s"
    )
    return [
        row(
            f"snapshot write, {size}",
            rows / t_write,
            rows / t_copy,
            "rows/s",
            "-",
            note=f"peer: DuckDB COPY TO (one file, {copy_mb:.0f} MB; snapshot {files} files, "
            f"{snap_mb:.0f} MB); pandas to_parquet {rows / t_pandas / 1e6:.2f}M/s; {load_write}",
            higher_is_better=True,
        ),
        row(
            f"snapshot write vs pandas to_parquet, {size}",
            rows / t_write,
            rows / t_pandas,
            "rows/s",
            "-",
            note=peers,
            higher_is_better=True,
        ),
        row(
            f"snapshot read, whole universe, {size}",
            rows / t_read,
            rows / t_cread,
            "rows/s",
            "-",
            note=f"peer: DuckDB read of the COPY file; pandas read_parquet "
            f"{rows / t_pread / 1e6:.2f}M/s; store.bars {rows / t_store / 1e6:.2f}M/s; "
            f"{load_read}",
            higher_is_better=True,
        ),
        row(
            f"snapshot read, 1 symbol x 1 year, {size}",
            t_narrow,
            t_narrow_store,
            "s",
            "-",
            note=f"peer: store.bars on the DuckDB file; {len(narrow):,} rows; {_load()}",
        ),
        row(
            f"incremental snapshot after 1 new session, {size}",
            t_incr,
            t_write,
            "s",
            "-",
            note=f"peer: the first (full) snapshot; {written.written_files} of {written.files} "
            f"files written ({written.written_rows:,} rows); {_load()}",
        ),
    ]


def run() -> list[dict[str, Any]]:
    """Return the rows of snapshot write and read throughput beside their peers."""
    daily = (
        _env_int("QUANTDESK_BENCH_DAILY_SYMBOLS", 9000),
        _env_int("QUANTDESK_BENCH_DAILY_DAYS", 1260),
    )
    minute = (
        _env_int("QUANTDESK_BENCH_MINUTE_SYMBOLS", 500),
        _env_int("QUANTDESK_BENCH_MINUTE_DAYS", 252),
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += _universe(Path(tmp), "daily", *daily, "1d")
    with tempfile.TemporaryDirectory() as tmp:
        rows += _universe(Path(tmp), "minute", *minute, "1min")
    return rows
