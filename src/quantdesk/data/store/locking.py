"""Short-lived connections to the store's DuckDB file, retried while another process holds it.

DuckDB lets one process hold a database file read-write, and a process holding the
file in any mode blocks a process that wants another mode.  A notebook kernel, a
dashboard and an ingest job must all work on the store at once, so the store never
keeps a connection open between calls: every operation opens a short-lived
connection (read-only for reads, read-write for writes) with :func:`connect`, does
its work in one transaction (:func:`transaction`) and closes.  When another process
holds a conflicting lock the connection is retried with jittered exponential back-off
until ``lock_timeout``, so lock conflicts never surface to the user as errors; only a
lock held longer than the timeout raises :class:`StoreBusyError`.

A conflict inside this process counts the same: DuckDB refuses a second connection to
a file that another connection of the process holds in another mode ("different
configuration") or has attached under another database instance
(``ResourceInUseException``, "Unique file handle conflict"), which happens when two
threads (the live alert writer and a session's reads) open the file at the same time.
Both are waited out and retried like another process's lock.

A commit is durable when :func:`transaction` returns: DuckDB writes it to the file's
write-ahead log (``<file>.wal``) and syncs that log to disk before ``COMMIT`` returns.
Closing the last connection then folds the log into the file (a *checkpoint*), which
costs more than the commit (every table the write changed is written again, and the
file synced).  A stream of small writes (paper trades) can defer it:
``transaction(..., defer_checkpoint=True)`` leaves the log to the next write while it
is under :data:`DEFERRED_CHECKPOINT_BYTES`, and checkpoints on close once it is
larger.  The trade-off: while a log is left, every connection that opens the file
replays it first (a reader too), so the bound on the log bounds what a reader pays;
and the store is the file *and* its log, so a copy of the ``.duckdb`` file alone
misses the writes still in the log.  Any read-write connection that does not defer
folds the log in when it closes (opening a ``MarketStore`` on the file is one), so
open the store that way before copying the file by hand.  A crash loses nothing the
log holds: the next connection replays it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from quantdesk.core.backoff import Backoff

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DEFERRED_CHECKPOINT_BYTES",
    "LOCK_RETRY",
    "StoreBusyError",
    "connect",
    "is_lock_conflict",
    "transaction",
    "wal_bytes",
]

logger = logging.getLogger(__name__)

#: How a connection waits between tries while the file is held: 5 ms doubling to at
#: most 250 ms, jittered so processes retrying at once spread out.
LOCK_RETRY = Backoff(base=0.005, factor=2.0, cap=0.25, jitter=True)

#: The write-ahead log a deferred checkpoint may leave behind: a write whose commit
#: leaves the log at least this large checkpoints when it closes, so the log between
#: writes stays under it.  A paper trade adds about 1.4 KB (a checkpoint every 12
#: trades or so), and opening the file with a full log costs a reader about 10 ms more
#: CPU on the project's 2-core machine (an open alone costs about 20 ms); larger
#: limits made the trades slower again (the replay outgrows the saved checkpoints).
DEFERRED_CHECKPOINT_BYTES = 16 * 1024


class StoreBusyError(TimeoutError):
    """Raised when another process held the store's lock for longer than the timeout."""


def _conflict_types() -> tuple[type[Exception], ...]:
    """Return the DuckDB error classes a lock conflict is raised as (by version)."""
    import duckdb

    names = ("IOException", "ConnectionException", "ResourceInUseException")
    return tuple(getattr(duckdb, n) for n in names if hasattr(duckdb, n))


def is_lock_conflict(exc: Exception) -> bool:
    """Return whether a DuckDB connection error means another connection holds the file.

    Another process's lock, another connection of this process opened in another mode,
    or the file attached by another database instance of this process.
    """
    if type(exc).__name__ == "ResourceInUseException":
        return True
    text = str(exc)
    return (
        "lock" in text.lower()
        or "different configuration" in text
        or "file handle conflict" in text.lower()
    )


@contextlib.contextmanager
def connect(
    path: Path, *, write: bool = False, lock_timeout: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a short-lived connection, retrying while another process holds a lock.

    Parameters
    ----------
    path
        The DuckDB file.
    write
        Open read-write (else read-only).
    lock_timeout
        Seconds to keep retrying a lock conflict before raising :class:`StoreBusyError`.

    The connection's session time zone is UTC, and it is closed on exit.
    """
    import duckdb

    deadline = time.monotonic() + lock_timeout
    attempts = 0
    while True:
        try:
            con = duckdb.connect(str(path), read_only=not write)
            break
        except _conflict_types() as exc:
            if not is_lock_conflict(exc):
                raise
            attempts += 1
            if attempts == 1:
                logger.debug("%s is busy (%s); retrying for up to %g s", path, exc, lock_timeout)
            wait = LOCK_RETRY.delay(attempts - 1)
            if time.monotonic() + wait > deadline:
                raise StoreBusyError(
                    f"{path}: another process held the lock for more than "
                    f"{lock_timeout:.0f} s ({attempts} attempts); last error: {exc}"
                ) from exc
            time.sleep(wait)
    if attempts:
        logger.debug("opened %s after %d lock retries", path, attempts)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def wal_bytes(path: Path) -> int:
    """Return the size of the DuckDB file's write-ahead log (0 when it has none)."""
    try:
        return path.with_name(path.name + ".wal").stat().st_size
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def transaction(
    path: Path, *, lock_timeout: float, defer_checkpoint: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a read-write connection inside one transaction, rolled back if the block raises.

    Readers see all of the block's writes or none of them, and a failed block (or a
    process killed inside it) changes nothing.  With ``defer_checkpoint`` the close
    leaves the committed write in the write-ahead log while the log stays under
    :data:`DEFERRED_CHECKPOINT_BYTES` (the module docstring says what that trades).
    """
    with connect(path, write=True, lock_timeout=lock_timeout) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        if defer_checkpoint:
            # an instance setting, read when the last connection closes: set both ways,
            # since another thread's connection may share the instance
            due = wal_bytes(path) >= DEFERRED_CHECKPOINT_BYTES
            con.execute(f"PRAGMA {'enable' if due else 'disable'}_checkpoint_on_shutdown")
