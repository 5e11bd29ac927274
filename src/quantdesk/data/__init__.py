"""Market data: schemas and validation, the DuckDB store, sources and candles.

The contracts sit at the top (``schemas``, ``validation``, ``timestamps``,
``frequency``, ``sessions``, ``wide``, ``news_items``; ``research`` is what a notebook
opens with); the rest is cut by concept:

- ``store``: the one DuckDB file, every table's schema, connections and locking;
- ``sources``: where bars and news come from (files, online, samples, the simulator);
- ``candles``: ticks to OHLCV bars, in batch and as a stream;
- ``live``: feeds, the latest-quote cache and live candles;
- ``snapshot``: versioned Parquet snapshots of the store on any fsspec URL, and
  :class:`SnapshotReader`, which reads them with the store's API.

Names load on first use, so importing :mod:`quantdesk.data` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "AlertStore": "quantdesk.data.store.alerts",
    "MarketStore": "quantdesk.data.store.market",
    "NewsStore": "quantdesk.data.store.news",
    "UnknownSymbolError": "quantdesk.data.store.market",
    "IngestReport": "quantdesk.data.store.market",
    "StoreBusyError": "quantdesk.data.store.locking",
    "simulate": "quantdesk.data.sources.simulator",
    "SimulatedMarket": "quantdesk.data.sources.simulator",
    "load_sample": "quantdesk.data.sources.bundled",
    "read_bars_file": "quantdesk.data.sources.files",
    "validate_bars": "quantdesk.data.validation",
    "ValidationError": "quantdesk.data.validation",
    "aggregate": "quantdesk.data.candles.batch",
    "CandleAggregator": "quantdesk.data.candles.stream",
    "parse_timeframe": "quantdesk.data.schemas",
    "SnapshotReader": "quantdesk.data.snapshot.reader",
    "SnapshotVersion": "quantdesk.data.snapshot.writer",
}
_SUBMODULES = frozenset(
    {
        "schemas",
        "validation",
        "timestamps",
        "frequency",
        "sessions",
        "wide",
        "news_items",
        "research",
        "store",
        "sources",
        "candles",
        "live",
        "snapshot",
    }
)

__all__ = [
    "AlertStore",
    "CandleAggregator",
    "IngestReport",
    "MarketStore",
    "NewsStore",
    "SimulatedMarket",
    "SnapshotReader",
    "SnapshotVersion",
    "StoreBusyError",
    "UnknownSymbolError",
    "ValidationError",
    "aggregate",
    "load_sample",
    "parse_timeframe",
    "read_bars_file",
    "simulate",
    "validate_bars",
]

if TYPE_CHECKING:
    from quantdesk.data.candles.batch import aggregate
    from quantdesk.data.candles.stream import CandleAggregator
    from quantdesk.data.schemas import parse_timeframe
    from quantdesk.data.snapshot.reader import SnapshotReader
    from quantdesk.data.snapshot.writer import SnapshotVersion
    from quantdesk.data.sources.bundled import load_sample
    from quantdesk.data.sources.files import read_bars_file
    from quantdesk.data.sources.simulator import SimulatedMarket, simulate
    from quantdesk.data.store.alerts import AlertStore
    from quantdesk.data.store.locking import StoreBusyError
    from quantdesk.data.store.market import IngestReport, MarketStore, UnknownSymbolError
    from quantdesk.data.store.news import NewsStore
    from quantdesk.data.validation import ValidationError, validate_bars


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
