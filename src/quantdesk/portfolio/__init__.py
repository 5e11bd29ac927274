"""Portfolio construction: sizing (volatility targeting) and, later, the paper ledger."""

from __future__ import annotations

from quantdesk.portfolio.sizing import apply_band, rebalance_mask, vol_target_weights

__all__ = ["apply_band", "rebalance_mask", "vol_target_weights"]
