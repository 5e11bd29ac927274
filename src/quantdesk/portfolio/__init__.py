"""Paper portfolios: the ledger (cash, positions, trades, P&L) and its accounting.

- ``ledger``: :class:`PaperLedger`, named paper portfolios in the market store;
- ``accounting``: what a ledger reports (trades, rebalances, snapshots, :func:`pnl_split`);
- ``book``: a ledger's book inside a write transaction (positions, FIFO lots, fills);
- ``prices``: the price a trade fills at (explicit, live quote, latest bar);
- ``follow``: :func:`follow_strategy`, a ledger rebalanced to a registered strategy;
- ``drift``: :func:`drift_from_backtest`, the ledger's equity beside the backtest's.

The top of the decisions floor: it builds on ``backtest`` and ``strategies`` (sizing
and the strategy registry live in :mod:`quantdesk.strategies`).  Modules load on first
access of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

__all__ = [
    "LedgerSnapshot",
    "PaperLedger",
    "PnLSplit",
    "RebalanceResult",
    "Trade",
    "accounting",
    "drift_from_backtest",
    "follow_strategy",
    "ledger",
    "pnl_split",
]

if TYPE_CHECKING:
    from quantdesk.portfolio import accounting, ledger
    from quantdesk.portfolio.accounting import (
        LedgerSnapshot,
        PnLSplit,
        RebalanceResult,
        Trade,
        pnl_split,
    )
    from quantdesk.portfolio.drift import drift_from_backtest
    from quantdesk.portfolio.follow import follow_strategy
    from quantdesk.portfolio.ledger import PaperLedger

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "PaperLedger": "quantdesk.portfolio.ledger",
        "LedgerSnapshot": "quantdesk.portfolio.accounting",
        "PnLSplit": "quantdesk.portfolio.accounting",
        "RebalanceResult": "quantdesk.portfolio.accounting",
        "Trade": "quantdesk.portfolio.accounting",
        "pnl_split": "quantdesk.portfolio.accounting",
        "follow_strategy": "quantdesk.portfolio.follow",
        "drift_from_backtest": "quantdesk.portfolio.drift",
    },
    {"accounting", "book", "drift", "follow", "ledger", "prices"},
)
