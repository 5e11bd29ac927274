"""Volatility-targeted sizing: hand values, caps, schedules, bands, causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.strategies.sizing import apply_band, rebalance_mask, vol_target_weights


def panels(rows: int = 300, cols: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2021-01-01", periods=rows, tz="UTC", name="ts")
    signal = pd.DataFrame(
        rng.choice([-1.0, 0.0, 0.5, 1.0], (rows, cols)), idx, list("ABCDE")[:cols]
    )
    vol = pd.DataFrame(rng.uniform(0.05, 0.6, (rows, cols)), idx, signal.columns)
    signal.iloc[:5] = np.nan  # warm-up
    return signal, vol


def test_hand_values_and_caps() -> None:
    sig = pd.DataFrame({"a": [1.0, 1.0, np.nan], "b": [-1.0, 1.0, 1.0]})
    vol = pd.DataFrame({"a": [0.10, 0.02, 0.2], "b": [0.20, 0.20, 0.0]})
    w = vol_target_weights(sig, vol, target_vol=0.1, max_weight=0.8, max_gross=1.2)
    # row 0: a = 0.1/0.1 = 1 -> capped 0.8; b = -0.5; gross 1.3 > 1.2 -> scale 1.2/1.3
    assert w.iloc[0].tolist() == pytest.approx([0.8 * 1.2 / 1.3, -0.5 * 1.2 / 1.3])
    # row 1: a = 5 -> 0.8; b = 0.5; gross 1.3 -> scaled
    assert w.iloc[1].tolist() == pytest.approx([0.8 * 1.2 / 1.3, 0.5 * 1.2 / 1.3])
    # row 2: unknown signal and zero vol -> flat, not NaN and not inf
    assert w.iloc[2].tolist() == [0.0, 0.0]


def test_long_only_and_gross_cap_hold_everywhere() -> None:
    signal, vol = panels()
    w = vol_target_weights(
        signal, vol, target_vol=0.3, max_weight=0.4, max_gross=1.0, long_only=True
    )
    assert w.iloc[:5].isna().all().all()  # warm-up: no opinion
    live = w.iloc[5:]
    assert (live >= 0).all().all()
    assert (live <= 0.4 + 1e-12).all().all()
    assert (w.sum(axis=1) <= 1.0 + 1e-12).all()


def test_series_target_vol_is_an_equal_risk_budget() -> None:
    signal, vol = panels()
    n = signal.notna().sum(axis=1).replace(0, np.nan)
    budget = 0.1 / n
    w = vol_target_weights(signal, vol, target_vol=budget, max_gross=10)
    row = 50
    expected = signal.iloc[row] * budget.iloc[row] / vol.iloc[row]
    pd.testing.assert_series_equal(w.iloc[row], expected, check_names=False)


def test_rebalance_mask_first_bar_of_period() -> None:
    idx = pd.bdate_range("2024-01-29", "2024-02-13", tz="UTC")
    monthly = rebalance_mask(idx, "monthly")
    weekly = rebalance_mask(idx, "weekly")
    assert [str(d.date()) for d in idx[monthly]] == ["2024-01-29", "2024-02-01"]
    assert [str(d.date()) for d in idx[weekly]] == ["2024-01-29", "2024-02-05", "2024-02-12"]
    assert rebalance_mask(idx, "daily").all()
    with pytest.raises(ValueError, match="rebalance"):
        rebalance_mask(idx, "yearly")  # type: ignore[arg-type]


def test_schedule_puts_nan_between_rebalances() -> None:
    signal, vol = panels()
    w = vol_target_weights(signal, vol, rebalance="weekly")
    traded = w.notna().any(axis=1)
    after_warmup = rebalance_mask(signal.index, "weekly") & (np.arange(len(w)) >= 5)
    assert traded.to_numpy().tolist() == after_warmup.tolist()


def test_band_trades_only_beyond_the_band() -> None:
    w = pd.DataFrame(
        {"a": [0.5, 0.52, 0.54, np.nan, 0.56, 0.2], "b": [0.0, 0.0, 0.1, 0.1, 0.1, 0.1]}
    )
    banded = apply_band(w, 0.05)
    assert banded["a"].iloc[0] == 0.5
    assert np.isnan(banded["a"].iloc[1])  # 0.02 move: inside the band
    assert np.isnan(banded["a"].iloc[2])  # 0.04 from the last traded 0.5
    assert banded["a"].iloc[4] == 0.56  # drift accumulated past the band
    assert banded["a"].iloc[5] == 0.2
    assert np.isnan(banded["b"].iloc[0])  # 0 vs flat start: nothing to do
    assert banded["b"].iloc[2] == 0.1
    with pytest.raises(ValueError):
        apply_band(w, -1)


@pytest.mark.parametrize("rebalance", ["daily", "weekly", "monthly"])
def test_causal(rebalance: str) -> None:
    signal, vol = panels(seed=3)
    full = vol_target_weights(signal, vol, rebalance=rebalance, band=0.02, max_gross=1.5)
    for cut in (37, 150, 299):
        part = vol_target_weights(
            signal.iloc[:cut], vol.iloc[:cut], rebalance=rebalance, band=0.02, max_gross=1.5
        )
        pd.testing.assert_frame_equal(part, full.iloc[:cut])


def test_misaligned_inputs_rejected() -> None:
    signal, vol = panels()
    with pytest.raises(ValueError, match="share index"):
        vol_target_weights(signal, vol.iloc[1:])
