"""What alerts were worth: hit counts by rule and forward returns after each alert.

Forward returns look at bars *after* the alert on purpose: they measure a rule over
history (the screener report), they are never an input of a rule.

Examples
--------
>>> close = pd.DataFrame({"A": [10.0, 11.0, 12.1, 13.31]},
...                      index=pd.date_range("2024-01-01", periods=4, tz="UTC"))
>>> alerts = pd.DataFrame({"symbol": ["A"], "rule": ["r"], "ts": [close.index[1]]})
>>> forward_returns(alerts, close, horizons=(1, 2))[["fwd_1", "fwd_2"]].round(4).to_dict("records")
[{'fwd_1': 0.1, 'fwd_2': 0.21}]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["forward_return_summary", "forward_returns", "hit_counts"]


def hit_counts(alerts: pd.DataFrame) -> pd.DataFrame:
    """Return, per rule, the number of alerts, of symbols alerted, and the first and last bar."""
    if alerts.empty:
        return pd.DataFrame(
            columns=["alerts", "symbols", "first", "last"], index=pd.Index([], name="rule")
        )
    grouped = alerts.groupby("rule", sort=True)
    return pd.DataFrame(
        {
            "alerts": grouped.size(),
            "symbols": grouped["symbol"].nunique(),
            "first": grouped["ts"].min(),
            "last": grouped["ts"].max(),
        }
    ).sort_values("alerts", ascending=False, kind="stable")


def forward_returns(
    alerts: pd.DataFrame, close: pd.DataFrame, horizons: Sequence[int] = (1, 5, 20)
) -> pd.DataFrame:
    """Return the alerts with ``fwd_{h}``: the close-to-close return ``h`` bars after each.

    The return runs from the close of the alert's bar to the close ``h`` bars later in
    ``close`` (a wide panel); NaN where that bar is past the end or has no price.
    """
    out = alerts.copy()
    index = pd.DatetimeIndex(close.index)
    rows = index.get_indexer(pd.DatetimeIndex(pd.to_datetime(alerts["ts"], utc=True)))
    cols = pd.Index(close.columns).get_indexer(pd.Index(alerts["symbol"].astype(str)))
    values = close.to_numpy(dtype=np.float64)
    found = (rows >= 0) & (cols >= 0)
    base = np.full(len(alerts), np.nan)
    base[found] = values[rows[found], cols[found]]
    for h in horizons:
        if h <= 0:
            raise ValueError(f"horizons are bars after the alert: {h} is not positive")
        later = rows + h
        ok = found & (later < len(index))
        ahead = np.full(len(alerts), np.nan)
        ahead[ok] = values[later[ok], cols[ok]]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"fwd_{h}"] = ahead / base - 1.0
    return out


def forward_return_summary(
    forward: pd.DataFrame, horizons: Sequence[int] = (1, 5, 20)
) -> pd.DataFrame:
    """Return per rule and horizon: alerts measured, mean and median return, share positive."""
    rows = []
    for rule, group in forward.groupby("rule", sort=True):
        for h in horizons:
            r = group[f"fwd_{h}"].dropna()
            rows.append(
                {
                    "rule": rule,
                    "horizon": h,
                    "alerts": len(r),
                    "mean": r.mean() if len(r) else np.nan,
                    "median": r.median() if len(r) else np.nan,
                    "positive": (r > 0).mean() if len(r) else np.nan,
                }
            )
    columns = ["rule", "horizon", "alerts", "mean", "median", "positive"]
    return pd.DataFrame(rows, columns=columns).set_index(["rule", "horizon"])
