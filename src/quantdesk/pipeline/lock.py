"""One pipeline run at a time per store: an exclusive lock on a file beside the store.

The lock is an ``flock`` on ``<store>.pipeline.lock``: the kernel releases it when its
process ends, however it ends (SIGKILL included), so a dead run never blocks the next
one.  The file also holds who took it (pid, host, start time), so a refused start can
say who holds the run, and a start that finds the record of a process that is gone
says it is taking over.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["PipelineBusyError", "RunLock", "lock_path"]

logger = logging.getLogger(__name__)


class PipelineBusyError(RuntimeError):
    """Another pipeline run holds the store; ``holder`` says who (pid, host, started_at)."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        who = ", ".join(f"{k} {holder.get(k)}" for k in ("pid", "host", "started_at"))
        super().__init__(f"another pipeline run holds {path} ({who}); try again when it ends")


def lock_path(store_path: str | os.PathLike[str]) -> Path:
    """Return the lock file of the store at ``store_path``."""
    path = Path(store_path)
    return path.with_name(path.name + ".pipeline.lock")


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace")
    try:
        holder = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        holder = {"raw": text[:200]}
    return holder if isinstance(holder, dict) else {}


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """The exclusive run lock of one store, as a context manager.

    Examples
    --------
    >>> import tempfile
    >>> with RunLock(Path(tempfile.mkdtemp()) / "demo.duckdb") as lock:
    ...     lock.holder["pid"] == os.getpid()
    True
    """

    def __init__(self, store_path: str | os.PathLike[str]) -> None:
        self.path = lock_path(store_path)
        self.holder: dict[str, Any] = {}
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Return the lock, taken; raise :class:`PipelineBusyError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise PipelineBusyError(self.path, holder) from None
        previous = _read_holder(fd)
        same_host = previous.get("host") == socket.gethostname()
        if previous.get("pid") and same_host and not _alive(previous["pid"]):
            logger.warning(
                "taking over the pipeline lock of pid %s (started %s), which is gone",
                previous["pid"],
                previous.get("started_at"),
            )
        self.holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(self.holder).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock and clear the holder (the file stays, empty)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
