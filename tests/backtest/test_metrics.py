"""Backtest metrics against empyrical (the independent peer), hand calculations and invariances.

Every test that takes ``kind`` runs on a Series with a DatetimeIndex, a Series with a
RangeIndex and a plain ndarray.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.backtest import metrics
from quantdesk.backtest.metrics import (
    average_exposure,
    cost_share,
    drawdown_series,
    exposure,
    hit_rate,
    max_drawdown,
    max_drawdown_duration,
    net_exposure,
    turnover,
)


def daily_unless_dated(metric: Callable[..., Any]) -> Callable[..., Any]:
    """Return ``metric`` with ``periods_per_year=252`` for returns that carry no dates.

    These tests compare daily returns with empyrical (whose default is 252) on three
    kinds of input; an array or a RangeIndex cannot say how long its bars are, so it is
    given the daily 252 explicitly, while a dated Series has it inferred from its index
    (what ``test_periods_per_year_inferred_*`` below check on other frequencies).
    """

    signature = inspect.signature(metric)

    @functools.wraps(metric)
    def call(returns: Any, *args: Any, **kwargs: Any) -> Any:
        dated = isinstance(getattr(returns, "index", None), pd.DatetimeIndex)
        given = signature.bind(returns, *args, **kwargs).arguments
        if not dated and given.get("periods_per_year") is None:
            kwargs["periods_per_year"] = 252
        return metric(returns, *args, **kwargs)

    return call


cagr = daily_unless_dated(metrics.cagr)
annual_volatility = daily_unless_dated(metrics.annual_volatility)
sharpe = daily_unless_dated(metrics.sharpe)
sortino = daily_unless_dated(metrics.sortino)
calmar = daily_unless_dated(metrics.calmar)
rolling_sharpe = daily_unless_dated(metrics.rolling_sharpe)
summary_metrics = daily_unless_dated(metrics.summary_metrics)

KINDS = ["datetime", "range", "array"]
SEEDS = [0, 1, 2, 3, 4]
SUMMARY_NAMES = [
    "CAGR",
    "Annual volatility",
    "Sharpe",
    "Sortino",
    "Max drawdown",
    "Max drawdown duration (periods)",
    "Calmar",
    "Turnover (annual)",
    "Average gross exposure",
    "Hit rate",
    "Costs / gross P&L",
]


def as_kind(values: list[float] | np.ndarray, kind: str) -> pd.Series | np.ndarray:
    """Return ``values`` as a dated Series, a RangeIndex Series or an ndarray."""
    array = np.asarray(values, dtype=float)
    if kind == "datetime":
        index = pd.bdate_range("2021-01-04", periods=len(array), tz="UTC", name="ts")
        return pd.Series(array, index=index)
    if kind == "range":
        return pd.Series(array)
    return array


def random_returns(seed: int, n: int = 750) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Fat-ish tails and a drift that differs by seed, so drawdowns and signs vary.
    return rng.standard_t(4, n) * 0.01 + rng.uniform(-0.0005, 0.001)


# (ours, empyrical's, keyword arguments for ours, keyword arguments for empyrical's)
PEER_CASES: dict[str, tuple[Callable[..., float], Callable[..., float], dict, dict]] = {
    "cagr": (cagr, empyrical.cagr, {}, {}),
    "annual_return": (cagr, empyrical.annual_return, {}, {}),
    "cagr_monthly": (cagr, empyrical.cagr, {"periods_per_year": 12}, {"annualization": 12}),
    "annual_volatility": (annual_volatility, empyrical.annual_volatility, {}, {}),
    "annual_volatility_weekly": (
        annual_volatility,
        empyrical.annual_volatility,
        {"periods_per_year": 52},
        {"period": "weekly"},
    ),
    "sharpe": (sharpe, empyrical.sharpe_ratio, {}, {}),
    "sharpe_rf": (sharpe, empyrical.sharpe_ratio, {"risk_free": 0.0002}, {"risk_free": 0.0002}),
    "sortino": (sortino, empyrical.sortino_ratio, {}, {}),
    "sortino_required": (
        sortino,
        empyrical.sortino_ratio,
        {"required_return": 0.0003},
        {"required_return": 0.0003},
    ),
    "max_drawdown": (max_drawdown, empyrical.max_drawdown, {}, {}),
    "calmar": (calmar, empyrical.calmar_ratio, {}, {}),
    "calmar_monthly": (
        calmar,
        empyrical.calmar_ratio,
        {"periods_per_year": 12},
        {"period": "monthly"},
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", list(PEER_CASES))
def test_matches_empyrical(case: str, seed: int, kind: str) -> None:
    ours, theirs, our_kwargs, their_kwargs = PEER_CASES[case]
    returns = as_kind(random_returns(seed), kind)
    expected = theirs(returns, **their_kwargs)
    assert np.isfinite(expected)
    np.testing.assert_allclose(ours(returns, **our_kwargs), expected, rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_drawdown_series_matches_empyrical(seed: int, kind: str) -> None:
    returns = as_kind(random_returns(seed), kind)
    ours = drawdown_series(returns)
    theirs = empyrical.stats.drawdown_series(returns)
    np.testing.assert_allclose(ours.to_numpy(), np.asarray(theirs), rtol=1e-10, atol=1e-14)
    if isinstance(returns, pd.Series):
        assert ours.index.equals(returns.index)
    assert ours.min() == max_drawdown(returns)


@pytest.mark.parametrize("kind", ["datetime", "range"])
@pytest.mark.parametrize("window", [20, 126])
def test_rolling_sharpe_matches_empyrical(window: int, kind: str) -> None:
    returns = as_kind(random_returns(7, 400), kind)
    ours = rolling_sharpe(returns, window)
    theirs = empyrical.roll_sharpe_ratio(returns, window=window)
    assert ours.iloc[: window - 1].isna().all()
    np.testing.assert_allclose(ours.iloc[window - 1 :].to_numpy(), np.asarray(theirs), rtol=1e-9)
    assert ours.index.equals(returns.index)


def with_nans(kind: str) -> pd.Series | np.ndarray:
    values = random_returns(11, 500)
    values[[0, 1, 57, 300]] = np.nan  # leading warm-up and scattered missing periods
    return as_kind(values, kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (annual_volatility, empyrical.annual_volatility),
        (sharpe, empyrical.sharpe_ratio),
        (sortino, empyrical.sortino_ratio),
        (max_drawdown, empyrical.max_drawdown),
    ],
)
def test_nan_returns_skipped_as_empyrical_does(ours: Callable, theirs: Callable, kind: str) -> None:
    returns = with_nans(kind)
    np.testing.assert_allclose(ours(returns), theirs(returns), rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("ours", "theirs"), [(cagr, empyrical.cagr), (calmar, empyrical.calmar_ratio)]
)
def test_nan_periods_not_counted_as_time(ours: Callable, theirs: Callable, kind: str) -> None:
    # Documented difference: empyrical counts NaN periods in the number of years.
    returns = with_nans(kind)
    dropped = pd.Series(returns).dropna().to_numpy()
    np.testing.assert_allclose(ours(returns), theirs(dropped), rtol=1e-10)
    assert not np.isclose(ours(returns), theirs(returns), rtol=1e-6)


SCALAR_METRICS: list[Callable[..., float]] = [
    cagr,
    annual_volatility,
    sharpe,
    sortino,
    max_drawdown,
    max_drawdown_duration,
    calmar,
    hit_rate,
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("values", [[], [np.nan, np.nan, np.nan]], ids=["empty", "all_nan"])
@pytest.mark.parametrize("metric", SCALAR_METRICS, ids=lambda f: f.__name__)
def test_no_observation_gives_nan(metric: Callable[..., float], values: list, kind: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from numpy either
        assert np.isnan(metric(as_kind(values, kind)))


@pytest.mark.parametrize("kind", KINDS)
def test_summary_of_nothing_is_all_nan(kind: str) -> None:
    summary = summary_metrics(as_kind([], kind))
    assert summary.index.tolist() == SUMMARY_NAMES
    assert summary.isna().all()
    assert drawdown_series(as_kind([], kind)).empty


@pytest.mark.parametrize("kind", KINDS)
def test_single_observation(kind: str) -> None:
    returns = as_kind([0.1], kind)
    assert cagr(returns, periods_per_year=1) == pytest.approx(0.1)
    for metric in (annual_volatility, sharpe, sortino):
        assert np.isnan(metric(returns))


@pytest.mark.parametrize("kind", KINDS)
def test_zero_volatility_gives_nan_not_inf(kind: str) -> None:
    constant = as_kind([0.001] * 50, kind)
    assert np.isnan(sharpe(constant))
    assert np.isinf(empyrical.sharpe_ratio(constant))  # the peer says inf; we say NaN
    assert annual_volatility(constant) == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(sortino(constant))  # no period below the required return
    assert np.isnan(calmar(constant))  # no drawdown
    assert max_drawdown(constant) == 0.0
    assert max_drawdown_duration(constant) == 0.0
    assert np.isnan(rolling_sharpe(constant, 10)).all()


@pytest.mark.parametrize("kind", KINDS)
def test_total_loss(kind: str) -> None:
    returns = as_kind([0.1, -1.0, 0.0], kind)
    assert cagr(returns) == -1.0
    assert max_drawdown(returns) == -1.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # Equity 1.5, .75, .9375, 1.875: peak in period 1, recovered in period 4.
        ([0.5, -0.5, 0.25, 1.0, 0.0], 3.0),
        ([0.1, 0.0, 0.2], 0.0),  # never underwater
        ([-0.5, 1.0], 2.0),  # the starting value is a peak; recovered in period 2
        ([-0.5, 0.5], 2.0),  # never recovered: counted to the last period
        ([0.0, 0.0, -0.5], 1.0),  # peak is the last flat period before the fall
        # Spell 1: start -> period 2 (2 periods).  Spell 2: peak in period 3 (flat at
        # the old high), underwater 4-6, recovered in period 7 (4 periods).
        ([-0.5, 1.0, 0.0, -0.5, 0.5, 0.2, 0.2, 0.0], 4.0),
        ([0.5, np.nan, -0.5, 0.25, 1.0], 3.0),  # missing periods are not counted
    ],
)
def test_max_drawdown_duration_by_hand(values: list[float], expected: float, kind: str) -> None:
    assert max_drawdown_duration(as_kind(values, kind)) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_hit_rate_by_hand(kind: str) -> None:
    assert hit_rate(as_kind([0.01, 0.0, -0.02, 0.03, np.nan], kind)) == pytest.approx(2 / 3)
    assert hit_rate(as_kind([-0.01, -0.02], kind)) == 0.0
    assert np.isnan(hit_rate(as_kind([0.0, 0.0], kind)))


def test_turnover_by_hand() -> None:
    index = pd.date_range("2024-01-31", periods=3, freq="ME", tz="UTC")
    equity = pd.Series([100.0, 100.0, 200.0], index=index)
    traded = pd.Series([50.0, 0.0, 100.0], index=index)
    # Per-period turnover .5, 0, .5: mean 1/3, twelve periods a year.
    assert turnover(traded, equity, periods_per_year=12) == pytest.approx(4.0)
    per_asset = pd.DataFrame({"A": [30.0, 0.0, -60.0], "B": [-20.0, 0.0, 40.0]}, index=index)
    assert turnover(per_asset, equity, periods_per_year=12) == pytest.approx(4.0)
    broke = pd.Series([100.0, 0.0, 200.0], index=index)  # a period without equity is skipped
    assert turnover(traded, broke, periods_per_year=12) == pytest.approx(0.5 * 12)
    assert np.isnan(turnover(traded.iloc[:0], equity.iloc[:0]))


def test_exposure_by_hand() -> None:
    index = pd.RangeIndex(4)
    positions = pd.DataFrame(
        {"A": [50.0, 80.0, 0.0, 30.0], "B": [-50.0, 0.0, 0.0, np.nan]}, index=index
    )
    equity = pd.Series([100.0, 100.0, 50.0, 0.0], index=index)
    gross = exposure(positions, equity)
    net = net_exposure(positions, equity)
    np.testing.assert_allclose(gross.to_numpy(), [1.0, 0.8, 0.0, np.nan])
    np.testing.assert_allclose(net.to_numpy(), [0.0, 0.8, 0.0, np.nan])
    assert gross.name == "gross_exposure" and net.name == "net_exposure"
    assert average_exposure(positions, equity) == pytest.approx(0.6)
    single = pd.Series([-20.0, 40.0, 0.0, 0.0], index=index)
    np.testing.assert_allclose(exposure(single, equity).to_numpy()[:3], [0.2, 0.4, 0.0])


def test_cost_share_by_hand() -> None:
    assert cost_share(pd.Series([1.0, 2.0, 1.0]), pd.Series([10.0, -2.0, 8.0])) == 0.25
    assert cost_share(5.0, 4.0) == 1.25  # costs turned the profit into a loss
    per_asset = pd.DataFrame({"A": [1.0, 1.0], "B": [np.nan, 2.0]})
    assert cost_share(per_asset, 16.0) == 0.25
    assert np.isnan(cost_share(1.0, 0.0))
    assert np.isnan(cost_share(1.0, -3.0))
    assert np.isnan(cost_share(pd.Series([], dtype=float), 3.0))


def engine_like(kind: str) -> dict:
    """Return equity, returns, positions, trades and costs of a small made-up account."""
    init_cash = 1_000.0
    rng = np.random.default_rng(5)
    n = 300
    index = (
        pd.bdate_range("2022-01-03", periods=n, tz="UTC", name="ts")
        if kind == "datetime"
        else pd.RangeIndex(n)
    )
    returns = pd.Series(rng.normal(0.001, 0.01, n), index=index)
    equity = init_cash * (1.0 + returns).cumprod()
    positions = pd.DataFrame(
        {"A": 0.6 * equity, "B": -0.3 * equity * rng.uniform(0.5, 1.0, n)}, index=index
    )
    traded = positions.diff().abs().fillna(positions.abs())
    costs = traded * 0.001
    return {
        "returns": returns,
        "equity": equity,
        "positions": positions,
        "traded": traded,
        "costs": costs,
        "init_cash": init_cash,
    }


@pytest.mark.parametrize("kind", ["datetime", "range"])
def test_summary_metrics_assembles_every_metric(kind: str) -> None:
    acct = engine_like(kind)
    returns, equity = acct["returns"], acct["equity"]
    summary = summary_metrics(
        returns,
        traded_value=acct["traded"],
        positions_value=acct["positions"],
        equity=equity,
        costs=acct["costs"],
        periods_per_year=252,
    )
    assert summary.index.tolist() == SUMMARY_NAMES
    assert summary.dtype == np.float64
    assert summary.notna().all()
    expected = {
        "CAGR": cagr(returns),
        "Annual volatility": annual_volatility(returns),
        "Sharpe": sharpe(returns),
        "Sortino": sortino(returns),
        "Max drawdown": max_drawdown(returns),
        "Max drawdown duration (periods)": max_drawdown_duration(returns),
        "Calmar": calmar(returns),
        "Turnover (annual)": turnover(acct["traded"], equity, periods_per_year=252),
        "Average gross exposure": average_exposure(acct["positions"], equity),
        "Hit rate": hit_rate(returns),
    }
    for name, value in expected.items():
        assert summary[name] == pytest.approx(value, rel=1e-12), name
    # Gross P&L = change in equity since the initial cash + costs (no cash flows).
    total_costs = acct["costs"].to_numpy().sum()
    gross = equity.iloc[-1] - acct["init_cash"] + total_costs
    assert summary["Costs / gross P&L"] == pytest.approx(total_costs / gross, rel=1e-9)
    explicit = summary_metrics(returns, costs=acct["costs"], gross_pnl=gross)
    assert explicit["Costs / gross P&L"] == pytest.approx(total_costs / gross, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_summary_metrics_missing_inputs_are_nan(kind: str) -> None:
    summary = summary_metrics(as_kind(random_returns(0), kind), periods_per_year=252)
    missing = ["Turnover (annual)", "Average gross exposure", "Costs / gross P&L"]
    assert summary.index.tolist() == SUMMARY_NAMES
    assert summary[missing].isna().all()
    assert summary.drop(missing).notna().all()


def test_summaries_line_up_side_by_side() -> None:
    table = pd.concat({f"seed {s}": summary_metrics(random_returns(s)) for s in SEEDS[:3]}, axis=1)
    assert table.shape == (len(SUMMARY_NAMES), 3)


def test_rejects_two_dimensional_returns() -> None:
    with pytest.raises(TypeError, match="one-dimensional"):
        sharpe(pd.DataFrame({"a": [0.1, 0.2]}))
    with pytest.raises(ValueError, match="one-dimensional"):
        sharpe(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="window"):
        rolling_sharpe(pd.Series([0.1, 0.2]), window=1)


# Invariances (empyrical's): scaling returns by a positive constant leaves Sharpe alone;
# shifting every return up by a positive constant never makes the max drawdown worse.

# Returns on a 1 bp grid: distinct values stay distinct after scaling, so a series is
# constant (zero volatility, NaN Sharpe) before scaling exactly when it is after.
returns_lists = st.lists(
    st.integers(min_value=-2000, max_value=2000).map(lambda bp: bp / 10_000),
    min_size=2,
    max_size=60,
)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)
@given(values=returns_lists, scale=st.floats(min_value=0.1, max_value=5.0))
def test_scaling_leaves_sharpe_alone(kind: str, values: list[float], scale: float) -> None:
    base = sharpe(as_kind(values, kind))
    scaled = sharpe(as_kind(np.asarray(values) * scale, kind))
    if np.isnan(base):
        assert np.isnan(scaled)
    else:
        assert scaled == pytest.approx(base, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)
@given(values=returns_lists, shift=st.floats(min_value=1e-6, max_value=0.05))
def test_shifting_up_never_worsens_max_drawdown(
    kind: str, values: list[float], shift: float
) -> None:
    base = as_kind(values, kind)
    shifted = as_kind(np.asarray(values) + shift, kind)
    assert max_drawdown(shifted) >= max_drawdown(base) - 1e-12
    assert cagr(shifted) >= cagr(base) - 1e-12


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_invariances_on_random_series(seed: int, kind: str) -> None:
    values = random_returns(seed)
    base = as_kind(values, kind)
    for scale in (0.25, 3.0):
        scaled = as_kind(values * scale, kind)
        assert sharpe(scaled) == pytest.approx(sharpe(base), rel=1e-10)
        assert annual_volatility(scaled) == pytest.approx(scale * annual_volatility(base))
    for shift in (1e-4, 1e-3, 1e-2):
        shifted = as_kind(values + shift, kind)
        assert max_drawdown(shifted) >= max_drawdown(base)


# Annualisation follows the bar length of the returns (issue 10, bug 3): nothing assumes
# daily bars.  The expected factors are worked by hand from the definitions.


@pytest.mark.parametrize(
    ("freq", "expected"),
    [("W-FRI", 52.0), ("MS", 12.0), ("ME", 12.0), ("B", 252.0)],
)
def test_periods_per_year_inferred_from_index(freq: str, expected: float) -> None:
    values = random_returns(3, 260)
    dated = pd.Series(values, index=pd.date_range("2000-01-03", periods=260, freq=freq, tz="UTC"))
    assert metrics.annual_volatility(dated) == pytest.approx(
        np.std(values, ddof=1) * np.sqrt(expected), rel=1e-12
    )
    assert metrics.sharpe(dated) == pytest.approx(
        np.mean(values) / np.std(values, ddof=1) * np.sqrt(expected), rel=1e-12
    )
    assert metrics.cagr(dated) == pytest.approx(
        np.prod(1 + values) ** (expected / len(values)) - 1, rel=1e-12
    )
    summary = metrics.summary_metrics(dated)
    assert summary["Annual volatility"] == metrics.annual_volatility(
        dated, periods_per_year=expected
    )


def test_periods_per_year_inferred_for_hourly_fx() -> None:
    # 24 bars a day on weekdays only: the 24/5 FX calendar, 24 * 260 bars a year.
    index = pd.date_range("2024-01-01", periods=24 * 7 * 20, freq="h", tz="UTC")
    index = index[index.day_of_week < 5]
    values = np.random.default_rng(0).normal(0, 0.001, len(index))
    returns = pd.Series(values, index=index)
    assert metrics.annual_volatility(returns) == pytest.approx(
        np.std(values, ddof=1) * np.sqrt(24 * 260), rel=1e-12
    )


def test_periods_per_year_from_timeframe_attrs() -> None:
    # A panel from the store carries its timeframe; it wins over the index.
    returns = pd.Series(random_returns(1, 50))
    returns.attrs["timeframe"] = "1mo"
    assert metrics.annual_volatility(returns) == pytest.approx(
        metrics.annual_volatility(returns, periods_per_year=12)
    )


def test_undated_returns_need_periods_per_year() -> None:
    with pytest.raises(ValueError, match="pass periods_per_year="):
        metrics.sharpe(random_returns(0, 30))
    with pytest.raises(ValueError, match="pass periods_per_year="):
        metrics.summary_metrics(pd.Series(random_returns(0, 30)))


def test_no_daily_default_left_in_signatures() -> None:
    # Every annualising metric defaults to inferring, none to a hard-coded 252.
    for name in ("cagr", "annual_volatility", "sharpe", "rolling_sharpe", "sortino", "calmar",
                 "turnover", "summary_metrics", "alpha", "excess_return", "tracking_error",
                 "information_ratio", "up_capture", "down_capture"):  # fmt: skip
        default = inspect.signature(getattr(metrics, name)).parameters["periods_per_year"].default
        assert default is None, name
    assert not hasattr(metrics, "PERIODS_PER_YEAR")


# Benchmark-relative metrics: against empyrical, by hand, and by invariance.


def strategy_and_benchmark(seed: int, n: int = 750, freq: str = "B") -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2010-01-01", periods=n, freq=freq, tz="UTC", name="ts")
    bench = pd.Series(rng.standard_t(5, n) * 0.01 + 0.0003, index=index)
    strat = 0.6 * bench + rng.normal(0.0002, 0.006, n)
    return strat, bench


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("freq", "period", "ppy"), [("B", "daily", 252), ("ME", "monthly", 12)])
def test_benchmark_metrics_match_empyrical(seed: int, freq: str, period: str, ppy: int) -> None:
    r, b = strategy_and_benchmark(seed, 240, freq)
    expected_alpha, expected_beta = empyrical.alpha_beta(r, b, annualization=ppy)
    assert metrics.beta(r, b) == pytest.approx(expected_beta, rel=1e-10)
    assert metrics.alpha(r, b) == pytest.approx(expected_alpha, rel=1e-10)
    assert metrics.alpha(r, b, risk_free=1e-4) == pytest.approx(
        empyrical.alpha(r, b, risk_free=1e-4, annualization=ppy), rel=1e-10
    )
    assert metrics.up_capture(r, b) == pytest.approx(empyrical.up_capture(r, b, period=period))
    assert metrics.down_capture(r, b) == pytest.approx(empyrical.down_capture(r, b, period=period))
    assert metrics.tracking_error(r, b) == pytest.approx(
        empyrical.annual_volatility(r - b, annualization=ppy), rel=1e-10
    )
    assert metrics.information_ratio(r, b) == pytest.approx(
        empyrical.excess_sharpe(r, b) * np.sqrt(ppy), rel=1e-10
    )
    # By hand: the arithmetic mean active return per year.
    assert metrics.excess_return(r, b) == pytest.approx(np.mean(r - b) * ppy, rel=1e-12)


def test_benchmark_metrics_on_real_indices() -> None:
    # NASDAQ Composite against the S&P 500 (daily, from the arch package): a high-beta
    # index, checked against empyrical on data nobody here wrote.
    from arch.data import nasdaq, sp500

    spx = sp500.load()["Adj Close"].pct_change().dropna()
    ixic = nasdaq.load()["Adj Close"].pct_change().dropna()
    common = spx.index.intersection(ixic.index)
    expected_alpha, expected_beta = empyrical.alpha_beta(ixic[common], spx[common])
    assert 1.0 < metrics.beta(ixic, spx) < 1.6
    assert metrics.beta(ixic, spx) == pytest.approx(expected_beta, rel=1e-10)
    assert metrics.alpha(ixic, spx) == pytest.approx(expected_alpha, rel=1e-10)
    assert metrics.up_capture(ixic, spx) == pytest.approx(
        empyrical.up_capture(ixic[common], spx[common])
    )


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_benchmark_invariances(seed: int) -> None:
    r, b = strategy_and_benchmark(seed)
    assert metrics.beta(b, b) == pytest.approx(1.0, rel=1e-12)
    assert metrics.alpha(b, b) == pytest.approx(0.0, abs=1e-12)
    assert metrics.tracking_error(b, b) == 0.0
    assert np.isnan(metrics.information_ratio(b, b))
    assert metrics.up_capture(b, b) == pytest.approx(1.0)
    assert metrics.down_capture(b, b) == pytest.approx(1.0)
    for k in (0.5, 2.0, -1.0):
        assert metrics.beta(k * r, b) == pytest.approx(k * metrics.beta(r, b), rel=1e-10)
    # A constant added to every return moves alpha, never beta.
    assert metrics.beta(r + 0.001, b) == pytest.approx(metrics.beta(r, b), rel=1e-10)
    assert metrics.alpha(r + 0.001, b) > metrics.alpha(r, b)
    # Information ratio is scale-free in the active return.
    active = r - b
    assert metrics.information_ratio(b + 3 * active, b) == pytest.approx(
        metrics.information_ratio(r, b), rel=1e-10
    )


def test_benchmark_aligned_by_index() -> None:
    r, b = strategy_and_benchmark(2)
    shuffled = b.sample(frac=1.0, random_state=0)
    assert metrics.beta(r, shuffled) == pytest.approx(metrics.beta(r, b), rel=1e-12)
    # Only the periods both have count.
    partial = b.iloc[100:]
    assert metrics.beta(r, partial) == pytest.approx(metrics.beta(r.iloc[100:], partial), rel=1e-12)
    with pytest.raises(ValueError, match="shares no period"):
        metrics.beta(r.iloc[:100], b.iloc[200:])
    with pytest.raises(ValueError, match="same length"):
        metrics.beta(r.to_numpy(), b.to_numpy()[:10])


def test_summary_metrics_with_benchmark() -> None:
    r, b = strategy_and_benchmark(4)
    summary = metrics.summary_metrics(r, benchmark=b)
    assert summary.index.tolist() == SUMMARY_NAMES + list(metrics.BENCHMARK_METRICS)
    assert summary["Beta"] == pytest.approx(metrics.beta(r, b))
    assert summary["Alpha (annual)"] == pytest.approx(metrics.alpha(r, b))
    assert summary["Information ratio"] == pytest.approx(
        summary["Excess return (annual)"] / summary["Tracking error"]
    )
    assert summary.notna().sum() == len(summary) - 3  # turnover, exposure, costs not given
