"""Common features: hand-computed values, causality, invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.signals.features import FEATURE_NAMES, common_features


@pytest.fixture
def panels() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    idx = pd.bdate_range("2020-01-01", periods=150, tz="UTC", name="ts")
    close = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (150, 3)), axis=0)),
        index=idx,
        columns=["A", "B", "C"],
    )
    close.iloc[:10, 2] = np.nan  # C lists later
    return {
        "close": close,
        "high": close * (1 + rng.uniform(0, 0.02, close.shape)),
        "low": close * (1 - rng.uniform(0, 0.02, close.shape)),
        "volume": pd.DataFrame(
            rng.integers(1e5, 1e6, close.shape).astype(float), idx, close.columns
        ),
    }


def test_fourteen_named_features(panels) -> None:
    feats = common_features(panels)
    assert tuple(feats) == FEATURE_NAMES
    assert len(FEATURE_NAMES) == 14
    for frame in feats.values():
        assert frame.shape == panels["close"].shape


def test_values_match_hand_calculation(panels) -> None:
    feats = common_features(panels)
    c = panels["close"]["A"].to_numpy()
    v = panels["volume"]["A"].to_numpy()
    t = 100
    assert feats["ret_5"]["A"].iloc[t] == pytest.approx(np.log(c[t] / c[t - 5]))
    daily = np.diff(np.log(c))[t - 20 : t]
    assert feats["vol_20"]["A"].iloc[t] == pytest.approx(daily.std(ddof=1) * np.sqrt(252))
    assert feats["ma_ratio_60"]["A"].iloc[t] == pytest.approx(c[t] / c[t - 59 : t + 1].mean() - 1)
    assert feats["ma_cross_20_60"]["A"].iloc[t] == pytest.approx(
        c[t - 19 : t + 1].mean() / c[t - 59 : t + 1].mean() - 1
    )
    assert feats["volume_ratio_5"]["A"].iloc[t] == pytest.approx(v[t] / v[t - 4 : t + 1].mean())
    assert np.isnan(feats["ret_60"]["A"].iloc[59]) and not np.isnan(feats["ret_60"]["A"].iloc[60])
    assert np.isnan(feats["ret_1"]["C"].iloc[10])


def test_causal_truncation(panels) -> None:
    """Values up to t do not change when the rows after t are removed."""
    full = common_features(panels)
    for cut in (70, 120):
        short = common_features({k: v.iloc[:cut] for k, v in panels.items()})
        for name in FEATURE_NAMES:
            pd.testing.assert_frame_equal(short[name], full[name].iloc[:cut], obj=name)


def test_scale_invariance(panels) -> None:
    """Prices in cents or dollars, shares or lots: the features are the same."""
    base = common_features(panels)
    scaled = common_features(
        {
            "close": panels["close"] * 100,
            "high": panels["high"] * 100,
            "low": panels["low"] * 100,
            "volume": panels["volume"] / 100,
        }
    )
    for name in FEATURE_NAMES:
        pd.testing.assert_frame_equal(base[name], scaled[name], obj=name, rtol=1e-9)
