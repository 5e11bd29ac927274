"""Replay: stored bars come back through CandleAggregator exactly, paced and controllable."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import CandleAggregator, MarketStore, load_sample, read_bars_file
from quantdesk.data.live import FeedError, ReplayFeed, bar_ticks

BACKTESTING = Path(pd.__file__).parents[1] / "backtesting" / "test"


def _real_bars() -> pd.DataFrame:
    spx, _ = load_sample("sp500")
    goog = read_bars_file(BACKTESTING / "GOOG.csv", symbol="GOOG").good
    return pd.concat([spx, goog], ignore_index=True)


def _rebuild(feed: ReplayFeed, timeframe: str) -> pd.DataFrame:
    agg = CandleAggregator(timeframe)
    out: list[pd.DataFrame] = []
    feed.add_listener(lambda ticks: out.append(agg.update_many(ticks)))
    feed.start()
    assert feed.wait(120), feed.status.summary()
    assert feed.status.state == "finished"
    out.append(agg.flush())
    assert agg.stats.late_dropped == 0
    return pd.concat(out).sort_values(["symbol", "ts"]).reset_index(drop=True)


def test_replayed_real_bars_rebuild_exactly_from_a_store(store: MarketStore) -> None:
    bars = _real_bars()
    store.write_bars(bars, "1d", source="test")
    expected = store.bars(timeframe="1d").reset_index(drop=True)
    feed = ReplayFeed(store, speed=math.inf)
    assert feed.symbols == ["GOOG", "SPX"]
    got = _rebuild(feed, "1d")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert feed.status.ticks == 4 * len(expected)


def test_replayed_intraday_bars_rebuild_exactly() -> None:
    # Hourly bars made from the GOOG closes: a timeframe other than the daily default.
    goog = read_bars_file(BACKTESTING / "GOOG.csv", symbol="GOOG").good.head(500)
    hourly = goog.assign(
        ts=pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(goog)), unit="h")
    )
    got = _rebuild(ReplayFeed(hourly, timeframe="1h", speed=math.inf), "1h")
    pd.testing.assert_frame_equal(got, hourly.reset_index(drop=True), check_dtype=False)


def test_bar_ticks_order_and_exact_volume() -> None:
    bars = _real_bars()
    ticks = bar_ticks(bars)
    assert len(ticks) == 4 * len(bars) and ticks["ts"].is_monotonic_increasing
    spx = ticks[ticks["symbol"] == "SPX"].reset_index(drop=True)
    first = bars[bars["symbol"] == "SPX"].iloc[0]
    prices = spx["price"].iloc[:4].tolist()
    assert prices[0] == first["open"] and prices[3] == first["close"]
    assert sorted(prices[1:3]) == [first["low"], first["high"]]
    rising = first["close"] > first["open"]
    assert prices[1] == (first["low"] if rising else first["high"])
    # Sizes are whole quarters with the remainder last, and add up exactly.
    sizes = spx["size"].to_numpy().reshape(-1, 4)
    np.testing.assert_array_equal(
        sizes.sum(axis=1), bars[bars["symbol"] == "SPX"]["volume"].to_numpy()
    )


def test_prev_close_is_the_previous_bar_close_and_speed_paces_the_replay() -> None:
    bars = load_sample("sp500")[0].head(30)
    feed = ReplayFeed(bars, speed=86_400 * 50.0)  # 50 days per wall second
    seen: list[tuple[float, float]] = []
    third_bar = threading.Event()

    def listen(ticks: pd.DataFrame) -> None:
        quote = feed.cache.get("SPX")
        assert quote is not None
        seen.append((quote.price, quote.prev_close))
        if ticks["ts"].iloc[-1] >= bars["ts"].iloc[2]:
            third_bar.set()

    feed.add_listener(listen)
    feed.start()
    assert third_bar.wait(30)
    feed.speed = math.inf
    assert feed.speed == math.inf
    assert feed.wait(30) and feed.status.state == "finished"
    closes = bars["close"].tolist()
    quote = feed.cache.get("SPX")
    assert quote is not None
    assert (quote.price, quote.prev_close) == (closes[-1], closes[-2])
    # Paced: the first bars came in several batches, not all at once.
    assert feed.status.batches > 3
    assert all(prev in closes or prev == bars["open"].iloc[0] for _, prev in seen)


def test_loop_replays_again_with_later_timestamps() -> None:
    bars = load_sample("sp500")[0].head(3)
    # Two days of history per wall second: ticks 6 h apart arrive 125 ms apart, so some
    # batch ends inside the first bar of the second lap.
    feed = ReplayFeed(bars, speed=2 * 86_400.0, loop=True)
    stamps: list[pd.Timestamp] = []
    quotes: list[tuple[pd.Timestamp, float]] = []  # (last tick, its prev_close) per batch
    two_laps = threading.Event()

    def listen(ticks: pd.DataFrame) -> None:
        stamps.extend(ticks["ts"])
        quote = feed.cache.get("SPX")
        assert quote is not None
        quotes.append((quote.ts, quote.prev_close))
        if len(stamps) >= 2 * 4 * len(bars):
            two_laps.set()

    feed.add_listener(listen)
    with feed:
        assert two_laps.wait(60)
    n = 4 * len(bars)
    lap1, lap2 = stamps[:n], stamps[n : 2 * n]
    assert pd.Series(stamps).is_monotonic_increasing
    shift = lap2[0] - lap1[0]
    assert shift.days % 7 == 0 and [t + shift for t in lap1] == lap2
    # On the second lap the first bar's reference is the first lap's last close.
    first_bar = [prev for ts, prev in quotes if lap2[0] <= ts < lap2[4]]
    assert first_bar and set(first_bar) == {bars["close"].iloc[-1]}
    second_bar = [prev for ts, prev in quotes if lap2[4] <= ts < lap2[8]]
    assert set(second_bar) <= {bars["close"].iloc[0]}


def test_replay_of_ticks_keeps_their_timestamps() -> None:
    ticks = pd.DataFrame(
        {
            "symbol": ["A", "B", "A"],
            "ts": pd.to_datetime(
                ["2024-01-02 10:00", "2024-01-02 10:01", "2024-01-02 10:02"], utc=True
            ),
            "price": [1.0, 2.0, 1.5],
            "size": [10.0, 20.0, 30.0],
        }
    )
    feed = ReplayFeed(ticks.iloc[::-1], speed=math.inf)
    got: list[pd.DataFrame] = []
    feed.add_listener(got.append)
    feed.start()
    assert feed.wait(30)
    pd.testing.assert_frame_equal(pd.concat(got, ignore_index=True), ticks, check_dtype=False)


def test_bad_sources_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"bars .* or ticks"):
        ReplayFeed(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="speed must be positive"):
        ReplayFeed(load_sample("sp500")[0], speed=0)
    empty = MarketStore(tmp_path / "empty.duckdb")
    empty.write_bars(load_sample("sp500")[0].head(3), "1d")
    feed = ReplayFeed(empty, ["SPX"], start="2030-01-01")
    with pytest.raises(FeedError, match="nothing to replay"):
        feed.start()
    assert not feed.running and feed.status.state == "failed"
