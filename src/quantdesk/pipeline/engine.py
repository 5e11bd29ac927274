"""The pipeline's engine: each session's steps once, in dependency order, resumable.

For one session, the steps run in the definition's topological order.  Before a step
runs a ``running`` row is recorded; its end replaces the status.  A step is not run
again when its latest attempt is done (``succeeded``, ``skipped``, ``unchanged``)
unless it is forced or a step it needs ran again in this run.  A failed step (after its
retries, with back-off) marks the steps that need it ``skipped`` and lets the
independent ones finish; a step whose needs brought nothing new (an empty session) is
skipped; a step whose inputs fingerprint equals that of its last success is
``unchanged``.  One run at a time holds the store's :class:`~quantdesk.pipeline.lock.RunLock`;
steps left ``running`` by a killed run are marked failed ("interrupted") by the next
start and their sessions resumed first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from quantdesk.data.sessions import SessionCalendar
from quantdesk.data.store.market import MarketStore, as_store
from quantdesk.data.store.pipeline import DONE_STATES, PipelineRecord
from quantdesk.pipeline.definition import PipelineDefinition, StepSpec, load_pipeline
from quantdesk.pipeline.lock import RunLock
from quantdesk.pipeline.steps import StepContext, StepOutput

__all__ = [
    "PipelineRun",
    "PipelineStatus",
    "SessionRun",
    "StepResult",
    "backfill",
    "notify_run",
    "pipeline_status",
    "publish_status",
    "retry_failed",
    "run_pipeline",
]

logger = logging.getLogger(__name__)

# The store tables each built-in step reads: its inputs fingerprint covers their size
# and newest time (a user's step, and any other, covers them all).
_ALL_INPUTS = ("bars", "news", "news_scores", "alerts", "regimes", "paper_trades")
_TIMED = ("bars", "news", "alerts", "regimes", "paper_trades")
_STEP_INPUTS: dict[str, tuple[str, ...]] = {
    "news": ("news", "news_scores"),
    "regimes": ("bars",),
    "forecasts": ("bars",),
    "screen": ("bars", "regimes", "news_scores"),
    "paper": ("bars", "paper_trades"),
}


@dataclass(frozen=True)
class StepResult:
    """What happened to one step on one session in this run."""

    step: str
    session: pd.Timestamp
    status: str  # succeeded, failed, skipped, unchanged, done (earlier)
    attempts: int = 0
    duration_s: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    error: str | None = None
    empty: bool = False  # the step brought nothing new: the steps that need it skip

    def summary(self) -> str:
        """Return one line: step, status, counts or the reason."""
        detail = self.error or self.note or ", ".join(f"{k} {v}" for k, v in self.counts.items())
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.step:<10} {self.status}{tries}" + (f": {detail}" if detail else "")

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-able dict."""
        return {
            "step": self.step, "session": f"{self.session:%Y-%m-%d}", "status": self.status,
            "attempts": self.attempts, "duration_s": round(self.duration_s, 3),
            "counts": self.counts, "note": self.note, "error": self.error,
        }  # fmt: skip


@dataclass(frozen=True)
class SessionRun:
    """The steps of one session in this run."""

    session: pd.Timestamp
    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        """Return whether no step failed."""
        return all(s.status != "failed" for s in self.steps)

    @property
    def did_nothing(self) -> bool:
        """Return whether every step was done already (a rerun of a finished session)."""
        return all(s.status == "done" for s in self.steps)

    def summary(self) -> str:
        """Return the session's line, then one line per step."""
        head = f"session {self.session:%Y-%m-%d}: " + (
            "already done, nothing to do" if self.did_nothing else ("ok" if self.ok else "FAILED")
        )
        if self.did_nothing:
            return head
        return "\n".join([head, *(f"  {s.summary()}" for s in self.steps)])

    def to_dict(self) -> dict[str, Any]:
        """Return the session's run as a JSON-able dict."""
        return {
            "session": f"{self.session:%Y-%m-%d}",
            "ok": self.ok,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class PipelineRun:
    """A run of the pipeline: the sessions it went through, in order."""

    pipeline: str
    sessions: tuple[SessionRun, ...]
    interrupted: tuple[pd.Timestamp, ...] = ()
    missed: tuple[pd.Timestamp, ...] = ()  # sessions caught up late (missed evenings)
    notified: str | None = None  # what became of the failed/late notification

    @property
    def ok(self) -> bool:
        """Return whether no step of any session failed."""
        return all(s.ok for s in self.sessions)

    @property
    def late(self) -> bool:
        """Return whether the run caught up sessions whose evening was missed."""
        return bool(self.missed)

    def summary(self) -> str:
        """Return what the run did, session by session."""
        if not self.sessions:
            return f"pipeline {self.pipeline}: no session due"
        lines = [f"pipeline {self.pipeline}: {len(self.sessions)} session(s)"]
        if self.interrupted:
            days = ", ".join(f"{d:%Y-%m-%d}" for d in self.interrupted)
            lines.append(f"resumed after an interrupted run: {days}")
        if self.missed:
            days = ", ".join(f"{d:%Y-%m-%d}" for d in self.missed)
            lines.append(f"late: caught up missed sessions {days}")
        lines += [s.summary() for s in self.sessions]
        if self.notified is not None:
            lines.append(f"notification: {self.notified}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the run as a JSON-able dict."""
        return {
            "pipeline": self.pipeline,
            "ok": self.ok,
            "interrupted": [f"{d:%Y-%m-%d}" for d in self.interrupted],
            "missed": [f"{d:%Y-%m-%d}" for d in self.missed],
            "notified": self.notified,
            "sessions": [s.to_dict() for s in self.sessions],
        }


# -- one session ---------------------------------------------------------------------------


def _table_versions(store: MarketStore, tables: Sequence[str]) -> dict[str, Any]:
    """Return each table's row count and newest ``ts`` (None for a missing table), in one read."""
    from quantdesk.data.store.file import fetch_frame

    with store._connect() as con:
        present = set(
            fetch_frame(con, "SELECT table_name FROM information_schema.tables")[
                "table_name"
            ].astype(str)
        )
        parts = [
            f"SELECT '{t}' AS name, count(*) AS n, "
            + ("max(ts)::VARCHAR" if t in _TIMED else "NULL::VARCHAR")
            + f" AS newest FROM {t}"
            for t in tables
            if t in present
        ]  # table names come from the fixed tuples above, never from input
        rows = fetch_frame(con, " UNION ALL ".join(parts)).to_dict("records") if parts else []
    versions: dict[str, Any] = dict.fromkeys(tables)
    for row in rows:
        newest = row["newest"]
        versions[str(row["name"])] = [int(row["n"]), None if pd.isna(newest) else newest]
    return versions


def _fingerprint(spec: StepSpec, ctx: StepContext) -> str:
    """Return the hash of what the step reads: its definition and its input tables' state."""
    if spec.run == "update" and spec.notebook is None:
        inputs: Any = {"session": f"{ctx.session:%Y-%m-%d}"}  # new bars are per session
    else:
        inputs = _table_versions(ctx.store, _STEP_INPUTS.get(spec.run, _ALL_INPUTS))
    text = json.dumps(
        {"run": spec.run, "notebook": spec.notebook, "params": spec.params, "inputs": inputs},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _as_output(value: Any) -> StepOutput:
    if isinstance(value, StepOutput):
        return value
    if value is None:
        return StepOutput()
    if isinstance(value, dict):
        return StepOutput(dict(value))
    counts = value.to_dict() if hasattr(value, "to_dict") else {}
    note = value.summary() if hasattr(value, "summary") else str(value)
    return StepOutput(counts if isinstance(counts, dict) else {}, note=note.splitlines()[0])


def _error_text(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(frame[0].filename).name}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}"[:2000] + where


def _execute(spec: StepSpec, ctx: StepContext, fingerprint: str) -> StepResult:
    """Return the result of running one step, with its retries and back-off."""
    from quantdesk.core.backoff import Backoff

    policy = Backoff(base=spec.backoff, cap=max(spec.backoff * 32, 0.0), jitter=False)
    function = spec.function()
    started = time.perf_counter()
    error = ""
    for attempt_no in range(spec.retries + 1):
        attempt = ctx.record.begin(ctx.pipeline, spec.name, ctx.session, fingerprint=fingerprint)
        try:
            output = _as_output(function(ctx, **dict(spec.params)))
        except Exception as exc:
            error = _error_text(exc)
            logger.warning("%s %s: attempt %d failed: %s", spec.name, ctx.session.date(),
                           attempt, error)  # fmt: skip
            ctx.record.finish(ctx.pipeline, spec.name, ctx.session, attempt, "failed", error=error)
            if attempt_no < spec.retries:
                time.sleep(policy.delay(attempt_no))
            continue
        counts = {**output.counts, "empty": output.empty, "note": output.note}
        done = "skipped" if output.skipped else "succeeded"
        ctx.record.finish(ctx.pipeline, spec.name, ctx.session, attempt, done, outputs=counts)
        return StepResult(spec.name, ctx.session, done, attempt_no + 1,
                          time.perf_counter() - started, dict(output.counts), output.note,
                          empty=output.empty)  # fmt: skip
    return StepResult(spec.name, ctx.session, "failed", spec.retries + 1,
                      time.perf_counter() - started, error=error)  # fmt: skip


def _run_session(
    definition: PipelineDefinition,
    ctx: StepContext,
    force: Iterable[str] = (),
) -> SessionRun:
    forced: set[str] = set()
    for name in force:
        forced.update(definition.dependents(name))
    attempts = ctx.record.attempts(definition.name, ctx.session)
    earlier = ctx.record.state(definition.name, ctx.session, attempts)
    latest = attempts.sort_values("attempt").groupby("step").tail(1)
    outputs = {str(r["step"]): json.loads(str(r["outputs"])) for r in latest.to_dict("records")}
    # a step's own last success cannot change before its turn in this session: read once
    succeeded = ctx.record.last_success_fingerprints(ctx.pipeline)
    status: dict[str, str] = {}  # this run's view: succeeded, failed, blocked, empty, done
    ran: set[str] = set()
    results: list[StepResult] = []
    for spec in definition.steps:
        name, prev = spec.name, earlier.get(spec.name)
        again = name in forced or bool(ran & set(spec.needs))
        if prev is not None and prev.status in DONE_STATES and not again:
            blocked = prev.status == "skipped" and bool(prev.error)
            empty = bool(outputs.get(name, {}).get("empty"))
            status[name] = "blocked" if blocked else "empty" if empty else "done"
            results.append(StepResult(name, ctx.session, "done", note=f"{prev.status} earlier"))
            continue
        failed = [n for n in spec.needs if status.get(n) in ("failed", "blocked")]
        if failed:
            why = f"needs {', '.join(failed)}, which did not succeed"
            ctx.record.mark(ctx.pipeline, name, ctx.session, "skipped", error=why)
            status[name] = "blocked"
            results.append(StepResult(name, ctx.session, "skipped", error=why))
            continue
        empty_needs = [n for n in spec.needs if status.get(n) == "empty"]
        if empty_needs:
            why = f"no new data from {', '.join(empty_needs)}"
            ctx.record.mark(ctx.pipeline, name, ctx.session, "skipped",
                            outputs={"note": why, "empty": True})  # fmt: skip
            status[name] = "empty"
            results.append(StepResult(name, ctx.session, "skipped", note=why))
            continue
        fingerprint = _fingerprint(spec, ctx)
        if name not in forced and fingerprint == succeeded.get(name):
            why = "inputs unchanged since its last success"
            ctx.record.mark(ctx.pipeline, name, ctx.session, "unchanged",
                            fingerprint=fingerprint, outputs={"note": why})  # fmt: skip
            status[name] = "done"
            results.append(StepResult(name, ctx.session, "unchanged", note=why))
            continue
        result = _execute(spec, ctx, fingerprint)
        results.append(result)
        if result.status in ("succeeded", "skipped"):
            ran.add(name)
            status[name] = "empty" if result.empty else "succeeded"
        else:
            status[name] = "failed"
    return SessionRun(ctx.session, tuple(results))


# -- notification --------------------------------------------------------------------------


def notify_run(run: PipelineRun, config: Any = None, *, sleep: Any = time.sleep) -> PipelineRun:
    """Return ``run`` with ``notified`` set: one webhook notification if it failed or was late.

    A run with a failed step, or one that caught up missed sessions, sends one JSON
    notification through the webhook sink (:func:`quantdesk.screener.webhooks.notify`,
    URL and token from the environment as for alerts): the pipeline, its sessions, the
    failed steps with their errors (secret values of the environment replaced by
    ``***``) and the missed sessions.  The steps' own retries happen inside the run, so
    a run sends one notification however many attempts its steps made.  A run that is
    ok and on time sends nothing; a webhook that is down is logged, never raised.
    """
    import dataclasses
    import os

    from quantdesk.reports.redaction import redact_secrets, secret_values
    from quantdesk.screener.webhooks import notify

    if run.ok and not run.late:
        return run
    secrets, found = secret_values(os.environ), set[str]()
    failed = [
        {"session": f"{s.session:%Y-%m-%d}", "step": r.step, "attempts": r.attempts,
         "error": redact_secrets(r.error or "", secrets, "notification", found)}
        for s in run.sessions for r in s.steps if r.status == "failed"
    ]  # fmt: skip
    sessions = [f"{s.session:%Y-%m-%d}" for s in run.sessions]
    event = "failed" if failed else "late"
    payload = {
        "event": f"pipeline {event}",
        "pipeline": run.pipeline,
        "sessions": sessions,
        "failed_steps": failed,
        "missed_sessions": [f"{d:%Y-%m-%d}" for d in run.missed],
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    key = f"pipeline:{run.pipeline}:{event}:{sessions[0] if sessions else ''}:{payload['sent_at']}"
    outcome = notify(payload, key, config, sleep=sleep)
    logger.info("pipeline %s %s: notification %s", run.pipeline, event, outcome)
    return dataclasses.replace(run, notified=outcome)


# -- runs ----------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _setup(
    store: MarketStore | str | Path | None, definition: PipelineDefinition | str | Path | None
) -> tuple[MarketStore, PipelineDefinition, PipelineRecord, SessionCalendar]:
    market = as_store(store)
    if not isinstance(definition, PipelineDefinition):
        definition = load_pipeline(definition)
    return market, definition, PipelineRecord(market), SessionCalendar(definition.exchange)


def _interrupt(record: PipelineRecord, pipeline: str) -> list[pd.Timestamp]:
    """Return the sessions whose steps a dead run left ``running``, now marked failed."""
    frame = record.attempts(pipeline)
    stuck = frame[frame["status"] == "running"]
    for row in stuck.to_dict("records"):
        record.finish(pipeline, str(row["step"]), row["session"], int(row["attempt"]), "failed",
                      error="interrupted: the run doing it ended without finishing it")  # fmt: skip
    return sorted({pd.Timestamp(s) for s in stuck["session"]})


def _go(
    market: MarketStore,
    definition: PipelineDefinition,
    record: PipelineRecord,
    sessions: Sequence[pd.Timestamp],
    force: Sequence[str],
    root: Path | None,
    interrupted: Sequence[pd.Timestamp] = (),
    missed: Sequence[pd.Timestamp] = (),
) -> PipelineRun:
    for name in force:
        definition.step(name)  # KeyError names the known steps
    runs = []
    for session in sessions:
        ctx = StepContext(market, pd.Timestamp(session), definition.name, record,
                          root or Path.cwd())  # fmt: skip
        run = _run_session(definition, ctx, force)
        logger.info(run.summary())
        runs.append(run)
    if runs:
        try:
            publish_status(market, definition)
        except OSError as exc:  # the run's work is done and recorded; the index is not
            logger.warning("pipeline status not published: %s", exc)
    return notify_run(PipelineRun(definition.name, tuple(runs), tuple(interrupted), tuple(missed)))


def run_pipeline(
    store: MarketStore | str | Path | None = None,
    *,
    session: Any = None,
    force: Sequence[str] = (),
    definition: PipelineDefinition | str | Path | None = None,
    now: datetime | pd.Timestamp | None = None,
    root: Path | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PipelineRun:
    """Return the run of the pipeline on ``session``, or on every session that is due.

    Without ``session``: first the sessions a killed run left unfinished, then every
    session after the latest recorded one whose close plus the definition's delay has
    passed by ``now`` (default: the clock), in order, holidays excluded (catch-up after
    missed evenings); a store with no record runs only the latest closed session.

    The time is read once, when the run starts: the sessions it runs are fixed then, so
    a run started at 23:59 New York that ends after midnight records the session it
    started for, and the next run decides what is due by its own start.

    Parameters
    ----------
    store
        The market store or its file (default: the configured store).
    session
        One session date; refused if the exchange does not trade that day.
    force
        Steps to run again, with every step that needs them.
    definition
        A definition, or the catalog file to read it from (default: the report catalog).
    now
        The time that decides what is due (timezone-aware).
    root
        Folder that relative paths of step parameters (drop folder, rule files) start from.
    clock
        Returns the time when ``now`` is not given (default: the system clock); read once.

    Raises
    ------
    quantdesk.pipeline.lock.PipelineBusyError
        Another run holds the store (the error names its pid, host and start).
    ValueError
        ``session`` is not a session of the exchange.
    """
    # The one reading of the clock: what is due is decided by the run's start.
    started = pd.Timestamp(now) if now is not None else pd.Timestamp((clock or _utcnow)())
    market, definition, record, calendar = _setup(store, definition)
    with RunLock(market.path):
        interrupted = _interrupt(record, definition.name)
        if session is not None:
            days = [calendar.check(session)]
        else:
            known = record.sessions(definition.name)
            due = calendar.due(known[-1] if known else None, started,
                               pd.Timedelta(minutes=definition.delay_minutes))  # fmt: skip
            days = sorted(set(interrupted) | set(due))
            missed = due[:-1]  # every due session but the newest had its evening missed
            return _go(market, definition, record, days, force, root, interrupted, missed)
        return _go(market, definition, record, days, force, root, interrupted)


def backfill(
    store: MarketStore | str | Path | None = None,
    *,
    start: Any,
    end: Any,
    definition: PipelineDefinition | str | Path | None = None,
    root: Path | None = None,
) -> PipelineRun:
    """Return the run of every session from ``start`` to ``end`` in order, skipping what is done.

    The same as one :func:`run_pipeline` per session, in one lock.
    """
    market, definition, record, calendar = _setup(store, definition)
    days = calendar.sessions(start, end)
    if not days:
        raise ValueError(f"no {calendar.exchange} session between {start} and {end}")
    with RunLock(market.path):
        interrupted = _interrupt(record, definition.name)
        return _go(market, definition, record, days, (), root, interrupted)


def retry_failed(
    store: MarketStore | str | Path | None = None,
    *,
    definition: PipelineDefinition | str | Path | None = None,
    root: Path | None = None,
) -> PipelineRun:
    """Return the run of every session with a failed (or interrupted) step, in order.

    Failed steps run again, and the steps they had blocked; what succeeded stays done.
    """
    market, definition, record, _ = _setup(store, definition)
    with RunLock(market.path):
        interrupted = _interrupt(record, definition.name)
        days = _failed_sessions(record, definition.name)
        return _go(market, definition, record, days, (), root, interrupted)


def _failed_sessions(record: PipelineRecord, pipeline: str) -> list[pd.Timestamp]:
    frame = record.attempts(pipeline)
    if frame.empty:
        return []
    latest = frame.sort_values("attempt").groupby(["session", "step"]).tail(1)
    return sorted({pd.Timestamp(s) for s in latest.loc[latest["status"] == "failed", "session"]})


# -- status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStatus:
    """Where the pipeline stands: its latest session's steps, failed sessions, what is due."""

    pipeline: str
    exchange: str
    last_session: pd.Timestamp | None
    steps: pd.DataFrame
    failed_sessions: tuple[pd.Timestamp, ...]
    next_due: pd.Timestamp | None

    def summary(self) -> str:
        """Return the status as text: the last session's steps, failures, the next session due."""
        head = f"pipeline {self.pipeline} ({self.exchange}): "
        last = self.last_session
        lines = [head + ("never run" if last is None else f"last session {last:%Y-%m-%d}")]
        for row in self.steps.to_dict("records"):
            took = "" if pd.isna(row["duration_s"]) else f" {float(row['duration_s']):.1f}s"
            error = row["error"]
            why = f": {error}" if isinstance(error, str) and error else ""
            lines.append(
                f"  {row['step']!s:<10} {row['status']} (attempt {row['attempt']}){took}{why}"
            )
        if self.failed_sessions:
            days = ", ".join(f"{d:%Y-%m-%d}" for d in self.failed_sessions)
            lines.append(f"failed sessions (quantdesk pipeline retry): {days}")
        if self.next_due is not None:
            lines.append(f"next session due: {self.next_due:%Y-%m-%d}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the status as a JSON-able dict."""
        from quantdesk.core.jsonable import jsonable

        day = lambda d: None if d is None else f"{d:%Y-%m-%d}"  # noqa: E731
        return {
            "pipeline": self.pipeline,
            "exchange": self.exchange,
            "last_session": day(self.last_session),
            "steps": jsonable(self.steps.to_dict("records")),
            "failed_sessions": [day(d) for d in self.failed_sessions],
            "next_due": day(self.next_due),
        }


def pipeline_status(
    store: MarketStore | str | Path | None = None,
    *,
    definition: PipelineDefinition | str | Path | None = None,
    now: datetime | pd.Timestamp | None = None,
) -> PipelineStatus:
    """Return the pipeline's status from the store's record (reads only)."""
    market = as_store(store, read_only=True)
    if not isinstance(definition, PipelineDefinition):
        definition = load_pipeline(definition)
    record = PipelineRecord(market, read_only=market.read_only)
    calendar = SessionCalendar(definition.exchange)
    known = record.sessions(definition.name)
    last = known[-1] if known else None
    columns = ["step", "status", "attempt", "duration_s", "error"]
    steps = pd.DataFrame(columns=columns)
    if last is not None:
        frame = record.attempts(definition.name, last)
        latest = frame.sort_values("attempt").groupby("step").tail(1).set_index("step")
        order = [s.name for s in definition.steps if s.name in latest.index]
        latest = latest.loc[order].reset_index()
        latest["duration_s"] = (latest["ended_at"] - latest["started_at"]).dt.total_seconds()
        steps = latest[columns]
    clock = pd.Timestamp(now) if now is not None else pd.Timestamp(datetime.now(UTC))
    due = calendar.due(last, clock, pd.Timedelta(minutes=definition.delay_minutes))
    return PipelineStatus(
        definition.name,
        definition.exchange,
        last,
        steps.reset_index(drop=True),
        tuple(_failed_sessions(record, definition.name)),
        due[0] if due else None,
    )


def publish_status(
    store: MarketStore, definition: PipelineDefinition, reports_dir: str | Path | None = None
) -> Path:
    """Return the reports index after writing the pipeline's status beside it.

    The status (as ``quantdesk pipeline status --json``) goes to ``pipeline.json`` in
    the reports directory (default: the ``reports`` step's ``reports_dir``, else the
    configured one), replaced atomically, and the index is rewritten so its
    ``pipeline`` section shows it.
    """
    from quantdesk.config import settings
    from quantdesk.reports.publish import PIPELINE_STATUS_NAME, atomic_write_text, write_index

    if reports_dir is None:
        configured = next((s.params.get("reports_dir") for s in definition.steps
                           if s.run == "reports"), None)  # fmt: skip
        reports_dir = configured or settings().reports_dir
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    status = pipeline_status(store, definition=definition)
    atomic_write_text(root / PIPELINE_STATUS_NAME, json.dumps(status.to_dict(), indent=2))
    return write_index(root)
