"""The paper-trading ledger: cash, positions, an append-only trade log, snapshots, a watchlist.

A :class:`PaperLedger` lives in the market store's DuckDB file, beside the bars, in the
``paper_*`` tables; several named ledgers share one file.  Every write (a buy, a sell, a
rebalance, a recorded snapshot) is **one transaction** on a short-lived connection
(:func:`quantdesk.data.store.locking.transaction`): the trade rows, the positions, the
cash and the snapshot move together or not at all, also when the process dies
mid-trade.  Validation reads cash and positions *inside* that transaction, and DuckDB
lets one process at a time hold the file for writing, so two processes trading the
same ledger can never both spend the same cash.

A ledger is created by its first successful write (a trade, a rebalance, a recorded
snapshot, a watchlist entry), in that write's transaction: a rejected first trade
leaves no ledger behind.  Until then it reads as its ``initial_cash`` and nothing else.

Validation (each failure raises :class:`~quantdesk.errors.TradeRejected` with a
``reason``, and nothing is written):

- the quantity must be positive and finite;
- the symbol must be known: in the store (bars, ticks or symbol metadata) or in the
  quote cache;
- a price must exist: given explicitly, a live quote, or the latest stored bar; a quote
  or bar older than ``max_price_age`` is stale (default: :data:`MAX_QUOTE_AGE` for a
  quote, :data:`MAX_BAR_AGE` for a bar, measured from its ``ts``);
- a buy must be covered by cash, commission and slippage included;
- a sell of more than is held is refused unless ``allow_short``; then the
  **buying-power rule** holds after every manual trade: cash must cover
  :data:`SHORT_MARGIN` (150 %, Reg T's initial margin: the proceeds plus half again)
  of the value of every short position, the traded symbol valued at this trade's price
  and the others at their average entry price.  Without shorts the rule is simply
  "cash never goes below zero".

Costs and sizing are the backtest's: a buy or sell fills at the backtest's slippage
and pays its commission (:func:`quantdesk.backtest.engine.fill_costs`), and
:meth:`PaperLedger.rebalance` runs one bar of the backtest's compiled order simulation
from the ledger's cash and positions (:func:`quantdesk.backtest.engine.rebalance_fills`:
fractions of total value, sells first, lot rounding, volume cap), so a ledger that
follows a strategy day by day ends where ``quantdesk.backtest.run`` says.

P&L.  Every fill of ``d`` signed units at fill price ``p`` with commission ``f`` has an
effective unit price ``e = p + f/|d|`` for a buy and ``p - f/|d|`` for a sell (what one
unit cost or brought in cash).  Units that open or add to a position enter its cost at
``e``; units that reduce it realise ``(e - cost) * sign(position)`` each.

- **Average cost** (the default): a position has one cost, the unit-weighted average of
  the ``e`` of the units that opened it; reducing leaves it unchanged.
- **FIFO lots** (``cost_method="fifo"``): every opening fill is a lot with its own
  ``e``; reducing consumes the oldest lots first and realises against each lot's cost.
  A position's FIFO cost is the average of its remaining lots.

Both are kept for every position; ``cost_method`` chooses the one that
:meth:`~PaperLedger.positions` and :meth:`~PaperLedger.snapshot` report.  Either way
realised plus unrealised P&L equals equity minus the initial cash.  One function,
:func:`pnl_split`, splits it, over every symbol ever traded (a closed position keeps
its realised P&L); :class:`LedgerSnapshot` uses it, and so does every surface that
shows a ledger (``quantdesk paper show``, the monitor's positions pane, the
``paper_portfolio`` report).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from quantdesk.config import DEFAULT_COMMISSION_BPS, DEFAULT_SLIPPAGE_BPS
from quantdesk.core.html import summary_html, summary_text
from quantdesk.core.jsonable import jsonable
from quantdesk.data.store.locking import connect, transaction
from quantdesk.data.store.market import MarketStore
from quantdesk.errors import TradeRejected

if TYPE_CHECKING:
    import duckdb

    from quantdesk.data.live.quotes import QuoteCache

__all__ = [
    "LEDGER_DDL",
    "MAX_BAR_AGE",
    "MAX_QUOTE_AGE",
    "SHORT_MARGIN",
    "STRATEGIES",
    "LedgerSnapshot",
    "PaperLedger",
    "PnLSplit",
    "RebalanceResult",
    "Trade",
    "TradeRejected",
    "drift_from_backtest",
    "follow_strategy",
    "pnl_split",
]

logger = logging.getLogger(__name__)

#: A live quote older than this is stale (a feed that stopped a minute ago is not live).
MAX_QUOTE_AGE = pd.Timedelta(minutes=5)
#: A stored bar older than this is stale: a daily bar is stamped 00:00 UTC of its
#: session, so Friday's bar is still the latest on Monday night (four days later).
MAX_BAR_AGE = pd.Timedelta(days=4)
#: Cash must cover this multiple of the value of the short positions (Reg T: 150 %).
SHORT_MARGIN = 1.5
# The order kernel's tolerances: a sell of (nearly) everything leaves exactly nothing,
# and a buy of (nearly) all the cash leaves none, in the ledger as in the backtest.
_REL_TOL = 1e-9
_ABS_TOL = 1e-12

#: Where a price came from (``last_trade`` only values positions, never fills a trade).
PriceSource = Literal["explicit", "store_bar", "live_quote", "last_trade"]

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

# DuckDB lets one process hold the file; threads of that process share one database
# instance, where two write transactions would conflict instead of waiting.  A lock per
# file makes this process's ledger writes queue like other processes' do.
_WRITE_LOCKS: dict[Path, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path.resolve(), threading.Lock())


def _now() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC))


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _is_close(a: float, b: float) -> bool:
    # the order kernel's comparison (quantdesk.backtest._order_kernel, vectorbt's is_close)
    return a == b or abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


def _add(a: float, b: float) -> float:
    """Return ``a + b``, exactly zero when the two nearly cancel (the order kernel's rule)."""
    if np.sign(a) != np.sign(b):
        if _is_close(abs(a), abs(b)):
            return 0.0
    elif _is_close(a + b, 0.0):
        return 0.0
    return a + b


@dataclass(frozen=True)
class Trade:
    """Return value of a buy or sell: one recorded fill and the cash after it."""

    trade_id: int
    ledger: str
    ts: pd.Timestamp
    symbol: str
    side: str
    qty: float
    price: float
    ref_price: float
    commission: float
    slippage: float
    price_source: str
    price_ts: pd.Timestamp
    realized_pnl: float
    cash_after: float

    def summary(self) -> str:
        """Return one line: what was traded, at what, from which price, and the cash left."""
        return (
            f"{self.ledger}: {self.side} {self.qty:g} {self.symbol} @ {self.price:,.4f} "
            f"(ref {self.ref_price:,.4f} from {self.price_source} at "
            f"{self.price_ts:%Y-%m-%d %H:%M:%S}Z; "
            f"commission {self.commission:,.2f}, slippage {self.slippage:,.2f}); "
            f"realised {self.realized_pnl:,.2f}; cash {self.cash_after:,.2f}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the trade as a JSON-ready dict."""
        return dict(jsonable(asdict(self)))


@dataclass(frozen=True)
class PnLSplit:
    """Return value of :func:`pnl_split`: a book's P&L, realised and unrealised."""

    realized: float
    unrealized: float

    @property
    def total(self) -> float:
        """Realised plus unrealised P&L (equity minus the initial cash)."""
        return self.realized + self.unrealized


def pnl_split(positions: pd.DataFrame) -> PnLSplit:
    """Return the realised and unrealised P&L of a book's positions, closed ones included.

    ``positions`` has a row for every symbol the ledger ever traded (the ``positions``
    frame of :meth:`PaperLedger.snapshot` with ``include_closed=True``), with columns
    ``realized_pnl`` and ``unrealized_pnl``.  A closed position has no unrealised P&L
    but keeps what it realised, so leaving it out understates the realised P&L.

    Examples
    --------
    >>> book = pd.DataFrame({"symbol": ["A", "B"], "qty": [0.0, 5.0],
    ...                      "realized_pnl": [-160.0, 12.0], "unrealized_pnl": [0.0, 25.0]})
    >>> pnl_split(book)
    PnLSplit(realized=-148.0, unrealized=25.0)
    """
    if positions.empty:
        return PnLSplit(0.0, 0.0)
    return PnLSplit(
        float(positions["realized_pnl"].sum()), float(positions["unrealized_pnl"].sum())
    )


@dataclass(frozen=True)
class LedgerSnapshot:
    """Return value of :meth:`PaperLedger.snapshot`: the book valued at one set of prices.

    ``positions`` is what the snapshot shows (open positions only, or every symbol ever
    traded); ``book`` is the whole book, closed positions included, when ``positions``
    is not.  The P&L always comes from the whole book (:func:`pnl_split`).
    """

    ledger: str
    ts: pd.Timestamp
    initial_cash: float
    cash: float
    positions: pd.DataFrame = field(repr=False)
    cost_method: str = "average"
    book: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def pnl(self) -> PnLSplit:
        """Realised and unrealised P&L over every symbol ever traded."""
        return pnl_split(self.positions if self.book is None else self.book)

    @property
    def positions_value(self) -> float:
        """Market value of all positions (shorts negative)."""
        return float(self.positions["market_value"].sum()) if len(self.positions) else 0.0

    @property
    def equity(self) -> float:
        """Cash plus the value of the positions."""
        return self.cash + self.positions_value

    @property
    def realized_pnl(self) -> float:
        """Realised P&L by the ledger's cost method, over every symbol ever traded."""
        return self.pnl.realized

    @property
    def unrealized_pnl(self) -> float:
        """Unrealised P&L of the open positions at these prices."""
        return self.pnl.unrealized

    @property
    def total_pnl(self) -> float:
        """Equity minus the initial cash (= realised + unrealised)."""
        return self.equity - self.initial_cash

    def _headline(self) -> dict[str, Any]:
        return {
            "as of": self.ts,
            "equity": self.equity,
            "cash": self.cash,
            "positions value": self.positions_value,
            "P&L": self.total_pnl,
            "realised": self.realized_pnl,
            "unrealised": self.unrealized_pnl,
        }

    def __repr__(self) -> str:
        return summary_text(f"LedgerSnapshot {self.ledger!r}", self._headline())

    def _repr_html_(self) -> str:
        title = f"Paper ledger {self.ledger!r} ({self.cost_method} cost)"
        return summary_html(title, self._headline(), {"positions": self.positions})

    def summary(self) -> str:
        """Return a readable account: cash, equity, P&L and one line per open position."""
        lines = [
            f"ledger {self.ledger!r} at {self.ts:%Y-%m-%d %H:%M:%S}Z ({self.cost_method} cost)",
            f"cash {self.cash:,.2f}  positions {self.positions_value:,.2f}  "
            f"equity {self.equity:,.2f}",
            f"P&L {self.total_pnl:,.2f} (realised {self.realized_pnl:,.2f}, "
            f"unrealised {self.unrealized_pnl:,.2f})",
        ]
        open_ = self.positions[self.positions["qty"] != 0]
        for row in open_.itertuples():
            lines.append(
                f"  {row.symbol:<10} {row.qty:>14,.4f} @ {row.avg_cost:>12,.4f}  "
                f"px {row.price:>12,.4f} ({row.price_source})  "
                f"value {row.market_value:>14,.2f}  unrealised {row.unrealized_pnl:>12,.2f}"
            )
        if open_.empty:
            lines.append("  no open positions")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as a JSON-ready dict (positions as a list of records)."""
        return dict(
            jsonable(
                {
                    "ledger": self.ledger,
                    "ts": self.ts,
                    "cost_method": self.cost_method,
                    "initial_cash": self.initial_cash,
                    "cash": self.cash,
                    "positions_value": self.positions_value,
                    "equity": self.equity,
                    "realized_pnl": self.realized_pnl,
                    "unrealized_pnl": self.unrealized_pnl,
                    "total_pnl": self.total_pnl,
                    "positions": self.positions.to_dict("records"),
                }
            )
        )


@dataclass(frozen=True)
class RebalanceResult:
    """Return value of :meth:`PaperLedger.rebalance`: the fills and the book after them."""

    ledger: str
    ts: pd.Timestamp
    fills: pd.DataFrame = field(repr=False)
    cash_before: float
    cash_after: float
    equity: float
    kept: tuple[str, ...] = ()

    @property
    def turnover(self) -> float:
        """Traded value over equity."""
        if self.fills.empty or not self.equity:
            return 0.0
        return float((self.fills["qty"] * self.fills["price"]).sum() / self.equity)

    @property
    def costs(self) -> float:
        """Commission plus slippage paid."""
        if self.fills.empty:
            return 0.0
        return float(self.fills["commission"].sum() + self.fills["slippage"].sum())

    def summary(self) -> str:
        """Return a readable account: fills, turnover, costs and cash."""
        lines = [
            f"ledger {self.ledger!r} rebalanced at {self.ts:%Y-%m-%d %H:%M:%S}Z: "
            f"{len(self.fills)} fills, turnover {self.turnover:.2%}, costs {self.costs:,.2f}",
            f"cash {self.cash_before:,.2f} -> {self.cash_after:,.2f}; equity {self.equity:,.2f}",
        ]
        for row in self.fills.itertuples():
            lines.append(f"  {row.side:<4} {row.qty:>14,.4f} {row.symbol:<10} @ {row.price:,.4f}")
        if self.kept:
            lines.append(
                f"kept {len(self.kept)} held symbol(s) with no target weight (no opinion, "
                f"e.g. too little history): {', '.join(self.kept)}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the rebalance as a JSON-ready dict."""
        return dict(
            jsonable(
                {
                    "ledger": self.ledger,
                    "ts": self.ts,
                    "cash_before": self.cash_before,
                    "cash_after": self.cash_after,
                    "equity": self.equity,
                    "turnover": self.turnover,
                    "costs": self.costs,
                    "kept": list(self.kept),
                    "fills": self.fills.to_dict("records"),
                }
            )
        )


@dataclass
class _Position:
    """One symbol's book inside a write transaction."""

    qty: float = 0.0
    avg_cost: float = 0.0
    realized_avg: float = 0.0
    realized_fifo: float = 0.0
    last_price: float = float("nan")
    last_price_ts: pd.Timestamp | None = None
    lots: list[list[float]] = field(default_factory=list)  # [trade_id, qty, cost], oldest first

    def apply(self, trade_id: int, units: float, effective: float) -> tuple[float, float]:
        """Book ``units`` (signed) at effective price ``effective``; return realised (avg, fifo)."""
        new_qty = _add(self.qty, units)
        if self.qty == 0 or np.sign(units) == np.sign(self.qty):
            total = abs(self.qty) + abs(units)
            self.avg_cost = (abs(self.qty) * self.avg_cost + abs(units) * effective) / total
            self.lots.append([float(trade_id), units, effective])
            self.qty = new_qty
            return 0.0, 0.0
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
class _Book:
    """A ledger's cash and positions read inside a write transaction."""

    cash: float
    initial_cash: float
    positions: dict[str, _Position]
    new: bool = False  # not in the store yet: the first successful write creates it


@dataclass(frozen=True)
class _Price:
    price: float
    source: PriceSource
    ts: pd.Timestamp
    volume: float = float("nan")


class PaperLedger:
    """A named paper portfolio in the market store: trade it, rebalance it, value it.

    Parameters
    ----------
    store
        A :class:`~quantdesk.data.store.market.MarketStore`, the path of its DuckDB file, or
        None for the default store (``$QUANTDESK_HOME/quantdesk.duckdb``).
    initial_cash
        Cash of a new ledger; an existing ledger keeps the cash it has.
    name
        The ledger's name; several ledgers share one store.
    allow_short
        Let sells go past the position (the buying-power rule of the module docstring).
    max_price_age
        Oldest quote or bar a trade may use; None for :data:`MAX_QUOTE_AGE` (quotes)
        and :data:`MAX_BAR_AGE` (bars).  Explicit prices are never stale.
    lot_size
        Round rebalance orders down to multiples of this (the backtest's ``lot_size``).
    max_volume_share
        Cap each rebalance order at this share of the bar's volume (the backtest's
        volume cap); needs a volume (store bars or ``volume=``).
    commission_bps, slippage_bps
        Costs, as in the backtest (default :data:`~quantdesk.config.DEFAULT_COMMISSION_BPS`,
        :data:`~quantdesk.config.DEFAULT_SLIPPAGE_BPS`).
    price_source
        A live :class:`~quantdesk.data.live.quotes.QuoteCache` to price trades from
        (before the store's bars) when a call gives no ``prices``.
    cost_method
        ``"average"`` (default) or ``"fifo"``: the cost and realised P&L reported.
    before_commit
        Called inside every write transaction just before it commits (an audit hook;
        the tests use it to kill a process mid-trade).

    Examples
    --------
    >>> ledger = PaperLedger(tmp_path / "store.duckdb", initial_cash=10_000)  # doctest: +SKIP
    >>> ledger.buy("SPY", 10, price=450.0).summary()  # doctest: +SKIP
    >>> ledger.snapshot().summary()  # doctest: +SKIP
    """

    def __init__(
        self,
        store: MarketStore | str | Path | None = None,
        initial_cash: float = 100_000.0,
        name: str = "default",
        *,
        allow_short: bool = False,
        max_price_age: pd.Timedelta | None = None,
        lot_size: float | None = None,
        max_volume_share: float | None = None,
        commission_bps: float = DEFAULT_COMMISSION_BPS,
        slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
        price_source: QuoteCache | None = None,
        cost_method: Literal["average", "fifo"] = "average",
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        if not (math.isfinite(initial_cash) and initial_cash >= 0):
            raise ValueError("initial_cash must be a finite amount >= 0")
        if cost_method not in ("average", "fifo"):
            raise ValueError("cost_method must be 'average' or 'fifo'")
        if not name or not name.strip():
            raise ValueError("a ledger needs a name")
        self.store = store if isinstance(store, MarketStore) else MarketStore(store)
        self.name = name
        self.allow_short = allow_short
        self.max_price_age = max_price_age
        self.lot_size = lot_size
        self.max_volume_share = max_volume_share
        self.commission_bps = commission_bps
        self.slippage_bps = slippage_bps
        self.price_source = price_source
        self.cost_method = cost_method
        self.before_commit = before_commit
        self._initial_cash = float(initial_cash)
        with self._transaction() as con:
            con.execute(LEDGER_DDL)

    def __repr__(self) -> str:
        return f"PaperLedger({str(self.store.path)!r}, name={self.name!r})"

    def _repr_html_(self) -> str:
        # Stored figures only: valuing the book needs prices a notebook may not have.
        trades = self.trades()
        snapshots = self.snapshots()
        headline: dict[str, Any] = {
            "cash": self.cash,
            "initial cash": self.initial_cash,
            "trades": len(trades),
        }
        if len(snapshots) and "equity" in snapshots:
            headline["last recorded equity"] = float(snapshots["equity"].iloc[-1])
        headline["store"] = str(self.store.path)
        details = {"trades": trades, "snapshots": snapshots}
        return summary_html(f"Paper ledger {self.name!r}", headline, details)

    # -- connections -------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.store.create().path
        with _write_lock(path), transaction(path, lock_timeout=self.store.lock_timeout) as con:
            yield con
            if self.before_commit is not None:
                self.before_commit()

    def _read(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with connect(self.store.path, lock_timeout=self.store.lock_timeout) as con:
            frame: pd.DataFrame = con.execute(query, params or []).df()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        return frame

    # -- reads -------------------------------------------------------------------------

    @property
    def cash(self) -> float:
        """Cash now (committed trades only; ``initial_cash`` before the first write)."""
        rows = self._read("SELECT cash FROM paper_ledgers WHERE ledger = ?", [self.name])
        return float(rows["cash"].iloc[0]) if len(rows) else self._initial_cash

    @property
    def initial_cash(self) -> float:
        """Cash the ledger started with (or will start with, before its first write)."""
        rows = self._read("SELECT initial_cash FROM paper_ledgers WHERE ledger = ?", [self.name])
        return float(rows["initial_cash"].iloc[0]) if len(rows) else self._initial_cash

    def trades(self) -> pd.DataFrame:
        """Return every trade of this ledger, oldest first (the append-only log)."""
        return self._read(
            "SELECT * EXCLUDE (ledger) FROM paper_trades WHERE ledger = ? ORDER BY trade_id",
            [self.name],
        )

    def snapshots(self) -> pd.DataFrame:
        """Return the snapshots written after every trade, rebalance and :meth:`record_snapshot`."""
        return self._read(
            "SELECT * EXCLUDE (ledger) FROM paper_snapshots WHERE ledger = ? ORDER BY batch_id, ts",
            [self.name],
        )

    def activity(self) -> pd.DataFrame:
        """Return trading per day: trades, traded value, commission, slippage, turnover.

        ``turnover`` is the day's traded value over the equity of its last snapshot; the
        index is the UTC date at 00:00 (a daily bar's ``ts``).
        """
        trades = self.trades()
        snaps = self.snapshots()
        columns = ["trades", "traded_value", "commission", "slippage", "turnover"]
        if trades.empty:
            return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC", name="ts"))
        day = trades["ts"].dt.floor("D").rename("ts")
        per_day = pd.DataFrame(
            {
                "trades": trades.groupby(day)["trade_id"].count(),
                "traded_value": (trades["qty"] * trades["price"]).groupby(day).sum(),
                "commission": trades.groupby(day)["commission"].sum(),
                "slippage": trades.groupby(day)["slippage"].sum(),
            }
        )
        equity = snaps.groupby(snaps["ts"].dt.floor("D").rename("ts"))["equity"].last()
        per_day["turnover"] = per_day["traded_value"] / equity.reindex(per_day.index)
        return per_day[columns]

    def watchlist(self) -> list[str]:
        """Return the symbols on this ledger's watchlist, in the order they were added."""
        rows = self._read(
            "SELECT symbol FROM paper_watchlist WHERE ledger = ? ORDER BY added_at, symbol",
            [self.name],
        )
        return [str(s) for s in rows["symbol"]]

    @staticmethod
    def ledgers(store: MarketStore | str | Path | None = None) -> list[str]:
        """Return the names of the ledgers in ``store``."""
        market = store if isinstance(store, MarketStore) else MarketStore(store)
        with connect(market.path, lock_timeout=market.lock_timeout) as con:
            tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            if "paper_ledgers" not in tables:
                return []
            return [
                r[0] for r in con.execute("SELECT ledger FROM paper_ledgers ORDER BY 1").fetchall()
            ]

    def positions(self, prices: Any = None, *, include_closed: bool = False) -> pd.DataFrame:
        """Return the positions valued at ``prices``: qty, cost, price, value, P&L, weight.

        ``prices`` is a mapping or Series (symbol -> price), a live
        :class:`~quantdesk.data.live.quotes.QuoteCache`, or None: the ledger's
        ``price_source`` quote when there is one, else the latest stored bar, else the
        price of the symbol's last trade.  Reading never rejects a stale price; the
        ``price_source`` and ``price_ts`` columns say where each price came from.
        Columns: ``symbol, qty, avg_cost, cost_basis, price, price_source, price_ts,
        market_value, unrealized_pnl, realized_pnl, weight`` (cost and realised P&L by
        the ledger's ``cost_method``).
        """
        return self.snapshot(prices, include_closed=include_closed).positions

    def snapshot(self, prices: Any = None, *, include_closed: bool = True) -> LedgerSnapshot:
        """Return the book valued at ``prices`` (as :meth:`positions`), without writing."""
        with connect(self.store.path, lock_timeout=self.store.lock_timeout) as con:
            book = self._load(con)
            now = _now()
            frame = self._valued(con, book, prices, now)
        shown = frame if include_closed else frame[frame["qty"] != 0].reset_index(drop=True)
        return LedgerSnapshot(
            ledger=self.name,
            ts=now,
            initial_cash=book.initial_cash,
            cash=book.cash,
            positions=shown,
            cost_method=self.cost_method,
            book=frame,
        )

    def _valued(
        self, con: duckdb.DuckDBPyConnection, book: _Book, prices: Any, now: pd.Timestamp
    ) -> pd.DataFrame:
        rows = []
        for symbol, pos in sorted(book.positions.items()):
            found = None
            if pos.qty != 0:
                with contextlib.suppress(TradeRejected):
                    found = self._price(con, symbol, None, prices, now, check_age=False)
            if found is None:
                found = _Price(pos.last_price, "last_trade", pos.last_price_ts or now)
            cost = pos.fifo_cost() if self.cost_method == "fifo" else pos.avg_cost
            realized = pos.realized_fifo if self.cost_method == "fifo" else pos.realized_avg
            value = pos.qty * found.price
            rows.append(
                {
                    "symbol": symbol,
                    "qty": pos.qty,
                    "avg_cost": cost,
                    "cost_basis": pos.qty * cost,
                    "price": found.price,
                    "price_source": found.source,
                    "price_ts": found.ts,
                    "market_value": value,
                    "unrealized_pnl": pos.qty * (found.price - cost) if pos.qty else 0.0,
                    "realized_pnl": realized,
                }
            )
        columns = [
            "symbol", "qty", "avg_cost", "cost_basis", "price", "price_source", "price_ts",
            "market_value", "unrealized_pnl", "realized_pnl", "weight",
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=columns[:-1])
        equity = book.cash + float(frame["market_value"].sum()) if rows else book.cash
        frame["weight"] = frame["market_value"] / equity if equity else np.nan
        frame["price_ts"] = pd.to_datetime(frame["price_ts"], utc=True)
        return frame

    # -- the book inside a transaction -------------------------------------------------

    def _load(self, con: duckdb.DuckDBPyConnection) -> _Book:
        row = con.execute(
            "SELECT cash, initial_cash FROM paper_ledgers WHERE ledger = ?", [self.name]
        ).fetchone()
        if row is None:  # created by its first successful write (_create)
            return _Book(self._initial_cash, self._initial_cash, {}, new=True)
        positions: dict[str, _Position] = {}
        for symbol, qty, avg, r_avg, r_fifo, last, last_ts in con.execute(
            "SELECT symbol, qty, avg_cost, realized_avg, realized_fifo, last_price, last_price_ts "
            "FROM paper_positions WHERE ledger = ?",
            [self.name],
        ).fetchall():
            positions[symbol] = _Position(qty, avg, r_avg, r_fifo, last, _utc(last_ts))
        for symbol, trade_id, qty, cost in con.execute(
            "SELECT symbol, trade_id, qty, cost FROM paper_lots WHERE ledger = ? "
            "ORDER BY symbol, trade_id",
            [self.name],
        ).fetchall():
            positions[symbol].lots.append([float(trade_id), qty, cost])
        return _Book(float(row[0]), float(row[1]), positions)

    def _known(self, con: duckdb.DuckDBPyConnection, symbol: str, prices: Any) -> bool:
        cache = self._cache(prices)
        if cache is not None and cache.get(symbol) is not None:
            return True
        found = con.execute(
            "SELECT 1 FROM bars WHERE symbol = $s UNION ALL SELECT 1 FROM ticks WHERE symbol = $s "
            "UNION ALL SELECT 1 FROM symbols WHERE symbol = $s LIMIT 1",
            {"s": symbol},
        ).fetchone()
        return found is not None

    def _cache(self, prices: Any) -> Any:
        if prices is not None and _is_quote_cache(prices):
            return prices
        return self.price_source

    def _price(
        self,
        con: duckdb.DuckDBPyConnection,
        symbol: str,
        price: float | None,
        prices: Any,
        now: pd.Timestamp,
        *,
        ts: Any = None,
        check_age: bool = True,
    ) -> _Price:
        """Return the price a trade in ``symbol`` uses, with its source and time."""
        if price is None and prices is not None and not _is_quote_cache(prices):
            value = prices.get(symbol) if isinstance(prices, Mapping | pd.Series) else None
            price = None if value is None or pd.isna(value) else float(value)
        if price is not None:
            if not (math.isfinite(price) and price > 0):
                raise TradeRejected(
                    f"{symbol}: price {price!r} is not a positive number", reason="bad_price"
                )
            return _Price(float(price), "explicit", now if ts is None else _utc(ts))
        cache = self._cache(prices)
        quote = cache.get(symbol) if cache is not None else None
        if quote is not None:
            found = _Price(float(quote.price), "live_quote", _utc(quote.ts))
            limit = MAX_QUOTE_AGE
        else:
            row = con.execute(
                "SELECT close, ts, volume FROM bars WHERE symbol = ? ORDER BY ts DESC LIMIT 1",
                [symbol],
            ).fetchone()
            if row is None:
                raise TradeRejected(
                    f"{symbol}: no price (no explicit price, no live quote, no stored bar)",
                    reason="no_price",
                )
            volume = float("nan") if row[2] is None else float(row[2])
            found = _Price(float(row[0]), "store_bar", _utc(row[1]), volume)
            limit = MAX_BAR_AGE
        limit = self.max_price_age if self.max_price_age is not None else limit
        age = now - found.ts
        if check_age and age > limit:
            raise TradeRejected(
                f"{symbol}: the {found.source.replace('_', ' ')} price {found.price:g} is from "
                f"{found.ts:%Y-%m-%d %H:%M:%S}Z, {_age_text(age)} old (limit {_age_text(limit)})",
                reason="stale_price",
            )
        return found

    def _create(self, con: duckdb.DuckDBPyConnection, book: _Book) -> None:
        """Create the ledger of a ``new`` book, inside the write that first succeeds."""
        if not book.new:
            return
        now = _now()
        con.execute(
            "INSERT INTO paper_ledgers VALUES (?, ?, ?, ?, ?)",
            [self.name, book.initial_cash, book.initial_cash, now, now],
        )
        self._write_snapshot(con, _Book(book.initial_cash, book.initial_cash, {}), now, 0)
        book.new = False
        logger.info("created paper ledger %r with %.2f cash", self.name, book.initial_cash)

    def _write_snapshot(
        self, con: duckdb.DuckDBPyConnection, book: _Book, ts: pd.Timestamp, batch_id: int
    ) -> float:
        """Write a snapshot valued at each position's last price; return its equity."""
        value = sum(p.qty * p.last_price for p in book.positions.values() if p.qty)
        equity = book.cash + value
        con.execute(
            "INSERT INTO paper_snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.name, ts, batch_id, book.cash, value, equity,
                sum(p.realized_avg for p in book.positions.values()),
                sum(p.realized_fifo for p in book.positions.values()),
                sum(1 for p in book.positions.values() if p.qty),
            ],
        )  # fmt: skip
        return equity

    def _save(
        self,
        con: duckdb.DuckDBPyConnection,
        book: _Book,
        symbols: Sequence[str],
        trades: Sequence[list[Any]] = (),
    ) -> None:
        """Write ``trades``, then the positions and lots of ``symbols`` and the cash.

        The first write of a new ledger creates it (:meth:`_create`) before anything else.
        """
        self._create(con, book)
        _insert(con, "paper_trades", trades)
        names = list(symbols)
        con.execute(
            "DELETE FROM paper_positions WHERE ledger = ? AND list_contains(?, symbol)",
            [self.name, names],
        )
        con.execute(
            "DELETE FROM paper_lots WHERE ledger = ? AND list_contains(?, symbol)",
            [self.name, names],
        )
        positions, lots = [], []
        for symbol in names:
            pos = book.positions[symbol]
            positions.append(
                [
                    self.name, symbol, pos.qty, pos.avg_cost, pos.realized_avg,
                    pos.realized_fifo, pos.last_price, pos.last_price_ts,
                ]
            )  # fmt: skip
            lots += [[self.name, symbol, int(lot[0]), lot[1], lot[2]] for lot in pos.lots]
        _insert(con, "paper_positions", positions)
        _insert(con, "paper_lots", lots)
        con.execute(
            "UPDATE paper_ledgers SET cash = ?, updated_at = ? WHERE ledger = ?",
            [book.cash, _now(), self.name],
        )

    @staticmethod
    def _next_ids(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        row = con.execute(
            "SELECT coalesce(max(trade_id), 0), coalesce(max(batch_id), 0) FROM paper_trades"
        ).fetchone()
        snap = con.execute("SELECT coalesce(max(batch_id), 0) FROM paper_snapshots").fetchone()
        assert row is not None and snap is not None  # an aggregate always returns a row
        return int(row[0]) + 1, max(int(row[1]), int(snap[0])) + 1

    def _book_fill(
        self,
        book: _Book,
        trades: list[list[Any]],
        *,
        trade_id: int,
        batch_id: int,
        ts: pd.Timestamp,
        symbol: str,
        units: float,
        fill_price: float,
        commission: float,
        found: _Price,
    ) -> tuple[float, float]:
        """Book one fill in ``book`` and append its trade row; return realised (avg, fifo)."""
        qty = abs(units)
        # cash moves as in the order kernel, so a ledger and a backtest agree to the last bit
        if units > 0:
            book.cash = _add(book.cash, -(qty * fill_price + commission))
            effective = fill_price + commission / qty
        else:
            book.cash = book.cash + _add(qty * fill_price, -commission)
            effective = fill_price - commission / qty
        pos = book.positions.setdefault(symbol, _Position())
        realized = pos.apply(trade_id, units, effective)
        pos.last_price, pos.last_price_ts = found.price, found.ts
        trades.append(
            [
                trade_id, self.name, ts, _now(), symbol, "buy" if units > 0 else "sell", qty,
                fill_price, found.price, commission, qty * abs(fill_price - found.price),
                found.source, found.ts, realized[0], realized[1], batch_id,
            ]
        )  # fmt: skip
        return realized

    # -- writes ------------------------------------------------------------------------

    def buy(
        self,
        symbol: str,
        qty: float,
        price: float | None = None,
        *,
        prices: Any = None,
        ts: Any = None,
    ) -> Trade:
        """Return the trade of buying ``qty`` units of ``symbol``, validated and recorded.

        ``price`` is an explicit price (recorded as such, at ``ts`` or now); otherwise
        ``prices`` (a mapping or a quote cache), the ledger's ``price_source`` or the
        latest stored bar.  The fill pays the backtest's slippage and commission.

        Raises
        ------
        TradeRejected
            For any of the reasons in the module docstring; nothing is written.
        """
        return self._trade(symbol, qty, +1, price, prices, ts)

    def sell(
        self,
        symbol: str,
        qty: float,
        price: float | None = None,
        *,
        prices: Any = None,
        ts: Any = None,
    ) -> Trade:
        """Return the trade of selling ``qty`` units of ``symbol`` (as :meth:`buy`)."""
        return self._trade(symbol, qty, -1, price, prices, ts)

    def _trade(
        self, symbol: str, qty: Any, side: int, price: float | None, prices: Any, ts: Any
    ) -> Trade:
        from quantdesk.backtest.engine import fill_costs

        verb = "buy" if side > 0 else "sell"
        try:
            units = float(qty)
        except (TypeError, ValueError):
            raise TradeRejected(
                f"{verb} {symbol}: quantity {qty!r} is not a number", reason="bad_quantity"
            ) from None
        if not (math.isfinite(units) and units > 0):
            raise TradeRejected(
                f"{verb} {symbol}: quantity must be a positive finite number, not {qty!r}",
                reason="bad_quantity",
            )
        symbol = str(symbol).strip()
        with self._transaction() as con:
            now = _now()
            book = self._load(con)
            if symbol not in book.positions and not self._known(con, symbol, prices):
                raise TradeRejected(
                    f"{verb} {symbol}: unknown symbol (not in the store, not in the quote cache)",
                    reason="unknown_symbol",
                )
            found = self._price(con, symbol, price, prices, now, ts=ts)
            signed = side * units
            fill_price, commission = fill_costs(
                signed,
                found.price,
                commission_bps=self.commission_bps,
                slippage_bps=self.slippage_bps,
            )
            held = book.positions[symbol].qty if symbol in book.positions else 0.0
            if side < 0 and not self.allow_short and units > held * (1 + _REL_TOL):
                raise TradeRejected(
                    f"sell {units:g} {symbol}: only {held:g} held and shorting is off",
                    reason="insufficient_position",
                )
            if side < 0 and not self.allow_short:
                units = min(units, held)  # a rounding hair above the position closes it
                signed = -units
            cost = units * fill_price + commission
            if side > 0 and cost > book.cash * (1 + _REL_TOL):
                raise TradeRejected(
                    f"buy {units:g} {symbol}: costs {cost:,.2f} with commission and "
                    f"slippage, cash is {book.cash:,.2f}",
                    reason="insufficient_cash",
                )
            if self.allow_short:
                cash_after = book.cash + (-cost if side > 0 else units * fill_price - commission)
                shorts = sum(
                    -(p.qty + (signed if s == symbol else 0.0))
                    * (found.price if s == symbol else p.avg_cost)
                    for s, p in book.positions.items()
                    if p.qty + (signed if s == symbol else 0.0) < 0
                )
                if symbol not in book.positions and signed < 0:
                    shorts += -signed * found.price
                if cash_after < SHORT_MARGIN * shorts - 1e-9:
                    raise TradeRejected(
                        f"{verb} {units:g} {symbol}: cash after the trade {cash_after:,.2f} would "
                        f"not cover {SHORT_MARGIN:.0%} of the short positions ({shorts:,.2f})",
                        reason="buying_power",
                    )
            trade_id, batch_id = self._next_ids(con)
            trade_ts = found.ts if found.source == "explicit" else now
            rows: list[list[Any]] = []
            realized = self._book_fill(
                book, rows, trade_id=trade_id, batch_id=batch_id, ts=trade_ts, symbol=symbol,
                units=signed, fill_price=fill_price, commission=commission, found=found,
            )  # fmt: skip
            self._save(con, book, [symbol], rows)
            self._write_snapshot(con, book, trade_ts, batch_id)
        trade = Trade(
            trade_id=trade_id,
            ledger=self.name,
            ts=trade_ts,
            symbol=symbol,
            side=verb,
            qty=units,
            price=fill_price,
            ref_price=found.price,
            commission=commission,
            slippage=units * abs(fill_price - found.price),
            price_source=found.source,
            price_ts=found.ts,
            realized_pnl=realized[1] if self.cost_method == "fifo" else realized[0],
            cash_after=book.cash,
        )
        logger.info("%s", trade.summary())
        return trade

    def rebalance(
        self,
        target_weights: pd.Series | pd.DataFrame | Mapping[str, float],
        prices: Any = None,
        *,
        volume: pd.Series | Mapping[str, float] | None = None,
        ts: Any = None,
    ) -> RebalanceResult:
        """Return the fills of trading the book to ``target_weights``, in one transaction.

        The orders are one bar of :func:`quantdesk.backtest.run`
        (:func:`quantdesk.backtest.engine.rebalance_fills`): weights are fractions of the
        book's total value at ``prices``, sells go first, buys that cash cannot cover fill
        partially, ``lot_size`` rounds down and ``max_volume_share`` caps each order at a
        share of ``volume`` (or the stored bar's volume).  NaN or absent weights place no
        order: a held symbol without a weight (the strategy has no opinion on it, e.g.
        in its warm-up) is kept, and the result's ``kept`` and summary name it.

        Parameters
        ----------
        target_weights
            Symbol -> weight; a DataFrame of weights uses its last row (the strategy's
            latest decision).
        prices
            A mapping or Series of prices (explicit, at ``ts`` or now), a live quote cache,
            or None (the ledger's ``price_source``, then the store's latest bars).  Every
            weighted or held symbol needs a price that is not stale.
        volume
            The bar's volume per symbol, for ``max_volume_share`` with explicit prices.
        ts
            Time of explicit prices and of the trades (default now).

        Raises
        ------
        TradeRejected
            Negative weights without ``allow_short``, non-finite weights, an unknown
            symbol, or a missing or stale price; nothing is written.
        """
        from quantdesk.backtest.engine import rebalance_fills

        if isinstance(target_weights, pd.DataFrame):
            if target_weights.empty:
                raise TradeRejected("rebalance: no target weights", reason="bad_weights")
            target_weights = target_weights.iloc[-1]
        weights = pd.Series(target_weights, dtype=np.float64)
        weights.index = weights.index.map(str)
        if np.isinf(weights.to_numpy()).any():
            raise TradeRejected(
                "rebalance: weights must be finite (NaN: no order)", reason="bad_weights"
            )
        if not self.allow_short and (weights < 0).any():
            raise TradeRejected(
                f"rebalance: negative weights {sorted(weights[weights < 0].index)[:5]} need "
                "allow_short=True",
                reason="bad_weights",
            )
        with self._transaction() as con:
            now = _now()
            book = self._load(con)
            held = [s for s, p in book.positions.items() if p.qty != 0]
            wanted = [str(s) for s in weights.dropna().index]
            kept = tuple(sorted(set(held) - set(wanted)))
            found: dict[str, _Price] = {}
            for symbol in dict.fromkeys([*wanted, *held]):
                if symbol not in book.positions and not self._known(con, symbol, prices):
                    raise TradeRejected(
                        f"rebalance: unknown symbol {symbol} (not in the store, not in the "
                        "quote cache)",
                        reason="unknown_symbol",
                    )
                found[symbol] = self._price(con, symbol, None, prices, now, ts=ts)
            price_row = pd.Series({s: f.price for s, f in found.items()}, dtype=np.float64)
            bar_volume = None
            if self.max_volume_share is not None:
                given = pd.Series(volume if volume is not None else {}, dtype=np.float64)
                stored = pd.Series({s: f.volume for s, f in found.items()}, dtype=np.float64)
                bar_volume = given.combine_first(stored)
            units = pd.Series({s: book.positions[s].qty for s in held}, dtype=np.float64)
            fills = rebalance_fills(
                price_row, weights, cash=book.cash, units=units,
                commission_bps=self.commission_bps, slippage_bps=self.slippage_bps,
                volume=bar_volume, max_volume_share=self.max_volume_share, lot_size=self.lot_size,
            )  # fmt: skip
            cash_before = book.cash
            trade_id, batch_id = self._next_ids(con)
            trade_ts = now if ts is None else _utc(ts)
            records = []
            rows: list[list[Any]] = []
            fill_rows = zip(
                fills["symbol"].map(str),
                fills["units"].to_numpy(np.float64),
                fills["price"].to_numpy(np.float64),
                fills["commission"].to_numpy(np.float64),
                strict=True,
            )
            for i, (symbol, signed, fill_price, commission) in enumerate(fill_rows):
                f = found[symbol]
                self._book_fill(
                    book, rows, trade_id=trade_id + i, batch_id=batch_id, ts=trade_ts,
                    symbol=symbol, units=float(signed), fill_price=float(fill_price),
                    commission=float(commission), found=f,
                )  # fmt: skip
                records.append(
                    {
                        "trade_id": trade_id + i,
                        "symbol": symbol,
                        "side": "buy" if signed > 0 else "sell",
                        "qty": abs(float(signed)),
                        "price": float(fill_price),
                        "ref_price": f.price,
                        "commission": float(commission),
                        "slippage": abs(float(signed)) * abs(float(fill_price) - f.price),
                        "price_source": f.source,
                        "price_ts": f.ts,
                    }
                )
            for symbol in found:  # value the snapshot at this rebalance's prices
                if symbol in book.positions:
                    pos = book.positions[symbol]
                    pos.last_price, pos.last_price_ts = found[symbol].price, found[symbol].ts
            self._save(con, book, [s for s in found if s in book.positions], rows)
            equity = self._write_snapshot(con, book, trade_ts, batch_id)
        columns = [
            "trade_id", "symbol", "side", "qty", "price", "ref_price", "commission",
            "slippage", "price_source", "price_ts",
        ]  # fmt: skip
        result = RebalanceResult(
            ledger=self.name,
            ts=trade_ts,
            fills=pd.DataFrame(records, columns=columns),
            cash_before=cash_before,
            cash_after=book.cash,
            equity=equity,
            kept=kept,
        )
        logger.info("%s", result.summary().splitlines()[0])
        return result

    def record_snapshot(self, prices: Any = None) -> LedgerSnapshot:
        """Return the book valued at ``prices`` (as :meth:`snapshot`) after writing it.

        What a scheduled job calls after the close, so that :meth:`snapshots` holds a
        point per day even on days without trades.  Positions' last prices move to
        these prices; no trade is written.
        """
        with self._transaction() as con:
            book = self._load(con)
            now = _now()
            frame = self._valued(con, book, prices, now)
            for symbol, price, price_ts in zip(
                frame["symbol"], frame["price"].to_numpy(np.float64), frame["price_ts"], strict=True
            ):
                pos = book.positions[str(symbol)]
                pos.last_price, pos.last_price_ts = float(price), _utc(price_ts)
            self._save(con, book, list(book.positions))
            _, batch_id = self._next_ids(con)
            self._write_snapshot(con, book, now, batch_id)
        return LedgerSnapshot(self.name, now, book.initial_cash, book.cash, frame, self.cost_method)

    def watch_add(self, symbol: str) -> list[str]:
        """Return the watchlist after adding ``symbol`` (known to the store or quote cache).

        Raises
        ------
        TradeRejected
            With reason ``unknown_symbol`` for a symbol neither the store nor the quote
            cache knows.
        """
        symbol = str(symbol).strip()
        with self._transaction() as con:
            if not self._known(con, symbol, None):
                raise TradeRejected(
                    f"watch {symbol}: unknown symbol (not in the store, not in the quote cache)",
                    reason="unknown_symbol",
                )
            self._create(con, self._load(con))
            con.execute(
                "INSERT INTO paper_watchlist VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [self.name, symbol, _now()],
            )
        return self.watchlist()

    def watch_remove(self, symbol: str) -> list[str]:
        """Return the watchlist after removing ``symbol`` (absent: no change)."""
        with self._transaction() as con:
            con.execute(
                "DELETE FROM paper_watchlist WHERE ledger = ? AND symbol = ?",
                [self.name, str(symbol).strip()],
            )
        return self.watchlist()


#: Strategies a ledger can follow by name (the CLI's ``--strategy``): each takes a wide
#: close panel and keyword parameters and returns target weights.
STRATEGIES = ("vol_target_trend",)


def follow_strategy(
    ledger: PaperLedger,
    strategy: str = "vol_target_trend",
    symbols: Sequence[str] | None = None,
    *,
    prices: Any = None,
    **params: Any,
) -> RebalanceResult:
    """Return the rebalance of ``ledger`` to ``strategy``'s latest weights on stored closes.

    The strategy runs on the store's daily closes of ``symbols`` (default: every stored
    symbol); its last row (decided on data up to the latest close) becomes the target,
    traded at ``prices`` (default: the ledger's quote cache, then the latest bars).  What
    the CLI's ``quantdesk paper rebalance`` and the after-close job call.

    A symbol still in its warm-up has no weight (no opinion): held, it is kept, and the
    result's summary says so; when no symbol has a weight, nothing trades.

    Raises
    ------
    ValueError
        For a strategy not in :data:`STRATEGIES`.
    TradeRejected
        As :meth:`PaperLedger.rebalance`, and with reason ``bad_weights`` when the
        strategy has no weight on the latest close (too little history).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {list(STRATEGIES)}")
    from quantdesk.strategies import vol_target_trend

    close = ledger.store.panel("close", symbols=list(symbols) if symbols else None)
    weights = vol_target_trend(close, **params)
    latest = weights.iloc[-1]
    if latest.isna().all():
        why = (
            "not a rebalance bar of its schedule"
            if weights.notna().any().any()
            else f"too little history for its lookbacks: {len(close)} bars"
        )
        raise TradeRejected(
            f"{strategy} has no weights on {close.index[-1]:%Y-%m-%d} ({why}); nothing traded",
            reason="bad_weights",
        )
    logger.info("%s on %d symbols: weights of %s", strategy, close.shape[1], close.index[-1])
    return ledger.rebalance(latest, prices)


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


def drift_from_backtest(
    ledger: PaperLedger, close: pd.DataFrame, weights: pd.DataFrame
) -> pd.DataFrame:
    """Return the ledger's equity at each close since its first trade beside the backtest's.

    The backtest (:func:`quantdesk.backtest.run`, the ledger's costs, lots and starting
    cash) trades ``weights`` on ``close`` from the session of the ledger's first trade;
    the ledger's equity on a session is its last snapshot of a write that traded at that
    session's prices (the date of the prices' ``ts``; a snapshot without trades counts
    on its own date).  Columns
    ``ledger``, ``backtest`` and ``drift`` (ledger over backtest, minus one); a ledger
    that followed the weights every session has no drift (to rounding), and manual
    trades, missed sessions or live prices away from the close show up here.
    """
    from quantdesk.backtest import run

    columns = ["ledger", "backtest", "drift"]
    trades = ledger.trades()
    if trades.empty:
        return pd.DataFrame(columns=columns, index=close.index[:0])
    # a write belongs to the session of the prices it traded at (a rebalance after the
    # close of day d trades d's bars), not to the wall-clock time it ran
    session = trades.groupby("batch_id")["price_ts"].max().dt.floor("D")
    days = close.index[close.index >= session.min()]
    if days.empty:
        return pd.DataFrame(columns=columns, index=close.index[:0])
    result = run(
        close.loc[days],
        weights.reindex_like(close).loc[days],
        init_cash=ledger.initial_cash,
        commission_bps=ledger.commission_bps,
        slippage_bps=ledger.slippage_bps,
        lot_size=ledger.lot_size,
    )
    snaps = ledger.snapshots()
    snaps["session"] = snaps["batch_id"].map(session).fillna(snaps["ts"].dt.floor("D"))
    equity = snaps.groupby("session")["equity"].last()
    frame = pd.DataFrame({"ledger": equity.reindex(days), "backtest": result.equity})
    frame["drift"] = frame["ledger"] / frame["backtest"] - 1.0
    return frame.dropna(subset=["ledger"])


def _is_quote_cache(prices: Any) -> bool:
    from quantdesk.data.live.quotes import QuoteCache

    return isinstance(prices, QuoteCache)


def _age_text(age: pd.Timedelta) -> str:
    seconds = age.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
