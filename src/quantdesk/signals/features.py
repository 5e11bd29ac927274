"""Common per-symbol features on wide panels, the usual inputs of a cross-sectional model.

Every feature at row ``t`` uses data up to and including ``t`` only (causal).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from quantdesk.signals.windows import rolling_mean, rolling_std

__all__ = ["FEATURE_NAMES", "common_features"]

RETURN_HORIZONS = (1, 5, 20, 60)
VOL_WINDOWS = (5, 20, 60)
MA_WINDOWS = (5, 20, 60)
VOLUME_WINDOWS = (5, 20)
PERIODS_PER_YEAR = 252

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{h}" for h in RETURN_HORIZONS),
    *(f"vol_{w}" for w in VOL_WINDOWS),
    *(f"ma_ratio_{w}" for w in MA_WINDOWS),
    "ma_cross_20_60",
    *(f"volume_ratio_{w}" for w in VOLUME_WINDOWS),
    "range_hl",
)


def common_features(panels: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Return 14 causal features as wide panels keyed by :data:`FEATURE_NAMES`.

    Parameters
    ----------
    panels
        Wide panels with at least ``close``, ``high``, ``low`` and ``volume`` (as from
        :meth:`quantdesk.data.MarketStore.panels`).

    Returns
    -------
    dict
        ``ret_h``: log return over ``h`` bars; ``vol_w``: annualised standard deviation
        of daily log returns over ``w`` bars; ``ma_ratio_w``: close over its ``w``-bar
        mean, minus one; ``ma_cross_20_60``: 20-bar over 60-bar mean, minus one;
        ``volume_ratio_w``: volume over its ``w``-bar mean; ``range_hl``: log(high/low).
        A window needs all of its bars; earlier rows are NaN.

    Examples
    --------
    >>> close = pd.DataFrame({"A": np.linspace(10, 20, 100)})
    >>> feats = common_features({"close": close, "high": close * 1.01, "low": close * 0.99,
    ...                          "volume": close * 0 + 1e6})
    >>> round(float(feats["ret_1"]["A"].iloc[1]), 6)
    0.01005
    """
    close = panels["close"]
    log_close = pd.DataFrame(np.log(close.to_numpy()), index=close.index, columns=close.columns)
    out: dict[str, pd.DataFrame] = {}
    for h in RETURN_HORIZONS:
        out[f"ret_{h}"] = log_close - log_close.shift(h)
    daily = out["ret_1"]
    for w in VOL_WINDOWS:
        out[f"vol_{w}"] = rolling_std(daily, w) * np.sqrt(PERIODS_PER_YEAR)
    means = {w: rolling_mean(close, w) for w in sorted({*MA_WINDOWS, 20, 60})}
    for w in MA_WINDOWS:
        out[f"ma_ratio_{w}"] = close / means[w] - 1.0
    out["ma_cross_20_60"] = means[20] / means[60] - 1.0
    volume = panels["volume"]
    for w in VOLUME_WINDOWS:
        out[f"volume_ratio_{w}"] = volume / rolling_mean(volume, w)
    ratio = panels["high"] / panels["low"]
    out["range_hl"] = pd.DataFrame(
        np.log(ratio.to_numpy()), index=ratio.index, columns=ratio.columns
    )
    return {name: out[name] for name in FEATURE_NAMES}
