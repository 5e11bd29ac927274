"""The market store: one DuckDB file, every table's schema, its connections and locks.

- ``market``: :class:`MarketStore`, bars, ticks, regimes and the ingest log;
- ``schema``: every table's DDL and the migrations of an older file;
- ``locking``: short-lived connections, retried while another process holds the file;
- ``news``, ``alerts``, ``forecasts``: the tables of news and scores, screener alerts
  and their outbox, and the forecast record, on the same file;
- ``inventory``: what the store holds, as readable accounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "MarketStore": "quantdesk.data.store.market",
    "UnknownSymbolError": "quantdesk.data.store.market",
    "IngestReport": "quantdesk.data.store.market",
    "StoreBusyError": "quantdesk.data.store.locking",
    "as_store": "quantdesk.data.store.market",
    "NewsStore": "quantdesk.data.store.news",
    "AlertStore": "quantdesk.data.store.alerts",
    "ForecastStore": "quantdesk.data.store.forecasts",
}
_SUBMODULES = frozenset({"market", "schema", "locking", "news", "alerts", "forecasts", "inventory"})

__all__ = [
    "AlertStore",
    "ForecastStore",
    "IngestReport",
    "MarketStore",
    "NewsStore",
    "StoreBusyError",
    "UnknownSymbolError",
    "as_store",
]

if TYPE_CHECKING:
    from quantdesk.data.store.alerts import AlertStore
    from quantdesk.data.store.forecasts import ForecastStore
    from quantdesk.data.store.locking import StoreBusyError
    from quantdesk.data.store.market import (
        IngestReport,
        MarketStore,
        UnknownSymbolError,
        as_store,
    )
    from quantdesk.data.store.news import NewsStore

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
