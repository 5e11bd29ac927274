"""The evening pipeline's forecasts step: refit on schedule, forecast the session, score."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.coerce import as_utc

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore
    from quantdesk.regimes.registry import ModelRegistry
from quantdesk.forecast.jobs import (
    _registry,
    _symbols,
    _targets,
    fit_forecasts,
    run_forecasts,
)
from quantdesk.forecast.scoring import score_forecasts

__all__ = [
    "pipeline_step",
]

logger = logging.getLogger(__name__)


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
