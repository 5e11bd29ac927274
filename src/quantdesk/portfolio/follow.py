"""Following a strategy: a ledger rebalanced to a registered strategy's latest weights.

:func:`follow_strategy` runs the strategy named (looked up in
:mod:`quantdesk.strategies.registry`) on the store's closes and rebalances the ledger
to its latest row: what ``quantdesk paper rebalance`` and the after-close job call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.errors import TradeRejected
from quantdesk.strategies.registry import get_strategy

if TYPE_CHECKING:
    from quantdesk.portfolio.accounting import RebalanceResult
    from quantdesk.portfolio.ledger import PaperLedger

__all__ = ["follow_strategy", "follow_weights", "strategy_weights"]

logger = logging.getLogger(__name__)


def follow_strategy(
    ledger: PaperLedger,
    strategy: str = "vol_target_trend",
    symbols: str | Sequence[str] | None = None,
    *,
    prices: Any = None,
    **params: Any,
) -> RebalanceResult:
    """Return the rebalance of ``ledger`` to ``strategy``'s latest weights on stored closes.

    The strategy registered as ``strategy`` (:data:`quantdesk.strategies.STRATEGIES`)
    runs on the store's daily closes of ``symbols`` (default: every stored symbol) with
    ``params``; its last row (decided on data up to the latest close) becomes the
    target, traded at ``prices`` (default: the ledger's quote cache, then the latest
    bars).  What the CLI's ``quantdesk paper rebalance`` and the after-close job call.

    A symbol still in its warm-up has no weight (no opinion): held, it is kept, and the
    result's summary says so; when no symbol has a weight, nothing trades.

    Raises
    ------
    quantdesk.strategies.UnknownStrategyError
        (a ``ValueError``) For a strategy that is not registered; it names the known ones.
    TradeRejected
        As :meth:`PaperLedger.rebalance`, and with reason ``bad_weights`` when the
        strategy has no weight on the latest close (too little history).
    """
    close = ledger.store.panel("close", symbols=as_symbols(symbols) or None)
    return follow_weights(ledger, strategy_weights(close, strategy, **params), strategy, prices)


def strategy_weights(
    close: pd.DataFrame, strategy: str = "vol_target_trend", **params: Any
) -> pd.DataFrame:
    """Return the target weights of the strategy registered as ``strategy`` on ``close``.

    Raises
    ------
    quantdesk.strategies.UnknownStrategyError
        (a ``ValueError``) For a strategy that is not registered; it names the known ones.
    """
    weights: pd.DataFrame = get_strategy(strategy)(close, **params)
    return weights


def follow_weights(
    ledger: PaperLedger,
    weights: pd.DataFrame,
    strategy: str = "vol_target_trend",
    prices: Any = None,
) -> RebalanceResult:
    """Return the rebalance of ``ledger`` to the last row of ``weights`` (``strategy``'s).

    A symbol without a weight on the last row (in its warm-up) is kept when held; when
    no symbol has one, nothing trades.

    Raises
    ------
    TradeRejected
        With reason ``bad_weights`` when no symbol has a weight on the last row (too
        little history, or not a rebalance bar of the strategy's schedule); otherwise
        as :meth:`~quantdesk.portfolio.ledger.PaperLedger.rebalance`.
    """
    latest = weights.iloc[-1]
    if latest.isna().all():
        why = (
            "not a rebalance bar of its schedule"
            if weights.notna().any().any()
            else f"too little history for its lookbacks: {len(weights)} bars"
        )
        raise TradeRejected(
            f"{strategy} has no weights on {weights.index[-1]:%Y-%m-%d} ({why}); nothing traded",
            reason="bad_weights",
        )
    logger.info("%s on %d symbols: weights of %s", strategy, weights.shape[1], weights.index[-1])
    return ledger.rebalance(latest, prices)
