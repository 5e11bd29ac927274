"""Short-lived connections against a real second process that holds the DuckDB file.

The child process signals over its stdout when it holds the lock and releases it when
its stdin closes, so the test never waits on a clock.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from quantdesk.data.store.locking import (
    DEFERRED_CHECKPOINT_BYTES,
    StoreBusyError,
    connect,
    is_lock_conflict,
    transaction,
    wal_bytes,
)
from quantdesk.data.store.market import StoreBusyError as StoreBusyErrorFromStore

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.read()  # hold the file until the parent closes our stdin
con.close()
"""


@contextmanager
def held(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Hold ``path`` read-write in another process for the duration of the block."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().strip() == "held"
        yield child
    finally:
        child.stdin.close()
        child.wait(timeout=60)


def make_store_file(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t (x INTEGER)")


def test_the_store_re_exports_the_busy_error() -> None:
    assert StoreBusyErrorFromStore is StoreBusyError
    assert issubclass(StoreBusyError, TimeoutError)


def test_a_lock_held_past_the_timeout_raises_store_busy(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    make_store_file(path)
    with held(path):
        with pytest.raises(duckdb.Error) as raw:
            duckdb.connect(str(path), read_only=True)
        assert is_lock_conflict(raw.value)
        busy_match = r"another process held the lock"
        with (
            pytest.raises(StoreBusyError, match=busy_match) as busy,
            connect(path, lock_timeout=0.05),
        ):
            pass
        assert str(path) in str(busy.value)
        assert isinstance(busy.value.__cause__, duckdb.Error)
    # released: the same call now opens, in UTC
    with connect(path, lock_timeout=0.05) as con:
        assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


def test_other_connection_errors_are_not_retried(tmp_path: Path) -> None:
    folder = tmp_path / "a_directory.duckdb"
    folder.mkdir()
    with pytest.raises(duckdb.Error) as err, connect(folder, write=True, lock_timeout=60):
        pass
    assert not isinstance(err.value, StoreBusyError)
    assert not is_lock_conflict(err.value)


def test_transaction_commits_or_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    make_store_file(path)
    with transaction(path, lock_timeout=1) as con:
        con.execute("INSERT INTO t VALUES (1), (2)")
    with pytest.raises(RuntimeError, match="midway"), transaction(path, lock_timeout=1) as con:
        con.execute("INSERT INTO t VALUES (3)")
        raise RuntimeError("midway")
    with connect(path, lock_timeout=1) as con:
        assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchone() == ([1, 2],)
    # a read-only connection refuses writes
    with pytest.raises(duckdb.Error), connect(path, lock_timeout=1) as con:
        con.execute("INSERT INTO t VALUES (4)")


def test_a_deferred_checkpoint_keeps_the_commit_in_the_log_until_a_plain_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.duckdb"
    make_store_file(path)
    assert wal_bytes(path) == 0
    with transaction(path, lock_timeout=1, defer_checkpoint=True) as con:
        con.execute("INSERT INTO t VALUES (1)")
    assert wal_bytes(path) > 0  # committed, in the log only
    with connect(path, lock_timeout=1) as con:  # a reader replays the log
        assert con.execute("SELECT list(x) FROM t").fetchone() == ([1],)
    with transaction(path, lock_timeout=1) as con:
        con.execute("INSERT INTO t VALUES (2)")
    assert wal_bytes(path) == 0  # a write that does not defer folds the log in
    with connect(path, lock_timeout=1) as con:
        assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchone() == ([1, 2],)


def test_deferred_writes_leave_a_log_under_the_bound(tmp_path: Path) -> None:
    """The log a reader must replay never reaches DEFERRED_CHECKPOINT_BYTES between writes."""
    path = tmp_path / "s.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t (x INTEGER, pad VARCHAR)")
    sizes = []
    for i in range(3 * DEFERRED_CHECKPOINT_BYTES // 1000):
        with transaction(path, lock_timeout=1, defer_checkpoint=True) as con:
            con.execute("INSERT INTO t VALUES (?, ?)", [i, "x" * 1000])
        sizes.append(wal_bytes(path))
    assert max(sizes) < DEFERRED_CHECKPOINT_BYTES
    assert sizes.count(0) >= 2  # checkpointed every time the log passed the bound
    assert all(b > a for a, b in itertools.pairwise(sizes) if b)  # grows between writes
    with connect(path, lock_timeout=1) as con:
        assert con.execute("SELECT count(*), sum(x) FROM t").fetchone() == (
            len(sizes),
            sum(range(len(sizes))),
        )


def test_the_store_names_are_importable_from_the_package() -> None:
    import quantdesk.data as data
    from quantdesk.data.store import market as store

    for name in ("MarketStore", "StoreBusyError", "UnknownSymbolError", "IngestReport"):
        assert getattr(data, name) is getattr(store, name), name


@contextmanager
def attached_in_this_process(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Hold ``path`` attached by another connection of this process (another DuckDB
    instance), the case in which opening it raises ``ResourceInUseException``."""
    holder = duckdb.connect(":memory:")
    holder.execute(f"ATTACH '{path}' AS held")
    try:
        yield holder
    finally:
        holder.close()


def test_a_file_attached_by_another_connection_of_this_process_is_waited_out(
    tmp_path: Path,
) -> None:
    """DuckDB's ResourceInUseException (two connections to the file inside one process)
    is a lock conflict: retried until the holder lets go, never raised as is."""
    import logging
    import threading

    path = tmp_path / "s.duckdb"
    make_store_file(path)
    with attached_in_this_process(path) as holder:
        with pytest.raises(duckdb.Error) as raw:
            duckdb.connect(str(path))
        assert type(raw.value).__name__ == "ResourceInUseException"
        assert is_lock_conflict(raw.value)
        with (
            pytest.raises(StoreBusyError) as busy,
            transaction(path, lock_timeout=0.05),
        ):
            pass
        assert type(busy.value.__cause__).__name__ == "ResourceInUseException"

        # A writer waits while the file is held and writes once it is released: the
        # holder lets go when the writer's first retry is logged (an event, no clock).
        retrying = threading.Event()

        class OnRetry(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "is busy" in record.getMessage():
                    retrying.set()

        handler = OnRetry(level=logging.DEBUG)
        locking_log = logging.getLogger("quantdesk.data.store.locking")
        old_level = locking_log.level
        locking_log.addHandler(handler)
        locking_log.setLevel(logging.DEBUG)
        errors: list[BaseException] = []

        def write() -> None:
            try:
                with transaction(path, lock_timeout=60) as con:
                    con.execute("INSERT INTO t VALUES (7)")
            except BaseException as exc:  # reported to the test thread
                errors.append(exc)

        writer = threading.Thread(target=write)
        try:
            writer.start()
            assert retrying.wait(60)
            holder.execute("DETACH held")
            writer.join(60)
        finally:
            locking_log.removeHandler(handler)
            locking_log.setLevel(old_level)
    assert not writer.is_alive() and errors == []
    with connect(path, lock_timeout=1) as con:
        assert con.execute("SELECT list(x) FROM t").fetchone() == ([7],)


def test_lock_retries_wait_by_the_one_backoff_formula() -> None:
    """The store's retry is core.backoff's (5 ms doubling to 250 ms, jittered), not its own."""
    import inspect

    from quantdesk.core.backoff import Backoff
    from quantdesk.data.store import locking

    assert Backoff(base=0.005, factor=2.0, cap=0.25, jitter=True) == locking.LOCK_RETRY
    ceilings = [Backoff(base=0.005, cap=0.25, jitter=False).delay(n) for n in range(8)]
    assert ceilings == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.25, 0.25])
    source = inspect.getsource(locking)
    assert "import random" not in source and "LOCK_RETRY.delay(" in source
