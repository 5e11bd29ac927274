"""Run a job's grid of notebook reports on a local process pool or a Dask cluster.

Every run goes through :func:`quantdesk.reports.runner.run_report`, each in its own
papermill kernel.  One failure never stops the others: a failing notebook, a timeout, a
dead kernel and an exception inside the worker itself all become failed runs with a
reason, retried as the job says, and the batch ends with a summary table.

Executors
---------
``"process"`` (the default)
    A local :class:`concurrent.futures.ProcessPoolExecutor` (``spawn``: a worker never
    inherits the parent's threads or locks).  At most ``max_workers`` runs are in
    flight, so a worker process that dies takes only those runs with it: they fail
    with ``BrokenProcessPool`` (retried as the job says) and a fresh pool runs the rest.
``"serial"``
    One run after the other in this process, for debugging.
``"tcp://host:8786"`` (any Dask address) or a ``dask.distributed.Client``
    The same worker function on a Dask cluster.  The reports folder, the working
    directory and the ``QUANTDESK_*`` settings of this process travel with each run,
    so the workers must see the same paths (a shared disk, or the same layout).

A job's ``scheduler`` in the catalog is used when ``executor`` is left at ``None``.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantdesk.config import environment
from quantdesk.core.parallel import Executor, TaskOutcome, last_line, run_tasks
from quantdesk.reports.catalog import Job, RunSpec

__all__ = ["BatchResult", "BatchRun", "run_batch"]

logger = logging.getLogger(__name__)

# jupyter_client's words for a kernel that never became ready: no cell ran.
_NEVER_STARTED = ("before replying to kernel_info", "Kernel didn't respond")


def _kernel_never_started(outcome: Mapping[str, Any]) -> bool:
    """Return True when a run failed because its kernel never became ready.

    Kernels started at the same moment on one machine can race for the same TCP ports
    (jupyter_client picks free ports, then the kernel binds them): the loser dies, or
    its client waits on a port that another kernel holds, before any cell runs.  One
    such failure per run is started again for free.
    """
    reason = outcome.get("reason") or ""
    return outcome.get("status") != "ok" and any(words in reason for words in _NEVER_STARTED)


def _run_one(notebook: str, parameters: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Return one run's outcome as a plain dict; never raises for an ordinary exception.

    Top level, with plain arguments, so that a process pool and a Dask cluster can both
    pickle it.  Exceptions raised before or around the notebook (a missing notebook, a
    refused parameter, a broken install on a worker) become a failed outcome carrying
    the traceback's last line, exactly like a failed notebook.
    """
    t0 = time.perf_counter()
    try:
        from quantdesk.reports.runner import run_report

        record = run_report(notebook, parameters, **options)
        return {
            "status": "ok" if record.ok else "failed",
            "reason": record.reason,
            "record": record.to_dict(),
            "error": None,
            "duration_s": time.perf_counter() - t0,
        }
    except Exception as exc:
        return {
            "status": "failed",
            "reason": last_line(exc),
            "record": None,
            "error": traceback.format_exc(),
            "duration_s": time.perf_counter() - t0,
        }


@dataclass(frozen=True)
class BatchRun:
    """One run of a batch: what ran, how it ended, after how many attempts.

    Attributes
    ----------
    spec
        The notebook, parameters, timeout and retries.
    status
        ``"ok"`` or ``"failed"`` (of the last attempt).
    reason
        Why the last attempt failed (``None`` when ok): the runner's reason, or the last
        line of an exception raised in the worker.
    attempts
        Attempts made, ``1 + retries`` at most.
    duration_s
        Wall time over all attempts, in seconds.
    record
        The runner's ``RunRecord.to_dict()`` of the last attempt (``None`` when the
        worker raised before the runner could record anything).
    error
        The full traceback when the worker raised, else ``None``.
    """

    spec: RunSpec
    status: str
    reason: str | None
    attempts: int
    duration_s: float
    record: dict[str, Any] | None = field(default=None, hash=False)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Return True when the run's last attempt succeeded."""
        return self.status == "ok"

    @property
    def notebook(self) -> str:
        """Return the run's notebook."""
        return self.spec.notebook

    @property
    def parameters(self) -> Mapping[str, Any]:
        """Return the run's parameters."""
        return self.spec.parameters

    @property
    def run_id(self) -> str | None:
        """Return the runner's run id of the last attempt, if it recorded one."""
        value = (self.record or {}).get("run_id")
        return None if value is None else str(value)

    def to_dict(self) -> dict[str, Any]:
        """Return the run as a JSON-ready dict."""
        return {
            "job": self.spec.job,
            "notebook": self.spec.notebook,
            "parameters": dict(self.spec.parameters),
            "status": self.status,
            "reason": self.reason,
            "attempts": self.attempts,
            "duration_s": round(self.duration_s, 3),
            "run_id": self.run_id,
            "record": self.record,
        }


@dataclass(frozen=True)
class BatchResult:
    """Return value of :func:`run_batch`: every run's outcome and a summary.

    Attributes
    ----------
    job
        The job's name (``"adhoc"`` for a list of runs).
    executor
        Where the runs ran, e.g. ``"process x2"`` or ``"dask tcp://10.0.0.5:8786"``.
    runs
        One :class:`BatchRun` per run, in the order given.
    started_at, finished_at
        UTC wall-clock times of the whole batch.
    """

    job: str
    executor: str
    runs: tuple[BatchRun, ...]
    started_at: datetime
    finished_at: datetime

    @property
    def ok(self) -> bool:
        """Return True when every run succeeded."""
        return all(r.ok for r in self.runs)

    @property
    def failed(self) -> list[BatchRun]:
        """Return the runs whose last attempt failed."""
        return [r for r in self.runs if not r.ok]

    @property
    def succeeded(self) -> list[BatchRun]:
        """Return the runs that succeeded."""
        return [r for r in self.runs if r.ok]

    @property
    def duration_s(self) -> float:
        """Return the batch's wall time in seconds."""
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """Return the batch as a JSON-ready dict."""
        return {
            "job": self.job,
            "executor": self.executor,
            "ok": self.ok,
            "n_runs": len(self.runs),
            "n_failed": len(self.failed),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "runs": [r.to_dict() for r in self.runs],
        }

    def summary(self) -> str:
        """Return a text table: one line per run, then the totals.

        Examples
        --------
        >>> print(result.summary())  # doctest: +SKIP
        batch daily on process x2: 4 runs, 3 ok, 1 failed in 41.2 s
        #  run                                  status  tries  time    reason
        1  regime_report(symbol='SPX')          ok      1      12.1 s
        2  regime_report(symbol='IXIC')         FAILED  2      20.3 s  ValueError: no bars
        """
        head = (
            f"batch {self.job} on {self.executor}: {len(self.runs)} runs, "
            f"{len(self.succeeded)} ok, {len(self.failed)} failed in {self.duration_s:.1f} s"
        )
        rows = [["#", "run", "status", "tries", "time", "reason"]]
        for i, r in enumerate(self.runs, 1):
            label = r.spec.label
            if len(label) > 60:
                label = label[:57] + "..."
            rows.append(
                [
                    str(i),
                    label,
                    "ok" if r.ok else "FAILED",
                    str(r.attempts),
                    f"{r.duration_s:.1f} s",
                    r.reason or "",
                ]
            )
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
        lines = [
            "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
            for row in rows
        ]
        return "\n".join([head, *(line.rstrip() for line in lines)])

    def __str__(self) -> str:
        return self.summary()


def _outcome(task: TaskOutcome) -> dict[str, Any]:
    """Return a task's outcome dict; a worker that raised or died becomes a failed run."""
    if task.ok:
        result: dict[str, Any] = task.value
        return result
    return {
        "status": "failed",
        "reason": task.reason,
        "record": None,
        "error": task.error,
        "duration_s": 0.0,
    }


def _default_reports_dir() -> Path:
    """Return the runner's default reports folder, resolved here for every worker."""
    from quantdesk.config import settings

    return settings().reports_dir


# --- the batch ----------------------------------------------------------------------------


def run_batch(
    job_or_runs: Job | RunSpec | Sequence[RunSpec],
    *,
    executor: Executor | None = None,
    max_workers: int | None = None,
    reports_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    kernel_name: str = "python3",
) -> BatchResult:
    """Return the outcome of every run of a job, run in parallel with retries.

    Parameters
    ----------
    job_or_runs
        A catalog :class:`~quantdesk.reports.catalog.Job` (all its runs), one
        :class:`~quantdesk.reports.catalog.RunSpec`, or a list of them.
    executor
        ``"process"`` (local process pool), ``"serial"``, a Dask scheduler address
        (``"tcp://host:8786"``), a ``dask.distributed.Client`` or a
        ``concurrent.futures.Executor``.  Default: the job's ``scheduler`` from the
        catalog if it has one, else ``"process"``.
    max_workers
        Worker processes of the local pool (default: one per core, at most one per run).
    reports_dir
        Where reports go (default ``$QUANTDESK_REPORTS`` or ``reports/``).
    progress
        Show a ``tqdm`` progress bar (on stderr; in a notebook, a widget).
    kernel_name
        Jupyter kernel of every run.

    Returns
    -------
    BatchResult
        One :class:`BatchRun` per run in the order given; ``.ok`` is True when all
        succeeded, ``.summary()`` is the table.  A failed run never raises.

    Raises
    ------
    ValueError, ConnectionError
        An unknown executor, or a Dask scheduler that cannot be reached (as
        :func:`quantdesk.core.parallel.run_tasks`).

    Examples
    --------
    >>> from quantdesk.reports.catalog import Catalog
    >>> result = run_batch(Catalog.load().job("demo"), max_workers=2)  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
    """
    if isinstance(job_or_runs, Job):
        name, runs = job_or_runs.name, job_or_runs.runs()
        if executor is None:
            executor = job_or_runs.scheduler or "process"
    else:
        runs = [job_or_runs] if isinstance(job_or_runs, RunSpec) else list(job_or_runs)
        name = runs[0].job if runs and len({r.job for r in runs}) == 1 and runs[0].job else "adhoc"
    executor = "process" if executor is None else executor
    folder = str(Path(reports_dir or _default_reports_dir()).expanduser().resolve())

    # Settings travel with every run, so that a run on a cluster worker (started with
    # another environment, in another folder) reads the same store and writes to the
    # same reports as this process.  Secret-looking variables stay behind.
    from quantdesk.reports.redaction import looks_like_secret

    common: dict[str, Any] = {
        "reports_dir": folder,
        "kernel_name": kernel_name,
        "cwd": os.getcwd(),
        "env": {
            k: v
            for k, v in environment().items()
            if k.startswith("QUANTDESK_") and not looks_like_secret(k)
        },
    }
    started = datetime.now(UTC)
    outcomes: dict[int, BatchRun] = {}
    if not runs:
        logger.warning("batch %s has no runs", name)
        return BatchResult(name, str(executor), (), started, datetime.now(UTC))

    attempts = [1] * len(runs)
    spent = [0.0] * len(runs)
    restarted: set[int] = set()

    def again(task: TaskOutcome) -> bool:
        index, spec = task.index, runs[task.index]
        out = _outcome(task)
        spent[index] += float(out.get("duration_s") or 0.0)
        if _kernel_never_started(out) and index not in restarted:
            # No code ran, so running it again is safe and is not an attempt.
            restarted.add(index)
            logger.warning("%s: %s; starting it again", spec.label, out["reason"])
            return True
        if out["status"] != "ok" and attempts[index] <= spec.retries:
            logger.warning(
                "%s failed on attempt %d of %d (%s); retrying",
                spec.label,
                attempts[index],
                spec.retries + 1,
                out["reason"],
            )
            attempts[index] += 1
            return True
        return False

    # The job travels into run.json, so `report list` tells its runs from one-off runs
    # of the same notebook.
    tasks = [
        (
            spec.notebook,
            dict(spec.parameters),
            {**common, "timeout": spec.timeout, "job": spec.job or None},
        )
        for spec in runs
    ]
    ran = run_tasks(
        _run_one,
        tasks,
        executor=executor,
        max_workers=max_workers,
        again=again,
        failed=lambda task: _outcome(task)["status"] != "ok",
        progress=progress,
        desc=f"batch {name}",
        unit="run",
    )
    for task in ran.outcomes:
        spec, out = runs[task.index], _outcome(task)
        run = BatchRun(
            spec,
            "ok" if out["status"] == "ok" else "failed",
            out.get("reason") if out["status"] != "ok" else None,
            attempts[task.index],
            spent[task.index],
            out.get("record"),
            out.get("error"),
        )
        outcomes[task.index] = run
        if run.ok:
            logger.info("%s ok in %.1f s", spec.label, run.duration_s)
        else:
            logger.error("%s failed (%d attempts): %s", spec.label, run.attempts, run.reason)
    result = BatchResult(
        name,
        ran.executor,
        tuple(outcomes[i] for i in range(len(runs))),
        started,
        datetime.now(UTC),
    )
    log = logger.info if result.ok else logger.warning
    log(
        "batch %s: %d ok, %d failed in %.1f s",
        name,
        len(result.succeeded),
        len(result.failed),
        result.duration_s,
    )
    return result
