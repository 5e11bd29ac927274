"""Performance metrics of a backtest: one small pure function per metric.

Conventions shared by every function:

- ``returns`` are simple per-period portfolio returns (``0.01`` is +1 %), a
  :class:`pandas.Series` indexed by ``ts`` (any index works) or a 1-D array.
- Missing returns (NaN) are dropped first: a metric sees the observed periods only.
  For the mean/deviation based metrics this is what :mod:`empyrical` does too; for
  CAGR it differs, since empyrical counts NaN periods in the number of years (as
  zero returns) while :func:`cagr` here does not.
- Empty or all-NaN input gives NaN, never an exception.  A ratio whose denominator
  is zero (a constant return series, no drawdown, no losing period) is NaN, not inf.
- ``periods_per_year`` annualises: 252 for daily bars, 52 weekly, 12 monthly.
- ``risk_free`` and ``required_return`` are per-period rates, as in empyrical.
- Inputs other than returns (``equity``, ``traded_value``, ``positions_value``,
  ``costs``) are aligned by index with pandas, so they must share the returns' index.

Examples
--------
>>> r = pd.Series([0.01, -0.02, 0.015, 0.005])
>>> round(max_drawdown(r), 4)
-0.02
>>> summary_metrics(r, periods_per_year=252)["Hit rate"]
np.float64(0.75)
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import pandas as pd

__all__ = [
    "PERIODS_PER_YEAR",
    "annual_volatility",
    "average_exposure",
    "cagr",
    "calmar",
    "cost_share",
    "drawdown_series",
    "exposure",
    "hit_rate",
    "max_drawdown",
    "max_drawdown_duration",
    "net_exposure",
    "rolling_sharpe",
    "sharpe",
    "sortino",
    "summary_metrics",
    "turnover",
]

PERIODS_PER_YEAR = 252

ReturnsLike: TypeAlias = pd.Series | np.ndarray
"""Simple per-period returns: a Series (index ``ts``) or a 1-D array."""

SeriesOrFrame: TypeAlias = pd.Series | pd.DataFrame
"""One value per period, or a wide panel (ts x symbols) summed across symbols."""


def _clean(returns: ReturnsLike) -> pd.Series:
    """Return ``returns`` as a float Series with missing periods dropped."""
    if isinstance(returns, pd.DataFrame):
        raise TypeError("returns must be one-dimensional (a Series or 1-D array), got a DataFrame")
    if isinstance(returns, pd.Series):
        series = returns.astype("float64")
    else:
        values = np.asarray(returns, dtype="float64")
        if values.ndim != 1:
            raise ValueError(f"returns must be one-dimensional, got shape {values.shape}")
        series = pd.Series(values)
    return series.dropna()


def _per_period(values: SeriesOrFrame, *, absolute: bool) -> pd.Series:
    """Return one value per period: a wide panel is summed across its columns."""
    if isinstance(values, pd.DataFrame):
        frame = values.abs() if absolute else values
        return frame.sum(axis=1, min_count=1).astype("float64")
    series = values.abs() if absolute else values
    return series.astype("float64")


def _positive(equity: pd.Series) -> pd.Series:
    """Return ``equity`` with non-positive values masked: ratios to them are undefined."""
    equity = equity.astype("float64")
    return equity.where(equity > 0)


def _total(values: SeriesOrFrame | float) -> float:
    """Return the sum of all present values (NaN when none is present)."""
    if isinstance(values, pd.DataFrame):
        stacked = values.to_numpy(dtype="float64").ravel()
    elif isinstance(values, pd.Series):
        stacked = values.to_numpy(dtype="float64")
    else:
        stacked = np.array([values], dtype="float64")
    present = stacked[~np.isnan(stacked)]
    return float(present.sum()) if present.size else float("nan")


def _is_constant(values: pd.Series) -> bool:
    """Return whether every value is equal (its sample std is zero up to rounding)."""
    return bool(values.max() == values.min())


def cagr(returns: ReturnsLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Return the compound annual growth rate of the compounded returns.

    ``(prod(1 + r)) ** (periods_per_year / n) - 1`` over the ``n`` observed periods
    (NaN returns are dropped, not counted as time).  A compounded value at or below
    zero (a total loss) gives ``-1.0``.

    Parameters
    ----------
    returns
        Simple per-period returns.
    periods_per_year
        Number of periods in a year.

    Returns
    -------
    float
        CAGR as a fraction (0.1 is 10 % a year); NaN when there is no observation.

    Examples
    --------
    >>> round(cagr(pd.Series([0.1, 0.1]), periods_per_year=2), 6)
    0.21
    """
    r = _clean(returns)
    if r.empty:
        return float("nan")
    ending_value = float(np.prod(1.0 + r.to_numpy()))
    if ending_value <= 0.0:
        return -1.0
    return float(ending_value ** (periods_per_year / len(r)) - 1.0)


def annual_volatility(returns: ReturnsLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Return the annualised standard deviation of returns (ddof=1).

    Parameters
    ----------
    returns
        Simple per-period returns.
    periods_per_year
        Number of periods in a year; the deviation is scaled by its square root.

    Returns
    -------
    float
        Annual volatility as a fraction; NaN with fewer than two observations.

    Examples
    --------
    >>> round(annual_volatility(pd.Series([0.01, -0.01]), periods_per_year=1), 6)
    0.014142
    """
    r = _clean(returns)
    if len(r) < 2:
        return float("nan")
    return float(r.std(ddof=1) * np.sqrt(periods_per_year))


def sharpe(
    returns: ReturnsLike,
    risk_free: float = 0.0,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> float:
    """Return the annualised Sharpe ratio: mean excess return over its std, times sqrt(ppy).

    Parameters
    ----------
    returns
        Simple per-period returns.
    risk_free
        Constant risk-free return per period.
    periods_per_year
        Number of periods in a year.

    Returns
    -------
    float
        ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``; NaN with fewer
        than two observations or when every return is the same (zero volatility).

    Examples
    --------
    >>> round(sharpe(pd.Series([0.01, 0.03]), periods_per_year=1), 6)
    1.414214
    """
    excess = _clean(returns) - risk_free
    if len(excess) < 2 or _is_constant(excess):
        return float("nan")
    return float(excess.mean() / excess.std(ddof=1) * np.sqrt(periods_per_year))


def rolling_sharpe(
    returns: ReturnsLike,
    window: int = 126,
    risk_free: float = 0.0,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> pd.Series:
    """Return the annualised Sharpe ratio over a trailing window of ``window`` periods.

    Parameters
    ----------
    returns
        Simple per-period returns.
    window
        Number of observed periods in each window (at least 2).
    risk_free
        Constant risk-free return per period.
    periods_per_year
        Number of periods in a year.

    Returns
    -------
    pandas.Series
        One value per observed period, as :func:`sharpe` over the window ending there;
        NaN for the first ``window - 1`` periods and for windows of constant returns.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    excess = _clean(returns) - risk_free
    rolling = excess.rolling(window)
    constant = rolling.max() == rolling.min()
    ratio = rolling.mean() / rolling.std(ddof=1) * np.sqrt(periods_per_year)
    out: pd.Series = ratio.mask(constant)
    out.name = "rolling_sharpe"
    return out


def sortino(
    returns: ReturnsLike,
    required_return: float = 0.0,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> float:
    """Return the annualised Sortino ratio: mean excess return over downside deviation.

    The downside deviation is empyrical's: ``sqrt(mean(min(r - required_return, 0) ** 2))``
    over all periods (not only the losing ones), annualised by ``sqrt(periods_per_year)``;
    the mean excess return is annualised by ``periods_per_year``.

    Parameters
    ----------
    returns
        Simple per-period returns.
    required_return
        Minimum acceptable return per period.
    periods_per_year
        Number of periods in a year.

    Returns
    -------
    float
        The Sortino ratio; NaN with fewer than two observations or when no period falls
        below ``required_return`` (zero downside deviation; empyrical gives inf there).

    Examples
    --------
    >>> round(sortino(pd.Series([0.02, -0.01]), periods_per_year=1), 6)
    0.707107
    """
    excess = _clean(returns) - required_return
    if len(excess) < 2:
        return float("nan")
    downside = float(np.sqrt(np.mean(np.minimum(excess.to_numpy(), 0.0) ** 2)))
    if downside == 0.0:
        return float("nan")
    return float(excess.mean() * periods_per_year / (downside * np.sqrt(periods_per_year)))


def drawdown_series(returns: ReturnsLike) -> pd.Series:
    """Return the drawdown of the compounded returns from their running peak at each period.

    The equity curve starts at 1 before the first return, so a loss in the first period
    is already a drawdown.

    Parameters
    ----------
    returns
        Simple per-period returns.

    Returns
    -------
    pandas.Series
        ``equity / running_peak - 1``: 0 at a new high, negative below it; indexed by
        the observed periods (NaN returns dropped), named ``"drawdown"``.

    Examples
    --------
    >>> drawdown_series(pd.Series([0.5, -0.5, 1.0])).tolist()
    [0.0, -0.5, 0.0]
    """
    r = _clean(returns)
    equity = np.cumprod(1.0 + r.to_numpy())
    peak = np.maximum.accumulate(np.maximum(equity, 1.0)) if equity.size else equity
    return pd.Series(equity / peak - 1.0, index=r.index, name="drawdown")


def max_drawdown(returns: ReturnsLike) -> float:
    """Return the largest peak-to-trough loss of the compounded returns, as a negative number.

    Parameters
    ----------
    returns
        Simple per-period returns.

    Returns
    -------
    float
        The minimum of :func:`drawdown_series` (e.g. ``-0.35``); 0.0 when the equity
        never falls below a previous peak; NaN when there is no observation.

    Examples
    --------
    >>> max_drawdown(pd.Series([0.5, -0.5, 1.0]))
    -0.5
    """
    drawdown = drawdown_series(returns)
    return float(drawdown.min()) if not drawdown.empty else float("nan")


def max_drawdown_duration(returns: ReturnsLike) -> float:
    """Return the longest time underwater, in periods, from a peak to its recovery.

    A spell underwater starts at a peak of the compounded equity (the starting value 1
    counts as a peak) and lasts until the first period whose equity is back at or above
    that peak; if it never recovers, until the last period.  Its duration is the number
    of periods from the peak to the recovery (or to the last period): one more than the
    number of periods spent below the peak when it recovers, equal to it when not.
    Periods are observed periods (NaN returns dropped); multiply by the bar length for
    calendar time.

    Parameters
    ----------
    returns
        Simple per-period returns.

    Returns
    -------
    float
        A whole number of periods: 0.0 when the equity is never below a previous peak;
        NaN when there is no observation.

    Examples
    --------
    Below the peak for periods 2 and 3, back above it in period 4:

    >>> max_drawdown_duration(pd.Series([0.5, -0.5, 0.25, 1.0, 0.0]))
    3.0
    """
    drawdown = drawdown_series(returns).to_numpy()
    n = drawdown.size
    if n == 0:
        return float("nan")
    underwater = np.concatenate(([0], (drawdown < 0.0).astype(np.int8), [0]))
    edges = np.diff(underwater)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # one past the last underwater period
    if starts.size == 0:
        return 0.0
    durations = (ends - starts) + (ends < n)
    return float(durations.max())


def calmar(returns: ReturnsLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Return the Calmar ratio: CAGR over the absolute maximum drawdown.

    Parameters
    ----------
    returns
        Simple per-period returns.
    periods_per_year
        Number of periods in a year.

    Returns
    -------
    float
        ``cagr / abs(max_drawdown)``; NaN when there is no drawdown or no observation.

    Examples
    --------
    >>> calmar(pd.Series([0.5, -0.5, 1.0]), periods_per_year=3)
    1.0
    """
    worst = max_drawdown(returns)
    if not worst < 0.0:
        return float("nan")
    return cagr(returns, periods_per_year) / abs(worst)


def hit_rate(returns: ReturnsLike) -> float:
    """Return the share of periods with a nonzero return whose return is positive.

    Flat periods (return exactly 0, e.g. out of the market) count neither way.

    Parameters
    ----------
    returns
        Simple per-period returns.

    Returns
    -------
    float
        A fraction in [0, 1]; NaN when no period has a nonzero return.

    Examples
    --------
    >>> hit_rate(pd.Series([0.01, 0.0, -0.02, 0.03]))
    0.6666666666666666
    """
    r = _clean(returns)
    active = r[r != 0.0]
    if active.empty:
        return float("nan")
    return float((active > 0.0).mean())


def turnover(
    traded_value: SeriesOrFrame,
    equity: pd.Series,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> float:
    """Return the annualised turnover: mean per-period traded value over equity, times ppy.

    Buys and sells both count (two-sided): selling a whole book and buying a new one
    of the same size is a turnover of 2 for that period.

    Parameters
    ----------
    traded_value
        Absolute value traded per period, summed over assets (a Series); or the value
        traded per asset (a wide DataFrame, signed or not), whose absolute values are
        summed across columns.
    equity
        Portfolio value per period on the same index (e.g. end-of-period equity).
        Periods with equity at or below zero are skipped.
    periods_per_year
        Number of periods in a year.

    Returns
    -------
    float
        ``mean_t(traded_t / equity_t) * periods_per_year`` over periods where both are
        present; NaN when there is none.

    Examples
    --------
    >>> equity = pd.Series([100.0, 100.0, 200.0])
    >>> turnover(pd.Series([50.0, 0.0, 100.0]), equity, periods_per_year=12)
    4.0
    """
    ratio = (_per_period(traded_value, absolute=True) / _positive(equity)).dropna()
    if ratio.empty:
        return float("nan")
    return float(ratio.mean() * periods_per_year)


def exposure(positions_value: SeriesOrFrame, equity: pd.Series) -> pd.Series:
    """Return the gross exposure per period: the sum of absolute position values over equity.

    Parameters
    ----------
    positions_value
        Market value of each position per period: a wide DataFrame (ts x symbols, short
        positions negative) or a Series for a single asset.
    equity
        Portfolio value per period on the same index.

    Returns
    -------
    pandas.Series
        ``sum_i |position_i| / equity`` named ``"gross_exposure"`` (1.0 is fully invested
        without leverage); NaN where equity is missing or not positive.

    Examples
    --------
    >>> pv = pd.DataFrame({"A": [50.0, 80.0], "B": [-50.0, 0.0]})
    >>> exposure(pv, pd.Series([100.0, 100.0])).tolist()
    [1.0, 0.8]
    """
    gross = _per_period(positions_value, absolute=True) / _positive(equity)
    return gross.rename("gross_exposure")


def net_exposure(positions_value: SeriesOrFrame, equity: pd.Series) -> pd.Series:
    """Return the net exposure per period: the sum of signed position values over equity.

    Parameters
    ----------
    positions_value
        Market value of each position per period (short positions negative).
    equity
        Portfolio value per period on the same index.

    Returns
    -------
    pandas.Series
        ``sum_i position_i / equity`` named ``"net_exposure"``; NaN where equity is
        missing or not positive.

    Examples
    --------
    >>> pv = pd.DataFrame({"A": [50.0, 80.0], "B": [-50.0, 0.0]})
    >>> net_exposure(pv, pd.Series([100.0, 100.0])).tolist()
    [0.0, 0.8]
    """
    net = _per_period(positions_value, absolute=False) / _positive(equity)
    return net.rename("net_exposure")


def average_exposure(positions_value: SeriesOrFrame, equity: pd.Series) -> float:
    """Return the mean gross exposure over the periods where it is defined.

    Parameters
    ----------
    positions_value
        Market value of each position per period, as for :func:`exposure`.
    equity
        Portfolio value per period on the same index.

    Returns
    -------
    float
        The mean of :func:`exposure`; NaN when it is nowhere defined.
    """
    gross = exposure(positions_value, equity).dropna()
    return float(gross.mean()) if not gross.empty else float("nan")


def cost_share(costs_paid: SeriesOrFrame | float, gross_pnl: SeriesOrFrame | float) -> float:
    """Return the share of the gross P&L (before costs) that trading costs consumed.

    Parameters
    ----------
    costs_paid
        Costs (commissions, spread, slippage) as positive amounts: a total, one value
        per period, or a wide panel per asset; everything present is summed.
    gross_pnl
        P&L before costs, in the same currency: a total or per-period values, summed.

    Returns
    -------
    float
        ``total costs / total gross P&L``: 0.25 means costs ate a quarter of the
        gross profit, above 1 that they turned it into a loss.  NaN when the gross
        P&L is not positive (the ratio has no meaning for a strategy that loses
        before costs) or either input has no value.

    Examples
    --------
    >>> cost_share(pd.Series([1.0, 2.0, 1.0]), pd.Series([10.0, -2.0, 8.0]))
    0.25
    """
    costs_total = _total(costs_paid)
    gross_total = _total(gross_pnl)
    if not gross_total > 0.0 or np.isnan(costs_total):
        return float("nan")
    return costs_total / gross_total


def _net_pnl(returns: ReturnsLike, equity: pd.Series) -> pd.Series:
    """Return the change in equity per period, from end-of-period equity and the return.

    ``equity_t - equity_{t-1} = equity_t * r_t / (1 + r_t)``; this assumes no deposits
    or withdrawals, so that returns and equity describe the same account.
    """
    r = _clean(returns)
    equity = equity.astype("float64")
    return equity * r / (1.0 + r)


def summary_metrics(
    returns: ReturnsLike,
    *,
    traded_value: SeriesOrFrame | None = None,
    positions_value: SeriesOrFrame | None = None,
    equity: pd.Series | None = None,
    costs: SeriesOrFrame | float | None = None,
    gross_pnl: SeriesOrFrame | float | None = None,
    periods_per_year: int = PERIODS_PER_YEAR,
) -> pd.Series:
    """Return every metric of this module in one Series with readable names.

    The index is always the same eleven names in the same order, so summaries of
    several strategies line up side by side (``pd.concat(..., axis=1)``); a metric
    whose inputs are not given is NaN:

    - ``"Turnover (annual)"`` needs ``traded_value`` and ``equity``;
    - ``"Average gross exposure"`` needs ``positions_value`` and ``equity``;
    - ``"Costs / gross P&L"`` needs ``costs`` and either ``gross_pnl`` or ``equity``.
      Without ``gross_pnl`` the gross P&L is the change in equity (recovered from
      ``equity`` and ``returns``, assuming no deposits or withdrawals) plus costs.

    Parameters
    ----------
    returns
        Simple per-period portfolio returns (after costs).
    traded_value
        Absolute value traded per period (Series) or per asset (wide DataFrame).
    positions_value
        Market value of each position per period (wide DataFrame or Series).
    equity
        End-of-period portfolio value on the returns' index.
    costs
        Costs paid: a total, per period, or per asset and period.
    gross_pnl
        P&L before costs (a total or per period); derived from ``equity`` when omitted.
    periods_per_year
        Number of periods in a year.

    Returns
    -------
    pandas.Series
        Float values indexed by ``"CAGR"``, ``"Annual volatility"``, ``"Sharpe"``,
        ``"Sortino"``, ``"Max drawdown"``, ``"Max drawdown duration (periods)"``,
        ``"Calmar"``, ``"Turnover (annual)"``, ``"Average gross exposure"``,
        ``"Hit rate"``, ``"Costs / gross P&L"``.

    Examples
    --------
    >>> r = pd.Series([0.01, -0.02, 0.015, 0.005])
    >>> summary_metrics(r).round(4)[["Max drawdown", "Hit rate"]].tolist()
    [-0.02, 0.75]
    """
    nan = float("nan")
    turnover_value = nan
    exposure_value = nan
    cost_value = nan
    if traded_value is not None and equity is not None:
        turnover_value = turnover(traded_value, equity, periods_per_year)
    if positions_value is not None and equity is not None:
        exposure_value = average_exposure(positions_value, equity)
    if costs is not None:
        if gross_pnl is None and equity is not None:
            gross_pnl = _total(_net_pnl(returns, equity)) + _total(costs)
        if gross_pnl is not None:
            cost_value = cost_share(costs, gross_pnl)
    values = {
        "CAGR": cagr(returns, periods_per_year),
        "Annual volatility": annual_volatility(returns, periods_per_year),
        "Sharpe": sharpe(returns, periods_per_year=periods_per_year),
        "Sortino": sortino(returns, periods_per_year=periods_per_year),
        "Max drawdown": max_drawdown(returns),
        "Max drawdown duration (periods)": max_drawdown_duration(returns),
        "Calmar": calmar(returns, periods_per_year),
        "Turnover (annual)": turnover_value,
        "Average gross exposure": exposure_value,
        "Hit rate": hit_rate(returns),
        "Costs / gross P&L": cost_value,
    }
    return pd.Series(values, dtype="float64")
