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
- ``periods_per_year`` annualises.  Left at ``None`` it is read from the returns'
  ``attrs['timeframe']`` or their DatetimeIndex by
  :func:`quantdesk.data.frequency.periods_per_year` (252 for daily bars, 52 weekly,
  12 monthly, hourly by the session hours the data show); returns without a
  DatetimeIndex (an array) need it given.
- Benchmark-relative metrics take the benchmark's simple per-period returns, aligned
  with the strategy's by index: only periods where both are present count, and no
  common period at all is an error.
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
>>> daily = pd.Series([0.01, -0.02, 0.015], index=pd.date_range("2024-01-02", periods=3))
>>> annual_volatility(daily) == annual_volatility(daily, periods_per_year=252)
True
"""

from __future__ import annotations

import logging
from typing import TypeAlias

import numpy as np
import pandas as pd

from quantdesk.data.frequency import resolve_periods_per_year

__all__ = [
    "BENCHMARK_METRICS",
    "alpha",
    "annual_volatility",
    "average_exposure",
    "beta",
    "cagr",
    "calmar",
    "cost_share",
    "down_capture",
    "drawdown_series",
    "excess_return",
    "exposure",
    "hit_rate",
    "information_ratio",
    "max_drawdown",
    "max_drawdown_duration",
    "net_exposure",
    "returns_from_prices",
    "rolling_sharpe",
    "sharpe",
    "sortino",
    "summary_metrics",
    "tracking_error",
    "turnover",
    "up_capture",
]

logger = logging.getLogger(__name__)

#: Names :func:`summary_metrics` adds when given a benchmark, in order.
BENCHMARK_METRICS: tuple[str, ...] = (
    "Excess return (annual)",
    "Beta",
    "Alpha (annual)",
    "Tracking error",
    "Information ratio",
    "Up capture",
    "Down capture",
)

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


def _ppy(data: object, periods_per_year: float | None) -> float:
    """Return the bars per year of ``data`` (given, or from its timeframe or index)."""
    return resolve_periods_per_year(periods_per_year, data, what="returns")


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


def cagr(returns: ReturnsLike, periods_per_year: float | None = None) -> float:
    """Return the compound annual growth rate of the compounded returns.

    ``(prod(1 + r)) ** (periods_per_year / n) - 1`` over the ``n`` observed periods
    (NaN returns are dropped, not counted as time).  A compounded value at or below
    zero (a total loss) gives ``-1.0``.

    Parameters
    ----------
    returns
        Simple per-period returns.
    periods_per_year
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

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
    ppy = _ppy(returns, periods_per_year)
    ending_value = float(np.prod(1.0 + r.to_numpy()))
    if ending_value <= 0.0:
        return -1.0
    return float(ending_value ** (ppy / len(r)) - 1.0)


def annual_volatility(returns: ReturnsLike, periods_per_year: float | None = None) -> float:
    """Return the annualised standard deviation of returns (ddof=1).

    Parameters
    ----------
    returns
        Simple per-period returns.
    periods_per_year
        Number of periods in a year, the deviation is scaled by its square root;
        ``None`` reads it from the returns' timeframe or index.

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
    ppy = _ppy(returns, periods_per_year)
    return float(r.std(ddof=1) * np.sqrt(ppy))


def sharpe(
    returns: ReturnsLike,
    risk_free: float = 0.0,
    periods_per_year: float | None = None,
) -> float:
    """Return the annualised Sharpe ratio: mean excess return over its std, times sqrt(ppy).

    Parameters
    ----------
    returns
        Simple per-period returns.
    risk_free
        Constant risk-free return per period.
    periods_per_year
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

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
    ppy = _ppy(returns, periods_per_year)
    return float(excess.mean() / excess.std(ddof=1) * np.sqrt(ppy))


def rolling_sharpe(
    returns: ReturnsLike,
    window: int = 126,
    risk_free: float = 0.0,
    periods_per_year: float | None = None,
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
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

    Returns
    -------
    pandas.Series
        One value per observed period, as :func:`sharpe` over the window ending there;
        NaN for the first ``window - 1`` periods and for windows of constant returns.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2, got {window}")
    excess = _clean(returns) - risk_free
    ppy = _ppy(returns, periods_per_year) if len(excess) >= window else float("nan")
    rolling = excess.rolling(window)
    constant = rolling.max() == rolling.min()
    ratio = rolling.mean() / rolling.std(ddof=1) * np.sqrt(ppy)
    out: pd.Series = ratio.mask(constant)
    out.name = "rolling_sharpe"
    return out


def sortino(
    returns: ReturnsLike,
    required_return: float = 0.0,
    periods_per_year: float | None = None,
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
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

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
    ppy = _ppy(returns, periods_per_year)
    return float(excess.mean() * ppy / (downside * np.sqrt(ppy)))


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


def calmar(returns: ReturnsLike, periods_per_year: float | None = None) -> float:
    """Return the Calmar ratio: CAGR over the absolute maximum drawdown.

    Parameters
    ----------
    returns
        Simple per-period returns.
    periods_per_year
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

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
    periods_per_year: float | None = None,
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
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

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
    ppy = resolve_periods_per_year(periods_per_year, equity, what="equity")
    return float(ratio.mean() * ppy)


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


def returns_from_prices(prices: pd.Series, index: pd.Index) -> pd.Series:
    """Return the simple returns of ``prices`` over the bars of ``index``.

    The prices (or equity) are put on ``index`` without filling: a bar the benchmark has
    no price for, and the bar after it, get NaN returns and drop out of the metrics
    instead of counting as flat.  Prices sharing no bar with ``index`` are an error.

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=4)
    >>> returns_from_prices(pd.Series([100.0, 110.0, 99.0], index=idx[:3]), idx).round(2).tolist()
    [nan, 0.1, -0.1, nan]
    """
    if isinstance(prices, pd.DataFrame):
        if prices.shape[1] != 1:
            raise TypeError("benchmark prices must be one series, not a panel of several")
        prices = prices.iloc[:, 0]
    if not isinstance(prices, pd.Series):
        raise TypeError("benchmark prices must be a pandas Series indexed like the backtest")
    on_bars = prices.astype("float64").reindex(index)
    if on_bars.notna().sum() < 2:
        raise ValueError(
            f"the benchmark has prices on {int(on_bars.notna().sum())} of the backtest's "
            f"{len(index)} bars (benchmark {_span(prices.dropna())}); need at least 2"
        )
    missing = int(on_bars.isna().sum())
    if missing:
        logger.warning("the benchmark has no price on %d of %d bars", missing, len(index))
    return on_bars.pct_change(fill_method=None).rename("benchmark")


def _aligned(returns: ReturnsLike, benchmark: ReturnsLike) -> tuple[pd.Series, pd.Series]:
    """Return strategy and benchmark returns on the periods where both are present.

    Series are aligned by index; arrays must have the same length.  No common period
    is an error, and periods dropped because only one side has them are logged.
    """
    r, b = _clean(returns), _clean(benchmark)
    indexed = isinstance(returns, pd.Series) and isinstance(benchmark, pd.Series)
    if not indexed and len(np.asarray(returns)) != len(np.asarray(benchmark)):
        raise ValueError(
            "returns and benchmark without an index must have the same length, got "
            f"{len(np.asarray(returns))} and {len(np.asarray(benchmark))}"
        )
    common = r.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError(
            "the benchmark shares no period with the returns "
            f"(returns {_span(r)}, benchmark {_span(b)}); align them first"
        )
    dropped = len(r) - len(common)
    if dropped:
        logger.info(
            "benchmark-relative metrics on %d common periods; %d strategy periods have no "
            "benchmark return",
            len(common),
            dropped,
        )
    return r.loc[common], b.loc[common]


def _span(series: pd.Series) -> str:
    if series.empty:
        return "empty"
    return f"{series.index[0]} .. {series.index[-1]}, {len(series)} periods"


def beta(returns: ReturnsLike, benchmark: ReturnsLike) -> float:
    """Return the beta of the returns on the benchmark's: ``cov(r, b) / var(b)``.

    Parameters
    ----------
    returns, benchmark
        Simple per-period returns of the strategy and of the benchmark.

    Returns
    -------
    float
        The least-squares slope of ``r`` on ``b`` over their common periods (as
        empyrical's ``beta``); NaN with fewer than two common periods or a constant
        benchmark.

    Examples
    --------
    >>> b = pd.Series([0.01, -0.02, 0.03])
    >>> round(beta(2 * b + 0.001, b), 6)
    2.0
    """
    r, b = _aligned(returns, benchmark)
    if len(r) < 2 or _is_constant(b):
        return float("nan")
    centred = b - b.mean()
    return float((centred * r).mean() / (centred**2).mean())


def alpha(
    returns: ReturnsLike,
    benchmark: ReturnsLike,
    risk_free: float = 0.0,
    periods_per_year: float | None = None,
) -> float:
    """Return Jensen's alpha per year, compounded: ``(1 + mean(a)) ** ppy - 1``.

    ``a = (r - rf) - beta * (b - rf)`` per period is the return not explained by the
    benchmark exposure; its mean is compounded over a year, the convention of
    empyrical's ``alpha``.

    Parameters
    ----------
    returns, benchmark
        Simple per-period returns of the strategy and of the benchmark.
    risk_free
        Constant risk-free return per period.
    periods_per_year
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

    Returns
    -------
    float
        Annual alpha as a fraction; NaN when beta is undefined.

    Examples
    --------
    >>> b = pd.Series([0.01, -0.02, 0.03])
    >>> round(alpha(b + 0.001, b, periods_per_year=12), 6)  # 1.001 ** 12 - 1
    0.012066
    """
    ppy = _ppy(returns, periods_per_year)
    slope = beta(returns, benchmark)
    if np.isnan(slope):
        return float("nan")
    r, b = _aligned(returns, benchmark)
    unexplained = (r - risk_free) - slope * (b - risk_free)
    return float((1.0 + unexplained.mean()) ** ppy - 1.0)


def excess_return(
    returns: ReturnsLike, benchmark: ReturnsLike, periods_per_year: float | None = None
) -> float:
    """Return the mean active return ``r - b`` per year (arithmetic: ``mean * ppy``).

    Arithmetic, not a difference of CAGRs, so that it is the numerator of
    :func:`information_ratio`.

    Examples
    --------
    >>> b = pd.Series([0.01, -0.02, 0.03])
    >>> round(excess_return(b + 0.001, b, periods_per_year=252), 6)
    0.252
    """
    ppy = _ppy(returns, periods_per_year)
    r, b = _aligned(returns, benchmark)
    return float((r - b).mean() * ppy) if len(r) else float("nan")


def tracking_error(
    returns: ReturnsLike, benchmark: ReturnsLike, periods_per_year: float | None = None
) -> float:
    """Return the annualised standard deviation (ddof=1) of the active return ``r - b``.

    Examples
    --------
    >>> b = pd.Series([0.01, -0.02, 0.03])
    >>> tracking_error(b + 0.001, b, periods_per_year=252) < 1e-12
    True
    """
    ppy = _ppy(returns, periods_per_year)
    r, b = _aligned(returns, benchmark)
    if len(r) < 2:
        return float("nan")
    return float((r - b).std(ddof=1) * np.sqrt(ppy))


def information_ratio(
    returns: ReturnsLike, benchmark: ReturnsLike, periods_per_year: float | None = None
) -> float:
    """Return :func:`excess_return` over :func:`tracking_error` (annualised both).

    Equal to empyrical's ``excess_sharpe`` times ``sqrt(periods_per_year)``; NaN when the
    active return is constant (no tracking error).

    Examples
    --------
    >>> b = pd.Series([0.01, -0.02, 0.03])
    >>> r = pd.Series([0.012, -0.018, 0.031])
    >>> round(information_ratio(r, b, periods_per_year=1), 6)  # mean 0.00167 / std 0.00058
    2.886751
    """
    ppy = _ppy(returns, periods_per_year)
    r, b = _aligned(returns, benchmark)
    if len(r) < 2 or _is_constant(r - b):
        return float("nan")
    return excess_return(r, b, ppy) / tracking_error(r, b, ppy)


def _capture(
    returns: ReturnsLike, benchmark: ReturnsLike, periods_per_year: float | None, up: bool
) -> float:
    ppy = _ppy(returns, periods_per_year)
    r, b = _aligned(returns, benchmark)
    side = b > 0.0 if up else b < 0.0
    bench = cagr(b[side], ppy)
    if not side.any() or bench == 0.0:
        return float("nan")
    return cagr(r[side], ppy) / bench


def up_capture(
    returns: ReturnsLike, benchmark: ReturnsLike, periods_per_year: float | None = None
) -> float:
    """Return the up-market capture: CAGR of the strategy over the benchmark's, on up periods.

    Up periods are those where the benchmark's return is positive; each CAGR compounds
    over those periods only, annualised by their number (empyrical's ``up_capture``).
    1.0 means the strategy gained as much as the benchmark when it rose.

    Examples
    --------
    >>> b = pd.Series([0.02, -0.01, 0.02, -0.03])
    >>> up_capture(b / 2, b, periods_per_year=2) < 0.5
    True
    """
    return _capture(returns, benchmark, periods_per_year, up=True)


def down_capture(
    returns: ReturnsLike, benchmark: ReturnsLike, periods_per_year: float | None = None
) -> float:
    """Return the down-market capture: as :func:`up_capture`, on the benchmark's down periods.

    Below 1.0 means the strategy lost less than the benchmark when it fell.

    Examples
    --------
    >>> b = pd.Series([0.02, -0.01, 0.02, -0.03])
    >>> round(down_capture(b, b, periods_per_year=2), 6)
    1.0
    """
    return _capture(returns, benchmark, periods_per_year, up=False)


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
    benchmark: ReturnsLike | None = None,
    periods_per_year: float | None = None,
) -> pd.Series:
    """Return every metric of this module in one Series with readable names.

    The index is always the same eleven names in the same order (eighteen with a
    ``benchmark``: :data:`BENCHMARK_METRICS` follow), so summaries of several strategies
    line up side by side (``pd.concat(..., axis=1)``); a metric whose inputs are not
    given is NaN:

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
    benchmark
        Simple per-period returns of a benchmark, aligned with ``returns`` by index;
        adds excess return, beta, alpha, tracking error, information ratio and up/down
        capture (see :func:`excess_return` ... :func:`down_capture`).
    periods_per_year
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

    Returns
    -------
    pandas.Series
        Float values indexed by ``"CAGR"``, ``"Annual volatility"``, ``"Sharpe"``,
        ``"Sortino"``, ``"Max drawdown"``, ``"Max drawdown duration (periods)"``,
        ``"Calmar"``, ``"Turnover (annual)"``, ``"Average gross exposure"``,
        ``"Hit rate"``, ``"Costs / gross P&L"``, then with a benchmark
        :data:`BENCHMARK_METRICS`.

    Examples
    --------
    >>> r = pd.Series([0.01, -0.02, 0.015, 0.005])
    >>> summary_metrics(r, periods_per_year=252).round(4)[["Max drawdown", "Hit rate"]].tolist()
    [-0.02, 0.75]
    >>> relative = summary_metrics(r, benchmark=r, periods_per_year=252)
    >>> relative[["Beta", "Up capture"]].round(9).tolist()
    [1.0, 1.0]
    """
    if len(_clean(returns)) >= 2:  # fewer: every annualised metric is NaN anyway
        periods_per_year = _ppy(returns, periods_per_year)
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
    if benchmark is not None:
        values.update(_benchmark_metrics(returns, benchmark, periods_per_year))
    return pd.Series(values, dtype="float64")


def _benchmark_metrics(
    returns: ReturnsLike, benchmark: ReturnsLike, periods_per_year: float | None
) -> dict[str, float]:
    """Return :data:`BENCHMARK_METRICS` by name, on the periods both series have."""
    r, b = _aligned(returns, benchmark)
    ppy = periods_per_year
    values = (
        excess_return(r, b, ppy),
        beta(r, b),
        alpha(r, b, periods_per_year=ppy),
        tracking_error(r, b, ppy),
        information_ratio(r, b, ppy),
        up_capture(r, b, ppy),
        down_capture(r, b, ppy),
    )
    return dict(zip(BENCHMARK_METRICS, values, strict=True))
