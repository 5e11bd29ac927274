"""The live simulator: reproducible, correlated as asked, regime-switching, time-ordered."""

from __future__ import annotations

import math
import threading

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.live import SimulatedFeed
from quantdesk.data.schemas import TICK_COLUMNS
from quantdesk.data.sources.simulator import RegimeParams


def _returns(ticks: pd.DataFrame) -> pd.DataFrame:
    """Return per-step log returns, one column per symbol (each symbol ticks once a step)."""
    step = ticks.groupby("symbol").cumcount()
    wide = ticks.pivot_table(index=step, columns="symbol", values="price")
    return np.log(wide).diff().dropna()


def test_same_seed_same_prices_however_the_ticks_are_drawn() -> None:
    whole = SimulatedFeed(7, seed=11).generate(3_000)
    feed = SimulatedFeed(7, seed=11)
    parts = pd.concat([feed.generate(n) for n in (1, 6, 250, 43, 2_700)], ignore_index=True)
    np.testing.assert_array_equal(parts["price"].to_numpy(), whole["price"].to_numpy())
    assert parts["symbol"].tolist() == whole["symbol"].tolist()
    other = SimulatedFeed(7, seed=12).generate(3_000)
    assert not np.allclose(other["price"].to_numpy(), whole["price"].to_numpy())


def test_ticks_are_time_ordered_with_one_tick_per_symbol_per_step() -> None:
    feed = SimulatedFeed(["AAA", "BBB", "CCC"], rate=4.0, seed=2)
    ticks = feed.generate(1_200)
    assert list(ticks.columns) == list(TICK_COLUMNS)
    assert ticks["ts"].is_monotonic_increasing
    assert str(ticks["ts"].dt.tz) == "UTC"
    assert ticks.groupby("symbol").size().to_dict() == {"AAA": 400, "BBB": 400, "CCC": 400}
    # Each symbol ticks once per 0.25 s step: consecutive ticks of a symbol are < 2 steps apart.
    gaps = ticks.groupby("symbol")["ts"].diff().dropna()
    assert gaps.max() < pd.Timedelta("0.5s")
    assert (ticks["price"] > 0).all() and (ticks["size"] >= 1).all()


def test_start_prices_are_used() -> None:
    feed = SimulatedFeed(["X", "Y"], start_prices={"X": 100.0}, seed=0, rate=1.0)
    first = feed.generate(2).set_index("symbol")["price"]
    # One step moves a price by about sigma * sqrt(step / day): far under 1%.
    assert first["X"] == pytest.approx(100.0, rel=0.01)
    assert feed.cache.get("X") is None  # generate() publishes nothing
    assert feed.cache.snapshot().empty


@pytest.mark.parametrize("rho", [0.3, 0.8, -0.2])
def test_return_correlation_matches_the_parameter(rho: float) -> None:
    # One regime for the whole sample (a very long simulated day), so returns are Gaussian
    # and Fisher's z gives the sampling error: atanh(r) ~ N(atanh(rho), 1 / (n - 3)).
    feed = SimulatedFeed(4, correlation=rho, rate=1.0, day_seconds=1e9, seed=5)
    returns = _returns(feed.generate(4 * 20_001))
    n = len(returns)
    corr = np.corrcoef(returns.to_numpy().T)
    pairs = corr[np.triu_indices(4, 1)]
    # 4.5 standard errors per pair: a false alarm across the 6 pairs is under 1 in 10,000.
    assert np.abs(np.arctanh(pairs) - math.atanh(rho)).max() < 4.5 / math.sqrt(n - 3), pairs


def test_volatility_is_scaled_to_the_tick_interval() -> None:
    params = RegimeParams(vol_levels=(0.2, 0.2, 0.2), vol_scale_range=(1.0, 1.0))
    feed = SimulatedFeed(3, rate=5.0, day_seconds=100.0, params=params, seed=1)
    returns = _returns(feed.generate(3 * 20_001))
    per_step = 0.2 / math.sqrt(252) * math.sqrt(0.2 / 100.0)
    sd = returns.to_numpy().std(ddof=1)
    n = returns.size
    # The sample sd of n Gaussian draws has relative standard error about 1 / sqrt(2 n).
    assert abs(sd / per_step - 1) < 5 / math.sqrt(2 * n)


def test_regimes_switch_and_set_the_volatility() -> None:
    params = RegimeParams.from_durations((2.0, 2.0, 2.0), (2.0, 2.0, 2.0))
    feed = SimulatedFeed(2, rate=10.0, day_seconds=10.0, params=params, seed=4)
    ticks = feed.generate(2 * 100 * 400, with_regimes=True)  # 400 simulated days
    vol_state = ticks["vol_state"].to_numpy()
    assert set(np.unique(vol_state)) == {0, 1, 2}
    assert set(np.unique(ticks["trend_state"])) == {0, 1, 2}
    switches = np.count_nonzero(np.diff(vol_state))
    assert switches > 50  # expected about 400 days / 2 days per spell = 200 switches
    # A regime holds for whole simulated days: every switch sits on a day boundary.
    day = (ticks.groupby("symbol").cumcount() // 100).to_numpy()
    changed = np.flatnonzero(np.diff(vol_state)) + 1
    assert (day[changed] != day[changed - 1]).all()
    # High-volatility days move prices more than low-volatility ones.
    step_state = ticks[ticks["symbol"] == "SIM000"]["vol_state"].to_numpy()[1:]
    r = _returns(ticks)["SIM000"].to_numpy()
    assert r[step_state == 2].std() > 2 * r[step_state == 0].std()
    regime = feed.regime()
    assert list(regime["symbol"]) == ["SIM000", "SIM001"]
    assert regime["vol_state"].iloc[0] == vol_state[-1]
    assert regime["trend_state"].iloc[0] == ticks["trend_state"].iloc[-1]


def test_live_feed_publishes_wall_clock_ticks_and_new_symbols_start_ticking() -> None:
    feed = SimulatedFeed(5, rate=50.0, interval=0.02, seed=3)
    batches: list[pd.DataFrame] = []
    new_seen = threading.Event()
    lock = threading.Lock()

    def listen(ticks: pd.DataFrame) -> None:
        with lock:
            batches.append(ticks)
        if (ticks["symbol"] == "NEW").any():
            new_seen.set()

    feed.add_listener(listen)
    before = pd.Timestamp.now(tz="UTC")
    with feed:
        assert feed.status.state == "running"
        feed.subscribe("NEW")
        assert new_seen.wait(30), feed.status.summary()
    after = pd.Timestamp.now(tz="UTC")
    assert not feed.running
    with lock:
        ticks = pd.concat(batches, ignore_index=True)
    assert ticks["ts"].is_monotonic_increasing
    assert before <= ticks["ts"].iloc[0] and ticks["ts"].iloc[-1] <= after
    quote = feed.cache.get("NEW")
    assert quote is not None and quote.prev_close > 0
    assert len(feed.regime()) == 6


def test_unsubscribed_symbols_stop_ticking() -> None:
    feed = SimulatedFeed(["A", "B"], seed=0)
    feed.generate(10)
    feed.unsubscribe("B")
    assert set(feed.generate(10)["symbol"]) == {"A"}
    feed.subscribe("B")
    assert set(feed.generate(10)["symbol"]) == {"A", "B"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 0.0}, "rate"),
        ({"interval": -1.0}, "interval"),
        ({"seed": -1}, "seed"),
        ({"correlation": -0.9}, "positive semi-definite"),
        ({"start_prices": {"SIM000": 0.0}}, "start_prices"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimulatedFeed(3, **kwargs)  # type: ignore[arg-type]


def test_live_prev_close_rolls_to_each_simulated_day_close() -> None:
    # 10 steps of 0.02 s per simulated day: a new day every 0.2 s of wall time.
    feed = SimulatedFeed(["A", "B"], rate=50.0, day_seconds=0.2, interval=0.02, seed=9)
    batches: list[pd.DataFrame] = []
    third_day = threading.Event()
    lock = threading.Lock()

    def listen(ticks: pd.DataFrame) -> None:
        with lock:
            batches.append(ticks)
            n = sum(len(b) for b in batches)
        if n >= 2 * 10 * 3 + 2:  # the first tick of day 3 is out
            third_day.set()

    feed.add_listener(listen)
    with feed:
        assert third_day.wait(60), feed.status.summary()
    with lock:
        ticks = pd.concat(batches, ignore_index=True)
    day = ticks.groupby("symbol").cumcount() // 10  # one tick per symbol per step
    last_day = int(day.max())
    assert last_day >= 3
    for symbol in ("A", "B"):
        closes = ticks[(ticks["symbol"] == symbol) & (day == last_day - 1)]["price"]
        quote = feed.cache.get(symbol)
        assert quote is not None
        assert quote.prev_close == closes.iloc[-1]
        assert quote.change == quote.price - quote.prev_close


def test_subscribing_past_the_correlation_bound_is_refused_and_generate_waits() -> None:
    feed = SimulatedFeed(4, correlation=-0.3)  # -1/(n-1) >= -0.3 while n <= 4
    with pytest.raises(ValueError, match="positive semi-definite"):
        feed.subscribe("EXTRA")
    assert feed.symbols == ["SIM000", "SIM001", "SIM002", "SIM003"]
    with feed, pytest.raises(RuntimeError, match="stop it"):
        feed.generate(5)
