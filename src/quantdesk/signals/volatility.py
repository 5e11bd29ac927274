"""Volatility estimators on wide panels, all annualised: EWMA (RiskMetrics), Parkinson and
Garman-Klass range estimators, and a causal GARCH(1,1) forecast through ``arch``.

Every function takes wide panels (index ``ts``, one column per symbol) and returns a wide
panel with the same index and columns.  A value at row ``t`` uses rows up to and including
``t`` only (causal).  Returns are log returns; annualising multiplies a per-bar volatility
by ``sqrt(periods_per_year)``, which by default is read from the panel's
``attrs['timeframe']`` or its index by :func:`quantdesk.data.frequency.periods_per_year`
(252 for daily bars, 52 weekly, 12 monthly, hourly by the session hours the data show).
Windows, half-lives and ``min_obs`` are counted in bars, whatever their length.

The range estimators need highs and lows (Garman-Klass opens too).  A close-only series (an
index level, a fixing, a rate) has none: they raise a :class:`ValueError` naming those
symbols, or with ``fallback="close"`` use the close-to-close estimate for them, with a
logged warning.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantdesk.data.frequency import resolve_periods_per_year
from quantdesk.signals.windows import rolling_mean

__all__ = ["ewma_vol", "garch_vol", "garman_klass_vol", "parkinson_vol"]

logger = logging.getLogger(__name__)

GarchDist = Literal["normal", "t", "skewt", "ged"]
RangeFallback = Literal["raise", "close"]

# Show a progress bar for GARCH only above this many columns: a few fits finish quickly.
_PROGRESS_MIN_COLUMNS = 5


def _require_aligned(reference: pd.DataFrame, **others: pd.DataFrame) -> None:
    """Raise ValueError unless every panel has the index and columns of ``reference``."""
    for name, frame in others.items():
        if not (frame.index.equals(reference.index) and frame.columns.equals(reference.columns)):
            raise ValueError(
                f"panel {name!r} is not aligned (same index and columns) to the others"
            )


def _log(frame: pd.DataFrame) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        logs: np.ndarray = np.log(frame.to_numpy(dtype=np.float64))
    return logs


def _log_returns(close: pd.DataFrame) -> np.ndarray:
    """Close-to-close log returns as an array; the first row is NaN."""
    logs = _log(close)
    out = np.full(logs.shape, np.nan)
    out[1:] = logs[1:] - logs[:-1]
    return out


def _annualised(variance: pd.DataFrame, periods_per_year: float) -> pd.DataFrame:
    """Square root of a per-bar variance panel, annualised; a negative variance gives NaN."""
    with np.errstate(invalid="ignore"):
        vol = np.sqrt(variance.to_numpy(dtype=np.float64) * periods_per_year)
    return pd.DataFrame(vol, index=variance.index, columns=variance.columns)


def _check_window(window: int) -> None:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


def _ppy(panel: pd.DataFrame, periods_per_year: float | None) -> float:
    return resolve_periods_per_year(periods_per_year, panel, what="the price panel")


def _range_variance(
    name: str,
    per_bar: pd.DataFrame,
    window: int,
    fallback: RangeFallback,
    close: pd.DataFrame | None,
    **fields: pd.DataFrame,
) -> pd.DataFrame:
    """Return the rolling mean of a range estimator's per-bar variance ``per_bar``.

    Symbols whose ``fields`` (high, low, open) are all missing have no range: an error
    naming them, or with ``fallback="close"`` the rolling mean of squared close-to-close
    log returns for them (the zero-drift estimate the range estimators also assume).
    """
    if fallback not in ("raise", "close"):
        raise ValueError(f"fallback must be 'raise' or 'close', got {fallback!r}")
    empty = np.zeros(per_bar.shape[1], dtype=bool)
    for frame in fields.values():
        empty |= frame.isna().all(axis=0).to_numpy()
    variance = rolling_mean(per_bar, window)
    if not empty.any():
        return variance
    symbols = [str(c) for c in per_bar.columns[empty]]
    needs = "/".join(fields)
    if fallback == "raise" or close is None:
        raise ValueError(
            f"{name} needs {needs} prices; {symbols} have none (close-only series): pass "
            "fallback='close' with close= to use close-to-close volatility for them, or "
            "use ewma_vol / garch_vol"
        )
    _require_aligned(per_bar, close=close)
    logger.warning(
        "%s: no %s for %s; using close-to-close volatility for them (fallback='close')",
        name,
        needs,
        symbols,
    )
    squared = pd.DataFrame(_log_returns(close) ** 2, index=close.index, columns=close.columns)
    variance.loc[:, empty] = rolling_mean(squared.loc[:, empty], window).to_numpy()
    return variance


def ewma_vol(
    close: pd.DataFrame,
    halflife: float = 20,
    *,
    min_periods: int = 20,
    periods_per_year: float | None = None,
) -> pd.DataFrame:
    """Return the annualised EWMA volatility of close-to-close log returns (RiskMetrics).

    The variance at ``t`` is the exponentially weighted mean of squared log returns around
    a zero mean, with decay ``lam = 0.5 ** (1 / halflife)``::

        var[t] = sum_i lam**i * r[t-i]**2 / sum_i lam**i      (i over the returns seen)

    that is, pandas' ``ewm(halflife=halflife).mean()`` (``adjust=True``).  It follows the
    RiskMetrics recursion ``var[t] = lam * var[t-1] + (1 - lam) * r[t]**2`` once the history
    is long against the half-life, without that recursion's dependence on a start value.
    A missing return keeps its place in the decay (pandas ``ignore_na=False``).

    Parameters
    ----------
    close
        Wide panel of closes.
    halflife
        Half-life of the weights in bars (RiskMetrics' daily ``lam = 0.94`` is a half-life
        of about 11.2).
    min_periods
        Returns needed before a value is reported; the first row has no return, so a
        complete column starts at row ``min_periods``.
    periods_per_year
        Bars per year for annualising; ``None`` reads it from ``close``'s timeframe or index.

    Examples
    --------
    >>> days = pd.bdate_range("2024-01-01", periods=30)
    >>> close = pd.DataFrame({"A": 100 * np.exp(0.01 * np.arange(30))}, index=days)
    >>> round(float(ewma_vol(close)["A"].iloc[-1]), 6)  # 1% every day: sqrt(252) * 1%
    0.158745
    >>> months = pd.date_range("2000-01-01", periods=30, freq="MS")
    >>> round(float(ewma_vol(close.set_axis(months))["A"].iloc[-1]), 6)  # sqrt(12) * 1%
    0.034641
    """
    if halflife <= 0:
        raise ValueError(f"halflife must be > 0, got {halflife}")
    if min_periods < 1:
        raise ValueError(f"min_periods must be >= 1, got {min_periods}")
    ppy = _ppy(close, periods_per_year)
    squared = pd.DataFrame(_log_returns(close) ** 2, index=close.index, columns=close.columns)
    variance = squared.ewm(halflife=halflife, min_periods=min_periods).mean()
    return _annualised(variance, ppy)


def parkinson_vol(
    high: pd.DataFrame,
    low: pd.DataFrame,
    window: int = 20,
    *,
    periods_per_year: float | None = None,
    fallback: RangeFallback = "raise",
    close: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the annualised Parkinson (high-low range) volatility over ``window`` bars.

    ``sqrt(mean(ln(high / low)**2) / (4 ln 2) * periods_per_year)``, the mean over the last
    ``window`` bars (NaN until ``window`` bars are there).  Unbiased for a driftless
    Brownian motion observed continuously within the bar; it ignores overnight gaps.

    A symbol with no high or low at all (a close-only series) raises a ValueError naming
    it; with ``fallback="close"`` and ``close`` given, it gets the close-to-close estimate
    ``sqrt(mean(ln(C[t]/C[t-1])**2) * periods_per_year)`` over the same window instead, and
    a warning is logged.  ``periods_per_year=None`` reads it from ``high``'s timeframe or
    index.

    Examples
    --------
    >>> high = pd.DataFrame({"A": [101.0, 102.0]})
    >>> low = pd.DataFrame({"A": [99.0, 100.0]})
    >>> v = parkinson_vol(high, low, 2, periods_per_year=1)["A"].iloc[-1]
    >>> bool(np.isclose(v, np.sqrt(np.mean(np.log([101 / 99, 102 / 100]) ** 2) / np.log(16))))
    True
    """
    _check_window(window)
    _require_aligned(high, low=low)
    ppy = _ppy(high, periods_per_year)
    squared_range = (_log(high) - _log(low)) ** 2 / (4.0 * math.log(2.0))
    frame = pd.DataFrame(squared_range, index=high.index, columns=high.columns)
    variance = _range_variance("parkinson_vol", frame, window, fallback, close, high=high, low=low)
    return _annualised(variance, ppy)


def garman_klass_vol(
    open: pd.DataFrame,
    high: pd.DataFrame,
    low: pd.DataFrame,
    close: pd.DataFrame,
    window: int = 20,
    *,
    periods_per_year: float | None = None,
    fallback: RangeFallback = "raise",
) -> pd.DataFrame:
    """Return the annualised Garman-Klass (OHLC) volatility over ``window`` bars.

    ``sqrt(mean(0.5 ln(H/L)**2 - (2 ln 2 - 1) ln(C/O)**2) * periods_per_year)``, the mean
    over the last ``window`` bars (NaN until ``window`` bars are there).  For a driftless
    Brownian bar it is unbiased and about 7 times as efficient as close-to-close; like
    Parkinson it ignores the overnight gap between one close and the next open.  Each term
    is non-negative for consistent bars (``low <= open, close <= high``).

    A symbol with no open, high or low at all (a close-only series) raises a ValueError
    naming it; ``fallback="close"`` gives it the close-to-close estimate instead (see
    :func:`parkinson_vol`).  ``periods_per_year=None`` reads it from ``close``.

    Examples
    --------
    >>> o, h = pd.DataFrame({"A": [100.0]}), pd.DataFrame({"A": [102.0]})
    >>> lo, c = pd.DataFrame({"A": [99.0]}), pd.DataFrame({"A": [101.0]})
    >>> v = garman_klass_vol(o, h, lo, c, 1, periods_per_year=1)["A"].iloc[0]
    >>> u, d = np.log(102 / 99), np.log(101 / 100)
    >>> bool(np.isclose(v, np.sqrt(0.5 * u**2 - (2 * np.log(2) - 1) * d**2)))
    True
    """
    _check_window(window)
    _require_aligned(close, open=open, high=high, low=low)
    ppy = _ppy(close, periods_per_year)
    hl = _log(high) - _log(low)
    co = _log(close) - _log(open)
    term = 0.5 * hl**2 - (2.0 * math.log(2.0) - 1.0) * co**2
    frame = pd.DataFrame(term, index=close.index, columns=close.columns)
    variance = _range_variance(
        "garman_klass_vol", frame, window, fallback, close, open=open, high=high, low=low
    )
    return _annualised(variance, ppy)


def garch_vol(
    close: pd.DataFrame,
    *,
    window: int | None = None,
    refit_every: int = 21,
    min_obs: int = 500,
    periods_per_year: float | None = None,
    dist: GarchDist = "normal",
    mean: Literal["constant", "zero"] = "constant",
) -> pd.DataFrame:
    """Return the annualised GARCH(1,1) one-step-ahead volatility forecast, fitted causally.

    For each column, on its close-to-close log returns ``r`` (scaled by 100, as ``arch``
    prefers), the model is ``arch.arch_model(100 * r, mean=mean, vol="GARCH", p=1, q=1,
    dist=dist, rescale=False)``: ``eps[t] = 100 r[t] - mu`` and
    ``sigma2[t+1] = omega + alpha * eps[t]**2 + beta * sigma2[t]``.

    The value at row ``t`` is the forecast of the volatility of ``r[t+1]`` made at the
    close of ``t``, ``sqrt(sigma2[t+1]) / 100 * sqrt(periods_per_year)``, computed as
    follows.  Refit dates are the rows of the ``min_obs``-th return of the column and every
    ``refit_every`` returns after it.  At a refit date ``T`` the model is fitted by maximum
    likelihood on the returns up to and including ``T`` (all of them, or the last ``window``
    when ``window`` is given), and the value at ``T`` is that fit's
    ``res.forecast(horizon=1)``: arch filters the variance through the fit sample, starting
    from its backcast (an exponentially weighted mean of the first 75 squared residuals).
    On the rows after ``T`` up to the next refit the parameters stay fixed and the recursion
    above runs forward on each new return, which equals arch's forecast from the same
    parameters held fixed (``arch_model(...).fix(params)``) on the sample extended to ``t``.
    So the value at ``t`` uses parameters fitted on data up to ``T <= t`` and returns up to
    ``t``.  Refit dates depend only on the number of returns seen, so truncating the data
    never changes earlier values.

    Rows with a missing return (the first row, rows around a missing close) are NaN and are
    skipped: the model sees each column's observed returns as one contiguous series.  Rows
    before the ``min_obs``-th return are NaN.  A fit that fails or does not converge is
    logged; the previous parameters then stay in use (NaN until a first good fit).

    The cost is one maximum-likelihood fit per refit and column: with the defaults, about
    6 s per column of 20 years of daily bars.  Columns run one after another, with a
    progress bar from five columns on.

    Parameters
    ----------
    close
        Wide panel of closes.
    window
        Fit on the last ``window`` returns at each refit (rolling); ``None`` fits on all
        returns so far (expanding).
    refit_every
        Returns between refits.
    min_obs
        Returns needed before the first fit.
    periods_per_year
        Bars per year for annualising; ``None`` reads it from ``close``'s timeframe or index.
    dist
        Innovation distribution of the likelihood: ``"normal"``, ``"t"``, ``"skewt"`` or
        ``"ged"``.
    mean
        ``"constant"`` fits ``mu``; ``"zero"`` fixes it at zero.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> close = pd.DataFrame({"A": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))})
    >>> vol = garch_vol(close, min_obs=300, refit_every=50, periods_per_year=252)["A"]
    >>> int(vol.notna().sum()), bool(0.1 < vol.iloc[-1] < 0.25)
    (100, True)
    """
    if refit_every < 1:
        raise ValueError(f"refit_every must be >= 1, got {refit_every}")
    if min_obs < 10:
        raise ValueError(f"min_obs must be >= 10, got {min_obs}")
    if window is not None and window < 10:
        raise ValueError(f"window must be None or >= 10, got {window}")
    if mean not in ("constant", "zero"):
        raise ValueError(f"mean must be 'constant' or 'zero', got {mean!r}")
    from quantdesk.core.progress import progress_bar

    ppy = _ppy(close, periods_per_year)
    returns = _log_returns(close)
    out = np.full(returns.shape, np.nan)
    columns = list(close.columns)
    bar = progress_bar(
        range(len(columns)),
        desc="GARCH(1,1)",
        unit="symbol",
        disable=len(columns) < _PROGRESS_MIN_COLUMNS,
    )
    for j in bar:
        rows = np.flatnonzero(np.isfinite(returns[:, j]))
        forecast = _garch_forecasts(
            100.0 * returns[rows, j],
            window=window,
            refit_every=refit_every,
            min_obs=min_obs,
            dist=dist,
            mean=mean,
            label=str(columns[j]),
        )
        out[rows, j] = np.sqrt(forecast) / 100.0 * math.sqrt(ppy)
    return pd.DataFrame(out, index=close.index, columns=close.columns)


def _garch_forecasts(
    y: np.ndarray,
    *,
    window: int | None,
    refit_every: int,
    min_obs: int,
    dist: GarchDist,
    mean: str,
    label: str,
) -> np.ndarray:
    """One-step variance forecasts of the scaled returns ``y`` made at each row (see above)."""
    n = len(y)
    forecast = np.full(n, np.nan)
    params: tuple[float, float, float, float] | None = None  # mu, omega, alpha, beta
    fits = failures = 0
    for k in range(min_obs - 1, n):
        if (k - min_obs + 1) % refit_every == 0:
            fits += 1
            fitted = _fit_garch(y, k, window=window, dist=dist, mean=mean, label=label)
            if fitted is not None:
                params, forecast[k] = fitted
                continue
            failures += 1
        if params is None:
            continue
        # Fixed parameters, one more return: the forecast made at k - 1 is the conditional
        # variance of y[k].
        mu, omega, alpha, beta = params
        forecast[k] = omega + alpha * (y[k] - mu) ** 2 + beta * forecast[k - 1]
    logger.debug("GARCH %s: %d returns, %d fits, %d failed", label, n, fits, failures)
    return forecast


def _garch_model(y: np.ndarray, k: int, *, window: int | None, dist: GarchDist, mean: str) -> Any:
    """Return arch's GARCH(1,1) model of the returns ``y`` in the window ending at ``k``."""
    from arch import arch_model

    start = 0 if window is None else max(0, k + 1 - window)
    return arch_model(
        y[start : k + 1],
        mean="Constant" if mean == "constant" else "Zero",
        vol="GARCH",
        p=1,
        q=1,
        dist=dist,
        rescale=False,
    )


def _fit_garch(
    y: np.ndarray,
    k: int,
    *,
    window: int | None,
    dist: GarchDist,
    mean: str,
    label: str,
) -> tuple[tuple[float, float, float, float], float] | None:
    """Fit on ``y`` up to ``k``: (mu, omega, alpha, beta) and arch's forecast made at ``k``.

    None when the fit fails or does not converge (logged).
    """
    model = _garch_model(y, k, window=window, dist=dist, mean=mean)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is checked below
            res = model.fit(disp="off", show_warning=False)
    except (ValueError, np.linalg.LinAlgError, RuntimeError) as exc:
        logger.warning("GARCH fit for %s ending at return %d failed: %s", label, k, exc)
        return None
    if res.convergence_flag != 0:
        logger.warning(
            "GARCH fit for %s ending at return %d did not converge (optimizer flag %s)",
            label,
            k,
            res.convergence_flag,
        )
        return None
    p = res.params
    params = (float(p.get("mu", 0.0)), float(p["omega"]), float(p["alpha[1]"]), float(p["beta[1]"]))
    # arch's own one-step forecast (its variance filter restarted from the backcast of the
    # fitted residuals), so that the value at a refit date is exactly arch's.
    variance = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])
    return params, variance
