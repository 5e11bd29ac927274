"""Trend-following signals on wide panels: moving-average crossovers, time-series momentum
and Donchian channel breakouts.

Every function takes wide panels (index ``ts``, one column per symbol) and returns a wide
panel with the same index and columns.  A value at row ``t`` uses rows up to and including
``t`` only (causal); rows whose look-back is not yet full are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from quantdesk.signals.volatility import _require_aligned
from quantdesk.signals.windows import rolling_mean

__all__ = ["blended_tsmom", "donchian_breakout", "ma_crossover", "tsmom"]


def _sign(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the sign of every value (-1, 0, +1), NaN kept."""
    return pd.DataFrame(np.sign(frame.to_numpy(dtype=np.float64)), frame.index, frame.columns)


def _moving_average(close: pd.DataFrame, window: int, kind: str) -> pd.DataFrame:
    if kind == "sma":
        return rolling_mean(close, window)
    # The recursive EMA of charting tools: alpha = 2 / (window + 1), seeded at the first close.
    return close.ewm(span=window, adjust=False, min_periods=window).mean()


def ma_crossover(
    close: pd.DataFrame,
    fast: int = 20,
    slow: int = 100,
    *,
    kind: Literal["sma", "ema"] = "sma",
) -> pd.DataFrame:
    """Return the sign of the fast minus the slow moving average of ``close``: -1, 0 or +1.

    Parameters
    ----------
    close
        Wide panel of closes.
    fast, slow
        Look-backs in bars, ``1 <= fast < slow``.
    kind
        ``"sma"``: simple mean of the last ``window`` closes.  ``"ema"``: the recursive
        exponential average ``ema[t] = a * close[t] + (1 - a) * ema[t-1]`` with
        ``a = 2 / (window + 1)``, seeded at the first close (pandas
        ``ewm(span=window, adjust=False)``), reported once ``window`` closes were seen.

    Returns
    -------
    pd.DataFrame
        +1 where the fast average is above the slow one, -1 below, 0 equal; NaN until the
        slow average is defined (the first ``slow - 1`` rows of a complete column).

    Examples
    --------
    >>> close = pd.DataFrame({"A": [5.0, 4.0, 3.0, 4.0, 6.0]})
    >>> ma_crossover(close, 2, 3)["A"].tolist()
    [nan, nan, -1.0, -1.0, 1.0]
    """
    if not 1 <= fast < slow:
        raise ValueError(f"need 1 <= fast < slow, got fast={fast}, slow={slow}")
    if kind not in ("sma", "ema"):
        raise ValueError(f"kind must be 'sma' or 'ema', got {kind!r}")
    return _sign(_moving_average(close, fast, kind) - _moving_average(close, slow, kind))


def tsmom(close: pd.DataFrame, lookback: int) -> pd.DataFrame:
    """Return time-series momentum: the sign of the return over the last ``lookback`` bars.

    ``sign(close[t] / close[t - lookback] - 1)``, in {-1, 0, +1}; NaN for the first
    ``lookback`` rows (and wherever either close is missing).

    Examples
    --------
    >>> close = pd.DataFrame({"A": [10.0, 11.0, 9.0, 11.0]})
    >>> tsmom(close, 2)["A"].tolist()
    [nan, nan, -1.0, 0.0]
    """
    return pd.DataFrame(
        _tsmom_values(close.to_numpy(dtype=np.float64), lookback), close.index, close.columns
    )


def _tsmom_values(values: np.ndarray, lookback: int) -> np.ndarray:
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    out = np.full(values.shape, np.nan)
    # Plain arrays: several times cheaper than DataFrame arithmetic on a wide universe.
    out[lookback:] = np.sign(values[lookback:] - values[:-lookback])
    return out


def blended_tsmom(
    close: pd.DataFrame,
    lookbacks: Sequence[int] = (21, 63, 126, 252),
    *,
    weights: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Return the weighted average of :func:`tsmom` over several look-backs, in [-1, 1].

    Parameters
    ----------
    close
        Wide panel of closes.
    lookbacks
        Look-backs in bars.
    weights
        Non-negative weights, one per look-back, normalised to sum to one; equal weights
        when omitted.

    Returns
    -------
    pd.DataFrame
        ``sum_k w_k * tsmom(close, lookbacks[k])``; NaN wherever any of the look-backs is
        still in its warm-up (so the first ``max(lookbacks)`` rows).

    Examples
    --------
    >>> close = pd.DataFrame({"A": [10.0, 11.0, 12.0, 11.5]})
    >>> blended_tsmom(close, (1, 3))["A"].tolist()
    [nan, nan, nan, 0.0]
    """
    lookbacks = list(lookbacks)
    if not lookbacks:
        raise ValueError("lookbacks must not be empty")
    if weights is None:
        w = np.full(len(lookbacks), 1.0 / len(lookbacks))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(lookbacks),):
            raise ValueError(f"need one weight per lookback ({len(lookbacks)}), got {w.size}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be finite, non-negative and not all zero: {w}")
        w = w / w.sum()
    values = close.to_numpy(dtype=np.float64)
    total = np.zeros(close.shape)
    for weight, lookback in zip(w, lookbacks, strict=True):
        total += weight * _tsmom_values(values, lookback)  # NaN in any look-back spreads
    return pd.DataFrame(total, index=close.index, columns=close.columns)


def donchian_breakout(
    close: pd.DataFrame,
    window: int = 55,
    *,
    high: pd.DataFrame | None = None,
    low: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the Donchian breakout state: +1 after an upside, -1 after a downside breakout.

    The channel at row ``t`` is the highest ``high`` and lowest ``low`` over the ``window``
    bars before ``t`` (rows ``t - window`` to ``t - 1``; row ``t`` itself is excluded, so a
    close can break it).  A close strictly above the channel top sets the state to +1, a
    close strictly below its bottom sets -1, and any other bar keeps the last state (no exit
    channel: the position flips only on an opposite breakout).

    Parameters
    ----------
    close
        Wide panel of closes.
    window
        Channel length in bars.
    high, low
        Wide panels of highs and lows aligned to ``close`` for the channel; ``close`` is
        used for a side that is not given.

    Returns
    -------
    pd.DataFrame
        The state in {-1, 0, +1}: 0 once the channel exists but before the first breakout,
        NaN before the channel has ``window`` bars (the first ``window`` rows of a complete
        column) and wherever ``close`` is missing.

    Examples
    --------
    >>> close = pd.DataFrame({"A": [2.0, 3.0, 2.5, 3.5, 3.0, 1.0, 2.0]})
    >>> donchian_breakout(close, 2)["A"].tolist()
    [nan, nan, 0.0, 1.0, 1.0, -1.0, -1.0]
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    high = close if high is None else high
    low = close if low is None else low
    _require_aligned(close, high=high, low=low)
    top = high.rolling(window).max().shift(1).to_numpy(dtype=np.float64)
    bottom = low.rolling(window).min().shift(1).to_numpy(dtype=np.float64)
    price = close.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        breakout = np.where(price > top, 1.0, np.where(price < bottom, -1.0, np.nan))
    state = pd.DataFrame(breakout, index=close.index, columns=close.columns).ffill().to_numpy()
    channel_seen = np.maximum.accumulate(~np.isnan(top) & ~np.isnan(bottom), axis=0)
    state = np.where(np.isnan(state) & channel_seen, 0.0, state)
    state[~channel_seen | np.isnan(price)] = np.nan
    return pd.DataFrame(state, index=close.index, columns=close.columns)
