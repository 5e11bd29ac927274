"""quantdesk: a Jupyter-first research environment for quantitative trading research.

Submodules load on first use so that ``import quantdesk`` stays fast::

    import quantdesk as qd
    store = qd.data.MarketStore()
    close = store.panel("close")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = frozenset(
    {
        "config",
        "data",
        "signals",
        "regimes",
        "portfolio",
        "strategies",
        "backtest",
        "reports",
        "cli",
    }
)

__all__ = [
    "__version__",
    "backtest",
    "cli",
    "config",
    "data",
    "portfolio",
    "regimes",
    "reports",
    "signals",
    "strategies",
]

if TYPE_CHECKING:
    from quantdesk import (
        backtest,
        cli,
        config,
        data,
        portfolio,
        regimes,
        reports,
        signals,
        strategies,
    )


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"quantdesk.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'quantdesk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)
