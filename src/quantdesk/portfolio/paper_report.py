"""The paper portfolio report's numbers: one set of strategy weights, traded and measured.

A ledger that follows a strategy is rebalanced to the strategy's latest weights, and
its drift is measured against the backtest of the strategy's weights.  Both must be the
*same* weights: computed twice on different windows of closes (the EWMA volatility
forecast remembers where its window starts), the drift would compare the ledger with a
strategy it never traded.  :func:`strategy_weights` computes them once on the stored
closes, :func:`follow_weights` trades their latest row, and :func:`paper_report` does
both and measures the drift (``notebooks/paper_portfolio.ipynb`` shows what it returns).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from quantdesk.core.html import summary_html, summary_text
from quantdesk.errors import TradeRejected
from quantdesk.portfolio.ledger import (
    STRATEGIES,
    PaperLedger,
    RebalanceResult,
    drift_from_backtest,
)

__all__ = ["PaperReport", "follow_weights", "paper_report", "strategy_weights"]

logger = logging.getLogger(__name__)


def strategy_weights(
    close: pd.DataFrame, strategy: str = "vol_target_trend", **params: Any
) -> pd.DataFrame:
    """Return the target weights of the strategy named ``strategy`` on a wide close panel.

    Raises
    ------
    ValueError
        For a strategy not in :data:`quantdesk.portfolio.ledger.STRATEGIES`.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {list(STRATEGIES)}")
    from quantdesk.strategies import vol_target_trend

    return vol_target_trend(close, **params)


def follow_weights(
    ledger: PaperLedger,
    weights: pd.DataFrame,
    strategy: str = "vol_target_trend",
    prices: Any = None,
) -> RebalanceResult:
    """Return the rebalance of ``ledger`` to the last row of ``weights``.

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


@dataclass(frozen=True)
class PaperReport:
    """Return value of :func:`paper_report`.

    Attributes
    ----------
    ledger
        The ledger reported on.
    strategy
        The strategy it follows.
    close, weights
        The stored closes of the symbols and the strategy's weights on them, computed
        once: the rebalance traded the last row, the drift backtest trades the rest.
    rebalance
        This run's rebalance, or None when none was asked for.
    drift
        The ledger's equity beside the backtest's since its first trade
        (:func:`~quantdesk.portfolio.ledger.drift_from_backtest`), over the last
        ``history_days`` closes.
    """

    ledger: PaperLedger
    strategy: str
    close: pd.DataFrame = field(repr=False)
    weights: pd.DataFrame = field(repr=False)
    rebalance: RebalanceResult | None
    drift: pd.DataFrame = field(repr=False)

    def _headline(self) -> dict[str, Any]:
        latest = self.drift["drift"].iloc[-1] if len(self.drift) else float("nan")
        return {
            "ledger": self.ledger.name,
            "strategy": self.strategy,
            "symbols": self.close.shape[1],
            "closes to": self.close.index[-1],
            "rebalanced": "no (rebalance_now=False)"
            if self.rebalance is None
            else f"{len(self.rebalance.fills)} fills at {self.rebalance.ts:%Y-%m-%d %H:%M}Z",
            "latest drift": latest,
        }

    def summary(self) -> str:
        """Return the ledger, the strategy, the rebalance and the latest drift as text."""
        return summary_text("Paper report", self._headline())

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        details: dict[str, Any] = {"drift from the backtest": self.drift}
        if self.rebalance is not None:
            details["rebalance"] = self.rebalance.summary()
        return summary_html("Paper report", self._headline(), details)


def paper_report(
    ledger: PaperLedger,
    symbols: Sequence[str] | None = None,
    *,
    strategy: str = "vol_target_trend",
    rebalance_now: bool = True,
    history_days: int | None = 400,
    prices: Any = None,
    **params: Any,
) -> PaperReport:
    """Return the ledger rebalanced (if asked) to ``strategy``'s weights and its drift.

    The strategy's weights are computed once, on every stored daily close of
    ``symbols`` (default: every stored symbol), as :func:`follow_strategy
    <quantdesk.portfolio.ledger.follow_strategy>` computes them; their last row is the
    rebalance's target (``rebalance_now``), and the same weights, over the last
    ``history_days`` closes (``None``: all), are what the drift backtest trades.

    Raises
    ------
    ValueError
        An unknown strategy.
    TradeRejected
        As :func:`follow_weights`.
    """
    close = ledger.store.panel("close", symbols=list(symbols) if symbols else None)
    weights = strategy_weights(close, strategy, **params)
    rebalance = follow_weights(ledger, weights, strategy, prices) if rebalance_now else None
    window = slice(-history_days, None) if history_days else slice(None)
    drift = drift_from_backtest(ledger, close.iloc[window], weights.iloc[window])
    return PaperReport(ledger, strategy, close, weights, rebalance, drift)
