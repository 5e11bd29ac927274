"""QuoteCache: versions, changed_since, previous close, and real concurrent threads."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.live import QuoteCache
from quantdesk.data.schemas import QUOTE_COLUMNS


def test_versions_and_changed_since() -> None:
    cache = QuoteCache()
    assert cache.version == 0 and cache.changed_since(0) == (0, [])
    v1 = cache.update("A", "2024-01-02 14:30", 10.0)
    v2 = cache.update_many(
        ["B", "A", "B"],
        pd.to_datetime(["2024-01-02 14:31", "2024-01-02 14:31", "2024-01-02 14:32"], utc=True),
        [5.0, 10.5, 5.5],
    )
    assert (v1, v2, cache.version) == (1, 2, 2)  # one bump per batch
    version, changed = cache.changed_since(v1)
    assert version == 2 and sorted(q.symbol for q in changed) == ["A", "B"]
    b = cache.get("B")
    assert b is not None and b.price == 5.5 and b.ts == pd.Timestamp("2024-01-02 14:32", tz="UTC")
    cache.update("A", "2024-01-02 14:33", 10.5)
    _, changed = cache.changed_since(2)
    assert [q.symbol for q in changed] == ["A"] and changed[0].direction == "flat"
    snap = cache.snapshot()
    assert list(snap.columns) == list(QUOTE_COLUMNS) and list(snap["symbol"]) == ["A", "B"]
    assert str(snap["ts"].dt.tz) == "UTC"


def test_prev_close_change_and_direction() -> None:
    cache = QuoteCache()
    cache.update("A", "2024-01-02", 100.0)  # no reference: the first price is
    quote = cache.get("A")
    assert quote is not None and (quote.prev_close, quote.change, quote.direction) == (
        100.0,
        0.0,
        "flat",
    )
    cache.update("A", "2024-01-02 00:01", 99.0)
    quote = cache.get("A")
    assert quote is not None and (quote.change, quote.direction) == (-1.0, "down")
    cache.set_prev_close({"A": 90.0, "B": 50.0})
    quote = cache.get("A")
    assert quote is not None and quote.change == 9.0 and quote.change_pct == pytest.approx(0.1)
    cache.update("B", "2024-01-02", 51.0)
    quote = cache.get("B")
    assert quote is not None and (quote.change, quote.direction) == (1.0, "up")
    with pytest.raises(ValueError, match="differ in length"):
        cache.update_many(["A"], np.array([1, 2], dtype=np.int64), [1.0])


def test_many_writer_and_reader_threads() -> None:
    cache = QuoteCache()
    n_writers, n_updates = 4, 2_000
    start = threading.Barrier(n_writers + 2)
    done = threading.Event()
    problems: list[str] = []

    def write(k: int) -> None:
        start.wait()
        for i in range(n_updates):
            if i % 2:
                cache.update(f"S{k}", pd.Timestamp(i, unit="s", tz="UTC"), float(i + 1))
            else:
                cache.update_many(
                    [f"S{k}"], np.array([i * 1_000_000_000], dtype=np.int64), [float(i + 1)]
                )

    def read() -> None:
        start.wait()
        last = 0
        while not done.is_set():
            version, changed = cache.changed_since(last)
            if version < last:
                problems.append(f"version went back {last} -> {version}")
            if any(q.version > version or q.version <= last for q in changed):
                problems.append("a quote outside the (last, version] window")
            last = version
            cache.snapshot()

    writers = [threading.Thread(target=write, args=(k,)) for k in range(n_writers)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(120)
    done.set()
    for t in readers:
        t.join(120)
    assert problems == []
    assert cache.version == n_writers * n_updates  # no update lost
    for k in range(n_writers):
        quote = cache.get(f"S{k}")
        assert quote is not None and quote.price == float(n_updates)
