"""Strategies: pure functions from prices to target weights, their sizing, and a registry.

The lowest package of the decisions floor: ``backtest``, ``portfolio`` and ``screener``
build on it, and it imports none of them.

- ``trend``: volatility-targeted trend following and the moving-average crossover;
- ``sizing``: from signals and volatility forecasts to weights (vol targeting, caps,
  rebalance schedules, no-trade bands);
- ``registry``: strategies by name (:data:`STRATEGIES`, :func:`get_strategy`,
  :func:`register`), what the paper ledger, the CLI and the pipeline run.
"""

from __future__ import annotations

from quantdesk.strategies.registry import (
    STRATEGIES,
    Strategy,
    UnknownStrategyError,
    get_strategy,
    register,
    unregister,
)
from quantdesk.strategies.sizing import (
    REBALANCE_FREQUENCIES,
    Rebalance,
    apply_band,
    rebalance_mask,
    vol_target_weights,
    warmup_mask,
)
from quantdesk.strategies.trend import (
    DEFAULT_LOOKBACKS,
    forecast_vol,
    ma_crossover_weights,
    size_trend,
    trend_inputs,
    trend_signal,
    vol_target_tracking,
    vol_target_trend,
)

__all__ = [
    "DEFAULT_LOOKBACKS",
    "REBALANCE_FREQUENCIES",
    "STRATEGIES",
    "Rebalance",
    "Strategy",
    "UnknownStrategyError",
    "apply_band",
    "forecast_vol",
    "get_strategy",
    "ma_crossover_weights",
    "rebalance_mask",
    "register",
    "size_trend",
    "trend_inputs",
    "trend_signal",
    "unregister",
    "vol_target_tracking",
    "vol_target_trend",
    "vol_target_weights",
    "warmup_mask",
]
