"""Regime analysis: transition matrix, durations and statistics by hand; figures render."""

from __future__ import annotations

import doctest

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from quantdesk.data.sources.simulator import simulate
from quantdesk.regimes import analysis
from quantdesk.regimes.analysis import (
    empirical_transition_matrix,
    expected_durations,
    price_by_regime_figure,
    regime_probability_figure,
    regime_stats,
)
from quantdesk.regimes.model import CELL_NAMES, STATE_COLUMNS

nan = np.nan
VOL = ("low", "medium", "high")
TREND = ("bearish", "neutral", "bullish")


def regime_frame(states: list[int], index: pd.DatetimeIndex) -> pd.DataFrame:
    """Return a filter-like frame whose probabilities put 0.92 on each day's state."""
    probs = np.full((len(states), 9), 0.01)
    probs[np.arange(len(states)), states] = 0.92
    frame = pd.DataFrame(probs, index=index, columns=list(STATE_COLUMNS))
    frame.insert(0, "state", states)
    frame.insert(1, "vol_label", [VOL[s // 3] for s in states])
    frame.insert(2, "trend_label", [TREND[s % 3] for s in states])
    return frame


def test_doctests() -> None:
    assert doctest.testmod(analysis, raise_on_error=False).failed == 0


def test_cell_names_are_the_model_contract() -> None:
    assert CELL_NAMES[0] == "low/bearish" and CELL_NAMES[8] == "high/bullish"
    assert [f"p_{c.replace('/', '_')}" for c in CELL_NAMES] == list(STATE_COLUMNS)


# Transition matrix and durations, by hand.


def test_transition_matrix_by_hand() -> None:
    # 0->0, 0->1, 1->1, 1->1, 1->8, 8->0
    tm = empirical_transition_matrix(pd.Series([0, 0, 1, 1, 1, 8, 0]))
    assert tm.shape == (9, 9)
    assert list(tm.index) == list(CELL_NAMES) and list(tm.columns) == list(CELL_NAMES)
    expected = np.full((9, 9), nan)
    expected[0] = [0.5, 0.5, 0, 0, 0, 0, 0, 0, 0]
    expected[1] = [0, 2 / 3, 0, 0, 0, 0, 0, 0, 1 / 3]
    expected[8] = [1, 0, 0, 0, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(tm.to_numpy(), expected)
    durations = expected_durations(tm)
    np.testing.assert_allclose(durations.iloc[[0, 1, 8]].to_numpy(), [2.0, 3.0, 1.0])
    assert durations.iloc[[2, 3, 4, 5, 6, 7]].isna().all()  # never left: unknown


def test_missing_state_breaks_the_chain() -> None:
    tm = empirical_transition_matrix(pd.Series([4, 4, nan, 2, 2]))
    # only 4->4 and 2->2 count; nothing into or out of the gap
    assert tm.loc["medium/neutral", "medium/neutral"] == 1.0
    assert tm.loc["low/bullish", "low/bullish"] == 1.0
    assert np.isinf(expected_durations(tm)["medium/neutral"])


def test_transition_matrix_accepts_a_regime_frame() -> None:
    index = pd.bdate_range("2024-01-01", periods=4, tz="UTC", name="ts")
    frame = regime_frame([3, 3, 5, 5], index)
    pd.testing.assert_frame_equal(
        empirical_transition_matrix(frame), empirical_transition_matrix(frame["state"])
    )
    with pytest.raises(ValueError, match="cell ids"):
        empirical_transition_matrix(pd.Series([0, 9]))


def test_expected_durations_of_an_array() -> None:
    out = expected_durations(np.array([[0.9, 0.1], [0.5, 0.5]]))
    np.testing.assert_allclose(out.to_numpy(), [10.0, 2.0])
    with pytest.raises(ValueError, match="square"):
        expected_durations(np.ones((2, 3)))


def test_empirical_matrix_recovers_the_simulator_chain() -> None:
    # An independent source: the simulator's two independent chains make the joint
    # chain's matrix the Kronecker product of theirs.
    market = simulate(n_symbols=1, n_days=60_000, seed=11)
    true = market.regimes
    states = pd.Series(true["vol_state"].to_numpy() * 3 + true["trend_state"].to_numpy())
    tm = empirical_transition_matrix(states)
    expected = np.kron(
        np.asarray(market.params.vol_transition), np.asarray(market.params.trend_transition)
    )
    np.testing.assert_allclose(tm.to_numpy(), expected, atol=0.01)
    theory = 1.0 / (1.0 - np.diag(expected))
    np.testing.assert_allclose(expected_durations(tm).to_numpy(), theory, rtol=0.25)


# Per-regime statistics, by hand.


def test_regime_stats_by_hand() -> None:
    index = pd.bdate_range("2024-01-01", periods=6, tz="UTC", name="ts")
    returns = pd.Series([0.01, 0.03, -0.02, 0.00, 0.04, nan], index=index)
    regimes = regime_frame([0, 0, 8, 8, 8, 0], index)
    stats = regime_stats(returns, regimes, periods_per_year=4)
    assert list(stats.index) == list(CELL_NAMES)
    assert list(stats.columns) == [
        "state",
        "vol_label",
        "trend_label",
        "count",
        "frequency",
        "ann_return",
        "ann_vol",
        "sharpe",
    ]
    low = stats.loc["low/bearish"]
    assert low["count"] == 2 and low["frequency"] == pytest.approx(2 / 5)
    assert low["ann_return"] == pytest.approx(0.02 * 4)
    sd = np.std([0.01, 0.03], ddof=1)
    assert low["ann_vol"] == pytest.approx(sd * 2)
    assert low["sharpe"] == pytest.approx(0.08 / (sd * 2))
    high = stats.loc["high/bullish"]
    assert high["count"] == 3 and high["ann_return"] == pytest.approx(np.mean([-0.02, 0, 0.04]) * 4)
    assert (high["vol_label"], high["trend_label"], high["state"]) == ("high", "bullish", 8)
    empty = stats.loc["medium/neutral"]
    assert empty["count"] == 0 and np.isnan(empty["ann_return"]) and np.isnan(empty["sharpe"])


def test_regime_stats_lag_pairs_each_return_with_the_previous_regime() -> None:
    index = pd.RangeIndex(4)
    returns = pd.Series([0.5, 0.01, 0.02, 0.03], index=index)
    states = pd.Series([4, 0, 0, 4], index=index)
    stats = regime_stats(returns, states, periods_per_year=1, lag=1)
    # returns 1, 2, 3 paired with states 4, 0, 0
    assert stats.loc["medium/neutral", "count"] == 1
    assert stats.loc["medium/neutral", "ann_return"] == pytest.approx(0.01)
    assert stats.loc["low/bearish", "ann_return"] == pytest.approx(0.025)


def test_regime_stats_invariances_and_long_frames() -> None:
    rng = np.random.default_rng(5)
    index = pd.bdate_range("2020-01-01", periods=300, tz="UTC", name="ts")
    returns = pd.Series(rng.normal(0.0005, 0.01, 300), index=index)
    states = list(rng.integers(0, 9, 300))
    regimes = regime_frame(states, index)
    base = regime_stats(returns, regimes)
    scaled = regime_stats(returns * 3, regimes)
    np.testing.assert_allclose(scaled["sharpe"], base["sharpe"])
    np.testing.assert_allclose(scaled["ann_vol"], base["ann_vol"] * 3)
    assert base["frequency"].sum() == pytest.approx(1.0)
    # a long store-style frame (ts column, one symbol) gives the same numbers
    long = regimes.reset_index().assign(symbol="X")
    pd.testing.assert_frame_equal(regime_stats(returns, long), base)
    with pytest.raises(ValueError, match="several symbols"):
        regime_stats(returns, pd.concat([long, long.assign(symbol="Y")]))


# Figures.


def renders(fig: object) -> None:
    from bokeh.models import Model

    assert isinstance(hv.render(fig, backend="bokeh"), Model)


def test_price_by_regime_figure_colours_each_day_by_its_regime() -> None:
    index = pd.bdate_range("2024-01-01", periods=6, tz="UTC", name="ts")
    close = pd.Series([10.0, 11, 12, 11, 10, 9], index=index)
    regimes = regime_frame([0, 0, 4, 4, 8, 8], index).iloc[1:]  # first day unlabelled
    fig = price_by_regime_figure(close, regimes)
    layers = {el.label: el for el in fig.values()}
    assert set(layers) == {"Price", "Regime"}
    assert len(layers["Price"]) == 6
    points = layers["Regime"].dframe()
    assert points["regime"].tolist() == [
        "low/bearish",
        "medium/neutral",
        "medium/neutral",
        "high/bullish",
        "high/bullish",
    ]
    renders(fig)
    by_vol = price_by_regime_figure(close, regimes.reset_index(), color_by="vol")
    assert {el.label: el for el in by_vol.values()}["Regime"].dframe()["regime"].tolist() == [
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    renders(by_vol)
    with pytest.raises(ValueError, match="color_by"):
        price_by_regime_figure(close, regimes, color_by="sector")  # type: ignore[arg-type]


def test_regime_probability_figure_stacks_to_one() -> None:
    rng = np.random.default_rng(2)
    index = pd.bdate_range("2024-01-01", periods=50, tz="UTC", name="ts")
    regimes = regime_frame(list(rng.integers(0, 9, 50)), index)
    fig = regime_probability_figure(regimes)
    areas = list(fig.values())
    assert [a.label for a in areas] == list(CELL_NAMES)
    top = areas[-1].dframe()
    # each stacked area carries its upper edge; the last one's is the total, 1 every day
    np.testing.assert_allclose(top["probability"].to_numpy(), 1.0)
    renders(fig)
    with pytest.raises(ValueError, match="probability column"):
        regime_probability_figure(regimes.drop(columns="p_low_bearish"))


def test_regime_stats_annualise_by_the_bar_length() -> None:
    # Hourly FX bars, 24 a day on weekdays: 24 x 260 a year, by hand (issue 10, bug 3).
    idx = pd.date_range("2024-01-01", periods=24 * 7 * 4, freq="h", tz="UTC")
    idx = idx[idx.day_of_week < 5]
    rng = np.random.default_rng(3)
    returns = pd.Series(rng.normal(0.0001, 0.001, len(idx)), index=idx)
    states = pd.Series(np.where(np.arange(len(idx)) % 2 == 0, 0, 8), index=idx)
    stats = regime_stats(returns, states)
    low = returns[states == 0]
    assert stats.loc["low/bearish", "ann_vol"] == pytest.approx(low.std() * np.sqrt(6240))
    assert stats.loc["low/bearish", "ann_return"] == pytest.approx(low.mean() * 6240)
    with pytest.raises(ValueError, match="pass periods_per_year="):
        regime_stats(returns.reset_index(drop=True), states.reset_index(drop=True))
