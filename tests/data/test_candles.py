"""Tests for quantdesk.data.candles.batch: batch engines, streaming aggregator, validation.

Expected values come from a hand calculation, from an independent pandas reference
(groupby + resample) and from DuckDB, and the streaming path is checked against the
batch one with property tests.
"""

from __future__ import annotations

import itertools
import logging
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.data.candles.batch import aggregate
from quantdesk.data.candles.stream import CandleAggregator, CandleStats
from quantdesk.data.schemas import BAR_COLUMNS

NY = "America/New_York"
ENGINES = ("numba", "duckdb")


def utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(stamps), utc=True, format="ISO8601")).as_unit("ns")


def ticks_frame(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    symbols, stamps, prices, sizes = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "symbol": list(symbols),
            "ts": utc(*stamps),
            "price": np.asarray(prices, dtype=np.float64),
            "size": np.asarray(sizes, dtype=np.float64),
        }
    )


def bars_frame(rows: list[tuple[str, str, float, float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(BAR_COLUMNS))
    frame["ts"] = utc(*frame["ts"])
    return frame.astype({c: "float64" for c in BAR_COLUMNS[2:]})


def assert_bars_equal(actual: pd.DataFrame, expected: pd.DataFrame, *, exact: bool = True) -> None:
    """Compare candles by value: same columns, order, symbols, UTC ns stamps and numbers."""
    assert list(actual.columns) == list(BAR_COLUMNS)
    assert str(actual["ts"].dtype) == "datetime64[ns, UTC]"
    assert actual["symbol"].dtype == object or pd.api.types.is_string_dtype(actual["symbol"])
    for col in BAR_COLUMNS[2:]:
        assert actual[col].dtype == np.float64, col
    left = actual.reset_index(drop=True).astype({"symbol": object})
    right = expected.reset_index(drop=True).astype({"symbol": object})
    right["ts"] = pd.to_datetime(right["ts"], utc=True).dt.as_unit("ns")
    pd.testing.assert_frame_equal(
        left, right, check_exact=exact, rtol=1e-12, check_dtype=False, check_index_type=False
    )


def reference_candles(ticks: pd.DataFrame, timeframe: str, tz: str | None = None) -> pd.DataFrame:
    """Return candles computed with plain pandas (groupby + resample), empty bins dropped."""
    freq = {"1s": "1s", "1min": "1min", "5min": "5min", "1h": "1h", "1d": "1D"}[timeframe]
    df = ticks.assign(
        symbol=ticks["symbol"].astype(str), ts=pd.to_datetime(ticks["ts"], utc=True)
    ).sort_values("ts", kind="stable")
    spec = {"price": ["first", "max", "min", "last", "count"], "size": "sum"}
    if tz is not None:
        local_day = df["ts"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
        keys = [df["symbol"], local_day.dt.tz_localize("UTC").rename("bucket")]
        out = df.groupby(keys, sort=True).agg(spec)
    else:
        out = df.set_index("ts").groupby("symbol").resample(freq).agg(spec)
    out.columns = ["open", "high", "low", "close", "count", "volume"]
    out = out[out["count"] > 0].drop(columns="count").reset_index()
    out.columns = list(BAR_COLUMNS)
    return out.sort_values(["symbol", "ts"], ignore_index=True)


def random_ticks(n: int, seed: int, start: str, span_hours: float) -> pd.DataFrame:
    """Return ``n`` random, unsorted ticks over 4 symbols with many equal timestamps."""
    rng = np.random.default_rng(seed)
    base = pd.Timestamp(start, tz="UTC").value
    # Times on a 250 ms grid collide often, which exercises the tie-breaking rule.
    grid = rng.integers(0, int(span_hours * 3600 * 4), n) * 250_000_000
    return pd.DataFrame(
        {
            "symbol": rng.choice(["MSFT", "AAPL", "EURUSD", "ZZ"], n),
            "ts": pd.DatetimeIndex((base + grid).view("M8[ns]")).tz_localize("UTC"),
            "price": np.round(rng.lognormal(4.0, 0.2, n), 3),
            "size": rng.integers(0, 1000, n).astype(float),
        }
    )


# --------------------------------------------------------------------------------------
# Batch aggregation
# --------------------------------------------------------------------------------------

HAND_TICKS = [
    ("AAA", "2024-01-02 09:30:00", 10.0, 1),
    ("AAA", "2024-01-02 09:30:00", 11.0, 2),  # same time as the open: open stays 10
    ("BBB", "2024-01-02 09:30:30", 50.0, 5),
    ("AAA", "2024-01-02 09:30:59.999", 9.0, 3),
    ("AAA", "2024-01-02 09:30:59.999", 12.0, 1),  # last of two at the close time
    ("BBB", "2024-01-02 09:31:05", 51.0, 2),
    ("AAA", "2024-01-02 09:33:10", 13.0, 4),  # gap: no 09:31 or 09:32 candle for AAA
]
HAND_BARS = [
    ("AAA", "2024-01-02 09:30", 10.0, 12.0, 9.0, 12.0, 7.0),
    ("AAA", "2024-01-02 09:33", 13.0, 13.0, 13.0, 13.0, 4.0),
    ("BBB", "2024-01-02 09:30", 50.0, 50.0, 50.0, 50.0, 5.0),
    ("BBB", "2024-01-02 09:31", 51.0, 51.0, 51.0, 51.0, 2.0),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_computed_example(engine: str) -> None:
    ticks = ticks_frame(HAND_TICKS)
    assert_bars_equal(aggregate(ticks, "1min", engine=engine), bars_frame(HAND_BARS))


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_example_five_minutes_and_input_forms(engine: str) -> None:
    ticks = ticks_frame(HAND_TICKS)
    # naive UTC in microseconds, categorical symbols (categories not in sorted order)
    other = ticks.assign(
        ts=ticks["ts"].dt.tz_localize(None).dt.as_unit("us"),
        symbol=pd.Categorical(ticks["symbol"], categories=["ZZZ", "BBB", "AAA"]),
        size=ticks["size"].astype(int),
    )
    expected = bars_frame(
        [
            ("AAA", "2024-01-02 09:30", 10.0, 13.0, 9.0, 13.0, 11.0),
            ("BBB", "2024-01-02 09:30", 50.0, 51.0, 50.0, 51.0, 7.0),
        ]
    )
    assert_bars_equal(aggregate(ticks, "5min", engine=engine), expected)
    out = aggregate(other, "5min", engine=engine)
    assert_bars_equal(out, expected)
    assert not isinstance(out["symbol"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("timeframe", ["1s", "1min", "5min", "1h", "1d"])
def test_engines_match_pandas_reference(timeframe: str) -> None:
    ticks = random_ticks(4000, seed=7, start="2024-11-01 20:00", span_hours=80)
    expected = reference_candles(ticks, timeframe)
    assert len(expected) >= 20  # 4 symbols x at least 5 buckets
    for engine in ENGINES:
        assert_bars_equal(aggregate(ticks, timeframe, engine=engine), expected)


@pytest.mark.parametrize("start", ["2024-11-01 20:00", "2024-03-08 20:00"])
def test_daily_bars_in_new_york_match_pandas_reference(start: str) -> None:
    # The span crosses a DST change (fall-back in November, spring-forward in March).
    ticks = random_ticks(3000, seed=11, start=start, span_hours=100)
    expected = reference_candles(ticks, "1d", tz=NY)
    for engine in ENGINES:
        assert_bars_equal(aggregate(ticks, "1d", tz=NY, engine=engine), expected)
    # In UTC the evening ticks fall into the next day, so the daily volumes differ.
    in_utc = aggregate(ticks, "1d")
    assert not np.array_equal(in_utc["volume"].to_numpy(), expected["volume"].to_numpy())


@pytest.mark.parametrize("engine", ENGINES)
def test_daily_bar_uses_the_local_date(engine: str) -> None:
    ticks = ticks_frame(
        [
            ("X", "2024-03-05 02:00", 10.0, 1),  # 21:00 on 4 March in New York
            ("X", "2024-03-05 15:00", 11.0, 2),
        ]
    )
    in_ny = bars_frame(
        [
            ("X", "2024-03-04", 10.0, 10.0, 10.0, 10.0, 1.0),
            ("X", "2024-03-05", 11.0, 11.0, 11.0, 11.0, 2.0),
        ]
    )
    in_utc = bars_frame([("X", "2024-03-05", 10.0, 11.0, 10.0, 11.0, 3.0)])
    assert_bars_equal(aggregate(ticks, "1d", tz=NY, engine=engine), in_ny)
    assert_bars_equal(aggregate(ticks, "1d", engine=engine), in_utc)
    assert_bars_equal(aggregate(ticks, "1d", tz="UTC", engine=engine), in_utc)


def test_daily_bars_when_the_local_date_goes_backwards() -> None:
    # Alaska's 1867 switch from Russian to American dates moved local time back a day:
    # ticks later in UTC can belong to an earlier local date.
    ticks = random_ticks(500, seed=3, start="1867-10-17", span_hours=96)
    expected = reference_candles(ticks, "1d", tz="America/Sitka")
    for engine in ENGINES:
        assert_bars_equal(aggregate(ticks, "1d", tz="America/Sitka", engine=engine), expected)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("timeframe", ["1s", "1min", "1d"])
def test_unsorted_input_gives_same_as_sorted(engine: str, timeframe: str) -> None:
    shuffled = random_ticks(3000, seed=5, start="2024-05-01", span_hours=30)
    # Stable: ticks with equal times keep their relative order, so ties resolve alike.
    in_order = shuffled.sort_values("ts", kind="stable", ignore_index=True)
    got = aggregate(shuffled, timeframe, engine=engine)
    assert_bars_equal(got, aggregate(in_order, timeframe, engine=engine))
    assert_bars_equal(got, reference_candles(shuffled, timeframe))


def test_many_symbols_sorted_by_name_and_input_not_modified() -> None:
    rng = np.random.default_rng(1)
    names = [f"S{i:02d}" for i in rng.permutation(40)]
    ticks = random_ticks(2000, seed=2, start="2024-01-01", span_hours=2)
    ticks["symbol"] = rng.choice(names, len(ticks))
    before = ticks.copy()
    out = aggregate(ticks, "5min")
    pd.testing.assert_frame_equal(ticks, before)
    keys = list(zip(out["symbol"], out["ts"], strict=True))
    assert keys == sorted(keys)
    assert_bars_equal(out, reference_candles(ticks, "5min"))


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_ticks_give_empty_bars(engine: str) -> None:
    empty = ticks_frame(HAND_TICKS).iloc[:0]
    out = aggregate(empty, "1min", engine=engine)
    assert out.empty
    assert list(out.columns) == list(BAR_COLUMNS)
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def test_missing_column_is_named() -> None:
    ticks = ticks_frame(HAND_TICKS).drop(columns="size")
    with pytest.raises(ValueError, match=r"missing column.*'size'"):
        aggregate(ticks, "1min")
    with pytest.raises(ValueError, match="'size'"):
        CandleAggregator("1min").update_many(ticks)


@pytest.mark.parametrize(
    ("column", "value", "row"),
    [
        ("price", np.nan, 3),
        ("price", 0.0, 2),
        ("price", -1.0, 5),
        ("price", np.inf, 1),
        ("size", -5.0, 4),
        ("size", np.nan, 0),
        ("ts", pd.NaT, 6),
        ("symbol", None, 1),
    ],
)
def test_bad_row_is_named(column: str, value: object, row: int) -> None:
    ticks = ticks_frame(HAND_TICKS)
    ticks.index = ticks.index + 100  # positions, not labels, are reported as "row"
    ticks[column] = ticks[column].astype(object) if column == "symbol" else ticks[column]
    ticks.iloc[row, ticks.columns.get_loc(column)] = value
    # A second, later bad row must not be the one reported.
    ticks.iloc[-1, ticks.columns.get_loc("price")] = -2.0
    pattern = rf"row {row} \(index {row + 100}\), field '{column}'"
    for engine in ENGINES:
        with pytest.raises(ValueError, match=pattern):
            aggregate(ticks, "1min", engine=engine)
    agg = CandleAggregator("1min")
    with pytest.raises(ValueError, match=pattern):
        agg.update_many(ticks)
    assert agg.stats == CandleStats(0, 0, 0, 0)  # a rejected batch changes nothing
    assert agg.open_candles().empty


def test_bad_arguments() -> None:
    ticks = ticks_frame(HAND_TICKS)
    with pytest.raises(ValueError, match="engine"):
        aggregate(ticks, "1min", engine="spark")
    with pytest.raises(ValueError, match="time zone"):
        aggregate(ticks, "1d", tz="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="timeframe"):
        aggregate(ticks, "7min")
    with pytest.raises(ValueError, match="tolerance"):
        CandleAggregator("1min", tolerance="-1s")
    agg = CandleAggregator("1min")
    with pytest.raises(ValueError, match="'price'"):
        agg.update("X", "2024-01-02", -1.0, 1)
    with pytest.raises(ValueError, match="'size'"):
        agg.update("X", "2024-01-02", 1.0, float("nan"))
    with pytest.raises(ValueError, match="'ts'"):
        agg.update("X", pd.NaT, 1.0, 1)


def test_import_does_not_load_numba_or_duckdb() -> None:
    code = (
        "import sys, quantdesk, quantdesk.data.candles.batch; "
        "print(sorted(m for m in ('numba', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------


def test_stream_zero_tolerance_closes_on_next_bucket() -> None:
    agg = CandleAggregator("1min")
    assert agg.update("AAA", "2024-01-02 09:30:00", 10.0, 1) == []
    assert agg.update("BBB", "2024-01-02 09:31:30", 5.0, 1) == []  # other symbol: no effect
    assert agg.update("AAA", "2024-01-02 09:30:59.999999999", 11.0, 2) == []
    closed = agg.update("AAA", "2024-01-02 09:31:00", 12.0, 3)
    assert closed == [
        {
            "symbol": "AAA",
            "ts": pd.Timestamp("2024-01-02 09:30", tz="UTC"),
            "open": 10.0,
            "high": 11.0,
            "low": 10.0,
            "close": 11.0,
            "volume": 3.0,
        }
    ]
    # Gap: jumping to 09:35 closes 09:31 only; no candles for 09:32-09:34.
    closed = agg.update("AAA", "2024-01-02 09:35:10", 13.0, 1)
    assert [c["ts"].strftime("%H:%M") for c in closed] == ["09:31"]
    peek = agg.open_candles()
    assert list(zip(peek["symbol"], peek["ts"].dt.strftime("%H:%M"), strict=True)) == [
        ("AAA", "09:35"),
        ("BBB", "09:31"),
    ]
    assert len(agg.open_candles()) == 2  # peeking consumes nothing
    flushed = agg.flush()
    assert_bars_equal(flushed, peek)
    assert agg.open_candles().empty
    assert agg.stats == CandleStats(ticks_seen=5, ticks_applied=5, late_applied=0, late_dropped=0)


def test_stream_tolerance_accepts_late_ticks_and_drops_older(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agg = CandleAggregator("1min", tolerance="30s")
    assert agg.update("A", "2024-01-02 09:30:10", 1.0, 1) == []
    assert agg.update("A", "2024-01-02 09:31:10", 2.0, 1) == []  # W = 09:31:10 < 09:31:30
    assert agg.update("A", "2024-01-02 09:30:50", 3.0, 1) == []  # late but within 30 s
    assert agg.update("A", "2024-01-02 09:30:45", 0.5, 1) == []  # late, still in tolerance
    closed = agg.update("A", "2024-01-02 09:31:40", 4.0, 1)  # W passes 09:31:30
    # open/close follow tick time, not arrival: 09:30:10 opens, 09:30:50 closes.
    assert [(c["open"], c["high"], c["low"], c["close"], c["volume"]) for c in closed] == [
        (1.0, 3.0, 0.5, 3.0, 3.0)
    ]
    with caplog.at_level(logging.WARNING, logger="quantdesk.data.candles.stream"):
        assert agg.update("A", "2024-01-02 09:30:59", 9.0, 1) == []  # < W - 30 s: dropped
    assert "dropped 1 tick" in caplog.text
    assert agg.stats == CandleStats(ticks_seen=6, ticks_applied=5, late_applied=2, late_dropped=1)
    assert agg.dropped == {"A": 1}
    assert_bars_equal(agg.flush(), bars_frame([("A", "2024-01-02 09:31", 2.0, 4.0, 2.0, 4.0, 2.0)]))
    # Flushed candles are final: a tick for 09:31 within tolerance is now dropped too.
    assert agg.update("A", "2024-01-02 09:31:50", 5.0, 1) == []
    assert agg.stats.late_dropped == 2
    assert agg.open_candles().empty


def test_stream_drop_warnings_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    agg = CandleAggregator("1s")
    agg.update("A", "2024-01-02 10:00:00", 1.0, 1)
    late = pd.DataFrame(
        {
            "symbol": ["A"] * 100,
            "ts": utc(*["2024-01-02 09:00:00"] * 100),
            "price": 1.0,
            "size": 1.0,
        }
    )
    with caplog.at_level(logging.WARNING, logger="quantdesk.data.candles.stream"):
        for _ in range(25):
            assert agg.update_many(late).empty
    assert agg.stats.late_dropped == 2500
    # The first drop, then on passing 1000 and 2000.
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 3


def test_stream_matches_batch_on_many_symbols_and_daily_tz() -> None:
    ticks = random_ticks(6000, seed=9, start="2024-11-01", span_hours=120)
    ticks["symbol"] = ticks["symbol"] + (np.arange(len(ticks)) % 37).astype(str)
    ticks = ticks.sort_values("ts", kind="stable", ignore_index=True)
    for timeframe, tz in [("1min", None), ("1d", NY), ("1h", NY)]:
        agg = CandleAggregator(timeframe, tz=tz)
        parts = [agg.update_many(ticks.iloc[i : i + 777]) for i in range(0, len(ticks), 777)]
        streamed = pd.concat([*parts, agg.flush()], ignore_index=True)
        streamed = streamed.sort_values(["symbol", "ts"], ignore_index=True)
        assert_bars_equal(streamed, aggregate(ticks, timeframe, tz=tz))
        assert agg.stats.late_dropped == 0
        assert sorted(agg.symbols) == sorted(ticks["symbol"].unique())


# --------------------------------------------------------------------------------------
# Property tests: streaming == batch
# --------------------------------------------------------------------------------------

BASE = pd.Timestamp("2024-03-09 12:00", tz="UTC").value  # spans the March DST change
STEPS_NS = [
    137_000_000,
    1_900_000_000,
    17 * 10**9,
    7 * 60 * 10**9,
    53 * 60 * 10**9,
    5 * 3600 * 10**9,
]
TIMEFRAMES = st.sampled_from([("1s", None), ("1min", None), ("1h", None), ("1d", None), ("1d", NY)])
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def tick_lists(draw: st.DrawFn, min_size: int = 1) -> pd.DataFrame:
    """Return random ticks (3 symbols, times on a coarse grid so that many coincide)."""
    step = draw(st.sampled_from(STEPS_NS))
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["A", "B", "C"]),
                st.integers(0, 60),
                st.floats(0.01, 1000.0, allow_nan=False),
                st.integers(0, 1000),
            ),
            min_size=min_size,
            max_size=80,
        )
    )
    symbols, k, prices, sizes = zip(*rows, strict=True)
    stamps = BASE + np.asarray(k, dtype=np.int64) * step
    return pd.DataFrame(
        {
            "symbol": list(symbols),
            "ts": pd.DatetimeIndex(stamps.view("M8[ns]")).tz_localize("UTC"),
            "price": np.asarray(prices, dtype=np.float64),
            "size": np.asarray(sizes, dtype=np.float64),
        }
    )


def stream_in_chunks(agg: CandleAggregator, ticks: pd.DataFrame, cuts: list[int]) -> pd.DataFrame:
    bounds = sorted({0, len(ticks), *(c % (len(ticks) + 1) for c in cuts)})
    parts = [agg.update_many(ticks.iloc[a:b]) for a, b in itertools.pairwise(bounds)]
    for part in parts:  # each batch's output is itself sorted by (symbol, ts)
        keys = list(zip(part["symbol"], part["ts"], strict=True))
        assert keys == sorted(keys)
    out = pd.concat([*parts, agg.flush()], ignore_index=True)
    return out.sort_values(["symbol", "ts"], kind="stable", ignore_index=True)


@PROPERTY_SETTINGS
@given(tick_lists(), TIMEFRAMES, st.lists(st.integers(0, 100), max_size=6))
def test_property_stream_in_time_order_equals_batch(
    ticks: pd.DataFrame, tf_tz: tuple[str, str | None], cuts: list[int]
) -> None:
    timeframe, tz = tf_tz
    arrival = ticks.sort_values("ts", kind="stable", ignore_index=True)
    agg = CandleAggregator(timeframe, tz=tz)
    streamed = stream_in_chunks(agg, arrival, cuts)
    assert_bars_equal(streamed, aggregate(arrival, timeframe, tz=tz))
    assert agg.stats == CandleStats(len(ticks), len(ticks), 0, 0)


@PROPERTY_SETTINGS
@given(
    tick_lists(),
    TIMEFRAMES,
    st.sampled_from([0, 10**9, 45 * 10**9, 3600 * 10**9, 30 * 3600 * 10**9]),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 100), max_size=6),
)
def test_property_bounded_lateness_drops_nothing(
    ticks: pd.DataFrame,
    tf_tz: tuple[str, str | None],
    tolerance_ns: int,
    rnd: random.Random,
    cuts: list[int],
) -> None:
    timeframe, tz = tf_tz
    # Arrival time = event time + a delay in [0, tolerance]: then no tick arrives more
    # than `tolerance` behind an earlier-arrived one, so nothing may be dropped.
    delays = [rnd.randint(0, tolerance_ns) for _ in range(len(ticks))]
    arrival_key = ticks["ts"].array.asi8 + np.asarray(delays, dtype=np.int64)
    arrival = ticks.iloc[np.argsort(arrival_key, kind="stable")].reset_index(drop=True)
    agg = CandleAggregator(timeframe, tolerance=pd.Timedelta(tolerance_ns, "ns"), tz=tz)
    streamed = stream_in_chunks(agg, arrival, cuts)
    assert agg.stats.late_dropped == 0
    assert agg.stats.ticks_applied == len(ticks)
    # Ties at equal times resolve by arrival order, exactly as aggregate() resolves them
    # by row order.
    assert_bars_equal(streamed, aggregate(arrival, timeframe, tz=tz))


def expected_drops(arrival: pd.DataFrame, tolerance_ns: int) -> tuple[np.ndarray, int]:
    """Return (accepted mask, late-but-accepted count) from the watermark rule, in Python."""
    watermark: dict[str, int] = {}
    accepted = np.ones(len(arrival), dtype=bool)
    late = 0
    for i, (sym, t) in enumerate(zip(arrival["symbol"], arrival["ts"].array.asi8, strict=True)):
        w = watermark.get(sym)
        if w is not None and t < w - tolerance_ns:
            accepted[i] = False
            continue
        if w is not None and t < w:
            late += 1
        watermark[sym] = t if w is None else max(w, int(t))
    return accepted, late


@PROPERTY_SETTINGS
@given(
    tick_lists(),
    TIMEFRAMES,
    st.sampled_from([0, 10**9, 45 * 10**9, 3600 * 10**9]),
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 100), max_size=6),
)
def test_property_late_ticks_dropped_and_counted_exactly(
    ticks: pd.DataFrame,
    tf_tz: tuple[str, str | None],
    tolerance_ns: int,
    rnd: random.Random,
    cuts: list[int],
) -> None:
    timeframe, tz = tf_tz
    order = list(range(len(ticks)))
    rnd.shuffle(order)
    arrival = ticks.iloc[order].reset_index(drop=True)
    accepted, late = expected_drops(arrival, tolerance_ns)
    agg = CandleAggregator(timeframe, tolerance=pd.Timedelta(tolerance_ns, "ns"), tz=tz)
    streamed = stream_in_chunks(agg, arrival, cuts)
    n_dropped = int((~accepted).sum())
    assert agg.stats == CandleStats(
        ticks_seen=len(ticks),
        ticks_applied=len(ticks) - n_dropped,
        late_applied=late,
        late_dropped=n_dropped,
    )
    dropped_by_symbol = arrival.loc[~accepted, "symbol"].value_counts().to_dict()
    assert agg.dropped == dropped_by_symbol
    # Every accepted tick landed in a still-open candle, so the candles are exactly those
    # of the accepted ticks.
    assert_bars_equal(streamed, aggregate(arrival[accepted], timeframe, tz=tz))


# --------------------------------------------------------------------------------------
# The modules the candles are cut into (issue 11): each imports light, examples run.
# --------------------------------------------------------------------------------------


def test_importing_each_candle_module_loads_neither_numba_nor_duckdb() -> None:
    modules = ("candles.kernels", "candles.ticks", "candles.batch", "candles.stream")
    code = (
        "import sys, importlib; "
        + "; ".join(f"importlib.import_module('quantdesk.data.{m}')" for m in modules)
        + "; print(sorted(m for m in ('numba', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["candles.batch", "candles.stream"])
def test_candle_module_examples_run(name: str) -> None:
    import doctest
    import importlib

    module = importlib.import_module(f"quantdesk.data.{name}")
    result = doctest.testmod(module, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0


def test_package_names_point_at_the_new_modules() -> None:
    import quantdesk.data as data
    from quantdesk.data.candles import batch as candles
    from quantdesk.data.candles import stream as candle_stream

    assert data.aggregate is candles.aggregate
    assert data.CandleAggregator is candle_stream.CandleAggregator
