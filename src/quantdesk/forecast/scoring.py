"""Scoring forecasts: their outcomes once due, then scores per model, target and origin.

What ``quantdesk forecast score`` and the evening pipeline call (:func:`score_forecasts`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.core.jsonable import jsonable
from quantdesk.data.store.forecasts import ORIGINS, ForecastStore
from quantdesk.forecast.base import (
    Panels,
    stack_long,
)

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore
    from quantdesk.regimes.registry import ModelRegistry
from quantdesk.forecast.jobs import (
    _PROBS,
    _panels,
    _registry,
    _Result,
    _symbols,
)

__all__ = [
    "ForecastScores",
    "score_forecasts",
]

logger = logging.getLogger(__name__)


# -- outcomes and scores -------------------------------------------------------------------


def _wide_target(panels: Panels, target: str) -> pd.DataFrame:
    from quantdesk.forecast.targets import return_1d, vol_1d, vol_5d

    fn = {"return_1d": return_1d, "vol_1d": vol_1d, "vol_5d": vol_5d}[target]
    return fn(panels)


def _due_outcomes(
    store: MarketStore, pending: pd.DataFrame, registry: ModelRegistry | str | None
) -> tuple[pd.DataFrame, list[str]]:
    """Return the outcomes of ``pending`` forecasts that the stored bars now decide, and notes."""
    from quantdesk.forecast.models import load_model
    from quantdesk.forecast.regime_models import filtered_regimes
    from quantdesk.forecast.targets import regime_1d

    notes: list[str] = []
    frames = []
    if pending.empty:
        return pd.DataFrame(columns=["symbol", "target", "as_of", "value", "probs"]), notes
    panels = _panels(store, sorted(set(pending["symbol"])))
    for target, group in pending.groupby("target", sort=True):
        if target == "regime_1d":
            try:
                hmm = load_model(_registry(registry), "forecast-regime_1d-hmm")
            except KeyError:
                notes.append("regime outcomes wait: no fitted hmm forecast model in the registry")
                continue
            models = getattr(hmm, "models_", {})
            nxt = regime_1d(filtered_regimes(models, panels))
            nxt["ts"] = pd.to_datetime(nxt["ts"], utc=True)
            got = group.merge(nxt, left_on=["symbol", "as_of"], right_on=["symbol", "ts"])
            probs = [
                json.dumps(dict(zip(_PROBS, map(float, p), strict=True)))
                for p in got[_PROBS].to_numpy(dtype=float)
            ]
            frames.append(got[["symbol", "target", "as_of"]].assign(value=np.nan, probs=probs))
            continue
        wide = _wide_target(panels, str(target))
        long = stack_long(wide, "value")
        long["symbol"] = long["symbol"].astype(str)
        got = group.merge(long, left_on=["symbol", "as_of"], right_on=["symbol", "ts"])
        got = got.dropna(subset=["value"])
        frames.append(got[["symbol", "target", "as_of", "value"]].assign(probs=None))
    if not frames:
        return pd.DataFrame(columns=["symbol", "target", "as_of", "value", "probs"]), notes
    return pd.concat(frames, ignore_index=True), notes


def _scored_frame(rows: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (forecasts, outcomes) in the walk-forward's long shape for one target."""
    rows = rows.sort_values("made_at", kind="stable")
    rows = rows.drop_duplicates(["model", "symbol", "as_of"], keep="last")
    if target == "regime_1d":
        f = pd.DataFrame([json.loads(p) for p in rows["probs"]], columns=_PROBS)
        y = pd.DataFrame([json.loads(p) for p in rows["outcome_probs"]], columns=_PROBS)
    else:
        f = rows[["value"]].reset_index(drop=True)
        y = rows[["outcome"]].rename(columns={"outcome": "value"}).reset_index(drop=True)
    keys = rows[["model", "as_of", "symbol"]].rename(columns={"as_of": "ts"}).reset_index(drop=True)
    forecasts = pd.concat([keys, f], axis=1)
    outcomes = pd.concat([keys[["ts", "symbol"]], y], axis=1).drop_duplicates(["ts", "symbol"])
    return forecasts, outcomes


@dataclass
class ForecastScores(_Result):
    """Scores of the recorded forecasts beside their baselines, per origin.

    Attributes
    ----------
    outcomes_recorded : int
        Outcomes this run wrote (each outcome is written once).
    scores : pandas.DataFrame
        ``origin`` and the walk-forward's score columns (``model, target, metric, value,
        baseline, baseline_value, skill, lo, hi``): skill against each baseline with a
        Newey-West 95% interval (:mod:`quantdesk.forecast.scores`).
    counts : pandas.DataFrame
        ``origin, target, model, forecasts, scored``: rows recorded and rows with an outcome.
    notes : list of str
    """

    outcomes_recorded: int
    scores: pd.DataFrame
    counts: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Return the outcome count, then each origin's scores."""
        lines = [
            f"Forecast scores: {self.outcomes_recorded} new outcome(s); "
            f"{int(self.counts['scored'].sum()) if len(self.counts) else 0} scored forecast(s)"
        ]
        lines += [f"  note: {n}" for n in self.notes]
        for origin in ORIGINS:
            table = self.scores.loc[self.scores["origin"] == origin]
            counted = self.counts.loc[self.counts["origin"] == origin]
            if counted.empty:
                continue
            lines.append(f"{origin} forecasts:")
            for row in counted.itertuples(index=False):
                lines.append(
                    f"  {row.target:<10} {row.model:<12} {row.scored}/{row.forecasts} scored"
                )
            for row in table.itertuples(index=False):
                lines.append(
                    f"  {row.target:<10} {row.model:<12} {row.metric:<9} {row.value:10.4g}"
                    f"  vs {row.baseline:<12} {row.baseline_value:10.4g}  skill "
                    f"{row.skill:+8.4f} [{row.lo:+.4f}, {row.hi:+.4f}]"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the scores, counts and notes as JSON-ready data."""
        doc: dict[str, Any] = jsonable(
            {
                "outcomes_recorded": self.outcomes_recorded,
                "scores": {
                    o: self.scores.loc[self.scores["origin"] == o]
                    .drop(columns="origin")
                    .to_dict(orient="records")
                    for o in ORIGINS
                },
                "counts": self.counts.to_dict(orient="records"),
                "notes": self.notes,
            }
        )
        return doc


def score_forecasts(
    store: MarketStore,
    symbols: str | Sequence[str] | None = None,
    *,
    registry: ModelRegistry | str | None = None,
) -> ForecastScores:
    """Return the scores of the recorded forecasts after filling the outcomes now due.

    Outcomes come from the targets on the stored bars and are written once
    (:meth:`ForecastStore.record_outcomes`).  Each model is then scored beside each
    baseline of its target on the forecasts both made, separately for ``live`` and
    ``backfill`` rows (a backfill was made after its outcomes existed).

    Parameters
    ----------
    store
        The market store holding the bars and the forecast record.
    symbols
        Symbols to score (default: every symbol with recorded forecasts).
    registry
        The registry whose latest ``hmm`` model's filter gives the regime outcomes.
    """
    from quantdesk.forecast.evaluation import SCORE_COLUMNS, WalkForwardForecasts
    from quantdesk.forecast.models import models_for

    names = _symbols(symbols)
    record = ForecastStore(store)
    pending = record.pending()
    if names is not None:
        pending = pending.loc[pending["symbol"].isin(names)]
    outcomes, notes = _due_outcomes(store, pending, registry)
    written = record.record_outcomes(outcomes) if len(outcomes) else 0
    rows = record.forecasts(names)
    score_parts, counts = [], []
    for (origin, target), group in rows.groupby(["origin", "target"], sort=True):
        has = group["outcome_probs"].notna() if target == "regime_1d" else group["outcome"].notna()
        for model, g in group.groupby("model", sort=False):
            counts.append((origin, target, model, len(g), int(has.loc[g.index].sum())))
        scored = group.loc[has]
        if scored.empty:
            continue
        forecasts, outcome = _scored_frame(scored, str(target))
        kind = "filter" if target == "regime_1d" else "realised"
        baselines = [
            m.name
            for m in models_for(str(target))
            if m.is_baseline and m.name in set(forecasts["model"])
        ]
        if not baselines:
            notes.append(f"{origin} {target}: no baseline forecasts to score against")
            continue
        wf = WalkForwardForecasts(
            target=str(target),
            forecasts=forecasts,
            outcomes={kind: outcome},
            baselines=baselines,
            refits=pd.DataFrame(),
            estimators=pd.Series(dtype=object),
        )
        score_parts.append(wf.scores().assign(origin=str(origin)))
    columns = ["origin", *SCORE_COLUMNS]
    scores = (
        pd.concat(score_parts, ignore_index=True)[columns]
        if score_parts
        else pd.DataFrame(columns=columns)
    )
    count_frame = pd.DataFrame(counts, columns=["origin", "target", "model", "forecasts", "scored"])
    return ForecastScores(outcomes_recorded=written, scores=scores, counts=count_frame, notes=notes)
