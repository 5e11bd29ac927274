"""Tests for the regime-switching market simulator.

Expected values come from the configured parameters (the inputs), never from snapshots of
the output; tolerances are computed from the sample size so that a wrong model fails.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.schemas import BAR_COLUMNS, TICK_COLUMNS
from quantdesk.data.sources.simulator import (
    METADATA_COLUMNS,
    TREND_LABELS,
    TRUE_REGIME_COLUMNS,
    VOL_LABELS,
    RegimeParams,
    SimulatedMarket,
    simulate,
)


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return simulate(n_symbols=12, n_days=600, seed=11)


@pytest.fixture(scope="module")
def independent_market() -> SimulatedMarket:
    """Independent symbols (own regime path, uncorrelated shocks): i.i.d. samples per state."""
    return simulate(n_symbols=60, n_days=3000, seed=5, correlation=0.0, regime_scope="symbol")


@pytest.fixture(scope="module")
def tick_market() -> SimulatedMarket:
    return simulate(n_symbols=4, n_days=8, seed=3)


@pytest.fixture(scope="module")
def ticks(tick_market: SimulatedMarket) -> pd.DataFrame:
    return tick_market.ticks(ticks_per_day=400)


def log_returns(market: SimulatedMarket) -> pd.DataFrame:
    """Wide close-to-close log returns (the first day, which has no previous close, is dropped)."""
    close = market.bars.pivot(index="ts", columns="symbol", values="close")
    return np.log(close).diff().iloc[1:]


def wide_state(market: SimulatedMarket, column: str) -> pd.DataFrame:
    return market.regimes.pivot(index="ts", columns="symbol", values=column).iloc[1:]


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames() -> None:
    a = simulate(n_symbols=4, n_days=50, seed=42)
    b = simulate(n_symbols=4, n_days=50, seed=42)
    pd.testing.assert_frame_equal(a.bars, b.bars, check_exact=True)
    pd.testing.assert_frame_equal(a.regimes, b.regimes, check_exact=True)
    pd.testing.assert_frame_equal(
        a.ticks(ticks_per_day=50), b.ticks(ticks_per_day=50), check_exact=True
    )


def test_different_seed_gives_different_frames() -> None:
    a = simulate(n_symbols=4, n_days=200, seed=1)
    b = simulate(n_symbols=4, n_days=200, seed=2)
    assert not np.allclose(a.bars["close"], b.bars["close"])
    assert not a.regimes["vol_state"].equals(b.regimes["vol_state"])
    ta = a.ticks(end="2010-01-04", ticks_per_day=50)
    tb = b.ticks(end="2010-01-04", ticks_per_day=50)
    assert not np.allclose(ta["price"], tb["price"])


def test_correlation_does_not_change_regime_paths() -> None:
    # Independent random streams: changing the shock correlation keeps the regimes.
    a = simulate(n_symbols=5, n_days=300, seed=9, correlation=0.0)
    b = simulate(n_symbols=5, n_days=300, seed=9, correlation=0.8)
    pd.testing.assert_frame_equal(a.regimes, b.regimes)


# --- layout -----------------------------------------------------------------------------------


def test_bars_layout(market: SimulatedMarket) -> None:
    bars = market.bars
    assert tuple(bars.columns) == BAR_COLUMNS
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert (bars["ts"] == bars["ts"].dt.normalize()).all()  # session date at 00:00 UTC
    assert market.symbols == [f"SIM{i:03d}" for i in range(12)]
    assert list(bars["symbol"].unique()) == market.symbols
    expected_dates = pd.bdate_range("2010-01-04", periods=600, tz="UTC")
    for _, group in bars.groupby("symbol"):
        assert list(group["ts"]) == list(expected_dates)
    assert list(bars.index) == list(range(len(bars)))
    assert bars.sort_values(["symbol", "ts"]).index.equals(bars.index)


def test_symbol_names_widen_past_one_thousand() -> None:
    market = simulate(n_symbols=1001, n_days=2, seed=0)
    assert market.symbols[0] == "SIM0000"
    assert market.symbols[-1] == "SIM1000"


def test_regimes_layout(market: SimulatedMarket) -> None:
    regimes = market.regimes
    assert tuple(regimes.columns) == TRUE_REGIME_COLUMNS
    assert regimes["ts"].equals(market.bars["ts"])
    assert regimes["symbol"].equals(market.bars["symbol"])
    assert set(regimes["vol_state"]) <= {0, 1, 2}
    assert set(regimes["trend_state"]) <= {0, 1, 2}
    vol_names = dict(enumerate(["low", "medium", "high"]))
    trend_names = dict(enumerate(["bearish", "neutral", "bullish"]))
    assert (regimes["vol_label"] == regimes["vol_state"].map(vol_names)).all()
    assert (regimes["trend_label"] == regimes["trend_state"].map(trend_names)).all()
    assert VOL_LABELS == ("low", "medium", "high")
    assert TREND_LABELS == ("bearish", "neutral", "bullish")


def test_metadata_and_summary(market: SimulatedMarket) -> None:
    meta = market.metadata()
    assert tuple(meta.columns) == METADATA_COLUMNS
    assert list(meta["symbol"]) == market.symbols
    assert set(meta["asset_class"]) == {"equity"}
    assert set(meta["currency"]) == {"USD"}
    assert set(meta["timezone"]) == {"America/New_York"}
    assert set(meta["source"]) == {"simulator"}
    text = market.summary()
    assert "seed=11" in text and "12 symbols x 600 days" in text
    assert repr(market) == text.splitlines()[0]
    assert market.seed == 11
    assert market.params == RegimeParams()


# --- bar validity -----------------------------------------------------------------------------


@pytest.mark.parametrize("regime_scope", ["market", "symbol"])
def test_every_bar_is_valid(regime_scope: str) -> None:
    stressed = RegimeParams(vol_levels=(0.3, 0.8, 2.0))
    for params in (RegimeParams(), stressed):
        bars = simulate(50, 1000, seed=4, regime_scope=regime_scope, params=params).bars
        values = bars[["open", "high", "low", "close", "volume"]].to_numpy()
        assert np.isfinite(values).all()
        o, h, lo, c, v = values.T
        assert (lo > 0).all()
        assert (h >= lo).all()
        assert (h >= o).all() and (h >= c).all()
        assert (lo <= o).all() and (lo <= c).all()
        assert (v >= 0).all()
        assert (v == np.round(v)).all()


def test_open_gaps_from_previous_close(market: SimulatedMarket) -> None:
    bars = market.bars
    prev_close = bars.groupby("symbol")["close"].shift(1)
    gap = np.log(bars["open"] / prev_close).dropna()
    day = np.log(bars["close"] / prev_close).dropna()
    # Overnight gaps are small next to the close-to-close move (20% of the variance).
    share = gap.var() / day.var()
    assert 0.1 < share < 0.3


# --- regimes drive the returns ----------------------------------------------------------------


def test_realised_vol_per_vol_state_matches_configuration(
    independent_market: SimulatedMarket,
) -> None:
    m = independent_market
    p = m.params
    ret = log_returns(m)
    vol_state = wide_state(m, "vol_state").to_numpy()
    trend_state = wide_state(m, "trend_state").to_numpy()
    # Take out the known drift and per-symbol scale: what is left is vol_level * N(0, 1).
    drift = np.asarray(p.drifts)[trend_state] / p.periods_per_year
    scale = m.vol_scales.reindex(ret.columns).to_numpy()
    assert ((scale >= 0.7) & (scale <= 1.4)).all()
    unit = (ret.to_numpy() - drift) / scale
    realised = []
    for k, level in enumerate(p.vol_levels):
        sample = unit[vol_state == k]
        n = sample.size
        assert n > 5000
        vol = math.sqrt(np.mean(sample**2) * p.periods_per_year)
        # The sample sd of a normal has standard error sigma / sqrt(2n).
        assert abs(vol - level) < 5 * level / math.sqrt(2 * n), (k, vol, level)
        realised.append(vol)
    assert realised[0] < realised[1] < realised[2]


def test_mean_return_per_trend_state_matches_configuration(
    independent_market: SimulatedMarket,
) -> None:
    m = independent_market
    p = m.params
    ret = log_returns(m).to_numpy()
    trend_state = wide_state(m, "trend_state").to_numpy()
    means = []
    for k, drift in enumerate(p.drifts):
        sample = ret[trend_state == k]
        mean = sample.mean()
        se = sample.std() / math.sqrt(sample.size)
        assert abs(mean - drift / p.periods_per_year) < 5 * se, (k, mean * 252, drift)
        means.append(mean)
    assert means[0] < means[1] < means[2]


def test_volume_is_higher_in_high_vol_states(independent_market: SimulatedMarket) -> None:
    bars, regimes = independent_market.bars, independent_market.regimes
    # Compare within symbols (base volumes differ across symbols by design).
    relative = bars["volume"] / bars.groupby("symbol")["volume"].transform("median")
    by_state = relative.groupby(regimes["vol_state"]).median()
    assert by_state[0] < by_state[1] < by_state[2]


@pytest.mark.parametrize("correlation", [0.0, 0.3, 0.7, -0.1])
def test_realised_correlation_matches_configuration(correlation: float) -> None:
    n_symbols, n_days = 8, 3000
    market = simulate(n_symbols, n_days, seed=21, correlation=correlation)
    corr = log_returns(market).corr().to_numpy()
    pairs = corr[np.triu_indices(n_symbols, 1)]
    # Standard error of a sample correlation is about (1 - rho^2) / sqrt(T); regime-driven
    # heteroskedasticity inflates it, hence the generous per-pair bound.
    se = (1 - correlation**2) / math.sqrt(n_days)
    assert np.abs(pairs - correlation).max() < 6 * se
    assert abs(pairs.mean() - correlation) < 3 * se


def test_boundary_correlations_are_accepted() -> None:
    ret = log_returns(simulate(5, 300, seed=0, correlation=1.0))
    # Perfectly correlated shocks and one shared regime path: returns differ only by scale.
    assert (ret.corr().to_numpy() > 0.999).all()
    ret = log_returns(simulate(5, 300, seed=0, correlation=-0.25))
    pairs = ret.corr().to_numpy()[np.triu_indices(5, 1)]
    assert abs(pairs.mean() + 0.25) < 0.05


def spell_lengths(states: np.ndarray) -> dict[int, list[int]]:
    """Lengths of complete spells per state, per column; spells cut by either end are left out."""
    out: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for path in states.T:
        change = np.flatnonzero(np.diff(path)) + 1
        starts = np.r_[0, change]
        ends = np.r_[change, len(path)]
        for s, e in zip(starts[1:-1], ends[1:-1], strict=True):
            out[int(path[s])].append(int(e - s))
    return out


@pytest.mark.parametrize(
    ("params", "chain"),
    [
        (RegimeParams(), "vol"),
        (RegimeParams(), "trend"),
        (RegimeParams.from_durations(vol_durations=(5, 12, 3)), "vol"),
    ],
)
def test_mean_regime_duration_is_one_over_one_minus_p(
    independent_market: SimulatedMarket, params: RegimeParams, chain: str
) -> None:
    if params == independent_market.params:
        m = independent_market
    else:
        m = simulate(60, 3000, seed=5, correlation=0.0, regime_scope="symbol", params=params)
    matrix = np.asarray(params.vol_transition if chain == "vol" else params.trend_transition)
    states = m.regimes.pivot(index="ts", columns="symbol", values=f"{chain}_state").to_numpy()
    n_days = states.shape[0]
    for k, lengths in spell_lengths(states).items():
        expected = 1.0 / (1.0 - matrix[k, k])
        observed = np.mean(lengths)
        # Geometric spells: sd ~ expected; dropping spells cut by the ends biases the mean
        # down by about expected / n_days of itself.
        tol = 5 * expected / math.sqrt(len(lengths)) + expected**2 / n_days
        assert abs(observed - expected) < tol, (chain, k, observed, expected)


def test_expected_durations_property() -> None:
    params = RegimeParams.from_durations(vol_durations=(40, 30, 20), trend_durations=(90, 60, 90))
    assert params.expected_vol_durations == pytest.approx((40, 30, 20))
    assert params.expected_trend_durations == pytest.approx((90, 60, 90))
    defaults = RegimeParams()
    assert all(30 <= d <= 60 for d in defaults.expected_vol_durations)
    assert all(60 <= d <= 120 for d in defaults.expected_trend_durations)


def test_market_scope_shares_one_regime_path(market: SimulatedMarket) -> None:
    for column in ("vol_state", "trend_state"):
        per_day = market.regimes.groupby("ts")[column].nunique()
        assert (per_day == 1).all()
    # And the path does switch.
    assert market.regimes["vol_state"].nunique() > 1


def test_symbol_scope_draws_a_path_per_symbol() -> None:
    market = simulate(10, 600, seed=11, regime_scope="symbol")
    for column in ("vol_state", "trend_state"):
        wide = market.regimes.pivot(index="ts", columns="symbol", values=column)
        assert (wide.nunique(axis=1) > 1).mean() > 0.5
        for a in wide.columns[1:]:
            assert not wide[a].equals(wide[wide.columns[0]])


# --- ticks ------------------------------------------------------------------------------------


def test_ticks_layout(tick_market: SimulatedMarket, ticks: pd.DataFrame) -> None:
    assert tuple(ticks.columns) == TICK_COLUMNS
    assert str(ticks["ts"].dtype) == "datetime64[ns, UTC]"
    assert ticks["size"].dtype == np.int64
    assert len(ticks) == len(tick_market.bars) * 400
    assert ticks.groupby(["symbol", ticks["ts"].dt.normalize()]).size().eq(400).all()


def test_ticks_lie_in_the_session_of_their_day(ticks: pd.DataFrame) -> None:
    day = ticks["ts"].dt.normalize()
    since_midnight = ticks["ts"] - day
    assert (since_midnight >= pd.Timedelta("14:30:00")).all()
    assert (since_midnight < pd.Timedelta("21:00:00")).all()
    assert set(day) <= set(pd.bdate_range("2010-01-04", periods=8, tz="UTC"))


def test_ticks_sorted_by_ts_then_symbol(tick_market: SimulatedMarket, ticks: pd.DataFrame) -> None:
    rank = ticks["symbol"].map({s: i for i, s in enumerate(tick_market.symbols)})
    key = pd.DataFrame({"ts": ticks["ts"], "rank": rank})
    assert key.sort_values(["ts", "rank"], kind="stable").index.equals(ticks.index)


def test_ticks_aggregate_to_the_daily_bars(
    tick_market: SimulatedMarket, ticks: pd.DataFrame
) -> None:
    grouped = ticks.groupby(["symbol", ticks["ts"].dt.normalize().rename("day")], sort=True)
    agg = pd.DataFrame(
        {
            "open": grouped["price"].first(),
            "high": grouped["price"].max(),
            "low": grouped["price"].min(),
            "close": grouped["price"].last(),
            "volume": grouped["size"].sum().astype(float),
        }
    ).reset_index()
    agg = agg.rename(columns={"day": "ts"})[list(BAR_COLUMNS)]
    agg["symbol"] = agg["symbol"].astype(tick_market.bars["symbol"].dtype)
    pd.testing.assert_frame_equal(agg, tick_market.bars, check_exact=True)
    assert (ticks["size"] > 0).all()


def test_ticks_reproduce_any_valid_bars(tick_market: SimulatedMarket) -> None:
    # Bars whose prices are not exp() outputs (cents): anchors must still be hit exactly.
    bars = tick_market.bars.copy()
    bars[["open", "high", "low", "close"]] = bars[["open", "high", "low", "close"]].round(2)
    cents = dataclasses.replace(tick_market, bars=bars)
    ticks = cents.ticks(ticks_per_day=50)
    grouped = ticks.groupby(["symbol", ticks["ts"].dt.normalize()])
    np.testing.assert_array_equal(grouped["price"].first().to_numpy(), bars["open"].to_numpy())
    np.testing.assert_array_equal(grouped["price"].max().to_numpy(), bars["high"].to_numpy())
    np.testing.assert_array_equal(grouped["price"].min().to_numpy(), bars["low"].to_numpy())
    np.testing.assert_array_equal(grouped["price"].last().to_numpy(), bars["close"].to_numpy())


def test_ticks_of_a_symbol_day_do_not_depend_on_the_request(
    tick_market: SimulatedMarket, ticks: pd.DataFrame
) -> None:
    part = tick_market.ticks(
        symbols=["SIM002"], start="2010-01-06", end="2010-01-07", ticks_per_day=400
    )
    day = ticks["ts"].dt.normalize()
    expected = ticks[
        (ticks["symbol"] == "SIM002")
        & (day >= pd.Timestamp("2010-01-06", tz="UTC"))
        & (day <= pd.Timestamp("2010-01-07", tz="UTC"))
    ].reset_index(drop=True)
    assert len(part) == 800
    pd.testing.assert_frame_equal(part, expected, check_exact=True)


def test_ticks_move_between_the_anchors(ticks: pd.DataFrame) -> None:
    # A real intraday path, not a flat line pinned at the extremes.
    per_day = ticks.groupby(["symbol", ticks["ts"].dt.normalize()])["price"]
    assert (per_day.nunique() > 300).all()


def test_ticks_with_few_ticks_per_day_still_match(tick_market: SimulatedMarket) -> None:
    few = tick_market.ticks(symbols="SIM000", ticks_per_day=4)
    grouped = few.groupby(few["ts"].dt.normalize())["price"]
    bars = tick_market.bars[tick_market.bars["symbol"] == "SIM000"]
    np.testing.assert_array_equal(grouped.max().to_numpy(), bars["high"].to_numpy())
    np.testing.assert_array_equal(grouped.min().to_numpy(), bars["low"].to_numpy())


def test_ticks_outside_the_market_are_empty(tick_market: SimulatedMarket) -> None:
    empty = tick_market.ticks(start="2030-01-01")
    assert tuple(empty.columns) == TICK_COLUMNS
    assert empty.empty


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": ["NOPE"]}, "unknown symbols"),
        ({"ticks_per_day": 3}, "ticks_per_day"),
        ({"ticks_per_day": 2.5}, "ticks_per_day"),
    ],
)
def test_ticks_reject_bad_arguments(
    tick_market: SimulatedMarket, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tick_market.ticks(**kwargs)  # type: ignore[arg-type]


# --- argument checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_symbols": 0}, "n_symbols must be a positive int"),
        ({"n_symbols": -3}, "n_symbols must be a positive int"),
        ({"n_days": 0}, "n_days must be a positive int"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"n_symbols": 5, "correlation": 1.5}, r"correlation=1.5 .* \[-0.25, 1\]"),
        ({"n_symbols": 5, "correlation": -0.3}, "not positive semi-definite"),
        ({"correlation": float("nan")}, "not positive semi-definite"),
        ({"regime_scope": "sector"}, "regime_scope must be 'market' or 'symbol'"),
    ],
)
def test_simulate_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vol_levels": (0.1, -0.2, 0.3)}, "vol_levels must be positive"),
        ({"vol_transition": ((0.9, 0.1, 0.0),) * 2}, "3x3"),
        ({"trend_transition": ((0.9, 0.2, 0.0),) * 3}, "summing to 1"),
        ({"vol_scale_range": (1.4, 0.7)}, "vol_scale_range"),
        ({"overnight_variance_share": 1.0}, "overnight_variance_share"),
    ],
)
def test_regime_params_reject_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegimeParams(**kwargs)  # type: ignore[arg-type]


def test_from_durations_rejects_durations_below_one_day() -> None:
    with pytest.raises(ValueError, match="duration must be >= 1"):
        RegimeParams.from_durations(vol_durations=(0.5, 10, 10))
