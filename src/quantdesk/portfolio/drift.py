"""How far a paper ledger drifted from the backtest of the weights it followed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from quantdesk.portfolio.ledger import PaperLedger

__all__ = ["drift_from_backtest"]


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
