"""CandleRecorder: candles for pollers, batched writes to a real DuckDB store, retried writes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data import CandleAggregator, MarketStore
from quantdesk.data.live import CandleRecorder, SimulatedFeed

from ..test_store_locking import held


def _feed_and_twin(n_symbols: int = 5) -> tuple[SimulatedFeed, Callable[[], pd.DataFrame]]:
    """Return a simulator feed and a function giving every candle an independent
    aggregator listening to the same feed emitted, its open candles closed."""
    feed = SimulatedFeed(n_symbols, rate=10.0, seed=7)
    twin = CandleAggregator("1s")
    emitted: list[pd.DataFrame] = []
    feed.add_listener(lambda ticks: emitted.append(twin.update_many(ticks)))

    def expected() -> pd.DataFrame:
        frames = [*emitted, twin.flush()]
        return pd.concat(frames).sort_values(["symbol", "ts"]).reset_index(drop=True)

    return feed, expected


def _drive(feed: SimulatedFeed, n_ticks: int, batch: int = 37) -> None:
    """Publish ``n_ticks`` simulator ticks in small batches, as the live session would."""
    ticks = feed.generate(n_ticks)
    for lo in range(0, n_ticks, batch):
        feed.publish(ticks.iloc[lo : lo + batch])


def test_candles_in_the_store_equal_what_the_aggregator_emitted(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "live.duckdb")
    feed, twin_candles = _feed_and_twin()
    recorder = CandleRecorder("1s", store=store, batch_size=40, max_delay=60.0).attach(feed)
    _drive(feed, 5 * 10 * 60)  # a minute of ticks: 60 one-second candles per symbol
    assert recorder.flush(60)
    written_before_close = recorder.written
    last = recorder.close()
    expected = twin_candles()
    stored = store.bars(timeframe="1s")
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
    assert recorder.written == len(expected) and recorder.pending == 0
    assert len(last) == 5 and recorder.written == written_before_close + 5
    log = store.ingest_log()
    assert set(log["source"]) == {"live:simulator"}
    # Batched: far fewer writes than candles, and no write of fewer than 40 before flush.
    assert 1 < len(log) < len(expected) / 10
    # The recorder's in-memory view matches the store.
    for symbol in feed.symbols:
        mine = recorder.recent(symbol)
        pd.testing.assert_frame_equal(
            mine, stored[stored["symbol"] == symbol].reset_index(drop=True), check_dtype=False
        )


def test_a_failed_write_is_logged_retried_and_nothing_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "busy.duckdb"
    MarketStore(path)
    store = MarketStore(path, lock_timeout=0.05)
    feed, twin_candles = _feed_and_twin(3)
    recorder = CandleRecorder("1s", store=store, batch_size=10, max_delay=0.05)
    recorder.attach(feed)
    caplog.set_level(logging.WARNING, logger="quantdesk.data.live.recorder")
    with held(path):  # another process holds the file: every write fails for now
        _drive(feed, 3 * 10 * 20)
        deadline = time.monotonic() + 60  # bounds a hang only
        while recorder.write_errors < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.write_errors >= 2 and recorder.written == 0
    assert recorder.flush(60)
    recorder.close()
    assert any("failed" in r.getMessage() and "retry" in r.getMessage() for r in caplog.records)
    expected = twin_candles()
    stored = store.bars(timeframe="1s")
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
    assert recorder.written == len(expected) >= 3 * 20


def test_pollers_get_recent_open_and_closed_since() -> None:
    feed = SimulatedFeed(["A", "B"], rate=10.0, seed=1)
    recorder = CandleRecorder("1s", keep=5).attach(feed)
    assert recorder.version == 0 and recorder.open_candle("A") is None
    assert recorder.recent("A").empty
    _drive(feed, 2 * 10 * 3, batch=10)  # three seconds of ticks
    version = recorder.version
    assert version == 6
    seen, closed = recorder.closed_since(0)
    assert seen == version and set(closed["symbol"]) == {"A", "B"}
    again, none = recorder.closed_since(version)
    assert again == version and none.empty
    _drive(feed, 2 * 10 * 10, batch=10)  # ten more seconds
    recent = recorder.recent("A")
    assert len(recent) == 5  # bounded by keep
    assert recent["ts"].is_monotonic_increasing
    assert list(recorder.recent("A", 2)["ts"]) == list(recent["ts"].iloc[-2:])
    _, newer = recorder.closed_since(version)
    assert len(newer[newer["symbol"] == "A"]) == 10
    candle = recorder.open_candle("A")
    assert candle is not None and candle["ts"] > recent["ts"].iloc[-1]
    recorder.detach()
    _drive(feed, 20)
    assert recorder.version == 26  # detached: no more updates
    assert recorder.symbols() == ["A", "B"]


def test_feed_goes_on_when_the_recorder_gets_bad_ticks(caplog: pytest.LogCaptureFixture) -> None:
    feed = SimulatedFeed(["A"], seed=0)
    recorder = CandleRecorder("1s").attach(feed)
    bad = pd.DataFrame(
        {
            "symbol": ["A"],
            "ts": [pd.Timestamp("2024-01-01", tz="UTC")],
            "price": [-1.0],
            "size": [1],
        }
    )
    caplog.set_level(logging.ERROR)
    assert feed.publish(bad) == 1
    assert "listener" in caplog.text and recorder.version == 0
    _drive(feed, 30)
    assert recorder.version > 0
