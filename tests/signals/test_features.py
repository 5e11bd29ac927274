"""Common features: hand-computed values, causality, invariance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.signals.features import COMMON_FEATURE_NAMES, common_features


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
    assert tuple(feats) == COMMON_FEATURE_NAMES
    assert len(COMMON_FEATURE_NAMES) == 14
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
        for name in COMMON_FEATURE_NAMES:
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
    for name in COMMON_FEATURE_NAMES:
        pd.testing.assert_frame_equal(base[name], scaled[name], obj=name, rtol=1e-9)


# Annualisation by the panel's bar length (issue 10, bug 3: monthly bars reported a
# 20-period volatility of 2.07, the monthly deviation scaled by sqrt(252)).


def test_monthly_volatility_on_an_annual_scale() -> None:
    # Core CPI (monthly, dated the 1st, from the arch package): a close-only level.
    from arch.data import core_cpi

    cpi = core_cpi.load()["CPILFESL"]
    close = cpi.to_frame("CPI").tz_localize("UTC")
    feats = common_features({"close": close})
    t = len(close) - 1
    monthly = np.diff(np.log(cpi.to_numpy()))[t - 20 : t]
    assert feats["vol_20"]["CPI"].iloc[t] == pytest.approx(monthly.std(ddof=1) * np.sqrt(12))
    assert feats["vol_20"]["CPI"].iloc[t] < 0.05  # core inflation: about 1% a year, not 2.07


def test_month_end_ohlcv_from_backtesting_py() -> None:
    # backtesting.py's BTCUSD.csv: monthly bars dated at month end, with OHLCV.
    import backtesting

    path = f"{backtesting.__path__[0]}/test/BTCUSD.csv"
    bars = pd.read_csv(path, index_col=0, parse_dates=True)
    panels = {f.lower(): bars[[f]].set_axis(["BTC"], axis=1) for f in bars.columns}
    feats = common_features(panels)
    t = len(bars) - 1
    monthly = np.diff(np.log(bars["Close"].to_numpy()))[t - 20 : t]
    assert feats["vol_20"]["BTC"].iloc[t] == pytest.approx(monthly.std(ddof=1) * np.sqrt(12))
    weekly = {k: v.iloc[:100] for k, v in panels.items()}
    weekly = {
        k: v.set_axis(pd.date_range("2015-01-05", periods=100, freq="W-MON"))
        for k, v in weekly.items()
    }
    again = common_features(weekly)["vol_20"]["BTC"].iloc[60]
    assert again == pytest.approx(feats["vol_20"]["BTC"].iloc[60] / np.sqrt(12) * np.sqrt(52))


def test_periods_per_year_given_wins(panels) -> None:
    inferred = common_features(panels)["vol_20"]
    given = common_features(panels, periods_per_year=52)["vol_20"]
    pd.testing.assert_frame_equal(given, inferred / np.sqrt(252) * np.sqrt(52))


def test_close_only_series(panels, caplog: pytest.LogCaptureFixture) -> None:
    # An index level: no high, low or volume.  Close features as before; range and volume
    # features NaN (never zero), and one warning names the symbol.
    mixed = {k: v.copy() for k, v in panels.items()}
    for field in ("high", "low", "volume"):
        mixed[field]["B"] = np.nan
    with caplog.at_level("WARNING", logger="quantdesk.signals.features"):
        feats = common_features(mixed)
    full = common_features(panels)
    for name in ("ret_5", "vol_20", "ma_ratio_20", "ma_cross_20_60"):
        pd.testing.assert_frame_equal(feats[name], full[name])
    for name in ("range_hl", "volume_ratio_5", "volume_ratio_20"):
        assert feats[name]["B"].isna().all()
        pd.testing.assert_series_equal(feats[name]["A"], full[name]["A"])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'B'" in warnings[0] and "'A'" not in warnings[0]
    only_close = common_features({"close": panels["close"]})
    assert only_close["range_hl"].isna().all().all()
    pd.testing.assert_frame_equal(only_close["vol_60"], full["vol_60"])
