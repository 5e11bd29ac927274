"""Regime features: values worked by hand, causality, input handling, the standardiser."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import simulate
from quantdesk.regimes.features import (
    REGIME_FEATURE_NAMES,
    FeatureConfig,
    Standardizer,
    compute_features,
)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return simulate(n_symbols=1, n_days=400, seed=21).bars


def test_columns_index_and_warmup(bars: pd.DataFrame) -> None:
    config = FeatureConfig()
    features = compute_features(bars, config)
    assert tuple(features.columns) == REGIME_FEATURE_NAMES == config.names
    assert features.index.name == "ts"
    assert str(features.index.tz) == "UTC"
    assert len(features) == len(bars) - config.warmup
    assert features.index[0] == bars["ts"].iloc[config.warmup]
    assert np.isfinite(features.to_numpy()).all()


def test_values_match_a_plain_python_computation() -> None:
    """Every feature at every row, recomputed with explicit loops from the formulas."""
    rng = np.random.default_rng(5)
    n = 40
    config = FeatureConfig(vol_window=3, trend_window=6, trend_halflife=2.0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * np.exp(rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * np.exp(-rng.uniform(0, 0.01, n))
    ts = pd.bdate_range("2021-01-04", periods=n, tz="UTC")
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=ts)
    features = compute_features(frame, config)

    def daily_variance(t: int) -> float:
        gap = math.log(open_[t] / close[t - 1])
        hl = math.log(high[t] / low[t])
        co = math.log(close[t] / open_[t])
        return gap**2 + 0.5 * hl**2 - (2 * math.log(2) - 1) * co**2

    def variance(t: int) -> float:
        return sum(daily_variance(t - k) for k in range(config.vol_window)) / config.vol_window

    for t in range(config.warmup, n):
        row = features.loc[ts[t]]
        assert row["log_return"] == pytest.approx(math.log(close[t] / close[t - 1]), rel=1e-12)
        assert row["log_vol"] == pytest.approx(0.5 * math.log(252 * variance(t)), rel=1e-12)
        num = den = 0.0
        for k in range(config.trend_window):
            w = 0.5 ** (k / config.trend_halflife)
            r = math.log(close[t - k] / close[t - k - 1])
            num += w * r / variance(t - k)
            den += w**2 / variance(t - k)
        assert row["trend"] == pytest.approx(num / math.sqrt(den), rel=1e-10)


def test_causal_and_finite_memory(bars: pd.DataFrame) -> None:
    """Rows never change when later bars arrive, nor when bars older than the warm-up go."""
    config = FeatureConfig()
    full = compute_features(bars, config)
    for stop in (config.warmup + 1, 150, 277, len(bars) - 1):
        part = compute_features(bars.iloc[:stop], config)
        pd.testing.assert_frame_equal(part, full.iloc[: len(part)], rtol=1e-12, atol=1e-12)
    later = compute_features(bars.iloc[100:], config)
    pd.testing.assert_frame_equal(later, full.loc[later.index], rtol=1e-12, atol=1e-12)


def test_price_scale_invariance(bars: pd.DataFrame) -> None:
    scaled = bars.copy()
    for column in ("open", "high", "low", "close"):
        scaled[column] = scaled[column] * 37.5
    pd.testing.assert_frame_equal(compute_features(scaled), compute_features(bars), rtol=1e-9)


def test_accepts_indexed_frames_and_any_row_order(bars: pd.DataFrame) -> None:
    expected = compute_features(bars)
    indexed = bars.set_index("ts")[["open", "high", "low", "close", "volume"]]
    pd.testing.assert_frame_equal(compute_features(indexed), expected)
    shuffled = bars.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(compute_features(shuffled), expected)


def test_rejects_several_symbols() -> None:
    two = simulate(n_symbols=2, n_days=100, seed=1).bars
    with pytest.raises(ValueError, match="one symbol; got 2 symbols"):
        compute_features(two)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -5.0])
def test_rejects_bad_prices_naming_column_and_ts(bars: pd.DataFrame, bad: float) -> None:
    broken = bars.copy()
    broken.loc[broken.index[50], "low"] = bad
    with pytest.raises(ValueError, match=r"column 'low' at ts 2010-03-1"):
        compute_features(broken)


def test_rejects_duplicate_ts_and_missing_columns(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="duplicated ts"):
        compute_features(pd.concat([bars, bars.iloc[[10]]]))
    with pytest.raises(ValueError, match=r"no \['high'\]: give open, high and low together"):
        compute_features(bars.drop(columns="high"))
    with pytest.raises(ValueError, match="lack the column 'close'"):
        compute_features(bars.drop(columns="close"))


def test_short_input_gives_empty_frame(bars: pd.DataFrame) -> None:
    features = compute_features(bars.iloc[:20])
    assert features.empty
    assert list(features.columns) == list(REGIME_FEATURE_NAMES)


def test_config_validation_and_round_trip() -> None:
    config = FeatureConfig(vol_window=7, trend_window=84, trend_halflife=28.0)
    assert FeatureConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="vol_window"):
        FeatureConfig(vol_window=0)
    with pytest.raises(ValueError, match="trend_halflife"):
        FeatureConfig(trend_halflife=-1.0)


def test_standardizer_uses_training_statistics_only(bars: pd.DataFrame) -> None:
    features = compute_features(bars)
    train, test = features.iloc[:200], features.iloc[200:]
    scaler = Standardizer().fit(train)
    z_train = scaler.transform(train)
    np.testing.assert_allclose(z_train.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z_train.std(ddof=0), 1.0, rtol=1e-12)
    # Later data is scaled with the training mean and sd, not its own.
    expected = (test - train.mean()) / train.std(ddof=0)
    pd.testing.assert_frame_equal(scaler.transform(test), expected, rtol=1e-12)
    again = Standardizer.from_dict(json.loads(json.dumps(scaler.to_dict())))
    pd.testing.assert_frame_equal(again.transform(test), scaler.transform(test))
    np.testing.assert_allclose(scaler.inverse_transform(z_train.to_numpy()), train.to_numpy())


def test_standardizer_guards() -> None:
    frame = pd.DataFrame({"a": [1.0, 1.0, 1.0], "b": [1.0, 2.0, 3.0]})
    scaler = Standardizer().fit(frame)
    assert scaler.scale_[0] == 1.0  # a constant column is not divided by zero
    with pytest.raises(ValueError, match="not fitted"):
        Standardizer().transform(frame)
    with pytest.raises(ValueError, match="columns"):
        scaler.transform(frame[["b", "a"]])


# Bar frequencies (issue 10): log_vol is annualised by the bars' own length, and close-only
# series (an index level, a fixing) get their variance from close-to-close returns.


def weekly(bars: pd.DataFrame) -> pd.DataFrame:
    frame = bars.set_index("ts")[["open", "high", "low", "close"]]
    return frame.set_axis(pd.date_range("2000-01-07", periods=len(frame), freq="W-FRI", tz="UTC"))


def test_log_vol_annualised_by_the_bar_length(bars: pd.DataFrame) -> None:
    daily = compute_features(bars)
    week = compute_features(weekly(bars))
    assert daily.attrs["periods_per_year"] == 252 and week.attrs["periods_per_year"] == 52
    # Same prices, same per-bar variance: the levels differ by 0.5 ln(252 / 52) exactly.
    np.testing.assert_allclose(
        daily["log_vol"].to_numpy() - week["log_vol"].to_numpy(), 0.5 * math.log(252 / 52)
    )
    np.testing.assert_array_equal(daily["trend"].to_numpy(), week["trend"].to_numpy())
    given = compute_features(weekly(bars), FeatureConfig(periods_per_year=52))
    pd.testing.assert_frame_equal(given, week)


def test_close_only_bars(bars: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    config = FeatureConfig(vol_window=3, trend_window=6, trend_halflife=2.0)
    level = bars[["ts", "close"]]
    with caplog.at_level("WARNING", logger="quantdesk.regimes.features"):
        features = compute_features(level, config)
    assert any("close-only" in r.getMessage() for r in caplog.records)
    also_nan = compute_features(bars.assign(open=np.nan, high=np.nan, low=np.nan), config)
    pd.testing.assert_frame_equal(features, also_nan)
    close = bars["close"].to_numpy()
    r = np.diff(np.log(close))  # r[t - 1] is the return of row t
    t = 100
    variance = np.mean(r[t - 3 : t] ** 2)
    assert features["log_vol"].loc[bars["ts"].iloc[t]] == pytest.approx(
        0.5 * math.log(252 * variance), rel=1e-12
    )
    assert np.isfinite(features.to_numpy()).all()


def test_config_keeps_or_infers_periods_per_year(bars: pd.DataFrame) -> None:
    assert FeatureConfig().periods_per_year is None
    for config in (FeatureConfig(), FeatureConfig(periods_per_year=8760.0)):
        assert FeatureConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # Models saved before issue 10 stored the daily 252 as an int.
    old = {"vol_window": 5, "trend_window": 63, "trend_halflife": 21.0, "periods_per_year": 252}
    assert FeatureConfig.from_dict(old).periods_per_year == 252.0
    pinned = FeatureConfig().pinned(compute_features(weekly(bars)))
    assert pinned.periods_per_year == 52.0
    assert FeatureConfig(periods_per_year=12).pinned(compute_features(bars)).periods_per_year == 12
    with pytest.raises(ValueError, match="periods_per_year"):
        FeatureConfig(periods_per_year=0)


def test_model_pins_the_annualisation_and_speaks_of_bars(caplog: pytest.LogCaptureFixture) -> None:
    from quantdesk.regimes.model import RegimeModel

    bars = simulate(n_symbols=1, n_days=600, seed=4).bars
    hourly = bars.assign(ts=pd.date_range("2024-01-01", periods=len(bars), freq="h", tz="UTC"))
    with caplog.at_level("INFO", logger="quantdesk.regimes.model"):
        model = RegimeModel(random_state=0, n_init=1, n_iter=30).fit(hourly)
    # Bars every hour of every day: 24 x 365 a year, fixed at fit so that filtering a
    # later window standardises its features on the training scale.
    assert model.features.periods_per_year == 24 * 365
    fitted = [r.getMessage() for r in caplog.records if "fitted" in r.getMessage()]
    assert fitted and " bars " in fitted[0] and " days " not in fitted[0]
    assert " days " not in model.summary() and " days " not in repr(model)
    tail = model.filter(hourly.iloc[-200:])
    full = model.filter(hourly)
    pd.testing.assert_frame_equal(
        tail[["state"]].reset_index(drop=True).iloc[-50:].reset_index(drop=True),
        full[["state"]].iloc[-50:].reset_index(drop=True),
    )
