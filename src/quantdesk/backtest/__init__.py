"""Backtests of target weights through vectorbt, metrics, tearsheet figures, sweeps.

``run(close, weights, ...)`` is the entry point; vectorbt loads on the first run.
"""

from __future__ import annotations

from quantdesk.backtest.engine import BacktestResult, run

__all__ = ["BacktestResult", "run"]
