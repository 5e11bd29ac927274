"""One parallel runner: a local process pool or a Dask cluster, with failure isolation.

Report batches, per-symbol regime fits (and the coming sentiment scoring and screener
backfills) all run a top-level function over a list of argument tuples.  This module
is the one place that knows how:

``"process"`` (the default)
    A local :class:`concurrent.futures.ProcessPoolExecutor` started with ``spawn`` (a
    worker never inherits the parent's threads or locks: notebook kernels, Dask, BLAS).
    At most ``max_workers`` tasks are in flight, so a worker that dies (killed, out of
    memory, ``os._exit``) takes only those with it: they fail with
    ``BrokenProcessPool`` and a fresh pool runs the rest.
``"serial"``
    One task after the other in this process, for debugging.
a Dask scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``
    The same function on a Dask cluster, whose workers need quantdesk installed.
a ``concurrent.futures.Executor``
    The caller's own pool (not restarted: it is not ours).

A task that raises, or whose worker dies, becomes a failed :class:`TaskOutcome` with the
error's text; the others go on.  As with any spawned pool, a script must call this
under ``if __name__ == "__main__":`` (notebooks need nothing).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Executor",
    "ParallelResult",
    "TaskOutcome",
    "check_executor",
    "cpu_count",
    "last_line",
    "run_tasks",
]

logger = logging.getLogger(__name__)

Executor = str | Any  # a name, a Dask address, a dask Client or a concurrent.futures.Executor


def cpu_count() -> int:
    """Return the CPUs this process may run on (its affinity mask, else all of them).

    Examples
    --------
    >>> cpu_count() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def last_line(exc: BaseException) -> str:
    """Return the last line of an exception's traceback: ``Type: message``."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


@dataclass(frozen=True)
class TaskOutcome:
    """How one task ended.

    Attributes
    ----------
    index
        The task's position in the list given to :func:`run_tasks`.
    value
        What the function returned (None when it failed).
    error
        The full traceback text when the task raised or its worker died, else None.
    reason
        The traceback's last line (``Type: message``), else None.
    """

    index: int
    value: Any = None
    error: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Return True when the task returned a value."""
        return self.error is None


@dataclass(frozen=True)
class ParallelResult:
    """Return value of :func:`run_tasks`: the final outcome of every task, in task order.

    Attributes
    ----------
    outcomes
        One :class:`TaskOutcome` per task, in the order given.
    executor
        Where the tasks ran: ``"serial"``, ``"process x4"``, ``"dask tcp://..."``.
    """

    outcomes: tuple[TaskOutcome, ...]
    executor: str

    @property
    def ok(self) -> bool:
        """Return True when no task raised."""
        return all(o.ok for o in self.outcomes)

    def summary(self) -> str:
        """Return one line: how many tasks ran where, and how many failed."""
        failed = sum(not o.ok for o in self.outcomes)
        return f"{len(self.outcomes)} tasks on {self.executor}, {failed} failed"


# -- where tasks run ---------------------------------------------------------------------


class _Backend:
    """Runs each task at submission, in this process."""

    name = "serial"
    capacity = 1

    def submit(self, func: Callable[..., Any], args: tuple[Any, ...], key: str | None) -> Any:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(func(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def wait(self, futures: Sequence[Any]) -> list[Any]:
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def outcome(self, index: int, future: Any) -> TaskOutcome:
        """Return the future's outcome; any exception becomes a failure."""
        try:
            return TaskOutcome(index, future.result())
        except Exception as exc:
            self.on_error(exc, future)
            text = "".join(traceback.format_exception(exc))
            return TaskOutcome(index, None, text, last_line(exc))

    def on_error(self, exc: BaseException, future: Any) -> None:
        """React to an exception from a task or from the execution machinery."""

    def close(self) -> None:
        """Release what the backend started."""


class _ExecutorBackend(_Backend):
    """A concurrent.futures executor: a process pool we own, or the caller's."""

    def __init__(self, make: Callable[[], cf.Executor], name: str, capacity: int, own: bool):
        self._make = make
        self._pool = make()
        self.name = name
        self.capacity = capacity
        self._own = own
        self._pool_of: dict[Any, cf.Executor] = {}

    def submit(self, func: Callable[..., Any], args: tuple[Any, ...], key: str | None) -> Any:
        future = self._pool.submit(func, *args)
        self._pool_of[future] = self._pool
        return future

    def outcome(self, index: int, future: Any) -> TaskOutcome:
        try:
            return super().outcome(index, future)
        finally:
            self._pool_of.pop(future, None)

    def on_error(self, exc: BaseException, future: Any) -> None:
        # A worker that died breaks the whole pool and every task in flight on it.
        # Start a fresh pool, once per broken pool, so that the remaining tasks run.
        broken = self._pool_of.get(future)
        if isinstance(exc, cf.process.BrokenProcessPool) and self._own and broken is self._pool:
            logger.warning("a worker process died (%s); starting a fresh pool", exc)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._make()

    def close(self) -> None:
        if self._own:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _DaskBackend(_Backend):
    """A Dask distributed Client: one we connect to an address, or the caller's."""

    capacity = 1 << 30  # the Dask scheduler queues and balances; submit everything

    def __init__(self, client: Any, own: bool, address: str) -> None:
        self._client = client
        self._own = own
        self.name = f"dask {getattr(client.scheduler, 'address', None) or address}"

    def submit(self, func: Callable[..., Any], args: tuple[Any, ...], key: str | None) -> Any:
        # pure=False: a retry has the same arguments and must not reuse the failed result.
        if key is None:
            return self._client.submit(func, *args, pure=False)
        return self._client.submit(func, *args, pure=False, key=key)

    def wait(self, futures: Sequence[Any]) -> list[Any]:
        from distributed import wait

        return list(wait(list(futures), return_when="FIRST_COMPLETED").done)

    def close(self) -> None:
        if self._own:
            self._client.close()


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__name__ == "Client" and hasattr(executor, "submit")


def check_executor(executor: Executor) -> None:
    """Raise ValueError unless ``executor`` names a place :func:`run_tasks` can run on."""
    if isinstance(executor, str):
        # A Dask address: tcp://host:8786, host:8786, inproc://...
        if executor in ("process", "serial") or ":" in executor:
            return
    elif isinstance(executor, cf.Executor) or _is_dask_client(executor):
        return
    raise ValueError(
        f"unknown executor {executor!r}: executor must be 'process', 'serial', a Dask "
        "scheduler address such as 'tcp://host:8786', a dask.distributed.Client or a "
        "concurrent.futures.Executor"
    )


def _backend(
    executor: Executor,
    max_workers: int | None,
    n_tasks: int,
    initializer: Callable[[], None] | None,
) -> _Backend:
    check_executor(executor)
    if executor == "serial":
        return _Backend()
    if executor == "process":
        workers = max(1, max_workers or min(cpu_count(), n_tasks))
        # spawn: forking a parent with live threads (progress bars, Dask, zmq) can deadlock.
        context = multiprocessing.get_context("spawn")

        def make() -> cf.Executor:
            return cf.ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=initializer
            )

        return _ExecutorBackend(make, f"process x{workers}", workers, own=True)
    if isinstance(executor, cf.Executor):
        workers = max_workers or getattr(executor, "_max_workers", None) or cpu_count()
        return _ExecutorBackend(
            lambda: executor, type(executor).__name__, max(1, workers), own=False
        )
    if _is_dask_client(executor):
        return _DaskBackend(executor, own=False, address="")
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "a Dask scheduler address needs dask.distributed: pip install 'quantdesk[distributed]'"
        ) from exc
    try:
        client = Client(executor)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the Dask scheduler at {executor}: {exc}") from exc
    return _DaskBackend(client, own=True, address=str(executor))


# -- the run -----------------------------------------------------------------------------


def run_tasks(
    func: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    executor: Executor = "process",
    max_workers: int | None = None,
    initializer: Callable[[], None] | None = None,
    names: Sequence[str] | None = None,
    again: Callable[[TaskOutcome], bool] | None = None,
    failed: Callable[[TaskOutcome], bool] | None = None,
    on_final: Callable[[TaskOutcome], None] | None = None,
    progress: bool = True,
    desc: str = "tasks",
    unit: str = "task",
) -> ParallelResult:
    """Return the outcome of ``func(*task)`` for every task, run in parallel.

    Parameters
    ----------
    func
        A top-level (picklable) function.
    tasks
        One argument tuple per call.
    executor
        ``"process"`` (local spawned process pool), ``"serial"``, a Dask scheduler
        address, a ``dask.distributed.Client`` or a ``concurrent.futures.Executor``.
    max_workers
        Size of the local pool (default: one per CPU this process may use, at most one
        per task).
    initializer
        Called once in each local worker process as it starts (e.g. to limit BLAS
        threads); not used on Dask or serially.
    names
        One name per task, for log lines and Dask task keys (default: the index).
    again
        Called with every outcome; True runs that task again (a retry), at the back of
        the queue.  The last outcome of a task is its final one.
    failed
        Tells whether a final outcome counts as failed in the progress bar (default:
        the task raised); for functions that return their own failures.
    on_final
        Called in this process with each task's final outcome as it arrives, once per
        task (a task Dask ran again after its worker died still arrives once): to
        write results while the others run.  An exception it raises stops the run.
    progress
        Show a ``tqdm.auto`` progress bar (on stderr; in a notebook, a widget).
    desc, unit
        The progress bar's label and unit.

    Returns
    -------
    ParallelResult
        The final :class:`TaskOutcome` of each task in task order, and where they ran.

    Raises
    ------
    ValueError
        For an unknown executor.
    ConnectionError
        If a Dask scheduler address cannot be reached.

    Examples
    --------
    >>> result = run_tasks(divmod, [(7, 2), (1, 0)], executor="serial", progress=False)
    >>> [o.value for o in result.outcomes], result.outcomes[1].reason
    ([(3, 1), None], 'ZeroDivisionError: integer division or modulo by zero')
    """
    from quantdesk.core.progress import progress_bar

    check_executor(executor)
    labels = [str(n) for n in names] if names is not None else [str(i) for i in range(len(tasks))]
    if len(labels) != len(tasks):
        raise ValueError(f"{len(labels)} names for {len(tasks)} tasks")
    is_failure = failed or (lambda outcome: not outcome.ok)
    if not tasks:
        return ParallelResult((), str(executor))
    backend = _backend(executor, max_workers, len(tasks), initializer)
    logger.info("%s: %d tasks on %s", desc, len(tasks), backend.name)
    batch = uuid.uuid4().hex[:8]
    queue: deque[int] = deque(range(len(tasks)))
    pending: dict[Any, int] = {}
    final: dict[int, TaskOutcome] = {}
    submitted = 0
    bar = progress_bar(total=len(tasks), desc=desc, unit=unit, disable=not progress)
    try:
        while queue or pending:
            while queue and len(pending) < backend.capacity:
                index = queue.popleft()
                key = f"{desc}-{batch}-{submitted}-{labels[index]}" if names is not None else None
                submitted += 1
                pending[backend.submit(func, tuple(tasks[index]), key)] = index
            for future in backend.wait(list(pending)):
                index = pending.pop(future)
                outcome = backend.outcome(index, future)
                if again is not None and again(outcome):
                    queue.append(index)
                    continue
                final[index] = outcome
                if not outcome.ok:
                    logger.error("%s failed: %s", labels[index], outcome.reason)
                if on_final is not None:
                    on_final(outcome)
                bar.update(1)
                bar.set_postfix(failed=sum(map(is_failure, final.values())), refresh=False)
    finally:
        bar.close()
        backend.close()
    return ParallelResult(tuple(final[i] for i in range(len(tasks))), backend.name)
