"""Backtests of target weights (a compiled order simulation), metrics, figures, sweeps.

``run(close, weights, ...)`` is the entry point; numba loads on the first run (vectorbt
only for ``result.portfolio``), and the ``metrics``, ``figures``, ``sweeps`` and
``export`` submodules on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes
from quantdesk.backtest.engine import BacktestResult, run

__all__ = [
    "BacktestResult",
    "export",
    "figures",
    "jobs",
    "metrics",
    "run",
    "sweep",
    "sweeps",
    "walk_forward",
]

_SUBMODULES = frozenset({"export", "figures", "jobs", "metrics", "sweeps", "warmup"})

if TYPE_CHECKING:
    from quantdesk.backtest import export, figures, jobs, metrics, sweeps
    from quantdesk.backtest.sweeps import sweep, walk_forward


__getattr__, __dir__ = lazy_attributes(
    __name__,
    {"sweep": "quantdesk.backtest.sweeps", "walk_forward": "quantdesk.backtest.sweeps"},
    _SUBMODULES,
)
