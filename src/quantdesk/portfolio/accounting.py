"""What a paper ledger reports: trades, rebalances, snapshots and the split of its P&L.

Result objects of :class:`~quantdesk.portfolio.ledger.PaperLedger` (each with a
``summary()`` and ``to_dict()``), and :func:`pnl_split`, the one split of a book's P&L
that every surface showing a ledger uses.

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

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from quantdesk.core.html import summary_html, summary_text
from quantdesk.core.jsonable import jsonable

__all__ = ["LedgerSnapshot", "PnLSplit", "RebalanceResult", "Trade", "pnl_split"]


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
