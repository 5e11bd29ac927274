"""Sweeps broadcast through vectorbt match single runs; walk-forward never peeks ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import run
from quantdesk.backtest.metrics import sharpe
from quantdesk.backtest.sweeps import sweep, walk_forward
from quantdesk.data import simulate
from quantdesk.strategies import vol_target_trend


@pytest.fixture(scope="module")
def close() -> pd.DataFrame:
    wide = simulate(n_symbols=6, n_days=1100, seed=9).bars.pivot(
        index="ts", columns="symbol", values="close"
    )
    wide.columns.name = None
    return wide


def test_sweep_equals_separate_runs(close: pd.DataFrame) -> None:
    result = sweep(
        close, lookbacks=[21, 126], target_vols=[0.1, 0.3], commission_bps=2, slippage_bps=1
    )
    assert len(result.table) == 4
    assert set(result.table.columns) >= {"lookback", "target_vol", "Sharpe", "CAGR", "Max drawdown"}
    for lookback, tv in [(21, 0.3), (126, 0.1)]:
        w = vol_target_trend(close, lookbacks=(lookback,), target_vol=tv)
        single = run(close, w, commission_bps=2, slippage_bps=1)
        np.testing.assert_allclose(result.equity[(lookback, tv)], single.equity, rtol=1e-10)
        row = result.table.query("lookback == @lookback and target_vol == @tv").iloc[0]
        assert row["Sharpe"] == pytest.approx(sharpe(single.returns))
    assert result.best()["Sharpe"] == result.table["Sharpe"].max()
    import holoviews as hv

    assert isinstance(result.heatmap(), hv.HeatMap)


def test_a_sweep_on_threads_equals_one_thread(close: pd.DataFrame) -> None:
    # small chunks (one combination each) so that four threads share nine of them
    grid = {"lookbacks": [21, 63, 126], "target_vols": [0.1, 0.2, 0.3], "chunk_cells": 1}
    one = sweep(close, threads=1, **grid)
    four = sweep(close, threads=4, **grid)
    pd.testing.assert_frame_equal(one.equity, four.equity, check_exact=True)
    pd.testing.assert_frame_equal(one.table, four.table, check_exact=True)


def test_walk_forward_chooses_in_sample_best(close: pd.DataFrame) -> None:
    wf = walk_forward(close, lookbacks=[21, 63, 126], target_vols=[0.1, 0.2], train=300, test=150)
    folds = wf.folds
    assert len(folds) >= 3
    assert (folds["test_start"].iloc[1:].to_numpy() > folds["test_end"].iloc[:-1].to_numpy()).all()
    for _, fold in folds.iterrows():
        train = wf.sweep.returns.loc[fold["train_start"] : fold["test_start"]].iloc[:-1]
        scores = train.apply(sharpe)
        assert scores.idxmax() == (fold["lookback"], fold["target_vol"])
    # flat before the first test window, invested after
    first = folds["test_start"].iloc[0]
    assert (wf.oos.positions.loc[:first].iloc[:-1] == 0).all().all()
    assert wf.equity.index[0] == first
    gap = wf.overfitting()
    assert gap["gap"] == pytest.approx(gap["in-sample"] - gap["out-of-sample"])


def test_walk_forward_choice_ignores_the_future(close: pd.DataFrame) -> None:
    """Scrambling prices after a fold's test start cannot change that fold's choice."""
    kwargs = {"lookbacks": [21, 63, 126], "target_vols": [0.1, 0.2], "train": 300, "test": 150}
    base = walk_forward(close, **kwargs)
    cut = base.folds["test_start"].iloc[1]
    rng = np.random.default_rng(1)
    noisy = close.copy()
    after = noisy.index >= cut
    noisy.loc[after] = noisy.loc[after] * np.exp(rng.normal(0, 0.05, noisy.loc[after].shape))
    other = walk_forward(noisy, **kwargs)
    cols = ["lookback", "target_vol", "in_sample"]
    pd.testing.assert_frame_equal(base.folds[cols].iloc[:2], other.folds[cols].iloc[:2])


def test_walk_forward_needs_enough_data(close: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="too few"):
        walk_forward(close.iloc[:400], lookbacks=[21, 252], target_vols=[0.1], train=300, test=100)


def test_sweep_annualises_by_the_bar_length(close: pd.DataFrame) -> None:
    # The same closes relabelled as weekly bars: the strategy's forecast and the metrics
    # are annualised with 52, not 252 (issue 10, bug 3).
    weekly = close.iloc[:400].set_axis(
        pd.date_range("1990-01-05", periods=400, freq="W-FRI", tz="UTC"), axis=0
    )
    result = sweep(weekly, lookbacks=[21], target_vols=[0.1])
    w = vol_target_trend(weekly, lookbacks=(21,), target_vol=0.1)
    single = run(weekly, w, periods_per_year=52)
    np.testing.assert_allclose(result.equity[(21, 0.1)], single.equity, rtol=1e-10)
    row = result.table.iloc[0]
    assert row["Annual volatility"] == pytest.approx(single.returns.std() * np.sqrt(52))
    assert row["Sharpe"] == pytest.approx(sharpe(single.returns, periods_per_year=52))
    daily = vol_target_trend(weekly, lookbacks=(21,), target_vol=0.1, periods_per_year=252)
    assert not np.allclose(daily.to_numpy(), w.to_numpy(), equal_nan=True)
