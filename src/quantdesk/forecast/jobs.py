"""Forecast jobs: fit, issue, score and backfill forecasts; one symbol's view of them.

What ``quantdesk forecast fit | run | score | show`` and the evening pipeline call, so a
notebook, a scheduled job and the command line share one implementation::

    from quantdesk.data import MarketStore
    from quantdesk.forecast.jobs import fit_forecasts, run_forecasts, score_forecasts
    store = MarketStore()
    fit_forecasts(store, ["SPX", "IXIC"], end="2017-12-29")
    print(run_forecasts(store, ["SPX", "IXIC"]).summary())   # as of the latest session
    print(score_forecasts(store).summary())                  # outcomes now due, then scores

Choices made here (the issue leaves them open):

* The ``version`` of a recorded forecast is the registry version of the fitted model that
  made it (``v1``, ``v2``, ...): a refit is a new version, so its forecasts are new rows.
  Backfilled rows carry ``wf-r{refit}`` (the walk-forward refits its own models).
* The data fingerprint of a live row is
  :func:`quantdesk.regimes.registry.data_fingerprint` of every input bar (all symbols of
  the run: the LightGBM features rank across symbols) up to its ``as_of``; of a backfill
  row, of the bars up to the end of its walk-forward block (what the models were shown).
* Outcomes: the targets on the stored bars (:mod:`quantdesk.forecast.targets`), written
  once when every bar of the horizon exists.  A ``regime_1d`` outcome is the next
  session's filtered probabilities under the latest fitted ``hmm`` forecast model of the
  registry; without one, regime outcomes wait.
* Scores: when a (model, symbol, session, origin) was forecast under several versions,
  the newest row is scored (the record keeps them all).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_symbols, as_utc
from quantdesk.core.jsonable import jsonable
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.data.store.forecasts import FORECAST_COLUMNS, ORIGINS, ForecastStore
from quantdesk.forecast.base import (
    ForecastModel,
    Panels,
    check_session,
    code_fingerprint,
    stack_long,
    truncate,
)
from quantdesk.forecast.targets import TARGETS, target_horizon

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore
    from quantdesk.regimes.registry import ModelRegistry

__all__ = [
    "ForecastBackfill",
    "ForecastFitRun",
    "ForecastRun",
    "ForecastScores",
    "ForecastView",
    "backfill_forecasts",
    "fit_forecasts",
    "forecast_text",
    "forecast_view",
    "pipeline_step",
    "run_forecasts",
    "score_forecasts",
]

logger = logging.getLogger(__name__)

_PROBS = list(REGIME_PROBABILITY_COLUMNS)
_KEY = ["model", "version", "symbol", "target", "horizon", "as_of"]


# -- shared pieces -----------------------------------------------------------------------


def _registry(registry: ModelRegistry | str | None) -> ModelRegistry:
    from quantdesk.regimes.registry import ModelRegistry

    if isinstance(registry, ModelRegistry):
        return registry
    try:
        return ModelRegistry(registry)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"model registry {registry!r}: {exc}") from exc


def _targets(targets: str | Sequence[str] | None) -> list[str]:
    chosen = as_symbols(targets) or list(TARGETS)  # "a,b" or a list, like symbols
    for target in chosen:
        target_horizon(target)
    return chosen


def _symbols(symbols: str | Sequence[str] | None) -> list[str] | None:
    return as_symbols(symbols) or None


def _panels(
    store: MarketStore, symbols: Sequence[str] | None, end: Any = None
) -> dict[str, pd.DataFrame]:
    panels = store.panels(symbols=symbols, end=end)
    if panels["close"].empty:
        raise ValueError(
            f"no daily bars in {store.path} for {list(symbols) if symbols else 'any symbol'}"
            + (f" up to {end}" if end is not None else "")
        )
    return panels


def _bars_fingerprint(store: MarketStore, symbols: Sequence[str], end: Any) -> str:
    from quantdesk.regimes.registry import data_fingerprint

    return data_fingerprint(store.bars(list(symbols), None, end, "1d"))


def _html(summary: str) -> str:
    lines = summary.splitlines() or [""]
    head, rest = html.escape(lines[0]), html.escape("\n".join(lines[1:]))
    body = f"<details open><summary>details</summary><pre>{rest}</pre></details>" if rest else ""
    return f"<div><p><b>{head}</b></p>{body}</div>"


class _Result:
    """Text, JSON and HTML of a job's result from its ``summary`` and ``to_dict``."""

    def summary(self) -> str:  # pragma: no cover - every result overrides it
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return _html(self.summary())


def _forecast_rows(
    model: ForecastModel, predicted: pd.DataFrame, version: str, origin: str
) -> pd.DataFrame:
    """Return the record rows of a model's long forecasts (``ts, symbol`` + values)."""
    rows = pd.DataFrame(
        {
            "model": model.name,
            "version": version,
            "symbol": predicted["symbol"].astype(str).to_numpy(),
            "target": model.target,
            "horizon": target_horizon(model.target),
            "as_of": pd.to_datetime(predicted["ts"], utc=True).to_numpy(),
            "code_fingerprint": code_fingerprint(model),
            "origin": origin,
        }
    )
    rows["as_of"] = pd.to_datetime(rows["as_of"], utc=True)
    if model.probabilistic:
        probs = predicted[_PROBS].to_numpy(dtype=float)
        rows["value"] = np.nan
        rows["probs"] = [json.dumps(dict(zip(_PROBS, map(float, p), strict=True))) for p in probs]
    else:
        rows["value"] = predicted["value"].to_numpy(dtype=float)
        rows["probs"] = None
    return rows


def _new_rows(record: ForecastStore, rows: pd.DataFrame) -> pd.DataFrame:
    """Return the rows whose key the record does not hold yet."""
    if rows.empty or not record._has_tables():
        return rows
    held = record.market.sql(
        "SELECT model, version, symbol, target, horizon, as_of FROM forecasts "
        "WHERE list_contains($syms, symbol) AND list_contains($models, model)",
        {"syms": sorted(set(rows["symbol"])), "models": sorted(set(rows["model"]))},
    )
    if held.empty:
        return rows
    held["as_of"] = pd.to_datetime(held["as_of"], utc=True)
    keys = rows[_KEY].astype({"horizon": "int64"})
    held = held.astype({"horizon": "int64"}).assign(_held=True)
    merged = keys.merge(held, on=_KEY, how="left")
    return rows.loc[merged["_held"].isna().to_numpy()]


# -- fit ---------------------------------------------------------------------------------


@dataclass
class ForecastFitRun(_Result):
    """What :func:`fit_forecasts` saved: one registry record per (target, model).

    Attributes
    ----------
    symbols : list of str
    end : pandas.Timestamp
        The last session trained on.
    saved : pandas.DataFrame
        ``target, model, name, version, url`` of every saved model.
    errors : dict
        ``"target/model"`` to why it was not fitted (too little history, ...).
    """

    symbols: list[str]
    end: pd.Timestamp
    saved: pd.DataFrame
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Return True when every model was fitted and saved."""
        return not self.errors

    def summary(self) -> str:
        """Return one line for the run, one per saved model, one per failure."""
        lines = [
            f"Forecast models fitted on {len(self.symbols)} symbol(s) up to "
            f"{self.end:%Y-%m-%d}: {len(self.saved)} saved, {len(self.errors)} failed"
        ]
        for row in self.saved.itertuples(index=False):
            lines.append(f"  {row.target:<10} {row.model:<12} {row.name}/{row.version}")
        for key, error in sorted(self.errors.items()):
            lines.append(f"  {key} failed: {error}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready data."""
        doc: dict[str, Any] = jsonable(
            {
                "symbols": self.symbols,
                "end": self.end,
                "saved": self.saved.to_dict(orient="records"),
                "errors": self.errors,
            }
        )
        return doc


def fit_forecasts(
    store: MarketStore,
    symbols: str | Sequence[str] | None,
    end: Any = None,
    targets: str | Sequence[str] | None = None,
    *,
    registry: ModelRegistry | str | None = None,
) -> ForecastFitRun:
    """Return the run that fits every model of each target on bars up to ``end`` and saves it.

    Parameters
    ----------
    store
        Where the daily bars are read.
    symbols
        Symbols to train on (``"S1,S2"`` or a list; ``None``: every stored symbol).
    end
        Last session trained on (default: the last stored one).
    targets
        Targets to fit (default all: ``return_1d, vol_1d, vol_5d, regime_1d``).
    registry
        The model registry, its directory or fsspec URL (default ``$QUANTDESK_MODELS``).

    Returns
    -------
    ForecastFitRun
        A model that cannot be fitted (too little history) is in ``errors``; the others
        are saved as ``forecast-{target}-{model}`` under the next version.
    """
    from quantdesk.forecast.models import models_for, registry_name, save_model

    names = _symbols(symbols)
    chosen = _targets(targets)
    reg = _registry(registry)
    panels = _panels(store, names, end)
    columns = [str(c) for c in panels["close"].columns]
    last = panels["close"].index[-1]
    fingerprint = _bars_fingerprint(store, columns, last)
    saved, errors = [], {}
    for target in chosen:
        for model in models_for(target):
            key = f"{target}/{model.name}"
            try:
                model.fit(panels, end=last)
                record = save_model(
                    reg,
                    model,
                    data_fingerprint=fingerprint,
                    extra={"symbols": columns, "command": "quantdesk.forecast.fit_forecasts"},
                )
            except (ValueError, np.linalg.LinAlgError) as exc:
                logger.warning("forecast fit %s: %s", key, exc)
                errors[key] = str(exc)
                continue
            saved.append(
                {
                    "target": target,
                    "model": model.name,
                    "name": registry_name(model),
                    "version": record.version,
                    "url": record.url,
                }
            )
    frame = pd.DataFrame(saved, columns=["target", "model", "name", "version", "url"])
    return ForecastFitRun(symbols=columns, end=last, saved=frame, errors=errors)


# -- run ---------------------------------------------------------------------------------


@dataclass
class ForecastRun(_Result):
    """What :func:`run_forecasts` recorded as of one session.

    Attributes
    ----------
    session : pandas.Timestamp
    origin : str
    rows : pandas.DataFrame
        The forecasts made (recorded or already held), in the record's columns.
    recorded : int
        Rows appended by this run.
    already : int
        Rows whose key the record already held (a second run records nothing new).
    missing : dict
        ``"target/model"`` to why it made no forecast (not fitted, no symbol covered).
    """

    session: pd.Timestamp
    origin: str
    rows: pd.DataFrame
    recorded: int
    already: int
    missing: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """Return the counts, then one line per (target, model)."""
        if self.recorded == 0 and self.already:
            state = f"nothing new: all {self.already} forecast(s) were already recorded"
        else:
            state = f"{self.recorded} recorded, {self.already} already recorded"
        lines = [f"Forecasts as of {self.session:%Y-%m-%d} ({self.origin}): {state}"]
        if not self.rows.empty:
            for (target, model, version), g in self.rows.groupby(
                ["target", "model", "version"], sort=False
            ):
                lines.append(f"  {target:<10} {model:<12} {version:<6} {len(g)} symbol(s)")
        for key, why in sorted(self.missing.items()):
            lines.append(f"  {key}: no forecast ({why})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the run and its forecasts as JSON-ready data."""
        doc: dict[str, Any] = jsonable(
            {
                "session": self.session,
                "origin": self.origin,
                "recorded": self.recorded,
                "already": self.already,
                "missing": self.missing,
                "forecasts": self.rows.drop(columns=["made_at"], errors="ignore").to_dict(
                    orient="records"
                ),
            }
        )
        return doc


def run_forecasts(
    store: MarketStore,
    symbols: str | Sequence[str] | None,
    session: Any = None,
    origin: str = "live",
    *,
    targets: str | Sequence[str] | None = None,
    registry: ModelRegistry | str | None = None,
) -> ForecastRun:
    """Return the run that records every fitted model's forecasts as of ``session``.

    Loads the latest saved version of each model (:func:`fit_forecasts`), forecasts from
    the bars up to ``session`` only, and appends the rows with their data and code
    fingerprints.  Idempotent: rows whose key (model, version, symbol, target, horizon,
    as_of) is already recorded are not written again, and the result says so.

    Parameters
    ----------
    store
        The market store (bars in, forecasts recorded beside them).
    symbols
        Symbols to forecast (``None``: every stored symbol).
    session
        The session forecast as of (default: the latest stored session).
    origin
        ``"live"`` (the default: the outcome must not exist yet, so the store may hold no
        later bar of a symbol) or ``"backfill"``.
    targets, registry
        As for :func:`fit_forecasts`.

    Raises
    ------
    ValueError
        For a session after the last stored bar (or not a session), a live forecast whose
        symbol already has later bars, or when no model was fitted.
    """
    from quantdesk.forecast.models import load_model, models_for, registry_name

    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
    names = _symbols(symbols)
    chosen = _targets(targets)
    reg = _registry(registry)
    panels = _panels(store, names)
    as_of = check_session(panels, panels["close"].index[-1] if session is None else session)
    visible = truncate(panels, as_of)
    trading = visible["close"].loc[as_of].dropna().index
    visible = {f: p[trading] for f, p in visible.items()}
    columns = [str(c) for c in trading]
    fingerprint = _bars_fingerprint(store, columns, as_of)
    record_store = ForecastStore(store)
    held = record_store.forecasts(columns)
    held = held.loc[held["as_of"] == as_of, list(FORECAST_COLUMNS)]
    parts, missing = [], {}
    for target in chosen:
        for fresh in models_for(target):
            key = f"{target}/{fresh.name}"
            name = registry_name(fresh)
            try:
                record = reg.record(name, "@universe")
            except KeyError:
                missing[key] = "not fitted: run `quantdesk forecast fit`"
                continue
            mine = held.loc[
                (held["model"] == fresh.name)
                & (held["version"] == record.version)
                & (held["target"] == target)
            ]
            if set(columns) <= set(mine["symbol"]):
                parts.append(mine)  # a rerun: every forecast is recorded, none is remade
                continue
            model = load_model(reg, name, record.version)
            predicted = model.predict_many(visible, [as_of])
            if predicted.empty:
                missing[key] = "no symbol covered (fitted on other symbols, or too short)"
                continue
            made = _forecast_rows(model, predicted, record.version, origin)
            parts.append(made.assign(data_fingerprint=fingerprint))
    if not parts:
        raise ValueError(
            f"no forecasts as of {as_of:%Y-%m-%d}: "
            + "; ".join(f"{k}: {v}" for k, v in sorted(missing.items()))
        )
    rows = pd.concat(parts, ignore_index=True)
    new = _new_rows(record_store, rows)
    recorded = record_store.append(new) if len(new) else 0
    logger.info("forecasts as of %s: %d recorded, %d held", as_of, recorded, len(rows) - len(new))
    return ForecastRun(
        session=as_of,
        origin=origin,
        rows=rows,
        recorded=recorded,
        already=len(rows) - len(new),
        missing=missing,
    )


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


# -- backfill ----------------------------------------------------------------------------


@dataclass
class ForecastBackfill(_Result):
    """What :func:`backfill_forecasts` recorded (origin ``backfill``).

    Attributes
    ----------
    start, end : pandas.Timestamp
    version : str
        ``wf-r{refit}``: the walk-forward's refit interval in sessions.
    recorded, already : dict
        Per target: rows appended, and rows the record already held.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    version: str
    recorded: dict[str, int]
    already: dict[str, int]

    def summary(self) -> str:
        """Return one line for the run and one per target."""
        lines = [
            f"Backfilled forecasts {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d} as version "
            f"{self.version}: {sum(self.recorded.values())} recorded, "
            f"{sum(self.already.values())} already recorded"
        ]
        for target in self.recorded:
            lines.append(
                f"  {target:<10} {self.recorded[target]} recorded, {self.already[target]} held"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready data."""
        doc: dict[str, Any] = jsonable(
            {
                "start": self.start,
                "end": self.end,
                "version": self.version,
                "recorded": self.recorded,
                "already": self.already,
            }
        )
        return doc


def backfill_forecasts(
    store: MarketStore,
    symbols: str | Sequence[str] | None,
    start: Any,
    end: Any = None,
    *,
    targets: str | Sequence[str] | None = None,
    refit: int | str = "quarterly",
) -> ForecastBackfill:
    """Return the run that records walk-forward forecasts of ``start..end`` as ``backfill``.

    Every model of each target is refitted on the walk-forward's schedule
    (:func:`quantdesk.forecast.evaluation.walk_forward`: expanding window, refit every
    ``refit`` sessions, each forecast from bars up to its session), and each forecast is
    appended with origin ``backfill`` and version ``wf-r{refit}``.  Rows already recorded
    are skipped, so a rerun records nothing new.
    """
    from quantdesk.forecast.evaluation import _refit_every, walk_forward
    from quantdesk.forecast.models import models_for

    names = _symbols(symbols)
    chosen = _targets(targets)
    panels = _panels(store, names, end)
    columns = [str(c) for c in panels["close"].columns]
    version = f"wf-r{_refit_every(refit)}"
    record = ForecastStore(store)
    recorded, already = {}, {}
    fingerprints: dict[pd.Timestamp, str] = {}
    first = last = None
    for target in chosen:
        wf = walk_forward(panels, target=target, start=start, end=end, refit=refit)
        by_name = {m.name: m for m in models_for(target)}
        block_end = pd.Series(dtype="datetime64[ns, UTC]")
        sessions = panels["close"].index
        for lo, hi in zip(wf.refits["first"], wf.refits["last"], strict=True):
            stop = pd.Timestamp(hi)
            inside = sessions[(sessions >= lo) & (sessions <= stop)]
            block_end = pd.concat([block_end, pd.Series(stop, index=inside)])
            if stop not in fingerprints:
                fingerprints[stop] = _bars_fingerprint(store, columns, stop)
        parts = []
        for model_name, predicted in wf.forecasts.groupby("model", sort=False):
            rows = _forecast_rows(by_name[str(model_name)], predicted, version, "backfill")
            ends = block_end.reindex(pd.DatetimeIndex(rows["as_of"]))
            rows["data_fingerprint"] = [fingerprints[e] for e in ends]
            parts.append(rows)
        rows = pd.concat(parts, ignore_index=True)
        new = _new_rows(record, rows)
        recorded[target] = record.append(new) if len(new) else 0
        already[target] = len(rows) - len(new)
        lo, hi = rows["as_of"].min(), rows["as_of"].max()
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    assert first is not None and last is not None
    return ForecastBackfill(
        start=first, end=last, version=version, recorded=recorded, already=already
    )


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


# -- the evening pipeline's step -----------------------------------------------------------


def _last_fit_end(reg: ModelRegistry, target: str) -> pd.Timestamp | None:
    """Return the earliest training end among the saved latest models of ``target``."""
    from quantdesk.forecast.models import UNIVERSE, models_for, registry_name

    ends = []
    for model in models_for(target):
        try:
            meta = reg.record(registry_name(model), UNIVERSE).metadata
        except KeyError:
            continue
        if meta.get("train_end"):
            ends.append(pd.Timestamp(meta["train_end"]))
    return min(ends) if ends else None


def _sessions_between(store: MarketStore, after: pd.Timestamp, upto: pd.Timestamp) -> int:
    """Return the number of stored daily sessions in ``(after, upto]``."""
    frame = store.sql(
        "SELECT count(DISTINCT ts) AS n FROM bars WHERE timeframe = '1d' AND ts > ? AND ts <= ?",
        [_instant(after), _instant(upto)],
    )
    return int(frame["n"].iloc[0])


def _instant(ts: pd.Timestamp) -> Any:
    """Return ``ts`` as the UTC datetime DuckDB binds (naive times are UTC)."""
    stamp = as_utc(ts)
    assert stamp is not None  # a session bound, never None
    return stamp.to_pydatetime()


def _has_later_bars(store: MarketStore, symbols: Sequence[str] | None, ts: pd.Timestamp) -> bool:
    """Return whether any (chosen) symbol has a daily bar after ``ts``."""
    frame = store.sql(
        "SELECT count(*) AS n FROM bars WHERE timeframe = '1d' AND ts > $ts "
        "AND ($all OR list_contains($syms, symbol))",
        {"ts": ts.to_pydatetime(), "all": symbols is None, "syms": list(symbols or [])},
    )
    return int(frame["n"].iloc[0]) > 0


def pipeline_step(
    store: MarketStore,
    session: Any,
    *,
    symbols: str | Sequence[str] | None = None,
    targets: str | Sequence[str] | None = None,
    refit_every: int | None = None,
    registry: ModelRegistry | str | None = None,
) -> dict[str, Any]:
    """Return the counts of one session's forecast work, for the evening pipeline.

    The ``forecasts`` step of :mod:`quantdesk.pipeline` calls this with the step's
    ``params``.  For each target, the models are fitted on the bars up to ``session``
    (:func:`fit_forecasts`) when none of the target's models is saved, or when
    ``refit_every`` sessions have passed since the oldest latest fit's training end;
    the session's forecasts are then recorded (:func:`run_forecasts`) and the outcomes
    now due are written and scored (:func:`score_forecasts`).

    Idempotent by session: a rerun finds the models fitted (the latest training end is
    the session) and every forecast recorded, so it fits and records nothing.  Forecasts
    are recorded as ``live`` unless the store already holds a later bar of a chosen
    symbol (a past session replayed): then their outcome may have been known, and they
    are recorded as ``backfill``.

    Parameters
    ----------
    store
        The market store.
    session
        The session forecast as of (its daily bar must be stored).
    symbols, targets, registry
        As for :func:`fit_forecasts` (default: every stored symbol, every target).
    refit_every
        Refit after this many sessions (default ``None``: fit once, never refit).

    Returns
    -------
    dict
        ``fitted`` (models saved), ``fit_failed``, ``recorded``, ``already`` (forecasts
        the record held), ``missing`` (models that made no forecast), ``origin``,
        ``outcomes`` (written) and ``scored`` (forecasts with an outcome).

    Raises
    ------
    ValueError
        When the session has no stored bar or no model could forecast.
    """
    if refit_every is not None and refit_every < 1:
        raise ValueError(f"refit_every must be a positive number of sessions, got {refit_every}")
    ts = pd.Timestamp(pd.Timestamp(session).date()).tz_localize("UTC")  # the daily bar's time
    names = _symbols(symbols)
    chosen = _targets(targets)
    reg = _registry(registry)
    due = []
    for target in chosen:
        end = _last_fit_end(reg, target)
        if end is None or (
            refit_every is not None and _sessions_between(store, end, ts) >= refit_every
        ):
            due.append(target)
    fitted, fit_failed = 0, 0
    if due:
        fit = fit_forecasts(store, names, end=ts, targets=due, registry=reg)
        fitted, fit_failed = len(fit.saved), len(fit.errors)
    origin = "backfill" if _has_later_bars(store, names, ts) else "live"
    run = run_forecasts(store, names, ts, origin, targets=chosen, registry=reg)
    scores = score_forecasts(store, names, registry=reg)
    return {
        "fitted": fitted,
        "fit_failed": fit_failed,
        "recorded": run.recorded,
        "already": run.already,
        "missing": len(run.missing),
        "origin": origin,
        "outcomes": scores.outcomes_recorded,
        "scored": int(scores.counts["scored"].sum()) if len(scores.counts) else 0,
    }
