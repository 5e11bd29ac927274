"""Forecast targets: what each model predicts, per symbol and session, on wide panels.

A target is a pure function of wide panels (index ``ts``, one column per symbol) whose row
``t`` is the outcome that a forecast made at the close of session ``t`` is scored against:
it uses bars *after* ``t`` (that is what makes it a target), and is NaN where those bars do
not exist yet.  Sessions are the rows of the panels (one row per exchange session of daily
bars), never calendar days.

``return_1d``
    The next session's close-to-close log return, ``ln(C[t+1] / C[t])``.
``vol_1d``, ``vol_5d``
    The realised volatility over the next 1 and 5 sessions, annualised:
    ``sqrt(periods_per_year * mean(q[t+1 .. t+h]))`` with ``q`` the per-bar variance of
    :func:`bar_variance`.  Where a symbol has open, high and low, ``q`` is the squared
    overnight gap plus the Garman-Klass intraday term (the estimator the regime features
    use); a close-only symbol gets the squared close-to-close log return.  Which one each
    symbol used is in :func:`variance_estimators` (``"range"`` or ``"close"``).
``regime_1d``
    The next session's regime probabilities, the nine cells of
    :data:`quantdesk.data.schemas.REGIME_PROBABILITY_COLUMNS`, from a regime filter
    (or the true regime, as a one-hot row, where it is known: the simulator).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from quantdesk.data.frequency import resolve_periods_per_year
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS

__all__ = [
    "HORIZONS",
    "TARGETS",
    "bar_variance",
    "log_returns",
    "realised_vol",
    "regime_1d",
    "return_1d",
    "target_horizon",
    "variance_estimators",
    "vol_1d",
    "vol_5d",
]

#: The targets, each with its horizon in sessions.
HORIZONS: dict[str, int] = {"return_1d": 1, "vol_1d": 1, "vol_5d": 5, "regime_1d": 1}
TARGETS: tuple[str, ...] = tuple(HORIZONS)


def target_horizon(target: str) -> int:
    """Return the horizon in sessions of a target name, or raise naming the known targets."""
    if target not in HORIZONS:
        raise ValueError(f"unknown target {target!r}; targets are {list(TARGETS)}")
    return HORIZONS[target]


def _log(frame: pd.DataFrame) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.log(frame.to_numpy(dtype=np.float64))
    return out


def log_returns(close: pd.DataFrame) -> pd.DataFrame:
    """Return the per-bar close-to-close log returns ``ln(C[t] / C[t-1])`` (first row NaN).

    Examples
    --------
    >>> close = pd.DataFrame({"A": [100.0, 110.0]})
    >>> round(float(log_returns(close)["A"].iloc[1]), 6)
    0.09531
    """
    logs = _log(close)
    out = np.full(logs.shape, np.nan)
    out[1:] = logs[1:] - logs[:-1]
    return pd.DataFrame(out, index=close.index, columns=close.columns)


def _has_range(panels: Mapping[str, pd.DataFrame]) -> pd.Series:
    close = panels["close"]
    has = pd.Series(True, index=close.columns)
    for field in ("open", "high", "low"):
        if field not in panels:
            return pd.Series(False, index=close.columns)
        has &= panels[field].reindex(columns=close.columns).notna().any(axis=0)
    return has


def variance_estimators(panels: Mapping[str, pd.DataFrame]) -> pd.Series:
    """Return, per symbol, the per-bar variance estimator used: ``"range"`` or ``"close"``.

    ``"range"`` (overnight gap plus Garman-Klass) where the symbol has open, high and low
    bars, ``"close"`` (squared close-to-close return) for close-only series.
    """
    return _has_range(panels).map({True: "range", False: "close"}).rename("estimator")


def bar_variance(panels: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Return each bar's variance estimate (per bar, not annualised) as a wide panel.

    ``ln(O[t]/C[t-1])**2 + max(0.5 ln(H/L)**2 - (2 ln 2 - 1) ln(C/O)**2, 0)`` for symbols
    with open, high and low: the overnight gap and the Garman-Klass intraday term, about
    seven times as precise as a squared return; ``ln(C[t]/C[t-1])**2`` for close-only
    symbols (see :func:`variance_estimators`).  Row ``t`` uses bars ``t-1`` and ``t`` only.

    Examples
    --------
    >>> ix = pd.RangeIndex(2)
    >>> p = {"open": pd.DataFrame({"A": [100.0, 100.0]}, ix),
    ...      "high": pd.DataFrame({"A": [100.0, 102.0]}, ix),
    ...      "low": pd.DataFrame({"A": [100.0, 99.0]}, ix),
    ...      "close": pd.DataFrame({"A": [100.0, 101.0]}, ix)}
    >>> q = bar_variance(p)["A"].iloc[1]
    >>> bool(np.isclose(q, 0.5 * np.log(102 / 99) ** 2 - (2 * np.log(2) - 1) * np.log(1.01) ** 2))
    True
    """
    close = panels["close"]
    squared = log_returns(close).to_numpy() ** 2
    out = squared.copy()
    has = _has_range(panels).to_numpy()
    if has.any():
        cols = close.columns[has]
        lo, hi, op = (
            _log(panels[f].reindex(index=close.index, columns=cols))
            for f in ("low", "high", "open")
        )
        lc = _log(close[cols])
        overnight = np.full(lc.shape, np.nan)
        overnight[1:] = op[1:] - lc[:-1]
        intraday = 0.5 * (hi - lo) ** 2 - (2.0 * math.log(2.0) - 1.0) * (lc - op) ** 2
        out[:, has] = overnight**2 + np.maximum(intraday, 0.0)
    return pd.DataFrame(out, index=close.index, columns=close.columns)


def _ppy(panels: Mapping[str, pd.DataFrame], periods_per_year: float | None) -> float:
    return resolve_periods_per_year(periods_per_year, panels["close"], what="the close panel")


def realised_vol(
    panels: Mapping[str, pd.DataFrame], horizon: int, *, periods_per_year: float | None = None
) -> pd.DataFrame:
    """Return the annualised realised volatility over the ``horizon`` sessions after each row.

    Row ``t`` is ``sqrt(periods_per_year * mean(bar_variance[t+1 .. t+horizon]))``; NaN where
    any of those bars is missing.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    variance = bar_variance(panels)
    ahead = variance.rolling(horizon, min_periods=horizon).mean().shift(-horizon)
    vol: pd.DataFrame = (ahead * _ppy(panels, periods_per_year)) ** 0.5
    return vol


def return_1d(panels: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Return the next session's log return ``ln(C[t+1]/C[t])`` at each row ``t``.

    Examples
    --------
    >>> close = pd.DataFrame({"A": [100.0, 110.0, 99.0]})
    >>> return_1d({"close": close})["A"].round(4).tolist()
    [0.0953, -0.1054, nan]
    """
    return log_returns(panels["close"]).shift(-1)


def vol_1d(
    panels: Mapping[str, pd.DataFrame], *, periods_per_year: float | None = None
) -> pd.DataFrame:
    """Return the next session's realised volatility, annualised (see :func:`realised_vol`)."""
    return realised_vol(panels, 1, periods_per_year=periods_per_year)


def vol_5d(
    panels: Mapping[str, pd.DataFrame], *, periods_per_year: float | None = None
) -> pd.DataFrame:
    """Return the realised volatility of the next 5 sessions, annualised."""
    return realised_vol(panels, 5, periods_per_year=periods_per_year)


def regime_1d(probabilities: pd.DataFrame) -> pd.DataFrame:
    """Return the next session's regime probabilities at each ``(symbol, ts)`` row.

    Parameters
    ----------
    probabilities
        Long regime rows with ``symbol, ts`` and the nine
        :data:`~quantdesk.data.schemas.REGIME_PROBABILITY_COLUMNS` (filtered
        probabilities, or one-hot true regimes), one row per session of each symbol.

    Returns
    -------
    pandas.DataFrame
        ``symbol, ts`` and the nine columns, where row ``(s, t)`` holds the probabilities
        of the session after ``t``; the last session of each symbol is dropped (no outcome).

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=2, tz="UTC")
    >>> p = pd.DataFrame(np.eye(9)[[0, 8]], columns=list(REGIME_PROBABILITY_COLUMNS))
    >>> out = regime_1d(p.assign(symbol="A", ts=ts))
    >>> len(out), float(out["p_high_bullish"].iloc[0])
    (1, 1.0)
    """
    cols = list(REGIME_PROBABILITY_COLUMNS)
    frame = probabilities.sort_values(["symbol", "ts"], kind="stable")
    nxt = frame.groupby("symbol", sort=False)[cols].shift(-1)
    out = pd.concat([frame[["symbol", "ts"]], nxt], axis=1).dropna(subset=cols)
    return out.reset_index(drop=True)
