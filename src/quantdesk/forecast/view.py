"""One symbol's forecasts: the latest of each model beside its accuracy so far.

What ``quantdesk forecast show`` prints and the monitor's forecasts pane shows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.core.jsonable import jsonable
from quantdesk.data.store.forecasts import ForecastStore

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore
from quantdesk.forecast.jobs import (
    _PROBS,
    _Result,
)

__all__ = [
    "ForecastView",
    "forecast_text",
    "forecast_view",
]

logger = logging.getLogger(__name__)


# -- one symbol's view ---------------------------------------------------------------------


def _forecast_value(row: Mapping[Any, Any], value: str, probs: str) -> Any:
    if row.get(probs) is not None and not pd.isna(row.get(probs)):
        return json.loads(row[probs])
    v = row.get(value)
    return None if v is None or pd.isna(v) else float(v)


def _accuracy(target: str, rows: pd.DataFrame) -> dict[str, float]:
    """Return the mean losses (and hit rate) of one model's scored forecasts of a symbol."""
    from quantdesk.forecast import scores as sc

    if target == "regime_1d":
        p = np.array([[json.loads(x)[c] for c in _PROBS] for x in rows["probs"]])
        q = np.array([[json.loads(x)[c] for c in _PROBS] for x in rows["outcome_probs"]])
        return {
            "log_loss": float(sc.log_loss(p, q).mean()),
            "brier": float(sc.brier(p, q).mean()),
        }
    f, y = rows["value"].to_numpy(float), rows["outcome"].to_numpy(float)
    if target == "return_1d":
        valid = (f != 0) & (y != 0)
        hits = np.sign(f[valid]) == np.sign(y[valid])
        return {
            "hit_rate": float(hits.mean()) if valid.any() else float("nan"),
            "mse": float(sc.squared_error(f, y).mean()),
        }
    return {
        "mse": float(sc.squared_error(f**2, y**2).mean()),
        "qlike": float(np.nanmean(sc.qlike(f**2, y**2))),
    }


def forecast_text(value: float | Mapping[str, float] | None) -> str:
    """Return a forecast as short text: ``0.0123`` or, for regimes, the likeliest cell.

    Examples
    --------
    >>> forecast_text(0.012345)
    '0.01235'
    >>> forecast_text({"calm-up": 0.2, "volatile-down": 0.7, "calm-flat": 0.1})
    'volatile-down (0.70)'
    >>> forecast_text(None)
    '-'
    """
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        cell = max(value, key=lambda c: value[c])
        return f"{cell} ({value[cell]:.2f})"
    return f"{value:.4g}"


@dataclass
class ForecastView(_Result):
    """One symbol's latest forecasts, their accuracy so far and the recent history.

    :meth:`to_dict` is the document ``quantdesk forecast show SYMBOL --json`` prints:
    ``{"symbol", "session", "predictions", "accuracy", "history"}``.
    """

    symbol: str
    session: pd.Timestamp
    predictions: list[dict[str, Any]]
    accuracy: list[dict[str, Any]]
    history: list[dict[str, Any]]

    def summary(self) -> str:
        """Return the latest forecasts, then the accuracy lines."""
        lines = [f"{self.symbol}: forecasts as of {self.session:%Y-%m-%d}"]
        for p in self.predictions:
            shown = forecast_text(p["value"])
            lines.append(f"  {p['target']:<10} {p['model']:<12} {shown}  [{p['origin']}]")
        lines.append("accuracy so far:")
        for a in self.accuracy:
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in a["metrics"].items())
            lines.append(
                f"  {a['target']:<10} {a['model']:<12} {a['origin']:<8} n={a['n']}: {metrics}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the view as the API document (JSON-ready)."""
        doc: dict[str, Any] = jsonable(
            {
                "symbol": self.symbol,
                "session": self.session,
                "predictions": self.predictions,
                "accuracy": self.accuracy,
                "history": self.history,
            }
        )
        return doc


def forecast_view(
    store: MarketStore, symbol: str, *, history: int = 20, trailing: int | None = None
) -> ForecastView:
    """Return a symbol's latest recorded forecasts, their accuracy so far and recent history.

    ``predictions``: the newest row of each (target, model) as of the latest recorded
    session; ``accuracy``: per (target, model, origin), the number of scored forecasts and
    their mean losses (MSE, QLIKE on variance; hit rate and MSE for returns; log loss and
    Brier for regimes); ``history``: the forecasts of the last ``history`` sessions with
    their outcomes (``null`` until due).  ``trailing``: the accuracy of the last
    ``trailing`` scored sessions only (default: every scored forecast).

    Raises
    ------
    ValueError
        When no forecast of ``symbol`` is recorded.
    """
    rows = ForecastStore(store).forecasts([symbol])
    if rows.empty:
        raise ValueError(
            f"no forecasts recorded for {symbol!r} in {store.path}; "
            f"run `quantdesk forecast run --symbols {symbol}`"
        )
    rows = rows.sort_values(["as_of", "made_at"], kind="stable")
    session = rows["as_of"].max()
    latest = rows.loc[rows["as_of"] == session].drop_duplicates(["target", "model"], keep="last")
    predictions = [
        {
            "target": r["target"],
            "model": r["model"],
            "version": r["version"],
            "horizon": int(r["horizon"]),
            "value": _forecast_value(r, "value", "probs"),
            "origin": r["origin"],
            "made_at": r["made_at"],
        }
        for r in latest.to_dict(orient="records")
    ]
    accuracy = []
    due = rows.loc[rows["outcome"].notna() | rows["outcome_probs"].notna()]
    due = due.drop_duplicates(["target", "model", "origin", "as_of"], keep="last")
    if trailing is not None:
        due = due.loc[due["as_of"].isin(sorted(set(due["as_of"]))[-trailing:])]
    for (target, model, origin), g in due.groupby(["target", "model", "origin"], sort=True):
        accuracy.append(
            {
                "target": target,
                "model": model,
                "origin": origin,
                "n": len(g),
                "first": g["as_of"].min(),
                "last": g["as_of"].max(),
                "metrics": _accuracy(str(target), g),
            }
        )
    recent = sorted(set(rows["as_of"]))[-history:]
    past = rows.loc[rows["as_of"].isin(recent)]
    hist = [
        {
            "as_of": r["as_of"],
            "target": r["target"],
            "model": r["model"],
            "version": r["version"],
            "origin": r["origin"],
            "value": _forecast_value(r, "value", "probs"),
            "outcome": _forecast_value(r, "outcome", "outcome_probs"),
        }
        for r in past.to_dict(orient="records")
    ]
    return ForecastView(
        symbol=symbol,
        session=session,
        predictions=predictions,
        accuracy=accuracy,
        history=hist,
    )
