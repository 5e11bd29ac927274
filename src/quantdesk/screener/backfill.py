"""Screener backfills on a Dask cluster, each task scanning a batch of symbols from a snapshot.

:func:`backfill_scan` gives the alerts :func:`~quantdesk.screener.batch.scan` gives for
a ``start..end`` range, computed by tasks that each read a batch of symbols' bars from
a Parquet snapshot where they run (its version pinned when the job starts).  A scan
evaluates its rules on the universe's rows (one row per bar time of any symbol), so
every batch is evaluated on the same rows: the job reads the universe's bar times once
and hands them to each task, which puts its symbols on them before scanning.  Alerts
come back and are written by the caller (``quantdesk screen run --snapshot URL
--scheduler ADDR`` stores them through the alert store, the one writer).

Rules reading the stored regimes or news sentiment are not run this way (their inputs
live in the store); daily and longer bars only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.screener.batch import EXTRA_FIELDS, ScanAlerts, empty_alerts, scan
from quantdesk.screener.rulesets import RulesLike, resolve_rules

if TYPE_CHECKING:
    from quantdesk.data.pinned import SnapshotBars
    from quantdesk.screener.rules import Rule

__all__ = ["backfill_scan"]

logger = logging.getLogger(__name__)


def _scan_batch(
    pinned: SnapshotBars,
    symbols: list[str],
    sessions: pd.DatetimeIndex,
    rules: list[Rule],
    start: Any,
    end: Any,
    new_only: bool,
) -> pd.DataFrame:
    """Return the alerts of one batch of symbols, read from the snapshot where it runs."""
    from quantdesk.data.wide import VALUE_FIELDS

    fields = [f for f in VALUE_FIELDS if f in set().union(*(r.fields for r in rules)) | {"close"}]
    panels = pinned.panels(fields, symbols)
    on_rows = {f: panels[f].reindex(sessions) for f in fields}
    return pd.DataFrame(
        scan(on_rows, rules, start=start, end=end, timeframe=pinned.timeframe, new_only=new_only)
    )


def backfill_scan(
    rules: RulesLike,
    start: Any = None,
    end: Any = None,
    *,
    snapshot: str | SnapshotBars,
    scheduler: str | Any | None = None,
    symbols: Sequence[str] | None = None,
    new_only: bool = False,
    timeframe: str = "1d",
    batch: int = 500,
    progress: bool = True,
) -> ScanAlerts:
    """Return the alerts of ``rules`` on the bars of ``start..end``, scanned in batches.

    Parameters
    ----------
    rules
        As :func:`~quantdesk.screener.batch.scan` (names, rule objects, a YAML file).
    start, end
        The bars alerted on (inclusive; a day is that whole day).
    snapshot
        The Parquet snapshot's URL (its newest version is pinned now), or a pinned
        :class:`~quantdesk.data.pinned.SnapshotBars`.
    scheduler
        A Dask scheduler address or client (rules travel to the workers by value);
        ``None`` scans the batches in this process.
    symbols
        Scan only these (default: every symbol of the snapshot).
    new_only, timeframe
        As :func:`~quantdesk.screener.batch.scan`; ``timeframe`` of a day or longer.
    batch
        Symbols per task.
    progress
        Show a progress bar over batches.

    Raises
    ------
    ValueError
        A rule reads stored regimes or sentiment, or the timeframe is intraday.
    RuntimeError
        A batch failed (the message names it); no alerts are returned then.
    """
    from quantdesk.core.parallel import run_tasks
    from quantdesk.data.pinned import SnapshotBars
    from quantdesk.data.schemas import parse_timeframe

    rule_list = resolve_rules(rules)
    extra = sorted(set().union(*(r.fields for r in rule_list)) & set(EXTRA_FIELDS))
    if extra:
        raise ValueError(
            f"rules reading {extra} need the store's regimes or news: scan the store "
            "instead of a snapshot"
        )
    tf = parse_timeframe(timeframe)
    if not tf.is_daily:
        raise ValueError(f"backfills from a snapshot scan daily or longer bars, not {tf.name}")
    pinned = (
        snapshot
        if isinstance(snapshot, SnapshotBars)
        else SnapshotBars.pin(str(snapshot), timeframe=tf.name, end=end)
    )
    names = list(symbols) if symbols is not None else pinned.symbols()
    # The universe's bar times up to the end: the rows every batch is scanned on.
    sessions = pd.DatetimeIndex(pinned.panels(["close"], names)["close"].index)
    if not len(sessions):
        return ScanAlerts(empty_alerts())
    batches = [names[i : i + batch] for i in range(0, len(names), batch)]
    ran = run_tasks(
        _scan_batch,
        [(pinned, b, sessions, rule_list, start, end, new_only) for b in batches],
        executor=scheduler or "serial",
        names=[f"{b[0]}..{b[-1]}" for b in batches],
        progress=progress,
        desc="backfill",
        unit="batch",
    )
    failed = [o for o in ran.outcomes if not o.ok]
    if failed:
        first = batches[failed[0].index]
        raise RuntimeError(
            f"backfill: {len(failed)} of {len(batches)} batches failed on {ran.executor} "
            f"(first {first[0]}..{first[-1]}): {failed[0].reason}"
        )
    alerts = pd.concat([o.value for o in ran.outcomes if len(o.value)] or [empty_alerts()])
    alerts = alerts.sort_values(["ts", "rule", "symbol"], kind="stable", ignore_index=True)
    logger.info(
        "backfill: %d rules over %d symbols of %s: %d alerts", len(rule_list), len(names),
        pinned, len(alerts),
    )  # fmt: skip
    return ScanAlerts(alerts)
