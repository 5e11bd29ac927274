"""Forecast jobs: fit models, issue forecasts and backfill them (scoring: ``scoring``).

What ``quantdesk forecast fit | run | score | show`` and the evening pipeline call, so a
notebook, a scheduled job and the command line share one implementation::

    from quantdesk.data import MarketStore
    from quantdesk.forecast.jobs import fit_forecasts, run_forecasts
    from quantdesk.forecast.scoring import score_forecasts
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

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.core.html import element
from quantdesk.core.jsonable import jsonable
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.data.store.forecasts import FORECAST_COLUMNS, ORIGINS, ForecastStore
from quantdesk.forecast.base import (
    ForecastModel,
    check_session,
    code_fingerprint,
    truncate,
)
from quantdesk.forecast.targets import TARGETS, target_horizon

if TYPE_CHECKING:
    from quantdesk.data.pinned import SnapshotBars
    from quantdesk.data.store.market import MarketStore
    from quantdesk.regimes.registry import ModelRegistry

__all__ = [
    "ForecastBackfill",
    "ForecastFitRun",
    "ForecastRun",
    "backfill_forecasts",
    "fit_forecasts",
    "run_forecasts",
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
    # The stored regimes and scored news up to the last session, as the LightGBM
    # model's context features (the other models read only the bars).
    from quantdesk.forecast.boosting import store_context

    return store_context(store, panels)


def _bars_fingerprint(store: MarketStore, symbols: Sequence[str], end: Any) -> str:
    from quantdesk.regimes.registry import data_fingerprint

    return data_fingerprint(store.bars(list(symbols), None, end, "1d"))


def _html(summary: str) -> str:
    lines = summary.splitlines() or [""]
    rest = "\n".join(lines[1:])
    body = (
        element("details", element("summary", "details"), element("pre", rest), open="")
        if rest
        else ""
    )
    return element("div", element("p", element("b", lines[0])), body)


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
    snapshot : dict, optional
        ``{"url", "version"}`` of the snapshot the walk-forward read (None: the store).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    version: str
    recorded: dict[str, int]
    already: dict[str, int]
    snapshot: dict[str, Any] | None = None

    def summary(self) -> str:
        """Return one line for the run and one per target."""
        lines = [
            f"Backfilled forecasts {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d} as version "
            f"{self.version}: {sum(self.recorded.values())} recorded, "
            f"{sum(self.already.values())} already recorded"
            + (
                ""
                if self.snapshot is None
                else f" (from snapshot {self.snapshot['url']} version {self.snapshot['version']})"
            )
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
                "snapshot": self.snapshot,
            }
        )
        return doc


def _walk_forward_rows(
    panels: dict[str, pd.DataFrame],
    fingerprint: Any,
    target: str,
    model: str | None,
    start: Any,
    end: Any,
    refit: int | str,
    version: str,
) -> pd.DataFrame:
    """Return the backfill rows of a target's walk-forward (of one model, or of all).

    ``fingerprint(stop)`` gives the data fingerprint of the bars up to a block's end.
    """
    from quantdesk.forecast.evaluation import walk_forward
    from quantdesk.forecast.models import models_for

    by_name = {m.name: m for m in models_for(target)}
    chosen = None if model is None else [by_name[model]]
    wf = walk_forward(panels, chosen, target=target, start=start, end=end, refit=refit)
    block_end = pd.Series(dtype="datetime64[ns, UTC]")
    fingerprints: dict[pd.Timestamp, str] = {}
    sessions = panels["close"].index
    for lo, hi in zip(wf.refits["first"], wf.refits["last"], strict=True):
        stop = pd.Timestamp(hi)
        inside = sessions[(sessions >= lo) & (sessions <= stop)]
        block_end = pd.concat([block_end, pd.Series(stop, index=inside)])
        if stop not in fingerprints:
            fingerprints[stop] = fingerprint(stop)
    parts = []
    for model_name, predicted in wf.forecasts.groupby("model", sort=False):
        if model is not None and model_name != model:
            continue  # a baseline walk_forward added to score against
        rows = _forecast_rows(by_name[str(model_name)], predicted, version, "backfill")
        ends = block_end.reindex(pd.DatetimeIndex(rows["as_of"]))
        rows["data_fingerprint"] = [fingerprints[e] for e in ends]
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def _backfill_task(
    pinned: Any, symbols: list[str], target: str, model: str, start: Any, refit: int | str
) -> pd.DataFrame:
    """Return one model's backfill rows, its panels read from a snapshot where it runs."""
    from quantdesk.data.wide import VALUE_FIELDS
    from quantdesk.forecast.boosting import store_context
    from quantdesk.regimes.registry import data_fingerprint

    reader = pinned.reader()
    panels = store_context(reader, pinned.panels(VALUE_FIELDS, symbols))

    def fingerprint(stop: pd.Timestamp) -> str:
        return data_fingerprint(reader.bars(symbols, None, stop, "1d"))

    version = f"wf-r{_refit_every_of(refit)}"
    return _walk_forward_rows(panels, fingerprint, target, model, start, pinned.end, refit, version)


def _refit_every_of(refit: int | str) -> int:
    from quantdesk.forecast.evaluation import _refit_every

    return _refit_every(refit)


def backfill_forecasts(
    store: MarketStore,
    symbols: str | Sequence[str] | None,
    start: Any,
    end: Any = None,
    *,
    targets: str | Sequence[str] | None = None,
    refit: int | str = "quarterly",
    snapshot: str | SnapshotBars | None = None,
    scheduler: str | Any | None = None,
) -> ForecastBackfill:
    """Return the run that records walk-forward forecasts of ``start..end`` as ``backfill``.

    Every model of each target is refitted on the walk-forward's schedule
    (:func:`quantdesk.forecast.evaluation.walk_forward`: expanding window, refit every
    ``refit`` sessions, each forecast from bars up to its session), and each forecast is
    appended with origin ``backfill`` and version ``wf-r{refit}``.  Rows already recorded
    are skipped, so a rerun records nothing new.

    With ``snapshot`` (a Parquet snapshot URL holding the bars, and the regimes, news
    and scores the LightGBM models read as context: ``--tables
    bars,regimes,news,scores``) each (target, model) is a task that reads its panels
    from the snapshot where it runs, on the Dask ``scheduler`` if given (else here);
    the rows come back and are appended here, the one writer.  The snapshot's URL and
    pinned version are in :attr:`ForecastBackfill.snapshot`.
    """
    names = _symbols(symbols)
    chosen = _targets(targets)
    version = f"wf-r{_refit_every_of(refit)}"
    record = ForecastStore(store)
    pinned = None
    by_target: dict[str, pd.DataFrame] = {}
    if snapshot is None:
        panels = _panels(store, names, end)
        columns = [str(c) for c in panels["close"].columns]
        for target in chosen:
            by_target[target] = _walk_forward_rows(
                panels,
                lambda stop: _bars_fingerprint(store, columns, stop),
                target,
                None,
                start,
                end,
                refit,
                version,
            )
    else:
        pinned = _pin_snapshot(snapshot, end)
        columns = names or pinned.symbols()
        by_target = _backfill_on(pinned, columns, chosen, start, refit, scheduler)
    recorded, already = {}, {}
    first = last = None
    for target, rows in by_target.items():
        new = _new_rows(record, rows)
        recorded[target] = record.append(new) if len(new) else 0
        already[target] = len(rows) - len(new)
        lo, hi = rows["as_of"].min(), rows["as_of"].max()
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    assert first is not None and last is not None
    return ForecastBackfill(
        start=first, end=last, version=version, recorded=recorded, already=already,
        snapshot=None if pinned is None else pinned.to_dict(),
    )  # fmt: skip


def _pin_snapshot(snapshot: str | SnapshotBars, end: Any) -> SnapshotBars:
    from quantdesk.data.pinned import SnapshotBars

    if isinstance(snapshot, SnapshotBars):
        return snapshot
    return SnapshotBars.pin(str(snapshot), end=end)


def _backfill_on(
    pinned: SnapshotBars,
    symbols: list[str],
    targets: list[str],
    start: Any,
    refit: int | str,
    scheduler: str | Any | None,
) -> dict[str, pd.DataFrame]:
    """Return each target's backfill rows, a task per (target, model) reading the snapshot."""
    from quantdesk.core.parallel import run_tasks
    from quantdesk.forecast.models import models_for

    tasks = [
        (pinned, symbols, target, model.name, start, refit)
        for target in targets
        for model in models_for(target)
    ]
    ran = run_tasks(
        _backfill_task,
        tasks,
        executor=scheduler or "serial",
        names=[f"{t[2]}-{t[3]}" for t in tasks],
        progress=False,
        desc="forecast-backfill",
        unit="model",
    )
    failed = [o for o in ran.outcomes if not o.ok]
    if failed:
        task = tasks[failed[0].index]
        raise RuntimeError(
            f"forecast backfill: {len(failed)} of {len(tasks)} models failed on "
            f"{ran.executor} (first {task[2]}/{task[3]}): {failed[0].reason}"
        )
    out: dict[str, pd.DataFrame] = {}
    for target in targets:
        parts = [o.value for o in ran.outcomes if tasks[o.index][2] == target]
        out[target] = pd.concat(parts, ignore_index=True)
    return out
