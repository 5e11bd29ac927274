"""The vectorbt engine agrees with an independent reference, and handles the known pitfalls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import run
from quantdesk.data import simulate
from quantdesk.portfolio import vol_target_weights

from .reference import reference_backtest


@pytest.fixture(scope="module")
def market():
    return simulate(n_symbols=20, n_days=600, seed=21)


def panel(market, field: str = "close") -> pd.DataFrame:
    wide = market.bars.pivot(index="ts", columns="symbol", values=field)
    wide.columns.name = None
    return wide


def assert_agrees(close, weights, **costs) -> None:
    result = run(close, weights, **costs)
    equity, units, total_costs = reference_backtest(close, weights, **costs)
    rel = (result.equity - equity).abs() / equity
    assert rel.max() < 1e-8, f"max relative gap {rel.max():.2e} at {rel.idxmax()}"
    pd.testing.assert_frame_equal(result.positions, units, check_names=False, rtol=1e-8, atol=1e-6)
    assert result.costs["total"].sum() == pytest.approx(total_costs, rel=1e-8, abs=1e-6)
    # per-asset P&L adds up to the change in portfolio value
    pnl = result.asset_pnl.sum(axis=1)
    np.testing.assert_allclose(pnl.iloc[1:], result.equity.diff().iloc[1:], rtol=1e-7, atol=1e-4)


def test_single_asset_random_weights(market) -> None:
    close = panel(market)[["SIM003"]]
    rng = np.random.default_rng(0)
    w = pd.DataFrame(rng.uniform(0, 1, close.shape), index=close.index, columns=close.columns)
    w[rng.random(close.shape) < 0.3] = np.nan  # hold on some bars
    assert_agrees(close, w)


def test_twenty_assets_long_short_with_costs(market) -> None:
    close = panel(market)
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 1, close.shape)
    w = pd.DataFrame(
        raw / np.abs(raw).sum(axis=1, keepdims=True), index=close.index, columns=close.columns
    )
    assert_agrees(close, w, commission_bps=5.0, slippage_bps=10.0)


def test_monthly_rebalance_with_leverage_cap(market) -> None:
    close = panel(market).iloc[:, :10]
    rets = np.log(close).diff()
    signal = np.sign(rets.rolling(60).sum())
    vol = rets.rolling(20).std() * np.sqrt(252)
    w = vol_target_weights(signal, vol, target_vol=0.4, max_gross=0.9, rebalance="monthly")
    gross = w.abs().sum(axis=1)[w.notna().any(axis=1)]
    assert gross.max() == pytest.approx(0.9)  # the cap binds
    assert_agrees(close, w, commission_bps=2.0, slippage_bps=3.0)


def test_late_listing_is_not_traded_before_it_exists(market) -> None:
    close = panel(market).iloc[:, :3].copy()
    close.iloc[:50, 2] = np.nan
    w = pd.DataFrame(1 / 3, index=close.index, columns=close.columns)
    result = run(close, w)
    assert (result.positions.iloc[:50, 2] == 0).all()
    assert result.positions.iloc[50, 2] > 0
    assert_agrees(close, w)


def test_weights_are_fractions_of_total_value_not_free_cash(market) -> None:
    """vectorbt issues #713/#131: targets must be of total value."""
    close = panel(market).iloc[:, :4]
    w = pd.DataFrame(0.25, index=close.index, columns=close.columns)
    result = run(close, w)
    np.testing.assert_allclose(result.weights.to_numpy(), 0.25, rtol=1e-9)


def test_sells_settle_before_buys(market) -> None:
    """vectorbt issue #82: a full switch from A to B on one bar is not starved of cash."""
    close = panel(market).iloc[:, :2]
    w = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    w.iloc[0] = [1.0, 0.0]
    w.iloc[10] = [0.0, 1.0]
    result = run(close, w, commission_bps=10)
    assert result.positions.iloc[10, 0] == 0
    # B gets everything the sale raised, less the commission on both legs
    assert result.weights.iloc[10, 1] == pytest.approx(1.0, abs=1e-12)
    proceeds = result.positions.iloc[9, 0] * close.iloc[10, 0] * (1 - 1e-3)
    expected = (result.cash.iloc[9] + proceeds) / (1 + 1e-3)
    assert result.position_values.iloc[10, 1] == pytest.approx(expected, rel=1e-12)


def test_commission_is_exactly_bps_of_traded_value(market) -> None:
    close = panel(market).iloc[:, :5]
    w = pd.DataFrame(0.2, index=close.index, columns=close.columns)
    w.iloc[::2] = 0.1
    result = run(close, w, commission_bps=7.5)
    trades = result.trades
    np.testing.assert_allclose(trades["commission"], trades["value"] * 7.5e-4, rtol=1e-12)
    free = run(close, w)
    assert (result.equity <= free.equity + 1e-9).all()
    assert result.equity.iloc[-1] < free.equity.iloc[-1]


def test_volume_cap_limits_each_order(market) -> None:
    close = panel(market).iloc[:, :3]
    volume = panel(market, "volume").iloc[:, :3]
    w = pd.DataFrame(1 / 3, index=close.index, columns=close.columns)
    capped = run(close, w, volume=volume, max_volume_share=0.0001, init_cash=1e8)
    units = capped.trades.set_index(["ts", "symbol"])["units"]
    limit = volume.stack().rename_axis(["ts", "symbol"]).reindex(units.index) * 0.0001
    assert (units <= limit * (1 + 1e-12)).all()
    assert (units >= limit * (1 - 1e-9)).mean() > 0.5  # the cap binds on the build-up
    with pytest.raises(ValueError, match="needs the volume panel"):
        run(close, w, max_volume_share=0.1)


def test_lot_rounding(market) -> None:
    close = panel(market).iloc[:, :3]
    w = pd.DataFrame(0.3, index=close.index, columns=close.columns)
    result = run(close, w, lot_size=100)
    assert np.allclose(result.positions.to_numpy() % 100, 0)


def test_result_frames_and_summary(market) -> None:
    close = panel(market).iloc[:, :4]
    w = pd.DataFrame(0.25, index=close.index, columns=close.columns)
    result = run(close, w, commission_bps=1)
    assert result.returns.index.equals(close.index)
    assert result.exposure["gross"].iloc[-1] == pytest.approx(1.0, abs=1e-3)
    assert (result.turnover >= 0).all()
    assert set(result.trades.columns) >= {"ts", "symbol", "side", "units", "price", "commission"}
    assert "Sharpe" in result.summary()


def test_bad_input_is_a_clear_error(market) -> None:
    close = panel(market).iloc[:, :2]
    with pytest.raises(ValueError, match="same index"):
        run(close, close.iloc[:-1] * 0)
    with pytest.raises(ValueError, match="same columns"):
        run(close, close.rename(columns={"SIM000": "X"}) * 0)
