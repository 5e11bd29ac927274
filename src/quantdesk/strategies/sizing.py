"""Position sizing: from signals and volatility forecasts to target weights.

Weights are fractions of total portfolio value (not of free cash), one column per
asset, aligned to the price panel.  A NaN weight means "no order on this bar": the
position is held and its weight drifts with prices.  That is how rebalance schedules
and no-trade bands reach the backtest and the paper ledger, and how a strategy says
it has no opinion yet: during an asset's warm-up (before its signal and volatility are
both known) its weight is NaN, never 0, so a paper ledger keeps what it holds instead
of selling it, and a backtest, which starts flat, is not changed by it.

Everything here is pure and causal: the weight at t uses inputs up to t only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "REBALANCE_FREQUENCIES",
    "apply_band",
    "rebalance_mask",
    "vol_target_weights",
    "warmup_mask",
]

Rebalance = Literal["daily", "weekly", "monthly"]
REBALANCE_FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly")


def rebalance_mask(index: pd.Index, rebalance: Rebalance = "daily") -> np.ndarray:
    """Return a boolean array marking the bars on which the portfolio rebalances.

    Weekly and monthly portfolios rebalance on the first bar of each new week or month
    (and on the first bar).  Choosing the first bar of a period, not the last, keeps the
    rule causal: whether bar t rebalances depends only on bars up to t.

    Examples
    --------
    >>> idx = pd.DatetimeIndex(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"])
    >>> rebalance_mask(idx, "monthly").tolist()
    [True, False, True, False]
    """
    if rebalance not in REBALANCE_FREQUENCIES:
        raise ValueError(f"rebalance must be one of {REBALANCE_FREQUENCIES}, got {rebalance!r}")
    n = len(index)
    if rebalance == "daily" or n == 0:
        return np.ones(n, dtype=bool)
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError("weekly or monthly rebalancing needs a DatetimeIndex")
    naive = index.tz_localize(None) if index.tz is not None else index
    period = naive.to_period("W" if rebalance == "weekly" else "M").asi8
    mask = np.ones(n, dtype=bool)
    mask[1:] = period[1:] != period[:-1]
    return mask


def warmup_mask(signal: pd.DataFrame, vol: pd.DataFrame) -> np.ndarray:
    """Return a boolean array marking each asset's warm-up: the bars before it is first sized.

    An asset is sized from the first bar on which its signal is known and its volatility
    forecast is known and positive; every bar before that is warm-up.  Later gaps are
    not warm-up (the asset had an opinion and is then sized flat).

    Examples
    --------
    >>> sig = pd.DataFrame({"a": [np.nan, 1.0, np.nan], "b": [np.nan, np.nan, 1.0]})
    >>> vol = pd.DataFrame({"a": [0.1, 0.1, 0.1], "b": [0.1, 0.1, 0.1]})
    >>> warmup_mask(sig, vol).tolist()
    [[True, True], [False, True], [False, False]]
    """
    sigma = vol.to_numpy(dtype=np.float64)
    known = np.isfinite(signal.to_numpy(dtype=np.float64)) & np.isfinite(sigma) & (sigma > 0)
    return ~np.logical_or.accumulate(known, axis=0)


def apply_band(weights: pd.DataFrame, band: float) -> pd.DataFrame:
    """Return ``weights`` with NaN (no order) where a target moved less than ``band``.

    The comparison is against the last target actually traded for that asset
    (starting from flat), so small wiggles of the target never trade and a slow drift
    trades once it has accumulated past the band.  Rows or cells that are already NaN
    stay NaN and do not move the reference.

    Examples
    --------
    >>> w = pd.DataFrame({"a": [0.50, 0.52, 0.56, 0.57]})
    >>> apply_band(w, 0.05)["a"].tolist()
    [0.5, nan, 0.56, nan]
    """
    if band < 0:
        raise ValueError(f"band must be >= 0, got {band}")
    if band == 0:
        return weights.copy()
    values = weights.to_numpy(dtype=np.float64)
    out = np.full_like(values, np.nan)
    last = np.zeros(values.shape[1])
    for i in range(values.shape[0]):
        row = values[i]
        trade = ~np.isnan(row) & (np.abs(row - last) > band)
        out[i, trade] = row[trade]
        last[trade] = row[trade]
    return pd.DataFrame(out, index=weights.index, columns=weights.columns)


def vol_target_weights(
    signal: pd.DataFrame,
    vol: pd.DataFrame,
    *,
    target_vol: float | pd.Series = 0.10,
    max_weight: float = 1.0,
    max_gross: float = 1.0,
    long_only: bool = False,
    rebalance: Rebalance = "daily",
    band: float = 0.0,
) -> pd.DataFrame:
    """Return target weights ``signal * target_vol / vol``, capped, scheduled and banded.

    Parameters
    ----------
    signal
        Wide panel of positions in signal units, typically in [-1, 1].
    vol
        Wide panel of annualised volatility forecasts, aligned with ``signal``, annualised
        by the bars in a year of the prices' own timeframe (as
        :func:`~quantdesk.signals.volatility.ewma_vol` does by default): a forecast
        annualised as if hourly bars were days reads about six times too low and pins
        every weight at ``max_weight``.  Sizing itself only divides annual by annual.
    target_vol
        Annualised volatility each unit of signal should carry; a Series (indexed like
        ``signal``) varies it by bar, e.g. ``0.10 / n_assets`` for an equal risk budget.
    max_weight
        Cap on each asset's absolute weight.
    max_gross
        Cap on the sum of absolute weights per bar (gross leverage); rows above it are
        scaled down proportionally, after the per-asset cap.
    long_only
        Clip negative weights to zero.
    rebalance
        ``"daily"``, ``"weekly"`` or ``"monthly"``; other bars get NaN (hold).
    band
        No-trade band in weight units (see :func:`apply_band`).

    Returns
    -------
    pd.DataFrame
        Target weights as fractions of total portfolio value.  An asset's weight is NaN
        (no opinion, no order) during its warm-up (:func:`warmup_mask`); after it, a bar
        whose signal or volatility is missing gets weight 0 (flat) on rebalance bars.

    Examples
    --------
    >>> sig = pd.DataFrame({"a": [1.0, -1.0], "b": [1.0, 1.0]})
    >>> vol = pd.DataFrame({"a": [0.2, 0.2], "b": [0.4, 0.05]})
    >>> vol_target_weights(sig, vol, target_vol=0.1, max_gross=1.0).round(3).values.tolist()
    [[0.5, 0.25], [-0.333, 0.667]]
    """
    if not signal.index.equals(vol.index) or not signal.columns.equals(vol.columns):
        raise ValueError("signal and vol must share index and columns (align them first)")
    if max_weight <= 0 or max_gross <= 0:
        raise ValueError("max_weight and max_gross must be positive")
    sig = signal.to_numpy(dtype=np.float64)
    sigma = vol.to_numpy(dtype=np.float64)
    budget: np.ndarray | np.float64
    if isinstance(target_vol, pd.Series):
        budget = target_vol.reindex(signal.index).to_numpy(dtype=np.float64)[:, None]
    else:
        budget = np.float64(target_vol)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = sig * budget / sigma
    raw[~np.isfinite(raw) | (sigma <= 0)] = 0.0
    if long_only:
        raw = np.maximum(raw, 0.0)
    raw = np.clip(raw, -max_weight, max_weight)
    gross = np.abs(raw).sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(gross > max_gross, max_gross / gross, 1.0)
    weights = raw * scale
    weights[~rebalance_mask(signal.index, rebalance)] = np.nan
    weights[warmup_mask(signal, vol)] = np.nan
    out = pd.DataFrame(weights, index=signal.index, columns=signal.columns)
    return apply_band(out, band)
