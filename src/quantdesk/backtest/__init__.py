"""Backtests of target weights through vectorbt, metrics, tearsheet figures, sweeps.

``run(close, weights, ...)`` is the entry point; vectorbt loads on the first run, and
the ``metrics``, ``figures`` and ``sweeps`` submodules on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from quantdesk.backtest.engine import BacktestResult, run

__all__ = ["BacktestResult", "figures", "metrics", "run", "sweep", "sweeps", "walk_forward"]

_SUBMODULES = frozenset({"figures", "metrics", "sweeps"})

if TYPE_CHECKING:
    from quantdesk.backtest import figures, metrics, sweeps
    from quantdesk.backtest.sweeps import sweep, walk_forward


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"quantdesk.backtest.{name}")
    elif name in ("sweep", "walk_forward"):
        value = getattr(importlib.import_module("quantdesk.backtest.sweeps"), name)
    else:
        raise AttributeError(f"module 'quantdesk.backtest' has no attribute {name!r}")
    globals()[name] = value
    return value
