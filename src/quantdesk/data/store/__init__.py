"""The market store: one DuckDB file, every table's schema, its connections and locks.

- ``market``: :class:`MarketStore`, the one facade over the market's tables, cut by
  concept into ``file`` (the file and its connections), ``bars`` (bars, ticks, symbol
  metadata), ``regimes`` and ``ingest_log`` (the ingest log and rejects);
- ``schema``: the market's DDL, and the one way every table is created and migrated;
- ``locking``: short-lived connections, retried while another process holds the file;
- ``tables``: :class:`StoreTables`, the base of every other table family;
- ``news``, ``alerts``, ``forecasts``, ``pipeline``: the tables of news and scores,
  screener alerts and their outbox, the forecast record and the pipeline's record, on
  the same file;
- ``inventory``: what the store holds, as readable accounts;
- ``export``: the tables read for a snapshot (:mod:`quantdesk.data.snapshot`): one read
  transaction, partition fingerprints, sorted Arrow batches.
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
    "PipelineRecord": "quantdesk.data.store.pipeline",
    "StoreTables": "quantdesk.data.store.tables",
}
_SUBMODULES = frozenset(
    {
        "market",
        "schema",
        "locking",
        "news",
        "alerts",
        "forecasts",
        "inventory",
        "file",
        "bars",
        "regimes",
        "ingest_log",
        "tables",
        "pipeline",
        "export",
    }
)

__all__ = [
    "AlertStore",
    "ForecastStore",
    "IngestReport",
    "MarketStore",
    "NewsStore",
    "PipelineRecord",
    "StoreBusyError",
    "StoreTables",
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
    from quantdesk.data.store.pipeline import PipelineRecord
    from quantdesk.data.store.tables import StoreTables

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
