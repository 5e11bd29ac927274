"""The store file: where it is, whether it exists, and its short-lived connections.

:class:`StoreFile` is the base every part of :class:`~quantdesk.data.store.market.MarketStore`
builds on: it opens the DuckDB file only through :mod:`quantdesk.data.store.locking`
(retried while another process holds it), creates the market's tables on the first
write (:func:`~quantdesk.data.store.schema.create_schema`), and refuses writes to a
store opened read-only.  Reading a file that does not exist raises
:class:`~quantdesk.errors.StoreNotFoundError`; code that treats a missing store as
empty asks :meth:`StoreFile.exists` first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pandas as pd

from quantdesk.config import settings
from quantdesk.data.store.locking import connect, transaction
from quantdesk.data.store.schema import create_schema
from quantdesk.errors import StoreNotFoundError

if TYPE_CHECKING:
    import duckdb

__all__ = ["StoreFile", "fetch_frame"]


def fetch_frame(
    con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> pd.DataFrame:
    """Return a query's result as a DataFrame, converted through Arrow.

    Arrow conversion is several times faster than DuckDB's own ``.df()`` on millions of
    rows (0.25 s against 1.4 s for 2.8M bars here).
    """
    frame: pd.DataFrame = con.sql(query, params=params or None).to_arrow_table().to_pandas()
    return frame


class StoreFile:
    """The store's DuckDB file and its connections (the base of ``MarketStore``).

    Parameters
    ----------
    path
        DuckDB file; ``None`` means the one the store rule chooses
        (``<home>/quantdesk.duckdb``: :mod:`quantdesk.config`).  Opening never creates
        it: the first write does, and a read of a missing file raises
        :class:`~quantdesk.errors.StoreNotFoundError` naming it and how to fill it.
    read_only
        Refuse writes (reads never take the write lock either way).
    lock_timeout
        Seconds to wait for another process's lock (default from settings).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        read_only: bool = False,
        lock_timeout: float | None = None,
    ) -> None:
        cfg = settings()
        self.path = Path(path) if path is not None else cfg.store_path
        #: Which rule chose the file: "given" for an explicit path, else the store rule's.
        self.source = "given" if path is not None else cfg.store_source
        self.read_only = read_only
        self.lock_timeout = cfg.lock_timeout if lock_timeout is None else lock_timeout
        self._schema_ready = False
        if read_only:
            self._require_file()
        elif self.exists():
            # An existing file is brought up to the current schema now; a missing one is
            # created by its first write, never by opening or reading it.
            self.create()

    def exists(self) -> bool:
        """Return whether the store file exists yet (one nobody has written holds nothing).

        Code that treats a store not created yet as empty asks this, instead of reading
        (which raises :class:`~quantdesk.errors.StoreNotFoundError`) or looking at paths.
        """
        return self.path.exists()

    def _require_file(self) -> None:
        """Raise StoreNotFoundError unless the store file exists."""
        if not self.exists():
            raise StoreNotFoundError(self.path, source=self.source)

    def create(self) -> Self:
        """Return this store after creating its file and tables where missing (a write).

        Every write calls it.  Once per object: later calls cost nothing.
        """
        if self.read_only:
            raise PermissionError(f"{self!r} was opened read-only")
        if not self._schema_ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with connect(self.path, write=True, lock_timeout=self.lock_timeout) as con:
                create_schema(con)
            self._schema_ready = True
        return self

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a short-lived connection, retrying while another process holds a lock.

        A read of a store file that does not exist raises :class:`StoreNotFoundError`;
        a write creates the file and its tables first.
        """
        if write and self.read_only:
            raise PermissionError(f"{self!r} was opened read-only")
        if write:
            self.create()
        else:
            self._require_file()
        with connect(self.path, write=write, lock_timeout=self.lock_timeout) as con:
            yield con

    @contextlib.contextmanager
    def _transaction(self, defer_checkpoint: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a read-write connection inside one transaction (all or nothing).

        ``defer_checkpoint``: leave the write in the write-ahead log while the log is
        small (:func:`~quantdesk.data.store.locking.transaction`).
        """
        if self.read_only:
            raise PermissionError(f"{self!r} was opened read-only")
        self.create()
        with transaction(
            self.path, lock_timeout=self.lock_timeout, defer_checkpoint=defer_checkpoint
        ) as con:
            yield con

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Return the result of a read-only SQL query with bound parameters.

        Examples
        --------
        >>> store.sql("SELECT * FROM bars WHERE symbol = ? LIMIT 5", ["SPX"])  # doctest: +SKIP
        """
        with self._connect() as con:
            return fetch_frame(con, query, params)
