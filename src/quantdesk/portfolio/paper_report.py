"""The paper portfolio report's numbers: one set of strategy weights, traded and measured.

A ledger that follows a strategy is rebalanced to the strategy's latest weights, and
its drift is measured against the backtest of the strategy's weights.  Both must be the
*same* weights: computed twice on different windows of closes (the EWMA volatility
forecast remembers where its window starts), the drift would compare the ledger with a
strategy it never traded.  :func:`paper_report` computes them once on the stored closes
(:func:`~quantdesk.portfolio.follow.strategy_weights`), trades their latest row
(:func:`~quantdesk.portfolio.follow.follow_weights`, what ``follow_strategy`` does) and
measures the drift (``notebooks/paper_portfolio.ipynb`` shows what it returns).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.core.html import summary_html, summary_text
from quantdesk.portfolio.accounting import RebalanceResult
from quantdesk.portfolio.drift import drift_from_backtest
from quantdesk.portfolio.follow import follow_weights, strategy_weights
from quantdesk.portfolio.ledger import PaperLedger

__all__ = ["PaperReport", "paper_report"]

logger = logging.getLogger(__name__)


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
        (:func:`~quantdesk.portfolio.drift.drift_from_backtest`), over the last
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
    <quantdesk.portfolio.follow.follow_strategy>` computes them; their last row is the
    rebalance's target (``rebalance_now``), and the same weights, over the last
    ``history_days`` closes (``None``: all), are what the drift backtest trades.

    Raises
    ------
    ValueError
        An unknown strategy.
    TradeRejected
        As :func:`~quantdesk.portfolio.follow.follow_weights`.
    """
    close = ledger.store.panel("close", symbols=as_symbols(symbols) or None)
    weights = strategy_weights(close, strategy, **params)
    rebalance = follow_weights(ledger, weights, strategy, prices) if rebalance_now else None
    window = slice(-history_days, None) if history_days else slice(None)
    drift = drift_from_backtest(ledger, close.iloc[window], weights.iloc[window])
    return PaperReport(ledger, strategy, close, weights, rebalance, drift)
