"""quantdesk: a Jupyter-first research environment for quantitative trading research.

Submodules load on first use so that ``import quantdesk`` stays fast::

    import quantdesk as qd
    store = qd.data.MarketStore()
    close = store.panel("close")

In JupyterLab or Notebook 7, ``import quantdesk`` also makes chart outputs load BokehJS
and Panel from the Jupyter server instead of a CDN, so charts draw offline
(:func:`quantdesk.notebook`, which a kernel elsewhere can call itself; see
:mod:`quantdesk.dashboards.jupyter`).
"""

from __future__ import annotations

import os
import sys
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
    "notebook",
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
    from quantdesk.dashboards.jupyter import notebook


__getattr__, __dir__ = lazy_attributes(
    __name__, {"notebook": "quantdesk.dashboards.jupyter"}, _SUBMODULES
)

# Before anything imports numba: every process shares one cache of compiled kernels.
configure_numba_cache()

# In a Jupyter server's kernel, chart outputs load their JavaScript from that server
# (offline); the check is two lookups, the hook imports nothing heavy.
if "JPY_SESSION_NAME" in os.environ and "ipykernel" in sys.modules:
    from quantdesk.dashboards.jupyter import install_if_jupyter

    install_if_jupyter()
