"""The paper ledgers' tables in the market store, and the store reads a ledger needs.

Six tables (``paper_ledgers``, ``paper_trades``, ``paper_positions``, ``paper_lots``,
``paper_snapshots``, ``paper_watchlist``) live in the market store's DuckDB file
beside the bars; :class:`~quantdesk.portfolio.ledger.PaperLedger` writes them.  They
are created by :class:`LedgerTables` (a :class:`~quantdesk.data.store.market.StoreTables`,
like the news and alert tables), and every write runs in one transaction of the store
(:meth:`LedgerTables.transaction`), so a trade's rows, positions, cash and snapshot
move together or not at all.

A ledger prices trades from the store's bars and knows symbols by the store's bars,
ticks and metadata: :func:`latest_bar` and :func:`is_known` read them on the
connection of the transaction that validates the trade, so what was checked is what
is written.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.coerce import as_utc
from quantdesk.data.store.tables import StoreTables

if TYPE_CHECKING:
    import duckdb


__all__ = ["LEDGER_DDL", "LatestBar", "LedgerTables", "is_known", "latest_bar"]

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS paper_ledgers (
    ledger VARCHAR PRIMARY KEY,
    initial_cash DOUBLE NOT NULL,
    cash DOUBLE NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS paper_trades (
    trade_id BIGINT PRIMARY KEY,
    ledger VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    symbol VARCHAR NOT NULL,
    side VARCHAR NOT NULL,
    qty DOUBLE NOT NULL,
    price DOUBLE NOT NULL,
    ref_price DOUBLE NOT NULL,
    commission DOUBLE NOT NULL,
    slippage DOUBLE NOT NULL,
    price_source VARCHAR NOT NULL,
    price_ts TIMESTAMPTZ NOT NULL,
    realized_avg DOUBLE NOT NULL,
    realized_fifo DOUBLE NOT NULL,
    batch_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS paper_positions (
    ledger VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    qty DOUBLE NOT NULL,
    avg_cost DOUBLE NOT NULL,
    realized_avg DOUBLE NOT NULL,
    realized_fifo DOUBLE NOT NULL,
    last_price DOUBLE NOT NULL,
    last_price_ts TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ledger, symbol)
);
CREATE TABLE IF NOT EXISTS paper_lots (
    ledger VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    trade_id BIGINT NOT NULL,
    qty DOUBLE NOT NULL,
    cost DOUBLE NOT NULL,
    PRIMARY KEY (ledger, symbol, trade_id)
);
CREATE TABLE IF NOT EXISTS paper_snapshots (
    ledger VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    batch_id BIGINT NOT NULL,
    cash DOUBLE NOT NULL,
    positions_value DOUBLE NOT NULL,
    equity DOUBLE NOT NULL,
    realized_avg DOUBLE NOT NULL,
    realized_fifo DOUBLE NOT NULL,
    n_positions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS paper_watchlist (
    ledger VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    added_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ledger, symbol)
);
"""

# DuckDB lets one process hold the file, and the threads of that process share one
# database instance, where two write transactions on the same rows conflict (an error)
# instead of waiting as another process's do.  A ledger write reads the cash, checks
# it and spends it in one transaction, so this process's ledger writes to one file
# queue here (the monitor's sessions trade from threads of one server process).
_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path.resolve(), threading.Lock())


class LedgerTables(StoreTables):
    """The paper ledgers' tables in a market store: transactions and reads.

    Parameters
    ----------
    store
        A :class:`~quantdesk.data.store.market.MarketStore` or the path of its file.
    """

    DDL = LEDGER_DDL
    MARKER_TABLE = "paper_ledgers"

    def create(self) -> LedgerTables:
        """Return these tables after creating the store file and the tables where missing."""
        with self.transaction():
            pass
        return self

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a connection inside one write transaction of the store, tables created.

        The block's writes commit together when it ends and roll back if it raises;
        this process's ledger writes to the file run one at a time.  A ledger write is
        small, so it defers the checkpoint (:func:`~quantdesk.data.store.locking.transaction`):
        committed, it stays in the write-ahead log until the log reaches
        :data:`~quantdesk.data.store.locking.DEFERRED_CHECKPOINT_BYTES`.
        """
        with _write_lock(self.path), self._transaction(defer_checkpoint=True) as con:
            yield con

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a short-lived read-only connection to the store."""
        with self.market._connect() as con:
            yield con

    def read(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Return a read-only query's result, time columns as UTC nanoseconds."""
        with self.reading() as con:
            frame: pd.DataFrame = con.execute(query, params or []).df()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        return frame

    def ledgers(self) -> list[str]:
        """Return the names of the ledgers in the store (none before the first write)."""
        if not self.market.exists() or not self._has_tables():
            return []
        frame = self.read("SELECT ledger FROM paper_ledgers ORDER BY 1")
        return [str(name) for name in frame["ledger"]]


@dataclass(frozen=True)
class LatestBar:
    """Return value of :func:`latest_bar`: a symbol's latest stored close."""

    close: float
    ts: pd.Timestamp
    volume: float


def latest_bar(con: duckdb.DuckDBPyConnection, symbol: str) -> LatestBar | None:
    """Return ``symbol``'s latest stored bar (close, time, volume; NaN volume if none).

    ``con`` is a connection to the store (the transaction of the trade it prices).
    """
    row = con.execute(
        "SELECT close, ts, volume FROM bars WHERE symbol = ? ORDER BY ts DESC LIMIT 1", [symbol]
    ).fetchone()
    if row is None:
        return None
    volume = float("nan") if row[2] is None else float(row[2])
    ts = as_utc(row[1])
    assert ts is not None  # bars.ts is NOT NULL
    return LatestBar(float(row[0]), ts, volume)


def is_known(con: duckdb.DuckDBPyConnection, symbol: str) -> bool:
    """Return whether the store has bars, ticks or metadata of ``symbol``."""
    found = con.execute(
        "SELECT 1 FROM bars WHERE symbol = $s UNION ALL SELECT 1 FROM ticks WHERE symbol = $s "
        "UNION ALL SELECT 1 FROM symbols WHERE symbol = $s LIMIT 1",
        {"s": symbol},
    ).fetchone()
    return found is not None
