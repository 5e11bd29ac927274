"""Volatility estimators: hand calculations, recursions written out, arch itself as the
GARCH reference, causality, scale invariance and recovery of a known GBM sigma."""

from __future__ import annotations

import doctest
import logging
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from quantdesk.signals import volatility
from quantdesk.signals.volatility import ewma_vol, garch_vol, garman_klass_vol, parkinson_vol

from .causality import assert_causal

Panels = dict[str, pd.DataFrame]

SMALL_GARCH = {"min_obs": 150, "refit_every": 40}


def gbm_bars(
    days: int,
    symbols: int = 3,
    *,
    sigma: float = 0.2,
    steps: int = 78,
    seed: int = 0,
    continuity_correction: bool = False,
) -> Panels:
    """Daily OHLC of driftless-in-log GBM paths sampled ``steps`` times a day.

    The open is the previous close (no overnight gap), so close-to-close, Parkinson and
    Garman-Klass all estimate the same ``sigma``.  With ``continuity_correction`` the
    discretely observed high and low are widened by ``0.5826 sigma sqrt(dt)`` (Broadie,
    Glasserman and Kou) so that they stand for the continuous path's extremes.
    """
    rng = np.random.default_rng(seed)
    dt = 1.0 / (252 * steps)
    shocks = rng.normal(-0.5 * sigma**2 * dt, sigma * math.sqrt(dt), (days * steps, symbols))
    path = math.log(100.0) + np.vstack([np.zeros((1, symbols)), np.cumsum(shocks, axis=0)])
    day = path[np.arange(days)[:, None] * steps + np.arange(steps + 1)[None, :]]
    widen = 0.5826 * sigma * math.sqrt(dt) if continuity_correction else 0.0
    idx = pd.bdate_range("2010-01-04", periods=days, tz="UTC", name="ts")
    cols = [f"S{i}" for i in range(symbols)]
    fields = {
        "open": day[:, 0],
        "high": day.max(axis=1) + widen,
        "low": day.min(axis=1) - widen,
        "close": day[:, -1],
    }
    return {k: pd.DataFrame(np.exp(v), index=idx, columns=cols) for k, v in fields.items()}


@pytest.fixture(scope="module")
def bars() -> Panels:
    panels = gbm_bars(320, seed=3)
    panels = {k: v.copy() for k, v in panels.items()}
    for frame in panels.values():
        frame.iloc[:30, 2] = np.nan  # S2 lists later
        frame.iloc[200, 1] = np.nan  # and S1 misses a day
    return panels


def days(n: int) -> pd.DatetimeIndex:
    """Business days: the estimators read 252 bars a year off this index."""
    return pd.bdate_range("2015-01-05", periods=n, tz="UTC", name="ts")


def frame(values: list[float] | np.ndarray, name: str = "A") -> pd.DataFrame:
    values = np.asarray(values, dtype=float)
    return pd.DataFrame({name: values}, index=days(len(values)))


# ---------------------------------------------------------------- hand calculations


def test_ewma_hand_calculation() -> None:
    close = frame([100.0, 101.0, 99.0, 99.5])
    r = np.diff(np.log(close["A"].to_numpy()))
    vol = ewma_vol(close, halflife=1, min_periods=2, periods_per_year=1)["A"]
    # halflife 1: weights 1, 1/2, 1/4 on the newest, previous, oldest squared return
    assert np.isnan(vol.iloc[0]) and np.isnan(vol.iloc[1])
    assert vol.iloc[2] == pytest.approx(math.sqrt((r[1] ** 2 + 0.5 * r[0] ** 2) / 1.5))
    expected = math.sqrt((r[2] ** 2 + 0.5 * r[1] ** 2 + 0.25 * r[0] ** 2) / 1.75)
    assert vol.iloc[3] == pytest.approx(expected)


def test_ewma_constant_returns_give_their_size() -> None:
    close = frame(100 * np.exp(-0.02 * np.arange(60)))
    vol = ewma_vol(close, halflife=5, min_periods=10)["A"]
    assert vol.iloc[:10].isna().all()
    np.testing.assert_allclose(vol.iloc[10:], 0.02 * math.sqrt(252), rtol=1e-12)


def ewma_recursion(close: np.ndarray, halflife: float, min_periods: int) -> np.ndarray:
    """Element by element: decayed sums of weights and of weighted squared log returns."""
    lam = 0.5 ** (1.0 / halflife)
    out = np.full(close.shape, np.nan)
    for j in range(close.shape[1]):
        num = den = 0.0
        seen = 0
        for t in range(1, close.shape[0]):
            r = math.log(close[t, j] / close[t - 1, j])
            if seen:
                num, den = lam * num, lam * den
            if not math.isnan(r):
                num, den, seen = num + r * r, den + 1.0, seen + 1
            if seen >= min_periods:
                out[t, j] = math.sqrt(num / den * 252)
    return out


@pytest.mark.parametrize(("halflife", "min_periods"), [(20, 20), (3.5, 1), (60, 5)])
def test_ewma_matches_recursion(bars: Panels, halflife: float, min_periods: int) -> None:
    close = bars["close"]
    got = ewma_vol(close, halflife, min_periods=min_periods)
    expected = ewma_recursion(close.to_numpy(), halflife, min_periods)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-10, atol=0)


def test_parkinson_and_garman_klass_hand_calculation() -> None:
    o = [100.0, 101.0, 102.0]
    h = [102.0, 103.0, 104.0]
    lo = [99.0, 100.0, 98.0]
    c = [101.0, 102.0, 99.0]
    hl = [math.log(a / b) for a, b in zip(h, lo, strict=True)]
    co = [math.log(a / b) for a, b in zip(c, o, strict=True)]
    park = parkinson_vol(frame(h), frame(lo), 2)["A"]
    assert np.isnan(park.iloc[0])
    expected = math.sqrt((hl[1] ** 2 + hl[2] ** 2) / 2 / (4 * math.log(2)) * 252)
    assert park.iloc[2] == pytest.approx(expected, rel=1e-12)
    gk = garman_klass_vol(frame(o), frame(h), frame(lo), frame(c), 2)["A"]
    terms = [0.5 * u**2 - (2 * math.log(2) - 1) * d**2 for u, d in zip(hl, co, strict=True)]
    assert np.isnan(gk.iloc[0])
    assert gk.iloc[1] == pytest.approx(math.sqrt((terms[0] + terms[1]) / 2 * 252), rel=1e-12)
    assert gk.iloc[2] == pytest.approx(math.sqrt((terms[1] + terms[2]) / 2 * 252), rel=1e-12)


def test_range_estimators_match_pandas_rolling(bars: Panels) -> None:
    """A second route: pandas' own rolling mean of the per-bar terms."""
    h, lo, o, c = (np.log(bars[k]) for k in ("high", "low", "open", "close"))
    park = ((h - lo) ** 2 / (4 * math.log(2))).rolling(10).mean().mul(252) ** 0.5
    pd.testing.assert_frame_equal(parkinson_vol(bars["high"], bars["low"], 10), park, rtol=1e-9)
    terms = 0.5 * (h - lo) ** 2 - (2 * math.log(2) - 1) * (c - o) ** 2
    gk = terms.rolling(15).mean().mul(252) ** 0.5
    got = garman_klass_vol(bars["open"], bars["high"], bars["low"], bars["close"], 15)
    pd.testing.assert_frame_equal(got, gk, rtol=1e-9)


def test_misaligned_panels_are_rejected(bars: Panels) -> None:
    with pytest.raises(ValueError, match="aligned"):
        parkinson_vol(bars["high"], bars["low"].iloc[1:])
    with pytest.raises(ValueError, match="aligned"):
        garman_klass_vol(bars["open"][["S1", "S0", "S2"]], bars["high"], bars["low"], bars["close"])
    with pytest.raises(ValueError, match="window"):
        parkinson_vol(bars["high"], bars["low"], 0)
    with pytest.raises(ValueError, match="halflife"):
        ewma_vol(bars["close"], 0)


# ---------------------------------------------------------------- known sigma


def test_range_estimators_recover_gbm_sigma() -> None:
    sigma = 0.3
    panels = gbm_bars(1500, 4, sigma=sigma, steps=200, seed=11, continuity_correction=True)
    window = 1500
    park = parkinson_vol(panels["high"], panels["low"], window).iloc[-1]
    gk = garman_klass_vol(panels["open"], panels["high"], panels["low"], panels["close"], window)
    close_to_close = np.log(panels["close"]).diff().std() * math.sqrt(252)
    # Standard errors over 1500 days: about 0.7% (Parkinson), 0.6% (GK), 1.8% (close-to-close).
    np.testing.assert_allclose(park, sigma, rtol=0.03)
    np.testing.assert_allclose(gk.iloc[-1], sigma, rtol=0.03)
    np.testing.assert_allclose(close_to_close, sigma, rtol=0.06)
    ewma = ewma_vol(panels["close"], halflife=250).iloc[-1]
    np.testing.assert_allclose(ewma, sigma, rtol=0.15)


# ---------------------------------------------------------------- invariances


def vol_functions(garch: bool = True) -> dict[str, Callable[[Panels], pd.DataFrame]]:
    functions: dict[str, Callable[[Panels], pd.DataFrame]] = {
        "ewma_vol": lambda p: ewma_vol(p["close"], 10, min_periods=5),
        "parkinson_vol": lambda p: parkinson_vol(p["high"], p["low"], 10),
        "garman_klass_vol": lambda p: garman_klass_vol(
            p["open"], p["high"], p["low"], p["close"], 10
        ),
    }
    if garch:
        functions["garch_vol"] = lambda p: garch_vol(p["close"], **SMALL_GARCH)
    return functions


@pytest.mark.parametrize("name", list(vol_functions(garch=False)))
def test_price_scale_invariance(bars: Panels, name: str) -> None:
    """Prices in cents or dollars: the same volatility."""
    fn = vol_functions()[name]
    scaled = {k: v * 100.0 for k, v in bars.items()}
    pd.testing.assert_frame_equal(fn(scaled), fn(bars), rtol=1e-9)


@pytest.mark.parametrize("name", list(vol_functions(garch=False)))
def test_scales_with_log_returns(bars: Panels, name: str) -> None:
    """Doubling every log return (prices p -> p**2) doubles the volatility."""
    fn = vol_functions()[name]
    squared = {k: v**2 / 100.0 for k, v in bars.items()}
    pd.testing.assert_frame_equal(fn(squared), 2 * fn(bars), rtol=1e-9)


# GARCH(1,1) parameters (mu, omega, alpha, beta) in the units garch_vol fits in (100 x log
# returns), of the size the fixture's fits find.
GARCH_PARAMS = (0.03, 0.05, 0.08, 0.88)


@pytest.fixture
def garch_at_fixed_parameters(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Replace garch_vol's optimiser by fixed parameters; call it with the returns' scale.

    The GARCH model is scale-equivariant: returns times ``s`` with ``(s mu, s**2 omega,
    alpha, beta)`` give conditional variances times ``s**2``, backcast included.  Where
    SLSQP stops on a flat likelihood is not (bug 9: another machine stopped elsewhere and
    the forecast moved 2%).  With the fit fixed, everything else garch_vol does (arch's
    filter and forecast at a refit date, its own recursion between refits, the
    annualising) runs for real and must scale exactly.
    """
    scale = {"s": 1.0}

    def fixed_fit(y: np.ndarray, k: int, *, window: int | None, dist, mean: str, **_: object):
        s = scale["s"]
        mu, omega, alpha, beta = GARCH_PARAMS
        params = (s * mu if mean == "constant" else 0.0, s**2 * omega, alpha, beta)
        # The model garch_vol fits, here with its parameters fixed instead of fitted.
        model = volatility._garch_model(y, k, window=window, dist=dist, mean=mean)
        values = list(params) if mean == "constant" else list(params[1:])
        forecast = model.fix(values).forecast(horizon=1, reindex=False).variance
        return params, float(forecast.to_numpy()[-1, 0])

    monkeypatch.setattr(volatility, "_fit_garch", fixed_fit)
    return lambda s: scale.__setitem__("s", s)


@pytest.mark.parametrize("window", [None, 120])
def test_garch_scales_with_log_returns_at_fixed_parameters(
    bars: Panels, garch_at_fixed_parameters: Callable[[float], None], window: int | None
) -> None:
    """Bug 9: doubling every log return doubles the GARCH volatility, given the parameters."""
    base = garch_vol(bars["close"], window=window, **SMALL_GARCH)
    assert base.notna().sum().min() > 100  # the comparison covers refits and the rows between
    garch_at_fixed_parameters(2.0)
    doubled = garch_vol(bars["close"] ** 2 / 100.0, window=window, **SMALL_GARCH)
    pd.testing.assert_frame_equal(doubled, 2 * base, rtol=1e-9)
    garch_at_fixed_parameters(1.0)
    cents = garch_vol(bars["close"] * 100.0, window=window, **SMALL_GARCH)
    pd.testing.assert_frame_equal(cents, base, rtol=1e-9)


@pytest.mark.parametrize("column", ["S0", "S1", "S2"])
def test_garch_fits_of_scaled_returns_are_equally_likely(bars: Panels, column: str) -> None:
    """The fits on ``y`` and ``2 y``, compared by likelihood on ``y``: the optimiser's job.

    Parameters are not compared: on a flat ridge (alpha near 0, where only
    ``omega / (1 - beta)`` is identified) SLSQP stops at points far apart with likelihoods
    that agree, e.g. omega 1.47 vs 0.74 a log-likelihood apart of 0.002.  The bound, 0.05,
    is a likelihood-ratio statistic of 0.1: statistically the same fit, whatever machine
    ran the optimiser.
    """
    y = 100 * np.diff(np.log(bars["close"][column].dropna().to_numpy()))
    y = y[np.isfinite(y)]
    for k in range(SMALL_GARCH["min_obs"] - 1, len(y), SMALL_GARCH["refit_every"]):
        kwargs = {"window": None, "dist": "normal", "mean": "constant", "label": column}
        fit = volatility._fit_garch(y, k, **kwargs)
        fit2 = volatility._fit_garch(2 * y, k, **kwargs)
        assert fit is not None and fit2 is not None
        mu2, omega2, alpha2, beta2 = fit2[0]
        back = [mu2 / 2, omega2 / 4, alpha2, beta2]  # the 2y fit in the units of y
        model = arch_model(y[: k + 1], mean="Constant", vol="GARCH", p=1, q=1, rescale=False)
        ll = model.fix(list(fit[0])).loglikelihood
        ll_back = model.fix(back).loglikelihood
        assert abs(ll - ll_back) < 0.05, (k, fit[0], back)


# ---------------------------------------------------------------- causality


def test_every_public_function_has_a_causality_case() -> None:
    assert set(vol_functions()) == set(volatility.__all__)


@pytest.mark.parametrize("name", list(vol_functions()))
def test_causal(bars: Panels, name: str) -> None:
    """Values up to t are the same whether or not the rows after t exist."""
    assert_causal(vol_functions()[name], bars, [170, 211, 260])


def test_causality_check_catches_a_look_ahead(bars: Panels) -> None:
    centred = vol_functions(garch=False)["parkinson_vol"]
    leaky = lambda p: centred(p).shift(-2)  # noqa: E731
    with pytest.raises(AssertionError):
        assert_causal(leaky, bars, [100])


# ---------------------------------------------------------------- GARCH against arch


def close_from(scaled_returns: pd.DataFrame) -> pd.DataFrame:
    """Closes whose log returns are ``scaled_returns / 100`` (the first row is the base)."""
    logs = np.vstack([[0.0], np.cumsum(scaled_returns.to_numpy() / 100.0, axis=0)])
    return pd.DataFrame(100 * np.exp(logs), index=days(len(logs)), columns=scaled_returns.columns)


@pytest.mark.parametrize("window", [None, 250])
@pytest.mark.parametrize("mean", ["constant", "zero"])
def test_garch_matches_arch_at_refit_and_between(window: int | None, mean: str) -> None:
    rng = np.random.default_rng(5)
    shocks = rng.standard_normal(900)
    # hand-rolled GARCH(1,1) simulation (omega, alpha, beta) = (0.05, 0.1, 0.85)
    y = np.empty(900)
    s2 = 1.0
    for t in range(900):
        y[t] = 0.04 + math.sqrt(s2) * shocks[t]
        s2 = 0.05 + 0.1 * (y[t] - 0.04) ** 2 + 0.85 * s2
    close = close_from(pd.DataFrame({"A": y}))
    y = 100 * np.diff(np.log(close["A"].to_numpy()))  # what garch_vol sees
    min_obs, refit_every = 400, 100
    vol = garch_vol(close, window=window, refit_every=refit_every, min_obs=min_obs, mean=mean)
    vol = vol["A"].to_numpy()
    assert np.isnan(vol[:min_obs]).all() and np.isfinite(vol[min_obs:]).all()

    arch_mean = "Constant" if mean == "constant" else "Zero"
    refit = min_obs - 1 + 2 * refit_every  # a refit date, as a position in y
    start = 0 if window is None else refit + 1 - window
    res = arch_model(y[start : refit + 1], mean=arch_mean, vol="GARCH", p=1, q=1).fit(disp="off")
    expected = res.forecast(horizon=1).variance.iloc[-1, 0]
    # y[k] is the return of row k + 1 of the panel
    assert vol[refit + 1] == pytest.approx(math.sqrt(expected * 252) / 100, rel=1e-6)

    # Between refits the same parameters filter the newer returns: arch with fixed parameters
    # over the longer sample (same start, hence the same backcast) must agree.
    later = refit + refit_every - 1
    model = arch_model(y[start : later + 1], mean=arch_mean, vol="GARCH", p=1, q=1)
    fixed = model.fix(res.params).forecast(horizon=1).variance.iloc[-1, 0]
    assert vol[later + 1] == pytest.approx(math.sqrt(fixed * 252) / 100, rel=1e-6)
    # ... and the next row is a new fit, no longer those parameters
    following = arch_model(y[start : later + 2], mean=arch_mean, vol="GARCH", p=1, q=1)
    stale = following.fix(res.params).forecast(horizon=1).variance.iloc[-1, 0]
    assert vol[later + 2] != pytest.approx(math.sqrt(stale * 252) / 100, rel=1e-9)


def test_garch_skips_missing_returns_and_late_listings(bars: Panels) -> None:
    vol = garch_vol(bars["close"], **SMALL_GARCH)
    # S0: first return at row 1, the 150th return at row 150
    assert vol["S0"].iloc[:150].isna().all() and vol["S0"].iloc[150:].notna().all()
    # S2 lists at row 30: its 150th return is on row 180
    assert vol["S2"].iloc[:180].isna().all() and vol["S2"].iloc[180:].notna().all()
    # S1's missing close at row 200 takes out the returns of rows 200 and 201
    assert vol["S1"].iloc[[200, 201]].isna().all()
    assert vol["S1"].drop(vol.index[[200, 201]]).iloc[151:].notna().all()


def test_garch_logs_failed_fits_and_stays_nan(caplog: pytest.LogCaptureFixture) -> None:
    flat = frame(np.full(200, 100.0))
    with caplog.at_level(logging.WARNING, logger="quantdesk.signals.volatility"):
        vol = garch_vol(flat, min_obs=100, refit_every=50)
    assert vol["A"].isna().all()
    assert any("GARCH fit for A" in record.getMessage() for record in caplog.records)


def test_garch_argument_checks() -> None:
    close = frame(np.arange(1.0, 50.0))
    with pytest.raises(ValueError, match="refit_every"):
        garch_vol(close, refit_every=0)
    with pytest.raises(ValueError, match="min_obs"):
        garch_vol(close, min_obs=2)


def test_docstring_examples() -> None:
    result = doctest.testmod(volatility, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------- bar frequencies


@pytest.mark.parametrize(
    ("index", "per_year"),
    [
        (pd.date_range("2000-01-07", periods=60, freq="W-FRI"), 52),
        (pd.date_range("2000-01-31", periods=60, freq="ME"), 12),
        (pd.date_range("2000-01-15", periods=60, freq="MS") + pd.Timedelta(days=14), 12),
    ],
    ids=["weekly", "month-end", "mid-month"],
)
def test_annualised_by_the_bar_length(index: pd.DatetimeIndex, per_year: int) -> None:
    # 1% every bar: sqrt(bars a year) * 1% whatever the bars are.
    close = pd.DataFrame({"A": 100 * np.exp(0.01 * np.arange(60))}, index=index)
    assert ewma_vol(close)["A"].iloc[-1] == pytest.approx(0.01 * math.sqrt(per_year))
    high, low = close * 1.01, close / 1.01
    expected = math.sqrt(math.log(1.01**2) ** 2 / (4 * math.log(2)) * per_year)
    assert parkinson_vol(high, low)["A"].iloc[-1] == pytest.approx(expected)


def test_hourly_fx_annualised_over_24_by_5() -> None:
    # backtesting.py's EURUSD.csv: hourly bars, 24 a day on weekdays (260 a year).
    import backtesting

    bars = pd.read_csv(f"{backtesting.__path__[0]}/test/EURUSD.csv", index_col=0, parse_dates=True)
    close = bars[["Close"]].set_axis(["EURUSD"], axis=1)
    vol = ewma_vol(close, halflife=500)["EURUSD"]
    pd.testing.assert_series_equal(
        vol, ewma_vol(close, halflife=500, periods_per_year=6240)["EURUSD"]
    )
    # EUR/USD moves 5-10% a year; annualised as daily bars this read about 2%.
    assert 0.04 < vol.iloc[-1] < 0.12
    assert ewma_vol(close, halflife=500, periods_per_year=252)["EURUSD"].iloc[-1] < 0.025


def test_undated_panel_needs_periods_per_year() -> None:
    close = pd.DataFrame({"A": np.linspace(100, 110, 30)})
    with pytest.raises(ValueError, match="pass periods_per_year="):
        ewma_vol(close)
    assert ewma_vol(close, periods_per_year=252)["A"].notna().any()


# ---------------------------------------------------------------- close-only series


def close_only(bars: Panels, symbol: str) -> Panels:
    """``bars`` with ``symbol`` reduced to a close (an index level or a fixing)."""
    out = {k: v.copy() for k, v in bars.items()}
    for field in ("open", "high", "low"):
        out[field][symbol] = np.nan
    return out


def test_range_estimators_refuse_close_only_series(bars: Panels) -> None:
    panels = close_only(bars, "S1")
    with pytest.raises(ValueError, match=r"\['S1'\].*fallback='close'"):
        parkinson_vol(panels["high"], panels["low"])
    with pytest.raises(ValueError, match=r"\['S1'\].*fallback='close'"):
        garman_klass_vol(panels["open"], panels["high"], panels["low"], panels["close"])


def test_range_estimators_fall_back_to_close_when_asked(
    bars: Panels, caplog: pytest.LogCaptureFixture
) -> None:
    panels = close_only(bars, "S1")
    with caplog.at_level(logging.WARNING, logger="quantdesk.signals.volatility"):
        park = parkinson_vol(
            panels["high"], panels["low"], 10, fallback="close", close=panels["close"]
        )
        gk = garman_klass_vol(
            panels["open"], panels["high"], panels["low"], panels["close"], 10, fallback="close"
        )
    assert (
        sum("close-to-close" in r.getMessage() and "S1" in r.getMessage() for r in caplog.records)
        == 2
    )
    # Symbols with ranges are untouched.
    others = ["S0", "S2"]
    pd.testing.assert_frame_equal(
        park[others], parkinson_vol(bars["high"], bars["low"], 10)[others]
    )
    # The close-only symbol: sqrt(mean of squared log returns over 10 bars * 252), by hand.
    logs = np.log(bars["close"]["S1"].to_numpy())
    t = 150
    expected = math.sqrt(np.mean(np.diff(logs)[t - 10 : t] ** 2) * 252)
    assert park["S1"].iloc[t] == pytest.approx(expected, rel=1e-9)
    assert gk["S1"].iloc[t] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="fallback"):
        parkinson_vol(panels["high"], panels["low"], fallback="close")  # no close given


def test_close_estimators_work_on_close_only_series(bars: Panels) -> None:
    panels = close_only(bars, "S1")
    pd.testing.assert_frame_equal(ewma_vol(panels["close"]), ewma_vol(bars["close"]))
