"""quantdesk: a Jupyter-first research environment for quantitative trading research.

Submodules load on first use so that ``import quantdesk`` stays fast::

    import quantdesk as qd
    store = qd.data.MarketStore()
    close = store.panel("close")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes
from quantdesk.numba_cache import configure_numba_cache

__version__ = "0.1.0"

_SUBMODULES = frozenset(
    {
        "config",
        "data",
        "signals",
        "regimes",
        "sentiment",
        "portfolio",
        "strategies",
        "backtest",
        "screener",
        "reports",
        "dashboards",
        "cli",
    }
)

__all__ = [
    "__version__",
    "backtest",
    "cli",
    "config",
    "dashboards",
    "data",
    "portfolio",
    "regimes",
    "reports",
    "screener",
    "sentiment",
    "signals",
    "strategies",
]

if TYPE_CHECKING:
    from quantdesk import (
        backtest,
        cli,
        config,
        dashboards,
        data,
        portfolio,
        regimes,
        reports,
        screener,
        sentiment,
        signals,
        strategies,
    )


__getattr__, __dir__ = lazy_attributes(__name__, {}, _SUBMODULES)

# Before anything imports numba: every process shares one cache of compiled kernels.
configure_numba_cache()
