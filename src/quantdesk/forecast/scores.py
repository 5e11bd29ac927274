"""Forecast scores, one small function each, and skill against a baseline with an interval.

Per session (``ts``) a metric is a number: the cross-sectional IC of that day's return
forecasts, or the mean loss over that day's symbols.  A model's score is the mean over
sessions; its skill against a baseline is computed on the rows both forecast:

* losses (``mse``, ``qlike``, ``log_loss``, ``brier``; lower is better):
  ``skill = 1 - mean(L_model) / mean(L_baseline)``;
* scores (``ic``, ``rank_ic``, ``hit_rate``; higher is better): ``skill = model - baseline``.

The interval is ``mean(d) +- 1.96 se`` of the per-session differential ``d`` (baseline
loss minus model loss, or model score minus baseline score), with the Newey-West (Bartlett
kernel) standard error, lag ``max(h - 1, floor(4 (n/100)**(2/9)))``: forecasts of ``h``
sessions overlap for ``h - 1`` sessions, so their differentials are autocorrelated.  For
losses the interval is divided by ``mean(L_baseline)`` (taken as known) to be on the skill's
scale.  An interval that excludes 0 says the difference is unlikely to be luck.

Volatility is scored on the variance (the square of the annualised volatilities): MSE and
QLIKE ``r/f - ln(r/f) - 1`` are the losses that rank variance forecasts consistently with
a noisy realised proxy (Patton 2011).  Regimes are scored by the log loss ``-sum(q ln p)``
and the multi-class Brier score ``sum((p - q)**2)`` against outcome probabilities ``q``
(the next session's filtered probabilities, or the one-hot true regime).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = [
    "LOSSES",
    "brier",
    "calibration_table",
    "daily_ic",
    "hit_rate",
    "icir",
    "log_loss",
    "newey_west_lag",
    "newey_west_se",
    "qlike",
    "skill",
    "squared_error",
]

#: Metrics where lower is better.
LOSSES = frozenset({"mse", "qlike", "log_loss", "brier", "log_loss_truth", "brier_truth"})
_Z = 1.959963984540054
_EPS = 1e-15


def daily_ic(
    forecast: pd.DataFrame, outcome: pd.DataFrame, *, rank: bool = False, min_symbols: int = 3
) -> pd.Series:
    """Return the cross-sectional correlation of forecasts and outcomes on each session.

    ``forecast`` and ``outcome`` are wide (index ``ts``, columns symbols).  Pearson, or
    Spearman with ``rank=True`` (ranks within the session).  NaN on a session with fewer
    than ``min_symbols`` pairs or a constant forecast.

    Examples
    --------
    >>> f = pd.DataFrame([[1.0, 2.0, 3.0]]); y = pd.DataFrame([[0.1, 0.3, 0.2]])
    >>> float(daily_ic(f, y, rank=True).iloc[0])
    0.5
    """
    f, y = forecast.align(outcome, join="inner")
    ok = f.notna() & y.notna()
    f, y = f.where(ok), y.where(ok)
    if rank:
        f, y = f.rank(axis=1), y.rank(axis=1)
    fc = f.sub(f.mean(axis=1), axis=0)
    yc = y.sub(y.mean(axis=1), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ic: pd.Series = (fc * yc).sum(axis=1) / np.sqrt((fc**2).sum(axis=1) * (yc**2).sum(axis=1))
    ic[ok.sum(axis=1) < min_symbols] = np.nan
    return ic.replace([np.inf, -np.inf], np.nan).rename("ic")


def icir(ic: pd.Series) -> float:
    """Return the information ratio of a daily IC series, ``mean / std`` (ddof 1)."""
    values = ic.dropna()
    if len(values) < 2 or not values.std() > 0:
        return float("nan")
    return float(values.mean() / values.std())


def hit_rate(forecast: pd.DataFrame, outcome: pd.DataFrame) -> pd.Series:
    """Return, per session, the share of symbols whose forecast sign matched the outcome's.

    Rows where the forecast or the outcome is exactly 0 (no direction) are left out; a
    session with none left is NaN.
    """
    f, y = forecast.align(outcome, join="inner")
    valid = f.notna() & y.notna() & (f != 0) & (y != 0)
    hits = (np.sign(f) == np.sign(y)) & valid
    with np.errstate(invalid="ignore", divide="ignore"):
        rate: pd.Series = hits.sum(axis=1) / valid.sum(axis=1)
    return rate.where(valid.any(axis=1)).rename("hit_rate")


def squared_error(forecast: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Return ``(forecast - outcome)**2`` elementwise."""
    return np.asarray((np.asarray(forecast) - np.asarray(outcome)) ** 2)


def qlike(forecast_variance: np.ndarray, realised_variance: np.ndarray) -> np.ndarray:
    """Return the QLIKE loss ``r/f - ln(r/f) - 1`` (0 for a perfect forecast; ``f``, ``r`` > 0).

    Examples
    --------
    >>> qlike(np.array([1.0, 2.0]), np.array([1.0, 1.0])).round(4).tolist()
    [0.0, 0.1931]
    """
    f = np.asarray(forecast_variance, dtype=float)
    r = np.asarray(realised_variance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((f > 0) & (r > 0), r / f, np.nan)
    return np.asarray(ratio - np.log(ratio) - 1.0)


def log_loss(probs: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Return the per-row log loss ``-sum_k q_k ln p_k`` (``p`` clipped to [1e-15, 1]).

    With one-hot outcomes this is ``-ln p[true cell]``, sklearn's ``log_loss`` per row.
    """
    p = np.clip(np.asarray(probs, dtype=float), _EPS, 1.0)
    return np.asarray(-(np.asarray(outcome, dtype=float) * np.log(p)).sum(axis=1))


def brier(probs: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Return the per-row multi-class Brier score ``sum_k (p_k - q_k)**2`` (0 to 2)."""
    return np.asarray(((np.asarray(probs, float) - np.asarray(outcome, float)) ** 2).sum(axis=1))


def calibration_table(probs: np.ndarray, outcome: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Return the reliability table of probability forecasts, every cell pooled.

    Each forecast probability ``p_k`` (of every row and cell) falls in one of ``bins``
    equal-width bins; per bin: ``n`` forecasts, their mean ``forecast`` and the mean
    ``observed`` outcome probability ``q_k``.  A calibrated model has ``observed`` close
    to ``forecast`` in every bin.
    """
    p = np.asarray(probs, dtype=float).ravel()
    q = np.asarray(outcome, dtype=float).ravel()
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "forecast": p, "observed": q})
    table = frame.groupby("bin").agg(
        n=("forecast", "size"), forecast=("forecast", "mean"), observed=("observed", "mean")
    )
    table = table.reindex(range(bins))
    table.insert(0, "upper", edges[1:])
    table.insert(0, "lower", edges[:-1])
    table["n"] = table["n"].fillna(0).astype(int)
    return table.reset_index(drop=True)


def newey_west_lag(n: int, horizon: int = 1) -> int:
    """Return the Newey-West lag: ``max(horizon - 1, floor(4 (n/100)**(2/9)))``."""
    automatic: int = math.floor(4.0 * (max(n, 1) / 100.0) ** (2.0 / 9.0))
    return max(horizon - 1, automatic)


def newey_west_se(values: np.ndarray, lag: int) -> float:
    """Return the Newey-West (Bartlett) standard error of the mean of ``values``.

    Examples
    --------
    >>> x = np.array([1.0, -1.0, 1.0, -1.0])
    >>> round(newey_west_se(x, 0), 6) == round(float(np.sqrt(np.mean(x**2) / 4)), 6)
    True
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2:
        return float("nan")
    e = x - x.mean()
    variance = float(e @ e) / n
    for k in range(1, min(lag, n - 1) + 1):
        variance += 2.0 * (1.0 - k / (lag + 1.0)) * float(e[k:] @ e[:-k]) / n
    return math.sqrt(max(variance, 0.0) / n)


def skill(
    model: pd.Series, baseline: pd.Series, metric: str, horizon: int = 1
) -> tuple[float, float, float, float, float]:
    """Return ``(value, baseline_value, skill, lo, hi)`` from per-session metric series.

    ``value`` and ``baseline_value`` are each series' mean; the skill and its interval use
    the sessions where both have a value.  See the module docstring for the skill and its
    Newey-West interval.
    """
    value, base = float(model.mean()), float(baseline.mean())
    both = pd.concat([model.rename("m"), baseline.rename("b")], axis=1).dropna()
    if both.empty:
        return value, base, float("nan"), float("nan"), float("nan")
    m, b = both["m"].to_numpy(), both["b"].to_numpy()
    lower_better = metric in LOSSES
    d = b - m if lower_better else m - b
    se = newey_west_se(d, newey_west_lag(len(d), horizon))
    centre = float(d.mean())
    lo, hi = centre - _Z * se, centre + _Z * se
    if lower_better:
        base = float(b.mean())
        if not base > 0:
            return value, base, float("nan"), float("nan"), float("nan")
        return value, base, centre / base, lo / base, hi / base
    return value, base, centre, lo, hi
