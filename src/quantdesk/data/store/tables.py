"""StoreTables: the base of every table family kept in the market store's file.

A family (news and scores, alerts and their outbox, forecasts, the pipeline's record,
paper ledgers) is a subclass in this package that declares its ``DDL`` (``CREATE ...
IF NOT EXISTS``) and a ``MARKER_TABLE`` whose presence says the DDL has run.  Its tables
are created and migrated one way (:func:`~quantdesk.data.store.schema.create_tables`):
on opening a store file that exists (unless read-only: a read-only store simply has
none until a writer creates them), or else inside the first write's own transaction
(:meth:`StoreTables._transaction`), so a write to a new file creates them.  Once per
object, like the market's own tables: later writes do not run the DDL again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

from quantdesk.data.store.market import MarketStore, as_store
from quantdesk.data.store.schema import create_tables

if TYPE_CHECKING:
    import duckdb

__all__ = ["StoreTables"]


class StoreTables:
    """Base of the stores that keep their own tables in the market store's DuckDB file.

    A subclass names its DDL and one table whose presence says the DDL has run
    (``MARKER_TABLE``); ``self.market`` is the :class:`MarketStore` it lives in, and
    its writes run in :meth:`_transaction`, which applies the DDL first.
    """

    DDL: str = ""
    MARKER_TABLE: str = ""

    def __init__(
        self, store: MarketStore | str | Path | None = None, read_only: bool = False
    ) -> None:
        self.market = as_store(store, read_only=read_only)
        self.path = self.market.path
        self._tables_ready = False
        # A missing file is left alone: opening is not a write, and the first write runs
        # the DDL in its own transaction.
        if not self.market.read_only and self.market.exists():
            with self.market._connect(write=True) as con:
                create_tables(con, self.DDL)
            self._tables_ready = True

    @classmethod
    def of(
        cls, store: StoreTables | MarketStore | str | Path | None, read_only: bool = False
    ) -> Self:
        """Return ``store`` itself if it is this family, else this family's tables in it.

        The one way a job takes "these tables, another family's, a market store or a
        path" (the families' :func:`~quantdesk.data.store.market.as_store`).
        """
        if isinstance(store, StoreTables):
            if isinstance(store, cls):
                return store
            store = store.market
        return cls(store, read_only=read_only)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @contextlib.contextmanager
    def _transaction(self, defer_checkpoint: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a connection in one transaction of the market store, with the tables made.

        Creates the file (and the market's tables) on a first write, then this family's
        tables, all inside the transaction: a failed write changes nothing (and the
        tables are made again by the next write).  ``defer_checkpoint``: as
        :func:`~quantdesk.data.store.locking.transaction`.
        """
        with self.market._transaction(defer_checkpoint) as con:
            if not self._tables_ready:
                create_tables(con, self.DDL)
            yield con
        self._tables_ready = True

    def _has_tables(self) -> bool:
        """Return whether the store file holds this family's tables yet.

        Known without a read once this object has made them (a store file's tables are
        never dropped).
        """
        if self._tables_ready:
            return True
        frame = self.market.sql(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?",
            [self.MARKER_TABLE],
        )
        return bool(frame["n"].iloc[0])
