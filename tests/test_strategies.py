"""The vol-targeted trend strategy: causal, lagged, and it hits its volatility target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import run
from quantdesk.data import simulate
from quantdesk.strategies import ma_crossover_weights, vol_target_trend


@pytest.fixture(scope="module")
def close() -> pd.DataFrame:
    bars = simulate(n_symbols=8, n_days=900, seed=5).bars
    wide = bars.pivot(index="ts", columns="symbol", values="close")
    wide.columns.name = None
    return wide


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"rebalance": "weekly", "band": 0.02},
        {"rebalance": "monthly", "long_only": True, "lag": 0},
    ],
)
def test_causal(close: pd.DataFrame, kwargs: dict) -> None:
    full = vol_target_trend(close, **kwargs)
    for cut in (300, 611, 899):
        pd.testing.assert_frame_equal(vol_target_trend(close.iloc[:cut], **kwargs), full.iloc[:cut])


def test_lag_shifts_decisions(close: pd.DataFrame) -> None:
    now = vol_target_trend(close, lag=0)
    later = vol_target_trend(close, lag=2)
    pd.testing.assert_frame_equal(later.iloc[300:], now.shift(2).iloc[300:])


def test_equal_risk_budget_and_caps(close: pd.DataFrame) -> None:
    w = vol_target_trend(close, target_vol=0.5, max_weight=0.3, max_gross=1.5)
    assert (w.abs() <= 0.3 + 1e-12).all().all()
    assert (w.abs().sum(axis=1) <= 1.5 + 1e-12).all()
    assert (w.iloc[:253] == 0).all().all()  # flat until the longest lookback is known


def test_hits_its_volatility_target() -> None:
    """A steadily trending asset with 20% vol, targeted at 10%, realises about 10%."""
    rng = np.random.default_rng(0)
    n = 3000
    idx = pd.bdate_range("2000-01-03", periods=n, tz="UTC")
    r = 0.0015 + 0.20 / np.sqrt(252) * rng.standard_normal(n)
    close = pd.DataFrame({"X": 100 * np.exp(np.cumsum(r))}, index=idx)
    # A 252-bar lookback keeps the trend signal at +1 almost always, isolating the sizing.
    w = vol_target_trend(close, lookbacks=(252,), target_vol=0.10)
    assert (w["X"].iloc[300:] > 0).mean() > 0.95
    result = run(close, w)
    realised = result.returns.iloc[300:].std() * np.sqrt(252)
    assert realised == pytest.approx(0.10, rel=0.12)
    assert w["X"].iloc[300:].mean() == pytest.approx(0.5, rel=0.1)


def test_ma_crossover_weights_hand_example() -> None:
    close = pd.DataFrame({"A": [1.0, 2, 3, 2, 1, 1, 4]})
    w = ma_crossover_weights(close, fast=1, slow=3)
    # slow MA: nan, nan, 2, 2.33, 2, 1.33, 2 ; fast = close; orders only on changes
    np.testing.assert_array_equal(w["A"], [0.0, np.nan, 1.0, 0.0, np.nan, np.nan, 1.0])
    late = ma_crossover_weights(close, fast=1, slow=3, lag=1)
    np.testing.assert_array_equal(late["A"], [0.0, np.nan, np.nan, 1.0, 0.0, np.nan, np.nan])
