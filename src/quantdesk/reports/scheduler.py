"""Fire catalog jobs at their scheduled times (the same schedule for cron: ``timers``).

:class:`Scheduler` is the long-running process behind ``quantdesk schedule run``.  It
reads the time from an injected ``clock`` and waits with an injected ``sleep``, so tests
drive it with a fake clock and never sleep.

Policy
------
- A job's cron fields are wall-clock times in the job's timezone (DST included).
- Each job's newest handled due time is kept in a JSON state file
  (``$QUANTDESK_HOME/scheduler_state.json`` by default, replaced atomically).  A job the
  scheduler has never seen starts counting from the moment it is first seen: it has
  no backlog.
- **Missed runs.**  When several due times have passed since the saved state (the
  scheduler was down), every one but the newest is reported as *missed*: logged as a
  warning, returned by :meth:`Scheduler.tick` and recorded in the state with their
  times.  The job then runs **once** to catch up, for the newest due time; the missed
  times are not replayed, because a report run now sees today's data whatever time it
  was meant for.  A single due time that passed while the scheduler was down is run
  late (catch-up) and its lateness is logged.
- **Overlap.**  A job still running is never started again: a due time that arrives
  while it runs is recorded as *skipped: still running*.  Different jobs run at the
  same time, each in its own background thread (the notebooks themselves run in
  worker processes).
- A job that was running when the scheduler process died is marked *interrupted* when
  the state is next loaded.
- One scheduler per state file.
- **The evening pipeline.**  A catalog with a ``pipeline:`` section has one more
  entry, ``pipeline:<name>`` (its :func:`pipeline_entry`: 17:15 New York on weekdays
  for XNYS), fired like a job (state, missed times, overlap) but only on the
  exchange's sessions: a due time on a holiday is recorded as *skipped: not a
  session*.  A firing calls :func:`quantdesk.pipeline.engine.run_pipeline` with
  ``now`` the due time, so the sessions it runs are fixed when it fires, one run at
  a time (the scheduler's overlap rule, and the run lock across processes).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from quantdesk.reports.catalog import Catalog, Job

__all__ = [
    "PipelineEntry",
    "ScheduleEvent",
    "Scheduler",
    "default_state_path",
    "pipeline_entry",
    "utcnow",
]

logger = logging.getLogger(__name__)

STATE_VERSION = 1
MAX_SLEEP = 60.0
MIN_SLEEP = 0.5
# Keep the state file small: the newest events per job only.
MAX_EVENTS = 200
# A run that starts more than this after its due time is logged as late.
LATE_AFTER = timedelta(minutes=5)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def default_state_path() -> Path:
    """Return ``$QUANTDESK_HOME/scheduler_state.json``."""
    from quantdesk.config import settings

    return settings().home / "scheduler_state.json"


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class ScheduleEvent:
    """Something the scheduler did or noticed for one job.

    Attributes
    ----------
    job
        The job's name.
    kind
        ``"started"`` (a run began), ``"missed"`` (due times that passed while the
        scheduler was down and will not be replayed), ``"skipped"`` (due while the job
        was still running), ``"finished"`` or ``"interrupted"``.
    times
        The due times concerned, oldest first (one, except for ``"missed"``).
    at
        When the scheduler noticed, by its clock.
    detail
        A readable explanation.
    """

    job: str
    kind: str
    times: tuple[datetime, ...]
    at: datetime
    detail: str = ""

    @property
    def scheduled_for(self) -> datetime | None:
        """Return the newest due time of the event (``None`` if it has none)."""
        return self.times[-1] if self.times else None

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict (times in UTC ISO format)."""
        return {
            "job": self.job,
            "kind": self.kind,
            "times": [_iso(t) for t in self.times],
            "at": _iso(self.at),
            "detail": self.detail,
        }

    def __str__(self) -> str:
        when = ", ".join(f"{t:%Y-%m-%d %H:%M %Z}" for t in self.times[-3:])
        if len(self.times) > 3:
            when = f"{len(self.times)} times up to {when}"
        return f"{self.job}: {self.kind} {when}: {self.detail}".rstrip(": ")


def _default_runner(job: Job) -> Any:
    from quantdesk.reports.batch import run_batch

    return run_batch(job, progress=False)


def _pipeline_runner(catalog: Catalog) -> Callable[[datetime], Any]:
    """Return the runner of the catalog's pipeline: ``run_pipeline`` as of the due time."""

    def run(scheduled_for: datetime) -> Any:
        from quantdesk.pipeline.engine import run_pipeline

        return run_pipeline(definition=catalog.path, now=scheduled_for)

    return run


@dataclass
class _Running:
    thread: threading.Thread
    scheduled_for: datetime
    started_at: datetime
    result: dict[str, Any] = field(default_factory=dict)


class Scheduler:
    """Fire catalog jobs at their times, one background run per job at most.

    Parameters
    ----------
    catalog
        The jobs; only those with a ``schedule`` are fired.
    state_path
        JSON file of per-job state (default ``$QUANTDESK_HOME/scheduler_state.json``).
    clock
        Returns the current timezone-aware time (default :func:`utcnow`).
    sleep
        Waits a number of seconds (default: wait on ``run_forever``'s stop event, so a
        stop is immediate).
    runner
        Runs one job (default :func:`quantdesk.reports.batch.run_batch` without a
        progress bar).  A result with ``ok == False`` counts as failed; an exception
        counts as an error.
    pipeline
        Runs the evening pipeline as of a due time (default
        :func:`quantdesk.pipeline.engine.run_pipeline` on the configured store with
        the catalog's definition and ``now`` the due time); fired only when the catalog
        has a ``pipeline:`` section.
    max_sleep
        Longest wait between two ticks, in seconds.

    Examples
    --------
    >>> import threading
    >>> from quantdesk.reports.catalog import Catalog
    >>> stop = threading.Event()
    >>> Scheduler(Catalog.load()).run_forever(stop)  # doctest: +SKIP
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        state_path: str | os.PathLike[str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Any] | None = None,
        runner: Callable[[Job], Any] | None = None,
        pipeline: Callable[[datetime], Any] | None = None,
        max_sleep: float = MAX_SLEEP,
    ) -> None:
        self.catalog = catalog
        self._pipeline_job, self._calendar = _pipeline_job(catalog)
        self._pipeline = pipeline or _pipeline_runner(catalog)
        self.state_path = Path(state_path) if state_path is not None else default_state_path()
        self.clock = clock
        self._sleep = sleep
        self._runner = runner or _default_runner
        self.max_sleep = max_sleep
        self._lock = threading.RLock()
        self._running: dict[str, _Running] = {}
        self._next_cache: dict[str, tuple[datetime, datetime]] = {}
        self._interrupted = False
        self._state = self._load_state()
        if self._interrupted:
            self._save_state()  # record it now, not at the next due time

    # --- state ---------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {"version": STATE_VERSION, "jobs": {}}
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            # Never start afresh silently: that would forget which runs were missed.
            raise ValueError(
                f"{self.state_path}: scheduler state is unreadable ({exc}); "
                "move it aside to start afresh"
            ) from exc
        if not isinstance(state, dict) or not isinstance(state.get("jobs"), dict):
            raise ValueError(f"{self.state_path}: not a quantdesk scheduler state file")
        now = self._now()
        for name, job_state in state["jobs"].items():
            if job_state.get("running"):
                # The process died while this job ran: its outcome is unknown.
                self._interrupted = True
                job_state["running"] = False
                job_state["last_status"] = "interrupted"
                job_state["last_reason"] = "the scheduler stopped while the job was running"
                event = ScheduleEvent(
                    name,
                    "interrupted",
                    tuple(t for t in [_parse(job_state.get("running_for"))] if t is not None),
                    now,
                    "the scheduler stopped while the job was running; outcome unknown",
                )
                logger.warning("%s", event)
                self._append_event(job_state, event)
        return state

    def _save_state(self) -> None:
        with self._lock:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self._state, indent=2, sort_keys=True)
            # Write beside the file, then rename over it: a crash leaves old or new, never half.
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.state_path.name}.", suffix=".tmp", dir=self.state_path.parent
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.state_path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    @staticmethod
    def _append_event(job_state: dict[str, Any], event: ScheduleEvent) -> None:
        events = job_state.setdefault("events", [])
        events.append(event.to_dict())
        del events[:-MAX_EVENTS]

    def _job_state(self, name: str) -> dict[str, Any]:
        jobs: dict[str, Any] = self._state["jobs"]
        return jobs.setdefault(name, {})  # type: ignore[no-any-return]

    @property
    def state(self) -> dict[str, Any]:
        """Return a copy of the per-job state as saved in the state file."""
        with self._lock:
            return json.loads(json.dumps(self._state))  # type: ignore[no-any-return]

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the scheduler's clock must return timezone-aware datetimes")
        return now

    # --- firing --------------------------------------------------------------------------

    def scheduled(self) -> list[Job]:
        """Return what this scheduler fires: the catalog's scheduled jobs, then the pipeline."""
        jobs = self.catalog.scheduled()
        return jobs if self._pipeline_job is None else [*jobs, self._pipeline_job]

    def running(self) -> list[str]:
        """Return the names of the jobs running now."""
        with self._lock:
            return [name for name, run in self._running.items() if run.thread.is_alive()]

    def tick(self) -> list[ScheduleEvent]:
        """Return what happened now: jobs started, missed due times, skipped due times.

        Fires every scheduled job whose next due time is at or before the clock's now,
        in a background thread.  See the module's *Policy* for missed and overlapping
        runs.  The state file is saved before returning.

        Returns
        -------
        list of ScheduleEvent
            Empty when nothing was due.
        """
        now = self._now()
        events: list[ScheduleEvent] = []
        with self._lock:
            changed = False
            for job in self.scheduled():
                job_events = self._tick_job(job, now)
                changed |= job_events is not None
                events.extend(job_events or [])
            # Most ticks change nothing; rewriting (and fsyncing) the file every minute
            # would be wasted disk wear.
            if changed or not self.state_path.exists():
                self._save_state()
        return events

    def _next_after(self, job: Job, last: datetime) -> datetime:
        """Return ``job.next_run(last)``, cached: a tick a minute need not parse cron."""
        cached = self._next_cache.get(job.name)
        if cached is None or cached[0] != last:
            cached = (last, job.next_run(last))
            self._next_cache[job.name] = cached
        return cached[1]

    def _tick_job(self, job: Job, now: datetime) -> list[ScheduleEvent] | None:
        """Return the job's events, or ``None`` when its state did not change."""
        job_state = self._job_state(job.name)
        last = _parse(job_state.get("last_scheduled"))
        if last is not None and self._next_after(job, last) > now:
            return None
        if last is None:
            # First sight of the job: no backlog, its first run is its next due time.
            job_state["last_scheduled"] = _iso(now)
            job_state["first_seen"] = _iso(now)
            logger.info("scheduling %s: next run %s", job.name, job.next_run(now))
            return []
        due = job.due_times(last, now)
        if not due:
            return None
        newest = due[-1]
        job_state["last_scheduled"] = _iso(newest)
        events: list[ScheduleEvent] = []
        if len(due) > 1:
            missed = ScheduleEvent(
                job.name,
                "missed",
                tuple(due[:-1]),
                now,
                f"{len(due) - 1} due time(s) passed since the last tick (the scheduler "
                "was down or stalled); "
                f"not replayed, one catch-up run for {newest:%Y-%m-%d %H:%M %Z} instead",
            )
            events.append(missed)
            logger.warning("%s", missed)
        run = self._running.get(job.name)
        if job is self._pipeline_job and not self._is_session(newest):
            calendar = self._calendar.exchange if self._calendar is not None else ""
            skipped = ScheduleEvent(
                job.name, "skipped", (newest,), now, f"not a {calendar} session (holiday)"
            )
            events.append(skipped)
            logger.info("%s", skipped)
        elif run is not None and run.thread.is_alive():
            skipped = ScheduleEvent(
                job.name,
                "skipped",
                (newest,),
                now,
                f"still running (the run for {run.scheduled_for:%Y-%m-%d %H:%M %Z})",
            )
            events.append(skipped)
            logger.warning("%s", skipped)
        else:
            late = now - newest
            detail = f"late by {late}" if late > LATE_AFTER else ""
            if len(due) > 1:
                detail = ("catch-up run; " + detail).rstrip("; ")
            started = ScheduleEvent(job.name, "started", (newest,), now, detail)
            events.append(started)
            logger.info("%s", started)
            self._start(job, newest, now)
        for event in events:
            self._append_event(job_state, event)
        return events

    def _start(self, job: Job, scheduled_for: datetime, now: datetime) -> None:
        job_state = self._job_state(job.name)
        job_state.update(
            running=True,
            running_for=_iso(scheduled_for),
            last_started=_iso(now),
        )
        thread = threading.Thread(
            target=self._run_job,
            args=(job, scheduled_for),
            name=f"quantdesk-job-{job.name}",
            daemon=True,
        )
        self._running[job.name] = _Running(thread, scheduled_for, now)
        thread.start()

    def _is_session(self, when: datetime) -> bool:
        """Return whether ``when`` falls on a session day of the pipeline's exchange."""
        if self._calendar is None:
            return True
        local = when.astimezone(ZoneInfo(self._calendar.tz))
        return bool(self._calendar.is_session(local.date()))

    def _run_job(self, job: Job, scheduled_for: datetime) -> None:
        try:
            if job is self._pipeline_job:
                result = self._pipeline(scheduled_for)
            else:
                result = self._runner(job)
            ok = getattr(result, "ok", True)
            status, reason = ("ok", None) if ok else ("failed", _failed_reason(result))
        except Exception as exc:
            logger.exception("job %s raised", job.name)
            status = "error"
            reason = traceback.format_exception_only(type(exc), exc)[-1].strip()
        finished = self._now()
        with self._lock:
            job_state = self._job_state(job.name)
            job_state.update(
                running=False,
                last_finished=_iso(finished),
                last_status=status,
                last_reason=reason,
            )
            detail = f"{status}: {reason}" if reason else status
            event = ScheduleEvent(job.name, "finished", (scheduled_for,), finished, detail)
            self._append_event(job_state, event)
            self._save_state()
        (logger.info if status == "ok" else logger.warning)("%s", event)

    def wait(self, timeout: float | None = None) -> bool:
        """Return True when no job is running any more, after waiting up to ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = [run.thread for run in self._running.values()]
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self.running()

    def next_due(self) -> datetime | None:
        """Return the earliest next due time over the scheduled jobs (``None``: no job)."""
        now = self._now()
        with self._lock:
            times = []
            for job in self.scheduled():
                last = _parse(self._job_state(job.name).get("last_scheduled"))
                times.append(self._next_after(job, last) if last else job.next_run(now))
        return min(times, default=None)

    def run_forever(self, stop_event: threading.Event | None = None, *, wait: bool = True) -> None:
        """Tick, then sleep until the next due time (at most ``max_sleep`` s), until stopped.

        Parameters
        ----------
        stop_event
            Set it (from a signal handler or another thread) to stop the loop.
        wait
            On stop, wait for running jobs to finish rather than abandon them.
        """
        stop = stop_event or threading.Event()
        sleep: Callable[[float], Any] = self._sleep or stop.wait
        jobs = ", ".join(j.name for j in self.scheduled()) or "none"
        logger.info("scheduler started: jobs %s, state %s", jobs, self.state_path)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    nxt = self.next_due()
                    delay = self.max_sleep
                    if nxt is not None:
                        delay = (nxt - self._now()).total_seconds()
                    delay = min(self.max_sleep, max(MIN_SLEEP, delay))
                except Exception:
                    # One bad tick (a full disk, say) must not end the scheduler.
                    logger.exception("scheduler tick failed; retrying in %.0f s", self.max_sleep)
                    delay = self.max_sleep
                if stop.is_set():
                    break
                sleep(delay)
        finally:
            logger.info("scheduler stopping")
            if wait:
                self.wait()


def _pipeline_job(catalog: Catalog) -> tuple[Job | None, Any]:
    """Return the pipeline's entry as a job the scheduler fires, and its session calendar.

    ``(None, None)`` for a catalog without a ``pipeline:`` section.
    """
    from quantdesk.data.sessions import SessionCalendar

    entry = pipeline_entry(catalog)
    if entry is None:
        return None, None
    description = f"the {entry.pipeline} pipeline on {entry.exchange} sessions"
    job = Job(
        f"pipeline:{entry.pipeline}", (), entry.schedule, entry.timezone, description=description
    )
    return job, SessionCalendar(entry.exchange)


def _failed_reason(result: Any) -> str:
    failed = getattr(result, "failed", None)
    if isinstance(failed, list) and failed:
        return f"{len(failed)} run(s) failed; first: {getattr(failed[0], 'reason', '')}"
    return "failed"


@dataclass(frozen=True)
class PipelineEntry:
    """The schedule entry of the catalog's evening pipeline: when ``pipeline run`` fires.

    It fires on weekdays at the exchange's regular close plus the pipeline's delay
    (17:15 New York for XNYS and 75 minutes), in the exchange's time zone; the run
    itself decides which sessions are due (a holiday finds none; an early close's
    session is due already; missed evenings are caught up in order).
    """

    pipeline: str
    exchange: str
    hour: int
    minute: int
    timezone: str

    @property
    def schedule(self) -> str:
        """Return the cron fields, e.g. ``15 17 * * 1-5``."""
        return f"{self.minute} {self.hour} * * 1-5"

    @property
    def on_calendar(self) -> str:
        """Return the systemd ``OnCalendar=`` value (weekdays at the time, in the zone)."""
        return f"Mon..Fri *-*-* {self.hour:02d}:{self.minute:02d}:00 {self.timezone}"


def pipeline_entry(catalog: Catalog) -> PipelineEntry | None:
    """Return the schedule entry of the catalog's ``pipeline:`` section (None without one).

    >>> from quantdesk.reports.catalog import Catalog
    >>> entry = pipeline_entry(Catalog.load())
    >>> entry.schedule, entry.timezone
    ('15 17 * * 1-5', 'America/New_York')
    """
    import yaml

    from quantdesk.data.sessions import SessionCalendar
    from quantdesk.pipeline.definition import load_pipeline

    data = yaml.safe_load(catalog.path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or data.get("pipeline") is None:
        return None
    definition = load_pipeline(catalog.path)
    calendar = SessionCalendar(definition.exchange)
    hour, minute = calendar.regular_close()
    total = int(hour * 60 + minute + definition.delay_minutes)
    if total >= 24 * 60:
        raise ValueError(
            f"{catalog.path}: pipeline delay_minutes {definition.delay_minutes} runs past midnight"
        )
    return PipelineEntry(definition.name, definition.exchange, total // 60, total % 60,
                         calendar.tz)  # fmt: skip
