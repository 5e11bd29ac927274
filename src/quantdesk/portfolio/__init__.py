"""Portfolio construction: sizing (volatility targeting) and the paper-trading ledger.

The ledger (:mod:`quantdesk.portfolio.ledger`) loads on first access of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes
from quantdesk.portfolio.sizing import apply_band, rebalance_mask, vol_target_weights

__all__ = [
    "PaperLedger",
    "apply_band",
    "follow_strategy",
    "ledger",
    "rebalance_mask",
    "vol_target_weights",
]

if TYPE_CHECKING:
    from quantdesk.portfolio import ledger
    from quantdesk.portfolio.ledger import PaperLedger, follow_strategy

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "PaperLedger": "quantdesk.portfolio.ledger",
        "follow_strategy": "quantdesk.portfolio.ledger",
    },
    {"ledger"},
)
