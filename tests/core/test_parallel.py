"""The parallel runner with real worker processes and a real Dask cluster.

The tasks are standard-library functions called through ``operator.call``, so that
spawned workers (and Dask workers) can unpickle them without importing this file.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import operator
import os

import pytest

from quantdesk.core.parallel import TaskOutcome, check_executor, cpu_count, run_tasks


def test_serial_runs_in_order_and_isolates_a_failure() -> None:
    result = run_tasks(
        operator.call,
        [(math.factorial, 5), (math.sqrt, -1.0), (pow, 2, 10)],
        executor="serial",
        progress=False,
    )
    assert result.executor == "serial"
    assert [o.value for o in result.outcomes] == [120, None, 1024]
    bad = result.outcomes[1]
    assert not bad.ok and bad.reason == "ValueError: math domain error"
    assert bad.error is not None and "Traceback" in bad.error
    assert not result.ok and result.summary() == "3 tasks on serial, 1 failed"


def test_process_pool_isolates_a_raising_task() -> None:
    tasks = [(pow, 2, k) for k in range(6)] + [(math.sqrt, -1.0)]
    result = run_tasks(operator.call, tasks, executor="process", max_workers=2, progress=False)
    assert result.executor == "process x2"
    assert [o.value for o in result.outcomes[:6]] == [1, 2, 4, 8, 16, 32]
    assert result.outcomes[6].reason == "ValueError: math domain error"
    # The worker's traceback travels back with the error.
    assert "math domain error" in (result.outcomes[6].error or "")


def test_a_killed_worker_fails_its_task_and_a_fresh_pool_runs_the_rest() -> None:
    # One worker: the pool is broken by os._exit while only that task is in flight.
    tasks = [(pow, 2, 3), (os._exit, 3), (pow, 2, 5), (os.getpid,)]
    result = run_tasks(operator.call, tasks, executor="process", max_workers=1, progress=False)
    values = [o.value for o in result.outcomes]
    assert values[0] == 8 and values[2] == 32
    assert not result.outcomes[1].ok
    assert "BrokenProcessPool" in (result.outcomes[1].reason or "")
    # The last task ran in a worker process, not here.
    assert isinstance(values[3], int) and values[3] != os.getpid()


def test_again_retries_until_it_says_stop() -> None:
    seen: list[int] = []

    def again(outcome: TaskOutcome) -> bool:
        seen.append(outcome.index)
        return not outcome.ok and seen.count(outcome.index) < 3

    result = run_tasks(
        operator.call,
        [(math.sqrt, 4.0), (math.sqrt, -1.0)],
        executor="serial",
        again=again,
        progress=False,
    )
    assert seen == [0, 1, 1, 1]
    assert result.outcomes[0].value == 2.0 and not result.outcomes[1].ok


def test_a_callers_executor_is_used_and_left_open() -> None:
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        result = run_tasks(operator.call, [(abs, -3), (abs, 4)], executor=pool, progress=False)
        assert pool.submit(abs, -1).result() == 1  # still usable
    assert result.executor == "ThreadPoolExecutor"
    assert [o.value for o in result.outcomes] == [3, 4]


@pytest.mark.parametrize("executor", ["threads", 3, None])
def test_unknown_executor_is_refused(executor: object) -> None:
    with pytest.raises(ValueError, match=r"unknown executor .*executor must be"):
        check_executor(executor)
    with pytest.raises(ValueError, match="unknown executor"):
        run_tasks(abs, [(1,)], executor=executor, progress=False)


def test_names_must_match_tasks() -> None:
    with pytest.raises(ValueError, match="1 names for 2 tasks"):
        run_tasks(abs, [(1,), (2,)], executor="serial", names=["a"], progress=False)


def test_no_tasks_is_an_empty_result() -> None:
    result = run_tasks(abs, [], progress=False)
    assert result.outcomes == () and result.ok


def test_cpu_count_is_the_affinity_mask() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu_count() == expected


def test_dask_cluster_isolates_a_failure() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        result = run_tasks(
            operator.call,
            [(pow, 3, 2), (math.sqrt, -1.0), (pow, 2, 2)],
            executor=cluster.scheduler_address,
            names=["a", "b", "c"],
            progress=False,
        )
    assert result.executor == f"dask {cluster.scheduler_address}"
    assert [o.value for o in result.outcomes] == [9, None, 4]
    assert result.outcomes[1].reason == "ValueError: math domain error"


def test_unreachable_dask_scheduler_is_a_connection_error() -> None:
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"),
    ):
        run_tasks(abs, [(1,)], executor=f"tcp://127.0.0.1:{port}", progress=False)


def test_on_final_sees_each_final_outcome_once_as_it_arrives() -> None:
    seen: list[tuple[int, object]] = []
    tries: dict[int, int] = {}

    def again(outcome: TaskOutcome) -> bool:
        tries[outcome.index] = tries.get(outcome.index, 0) + 1
        return outcome.index == 1 and tries[1] < 3  # task 1 is run three times

    result = run_tasks(
        divmod, [(7, 2), (9, 4), (1, 0)], executor="serial", progress=False,
        again=again, on_final=lambda o: seen.append((o.index, o.value)),
    )  # fmt: skip
    assert tries[1] == 3
    assert sorted(seen) == [(0, (3, 1)), (1, (2, 1)), (2, None)]
    assert [o.value for o in result.outcomes] == [(3, 1), (2, 1), None]
