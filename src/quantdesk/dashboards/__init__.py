"""Dashboards: the Panel market monitor and the Voila launcher (the only place Panel is known).

Names load on first use, so importing :mod:`quantdesk.dashboards` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS: dict[str, str] = {
    "CandleChart": "quantdesk.dashboards.monitor",
    "LiveHub": "quantdesk.dashboards.hub",
    "MarketMonitor": "quantdesk.dashboards.monitor",
    "RegimePane": "quantdesk.dashboards.panes",
    "Watchlist": "quantdesk.dashboards.monitor",
    "MonitorCell": "quantdesk.dashboards.jupyter",
    "monitor_cell": "quantdesk.dashboards.jupyter",
    "monitor_server": "quantdesk.dashboards.server",
    "serve_monitor": "quantdesk.dashboards.server",
}
_SUBMODULES = frozenset({"hub", "jupyter", "monitor", "panes", "security", "server"})

__all__ = [
    "CandleChart",
    "LiveHub",
    "MarketMonitor",
    "MonitorCell",
    "RegimePane",
    "Watchlist",
    "monitor_cell",
    "monitor_server",
    "serve_monitor",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)

if TYPE_CHECKING:
    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.dashboards.jupyter import MonitorCell, monitor_cell
    from quantdesk.dashboards.monitor import CandleChart, MarketMonitor, Watchlist
    from quantdesk.dashboards.panes import RegimePane
    from quantdesk.dashboards.server import monitor_server, serve_monitor
