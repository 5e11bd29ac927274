"""Common per-symbol features on wide panels, the usual inputs of a cross-sectional model.

Every feature at row ``t`` uses data up to and including ``t`` only (causal).  Horizons and
windows are counted in bars; volatilities are annualised by the bars in a year of the
panels' timeframe (:func:`quantdesk.data.frequency.periods_per_year`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from quantdesk.data.frequency import resolve_periods_per_year
from quantdesk.signals.windows import rolling_mean, rolling_std

__all__ = ["COMMON_FEATURE_NAMES", "RANGE_FEATURES", "VOLUME_FEATURES", "common_features"]

logger = logging.getLogger(__name__)

RETURN_HORIZONS = (1, 5, 20, 60)
VOL_WINDOWS = (5, 20, 60)
MA_WINDOWS = (5, 20, 60)
VOLUME_WINDOWS = (5, 20)

COMMON_FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{h}" for h in RETURN_HORIZONS),
    *(f"vol_{w}" for w in VOL_WINDOWS),
    *(f"ma_ratio_{w}" for w in MA_WINDOWS),
    "ma_cross_20_60",
    *(f"volume_ratio_{w}" for w in VOLUME_WINDOWS),
    "range_hl",
)
#: Features that need highs and lows, and those that need volume.
RANGE_FEATURES: tuple[str, ...] = ("range_hl",)
VOLUME_FEATURES: tuple[str, ...] = tuple(f"volume_ratio_{w}" for w in VOLUME_WINDOWS)


def common_features(
    panels: Mapping[str, pd.DataFrame], *, periods_per_year: float | None = None
) -> dict[str, pd.DataFrame]:
    """Return 14 causal features as wide panels keyed by :data:`COMMON_FEATURE_NAMES`.

    Parameters
    ----------
    panels
        Wide panels with at least ``close`` (as from
        :meth:`quantdesk.data.MarketStore.panels`); ``high``, ``low`` and ``volume`` feed
        the range and volume features.
    periods_per_year
        Bars per year for annualising ``vol_w``; ``None`` reads it from the close panel's
        ``attrs['timeframe']`` or its index (252 daily, 52 weekly, 12 monthly).

    Returns
    -------
    dict
        ``ret_h``: log return over ``h`` bars; ``vol_w``: annualised standard deviation
        of per-bar log returns over ``w`` bars; ``ma_ratio_w``: close over its ``w``-bar
        mean, minus one; ``ma_cross_20_60``: 20-bar over 60-bar mean, minus one;
        ``volume_ratio_w``: volume over its ``w``-bar mean; ``range_hl``: log(high/low).
        A window needs all of its bars; earlier rows are NaN.  Close-only series (no
        high/low, as an index level or a fixing) get NaN ``range_hl`` and series without
        volume NaN volume ratios, never zeros; one warning names them.

    Examples
    --------
    >>> close = pd.DataFrame({"A": np.linspace(10, 20, 100)},
    ...                      index=pd.bdate_range("2024-01-01", periods=100))
    >>> feats = common_features({"close": close, "high": close * 1.01, "low": close * 0.99,
    ...                          "volume": close * 0 + 1e6})
    >>> round(float(feats["ret_1"]["A"].iloc[1]), 6)
    0.01005
    """
    close = panels["close"]
    ppy = resolve_periods_per_year(periods_per_year, close, what="the close panel")
    log_close = pd.DataFrame(np.log(close.to_numpy()), index=close.index, columns=close.columns)
    out: dict[str, pd.DataFrame] = {}
    for h in RETURN_HORIZONS:
        out[f"ret_{h}"] = log_close - log_close.shift(h)
    daily = out["ret_1"]
    for w in VOL_WINDOWS:
        out[f"vol_{w}"] = rolling_std(daily, w) * np.sqrt(ppy)
    means = {w: rolling_mean(close, w) for w in sorted({*MA_WINDOWS, 20, 60})}
    for w in MA_WINDOWS:
        out[f"ma_ratio_{w}"] = close / means[w] - 1.0
    out["ma_cross_20_60"] = means[20] / means[60] - 1.0
    volume = _field(panels, "volume", close)
    for w in VOLUME_WINDOWS:
        out[f"volume_ratio_{w}"] = volume / rolling_mean(volume, w)
    ratio = _field(panels, "high", close) / _field(panels, "low", close)
    out["range_hl"] = pd.DataFrame(
        np.log(ratio.to_numpy()), index=ratio.index, columns=ratio.columns
    )
    _warn_missing(close, range_hl=ratio, volume=volume)
    return {name: out[name] for name in COMMON_FEATURE_NAMES}


def _field(panels: Mapping[str, pd.DataFrame], name: str, close: pd.DataFrame) -> pd.DataFrame:
    """Return panel ``name`` aligned to ``close``; all NaN when the panels have none."""
    if name not in panels:
        return pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    return panels[name].reindex(index=close.index, columns=close.columns)


def _warn_missing(close: pd.DataFrame, **inputs: pd.DataFrame) -> None:
    """Log once which symbols with closes lack the input of a range or volume feature."""
    priced = close.notna().any(axis=0)
    gaps = {
        name: [str(c) for c in frame.columns[(frame.isna().all(axis=0) & priced).to_numpy()]]
        for name, frame in inputs.items()
    }
    gaps = {name: symbols for name, symbols in gaps.items() if symbols}
    if gaps:
        logger.warning(
            "common_features: NaN features for symbols without the data they need: %s",
            "; ".join(f"{name} for {symbols}" for name, symbols in gaps.items()),
        )
