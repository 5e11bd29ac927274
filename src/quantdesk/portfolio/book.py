"""A ledger's book inside a write transaction: positions, lots, and their rows in the store.

:func:`load_book` reads a ledger's cash, positions and FIFO lots on the connection of a
write transaction (:func:`load_lots` reads some symbols' lots, when a trade needs them);
:func:`book_fill` books one fill in it, priced by the order rules
(:func:`quantdesk.backtest.order_rules.fill_order`, the backtest's own); :func:`save_book`
writes the trades, positions, the lots that changed and the cash back, and
:func:`write_snapshot` a snapshot, all in that transaction (the tables:
:mod:`quantdesk.data.store.ledger`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.portfolio.prices import Price, instant

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "Book",
    "Fill",
    "Position",
    "book_fill",
    "create_ledger",
    "load_book",
    "load_lots",
    "price_fill",
    "save_book",
    "write_snapshot",
]

logger = logging.getLogger(__name__)

# Column names of the rows _insert writes, in table order.
_COLUMNS = {
    "paper_trades": [
        "trade_id", "ledger", "ts", "recorded_at", "symbol", "side", "qty", "price",
        "ref_price", "commission", "slippage", "price_source", "price_ts", "realized_avg",
        "realized_fifo", "batch_id",
    ],
    "paper_positions": [
        "ledger", "symbol", "qty", "avg_cost", "realized_avg", "realized_fifo", "last_price",
        "last_price_ts",
    ],
    "paper_lots": ["ledger", "symbol", "trade_id", "qty", "cost"],
}  # fmt: skip


def now() -> pd.Timestamp:
    """Return the current UTC time."""
    return pd.Timestamp(datetime.now(UTC))


@dataclass
class Position:
    """One symbol's book inside a write transaction."""

    qty: float = 0.0
    avg_cost: float = 0.0
    realized_avg: float = 0.0
    realized_fifo: float = 0.0
    last_price: float = float("nan")
    last_price_ts: pd.Timestamp | None = None
    lots: list[list[float]] = field(default_factory=list)  # [trade_id, qty, cost], oldest first
    #: Whether the store holds this position's row, and its lots as the store holds them
    #: (trade id -> qty, cost): what :func:`save_book` must change.
    saved: bool = False
    stored: dict[int, tuple[float, float]] = field(default_factory=dict)
    lots_read: bool = True  # False: the store holds lots not read yet (load_lots)

    def apply(self, trade_id: int, units: float, effective: float) -> tuple[float, float]:
        """Book ``units`` (signed) at effective price ``effective``; return realised (avg, fifo)."""
        from quantdesk.backtest.order_rules import add as _add

        new_qty = _add(self.qty, units)
        if self.qty == 0 or np.sign(units) == np.sign(self.qty):
            # adds a lot: the lots held before are neither read nor changed
            total = abs(self.qty) + abs(units)
            self.avg_cost = (abs(self.qty) * self.avg_cost + abs(units) * effective) / total
            self.lots.append([float(trade_id), units, effective])
            self.qty = new_qty
            return 0.0, 0.0
        if not self.lots_read:
            raise RuntimeError("closing a position needs its FIFO lots: load_lots first")
        side = float(np.sign(self.qty))
        flips = new_qty != 0 and np.sign(new_qty) != side
        closed = abs(self.qty) if new_qty == 0 or flips else abs(units)
        realized_avg = closed * (effective - self.avg_cost) * side
        realized_fifo, left = 0.0, closed
        while left > 0 and self.lots:
            lot = self.lots[0]
            take = min(left, abs(lot[1]))
            realized_fifo += take * (effective - lot[2]) * side
            lot[1] = _add(lot[1], -take * side)
            left -= take
            if lot[1] == 0 or np.sign(lot[1]) != side:
                self.lots.pop(0)
        self.qty = new_qty
        if new_qty == 0 or flips:
            self.lots.clear()
            self.avg_cost = 0.0
        if flips:  # the units past zero open a position the other way at this price
            self.avg_cost = effective
            self.lots.append([float(trade_id), new_qty, effective])
        self.realized_avg += realized_avg
        self.realized_fifo += realized_fifo
        return realized_avg, realized_fifo

    def fifo_cost(self) -> float:
        """Return the unit cost of the remaining FIFO lots."""
        held = sum(abs(lot[1]) for lot in self.lots)
        return sum(abs(lot[1]) * lot[2] for lot in self.lots) / held if held else 0.0


@dataclass
class Book:
    """A ledger's cash and positions read inside a write transaction."""

    cash: float
    initial_cash: float
    positions: dict[str, Position]
    new: bool = False  # not in the store yet: the first successful write creates it
    #: The next trade id and batch id (one batch: the rows of one write), read with the book.
    ids: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class Fill:
    """Return value of :func:`price_fill`: one order's fill price, commission and cash move."""

    units: float
    price: float
    commission: float
    cash_change: float


def price_fill(units: float, price: float, *, commission_bps: float, slippage_bps: float) -> Fill:
    """Return the fill of ``units`` (signed) at reference ``price``, by the order rules.

    The backtest's kernel prices its fills with the same function
    (:func:`quantdesk.backtest.order_rules.fill_order`), so a manual trade, a rebalance
    and a backtest pay the same slippage and commission.

    Raises
    ------
    ValueError
        For units or a price that are not finite, zero units or a price not above zero.
    """
    from quantdesk.backtest import order_rules
    from quantdesk.backtest.engine import BPS

    fill_price, commission, change = order_rules.fill_order(
        float(units), float(price), commission_bps * BPS, slippage_bps * BPS
    )
    return Fill(float(units), float(fill_price), float(commission), float(change))


def book_fill(
    book: Book,
    trades: list[list[Any]],
    fill: Fill,
    *,
    ledger: str,
    trade_id: int,
    batch_id: int,
    ts: pd.Timestamp,
    symbol: str,
    found: Price,
) -> tuple[float, float]:
    """Book ``fill`` in ``book`` and append its trade row; return realised (avg, fifo)."""
    from quantdesk.backtest.order_rules import settle

    units, qty = fill.units, abs(fill.units)
    book.cash = float(settle(book.cash, fill.cash_change))
    # what one unit cost (a buy) or brought in (a sell), commission included
    if units > 0:
        effective = fill.price + fill.commission / qty
    else:
        effective = fill.price - fill.commission / qty
    pos = book.positions.setdefault(symbol, Position())
    realized = pos.apply(trade_id, units, effective)
    pos.last_price, pos.last_price_ts = found.price, found.ts
    trades.append(
        [
            trade_id, ledger, ts, now(), symbol, "buy" if units > 0 else "sell", qty,
            fill.price, found.price, fill.commission, qty * abs(fill.price - found.price),
            found.source, found.ts, realized[0], realized[1], batch_id,
        ]
    )  # fmt: skip
    return realized


def load_book(
    con: duckdb.DuckDBPyConnection, ledger: str, initial_cash: float, *, lots: bool = True
) -> Book:
    """Return ``ledger``'s book (a ``new`` one with ``initial_cash`` if it is not stored).

    ``lots=False`` leaves the FIFO lots unread (a trade that only adds to a position
    never needs them; :func:`load_lots` reads a symbol's when one closes some).
    """
    # one statement for the ledger's row and the ids (each read is a round trip)
    head = con.execute(
        "SELECT 'ledger', cash, initial_cash FROM paper_ledgers WHERE ledger = ? "
        "UNION ALL SELECT 'trades', max(trade_id), max(batch_id) FROM paper_trades "
        "UNION ALL SELECT 'snapshots', NULL, max(batch_id) FROM paper_snapshots",
        [ledger],
    ).fetchall()
    found = {str(kind): (a, b) for kind, a, b in head}
    last_trade, last_batch = (int(v or 0) for v in found["trades"])
    ids = (last_trade + 1, max(last_batch, int(found["snapshots"][1] or 0)) + 1)
    if "ledger" not in found:  # created by its first successful write (create_ledger)
        return Book(initial_cash, initial_cash, {}, new=True, ids=ids)
    positions: dict[str, Position] = {}
    for symbol, qty, avg, r_avg, r_fifo, last, last_ts in con.execute(
        "SELECT symbol, qty, avg_cost, realized_avg, realized_fifo, last_price, last_price_ts "
        "FROM paper_positions WHERE ledger = ?",
        [ledger],
    ).fetchall():
        positions[symbol] = Position(
            qty, avg, r_avg, r_fifo, last, instant(last_ts), saved=True, lots_read=False
        )
    cash, initial = found["ledger"]
    book = Book(float(cash), float(initial), positions, ids=ids)
    if lots:
        load_lots(con, ledger, book)
    return book


def load_lots(
    con: duckdb.DuckDBPyConnection, ledger: str, book: Book, symbols: Sequence[str] | None = None
) -> None:
    """Read the FIFO lots of ``symbols`` (default: every position) into ``book``."""
    wanted = [s for s in (book.positions if symbols is None else symbols) if s in book.positions]
    if not wanted:
        return
    query = "SELECT symbol, trade_id, qty, cost FROM paper_lots WHERE ledger = ?"
    params: list[Any] = [ledger]
    if symbols is not None:
        query += " AND list_contains(?, symbol)"
        params.append(wanted)
    for symbol, trade_id, qty, cost in con.execute(
        query + " ORDER BY symbol, trade_id", params
    ).fetchall():
        pos = book.positions[symbol]
        if not pos.lots_read:
            pos.lots.append([float(trade_id), qty, cost])
            pos.stored[int(trade_id)] = (float(qty), float(cost))
    for symbol in wanted:
        book.positions[symbol].lots_read = True


def create_ledger(con: duckdb.DuckDBPyConnection, ledger: str, book: Book) -> None:
    """Create the ledger of a ``new`` book, inside the write that first succeeds."""
    if not book.new:
        return
    stamp = now()
    con.execute(
        "INSERT INTO paper_ledgers VALUES (?, ?, ?, ?, ?)",
        [ledger, book.initial_cash, book.initial_cash, stamp, stamp],
    )
    write_snapshot(con, ledger, Book(book.initial_cash, book.initial_cash, {}), stamp, 0)
    book.new = False
    logger.info("created paper ledger %r with %.2f cash", ledger, book.initial_cash)


def write_snapshot(
    con: duckdb.DuckDBPyConnection, ledger: str, book: Book, ts: pd.Timestamp, batch_id: int
) -> float:
    """Write a snapshot valued at each position's last price; return its equity."""
    value = sum(p.qty * p.last_price for p in book.positions.values() if p.qty)
    equity = book.cash + value
    con.execute(
        "INSERT INTO paper_snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ledger, ts, batch_id, book.cash, value, equity,
            sum(p.realized_avg for p in book.positions.values()),
            sum(p.realized_fifo for p in book.positions.values()),
            sum(1 for p in book.positions.values() if p.qty),
        ],
    )  # fmt: skip
    return equity


def save_book(
    con: duckdb.DuckDBPyConnection,
    ledger: str,
    book: Book,
    symbols: Sequence[str],
    trades: Sequence[list[Any]] = (),
) -> None:
    """Write ``trades``, then the positions of ``symbols``, their changed lots and the cash.

    The first write of a new ledger creates it (:func:`create_ledger`) before anything
    else.  Only the lots that changed since :func:`load_book` are written (a buy adds
    one; a sell deletes or shrinks the ones it closed).
    """
    create_ledger(con, ledger, book)
    _insert(con, "paper_trades", trades)
    rows, replaced, gone, lots = [], [], [], []
    for symbol in symbols:
        pos = book.positions[symbol]
        rows.append(
            [
                ledger, symbol, pos.qty, pos.avg_cost, pos.realized_avg,
                pos.realized_fifo, pos.last_price, pos.last_price_ts,
            ]
        )  # fmt: skip
        replaced += [symbol] if pos.saved else []
        held = _lot_keys(pos.lots)
        # a lot that shrank is deleted and written again (a trade id opens one lot)
        gone += [trade_id for trade_id, lot in pos.stored.items() if held.get(trade_id) != lot]
        lots += [
            [ledger, symbol, trade_id, qty, cost]
            for trade_id, (qty, cost) in held.items()
            if pos.stored.get(trade_id) != (qty, cost)
        ]
        pos.saved, pos.stored = True, held
    if len(rows) == 1 and replaced:  # one trade of a held symbol: one statement
        con.execute(
            "UPDATE paper_positions SET qty = ?, avg_cost = ?, realized_avg = ?, "
            "realized_fifo = ?, last_price = ?, last_price_ts = ? WHERE ledger = ? AND symbol = ?",
            rows[0][2:] + rows[0][:2],
        )
    else:
        if replaced:
            con.execute(
                "DELETE FROM paper_positions WHERE ledger = ? AND list_contains(?, symbol)",
                [ledger, replaced],
            )
        _insert(con, "paper_positions", rows)
    if gone:
        con.execute(
            "DELETE FROM paper_lots WHERE ledger = ? AND list_contains(?, trade_id)", [ledger, gone]
        )
    _insert(con, "paper_lots", lots)
    con.execute(
        "UPDATE paper_ledgers SET cash = ?, updated_at = ? WHERE ledger = ?",
        [book.cash, now(), ledger],
    )


def _lot_keys(lots: Sequence[Sequence[float]]) -> dict[int, tuple[float, float]]:
    """Return FIFO lots keyed by the id of the trade that opened them: (qty, cost)."""
    return {int(lot[0]): (float(lot[1]), float(lot[2])) for lot in lots}


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[list[Any]]) -> None:
    """Insert ``rows`` into ``table`` in one statement (a 500-fill rebalance is one insert)."""
    if not rows:
        return
    if len(rows) == 1:
        marks = ", ".join("?" * len(rows[0]))
        con.execute(f"INSERT INTO {table} VALUES ({marks})", rows[0])  # table: a fixed name
        return
    ledger_rows = pd.DataFrame(list(rows), columns=_COLUMNS[table])
    # DuckDB reads the local DataFrame by its name (a replacement scan); table: a fixed name
    con.execute(f"INSERT INTO {table} SELECT * FROM ledger_rows")
    del ledger_rows
