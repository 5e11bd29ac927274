"""Scans: one date, backfills, newly-entered alerts, the store, and streaming = batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import MarketStore, NewsStore
from quantdesk.data.schemas import (
    ALERT_COLUMNS,
    REGIME_CELL_NAMES,
    REGIME_PROBABILITY_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
)
from quantdesk.data.store.news import ScoreKey
from quantdesk.data.wide import to_wide
from quantdesk.screener import StreamingScan, scan
from quantdesk.screener import rules as R

from .universe import random_bars

RULES = [
    R.gap_up(pct=1.5),
    R.gap_down(pct=1.5),
    R.volume_spike(k=2.0, n=10),
    R.new_high(n=15),
    R.new_low(n=15),
    R.ma_cross(fast=3, slow=12, direction="both"),
    R.gap_up(pct=0.5) & R.volume_spike(k=1.2, n=5),
]


def key(alerts: pd.DataFrame) -> list[tuple[str, str, pd.Timestamp]]:
    return sorted(zip(alerts["symbol"], alerts["rule"], alerts["ts"], strict=True))


def assert_same_alerts(a: pd.DataFrame, b: pd.DataFrame) -> None:
    left = a.sort_values(["ts", "rule", "symbol"], ignore_index=True)
    right = b.sort_values(["ts", "rule", "symbol"], ignore_index=True)
    pd.testing.assert_frame_equal(left, right, check_exact=True)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_bars(40, 100, seed=11)


def test_one_date_backfill_and_latest(bars: pd.DataFrame) -> None:
    days = sorted(bars["ts"].unique())
    backfill = scan(bars, RULES, start=days[0], end=days[-1])
    assert list(backfill.columns) == list(ALERT_COLUMNS)
    assert backfill["rule"].nunique() == len(RULES)  # every rule fires somewhere
    # a backfill is the union of the single-date scans, each reading only its window
    for day in days[40:44]:
        one = scan(bars, RULES, date=day.date().isoformat())
        assert_same_alerts(one, backfill[backfill["ts"] == day].reset_index(drop=True))
    latest = scan(bars, RULES)
    assert_same_alerts(latest, backfill[backfill["ts"] == days[-1]].reset_index(drop=True))
    with pytest.raises(ValueError, match="either date or start/end"):
        scan(bars, RULES, date=days[5], start=days[0])


def test_alerts_carry_conditions_and_metadata(bars: pd.DataFrame) -> None:
    alerts = scan(bars, [R.gap_up(pct=1.5, name="gap15")], start=bars["ts"].min())
    row = alerts.iloc[0]
    b = bars[bars["symbol"] == row["symbol"]].set_index("ts")
    prev_close = b["close"].shift(1).loc[row["ts"]]
    assert row["conditions"]["prev_close"] == prev_close
    assert row["conditions"]["gap_pct"] == pytest.approx(
        (b.loc[row["ts"], "open"] / prev_close - 1) * 100
    )
    assert row["trigger_price"] == b.loc[row["ts"], "open"]
    assert row["metadata"] == {"timeframe": "1d", "params": {"pct": 1.5}}
    assert row["rule"] == "gap15"


def test_new_only_alerts_when_a_symbol_enters_the_scan(bars: pd.DataFrame) -> None:
    rule = R.volume_spike(k=1.1, n=5)  # fires on many consecutive days
    every = scan(bars, [rule], start=bars["ts"].min())
    fresh = scan(bars, [rule], start=bars["ts"].min(), new_only=True)
    hits = (
        every.assign(hit=True)
        .pivot(index="ts", columns="symbol", values="hit")
        .reindex(index=sorted(bars["ts"].unique()), columns=sorted(bars["symbol"].unique()))
        .fillna(False)
        .astype(bool)
    )
    entered = hits & ~hits.shift(1, fill_value=False)
    expected = entered.stack()
    assert len(fresh) == int(expected.sum()) < len(every)
    assert set(zip(fresh["ts"], fresh["symbol"], strict=True)) == set(expected[expected].index)
    # a single-date new_only scan reads the extra bar it needs
    day = sorted(bars["ts"].unique())[60]
    one = scan(bars, [rule], date=day, new_only=True)
    assert_same_alerts(one, fresh[fresh["ts"] == day].reset_index(drop=True))


def test_wide_panels_and_the_store_give_the_same_alerts(bars: pd.DataFrame, tmp_path: Path) -> None:
    expected = scan(bars, RULES, start="2023-03-01")
    panels = to_wide(bars, ["open", "high", "low", "close", "volume"])
    assert_same_alerts(scan(panels, RULES, start="2023-03-01"), expected)
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(bars, "1d")
    assert_same_alerts(scan(store, RULES, start="2023-03-01"), expected)
    assert_same_alerts(scan(str(store.path), RULES), scan(bars, RULES))
    day = expected["ts"].iloc[len(expected) // 2]
    assert_same_alerts(
        scan(store, RULES, date=day), expected[expected["ts"] == day].reset_index(drop=True)
    )
    only = scan(store, RULES, start="2023-03-01", symbols=["S001", "S002"])
    assert set(only["symbol"]) <= {"S001", "S002"}
    assert len(only) == expected["symbol"].isin(["S001", "S002"]).sum()


@pytest.mark.parametrize("new_only", [False, True])
def test_streaming_equals_the_batch_scan(bars: pd.DataFrame, new_only: bool) -> None:
    batch = scan(bars, RULES, start=bars["ts"].min(), new_only=new_only)
    stream = StreamingScan(RULES, new_only=new_only)
    rng = np.random.default_rng(0)
    got = []
    for _, day in bars.groupby("ts", sort=True):
        day = day.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))
        # the feed delivers candles in several batches per bar time, symbols in any order
        for part in np.array_split(np.arange(len(day)), 3):
            got.append(stream.update(day.iloc[part]))
    streamed = pd.concat(got, ignore_index=True)
    assert len(batch) > 50
    assert_same_alerts(streamed, batch)  # bit for bit, conditions included
    assert stream.window == max(r.lookback for r in RULES) + 1


def test_streaming_keeps_a_short_window_and_ignores_repeats(bars: pd.DataFrame) -> None:
    stream = StreamingScan(["gap_up", "volume_spike"])
    days = sorted(bars["ts"].unique())
    stream.warm(bars[bars["ts"] <= days[-2]])
    last = bars[bars["ts"] == days[-1]]
    first = stream.update(last)
    assert stream.update(last).empty  # the same candles again: not newer, ignored
    assert_same_alerts(first, scan(bars, ["gap_up", "volume_spike"]))
    assert stream._buffers["close"].shape[0] == 21  # volume_spike's 20 bars + the bar
    with pytest.raises(ValueError, match="lack column"):
        stream.update(last.drop(columns=["volume"]))


def _regimes(bars: pd.DataFrame) -> pd.DataFrame:
    """Regimes for two symbols: S000 changes cell on days 30 and 60, S001 on day 45."""
    days = sorted(bars["ts"].unique())
    rows = []
    for symbol, changes in (("S000", (30, 60)), ("S001", (45,))):
        for i, ts in enumerate(days):
            state = 4 + sum(i >= c for c in changes) * (2 if symbol == "S000" else -1)
            row = {
                "symbol": symbol,
                "ts": ts,
                "model_version": "test/v1",
                "state": state,
                "vol_label": VOL_LABELS[state // 3],
                "trend_label": TREND_LABELS[state % 3],
            }
            row.update({p: float(j == state) for j, p in enumerate(REGIME_PROBABILITY_COLUMNS)})
            rows.append(row)
    return pd.DataFrame(rows)


def test_regime_change_reads_the_stored_regimes(bars: pd.DataFrame, tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(bars, "1d")
    regimes = _regimes(bars)
    store.write_regimes(regimes)
    days = sorted(bars["ts"].unique())
    alerts = scan(store, [R.regime_change()], start=days[0])
    assert key(alerts) == [
        ("S000", "regime_change", days[30]),
        ("S000", "regime_change", days[60]),
        ("S001", "regime_change", days[45]),
    ]
    assert alerts.iloc[0]["conditions"] == {"from_state": 4.0, "to_state": 6.0}
    into = scan(store, [R.regime_change(to=REGIME_CELL_NAMES[8])], start=days[0])
    assert key(into) == [("S000", "regime_change", days[60])]
    assert_same_alerts(scan(bars, [R.regime_change()], start=days[0], regimes=regimes), alerts)
    with pytest.raises(ValueError, match="needs regimes"):
        scan(bars, [R.regime_change()])


def test_sentiment_shock_reads_the_stored_scored_news(bars: pd.DataFrame, tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(bars, "1d")
    days = sorted(bars["ts"].unique())
    rng = np.random.default_rng(2)
    # S003 gets a calm headline before every session (mid-morning UTC, before the
    # New York close), then a very positive one on day 70.
    items = pd.DataFrame(
        {
            "id": [f"n{i}" for i in range(len(days))],
            "ts": [d + pd.Timedelta(hours=14) for d in days],
            "headline": [f"S003 update number {i}" for i in range(len(days))],
            "source": "wire",
            "symbols": "S003",
        }
    )
    news = NewsStore(store)
    news.write_news(items, strict=True)
    stored = news.news()
    score = rng.normal(0.0, 0.05, len(stored))
    score[stored["id"] == "n70"] = 0.95
    key_ = ScoreKey("test-model")
    news.write_scores(
        stored[["content_hash"]].assign(positive=0.3, negative=0.3, neutral=0.4, score=score),
        key_,
    )
    alerts = scan(store, [R.sentiment_shock(k=4.0, window=40, min_periods=20)], start=days[0])
    assert key(alerts) == [("S003", "sentiment_shock", days[70])]
    assert alerts.iloc[0]["conditions"]["score"] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="needs sentiment"):
        scan(bars, [R.sentiment_shock()])


def test_empty_and_bad_inputs(bars: pd.DataFrame, tmp_path: Path) -> None:
    future = scan(bars, ["gap_up"], date="2030-01-02")
    assert future.empty and list(future.columns) == list(ALERT_COLUMNS)
    with pytest.raises(TypeError, match="takes bars"):
        scan(42, ["gap_up"])
    with pytest.raises(ValueError, match="lack column"):
        scan(bars.drop(columns=["open"]), ["gap_up"])


def test_importing_the_screener_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, quantdesk; quantdesk.screener.__name__; "
        "print([m for m in ('pandas', 'numpy', 'duckdb', 'yaml') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_live_candles_from_the_aggregator_stream_into_the_scan() -> None:
    from quantdesk.data import CandleAggregator, aggregate

    rng = np.random.default_rng(3)
    n = 6000
    ts = pd.Timestamp("2024-01-02 14:30", tz="UTC") + pd.to_timedelta(
        np.sort(rng.uniform(0, 3 * 3600, n)), unit="s"
    )
    symbols = rng.choice(["AAA", "BBB", "CCC"], n)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    price[n // 2 :] *= 1.03  # a jump: a gap up on the next minute's open
    ticks = pd.DataFrame({"symbol": symbols, "ts": ts, "price": price,
                          "size": rng.integers(1, 500, n).astype(float)})  # fmt: skip
    rules = [R.gap_up(pct=1.0), R.volume_spike(k=2.0, n=5), R.new_high(n=10)]
    aggregator = StreamingScan(rules, timeframe="1min")
    candles = CandleAggregator("1min")
    chunks = [ticks.iloc[i : i + 150] for i in range(0, n, 150)]
    live = [aggregator.update(candles.update_many(chunk)) for chunk in chunks]
    live.append(aggregator.update(candles.flush()))
    streamed = pd.concat(live, ignore_index=True)
    bars = aggregate(ticks, "1min")
    batch = scan(bars, rules, start=bars["ts"].min(), timeframe="1min")
    assert (batch["rule"] == "gap_up").any()
    assert_same_alerts(streamed, batch)
