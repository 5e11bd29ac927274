"""Market data: schemas and validation, the DuckDB store, sources and candles.

Names load on first use, so importing :mod:`quantdesk.data` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "AlertStore": "quantdesk.data.alert_store",
    "MarketStore": "quantdesk.data.store",
    "NewsStore": "quantdesk.data.news_store",
    "UnknownSymbolError": "quantdesk.data.store",
    "IngestReport": "quantdesk.data.store",
    "StoreBusyError": "quantdesk.data.store_locking",
    "simulate": "quantdesk.data.simulator",
    "SimulatedMarket": "quantdesk.data.simulator",
    "load_sample": "quantdesk.data.samples",
    "read_bars_file": "quantdesk.data.files",
    "validate_bars": "quantdesk.data.validation",
    "ValidationError": "quantdesk.data.validation",
    "aggregate": "quantdesk.data.candles",
    "CandleAggregator": "quantdesk.data.candle_stream",
    "parse_timeframe": "quantdesk.data.schemas",
}
_SUBMODULES = frozenset(
    {
        "schemas",
        "validation",
        "store",
        "store_locking",
        "store_schema",
        "wide",
        "simulator",
        "samples",
        "files",
        "online",
        "candles",
        "candle_kernels",
        "candle_stream",
        "ticks",
        "frequency",
        "timestamps",
        "ingest",
        "inventory",
        "news",
        "news_store",
        "news_ingest",
        "synthetic_news",
        "live",
        "alert_store",
    }
)

__all__ = [
    "AlertStore",
    "CandleAggregator",
    "IngestReport",
    "MarketStore",
    "NewsStore",
    "SimulatedMarket",
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
    from quantdesk.data.alert_store import AlertStore
    from quantdesk.data.candle_stream import CandleAggregator
    from quantdesk.data.candles import aggregate
    from quantdesk.data.files import read_bars_file
    from quantdesk.data.news_store import NewsStore
    from quantdesk.data.samples import load_sample
    from quantdesk.data.schemas import parse_timeframe
    from quantdesk.data.simulator import SimulatedMarket, simulate
    from quantdesk.data.store import IngestReport, MarketStore, UnknownSymbolError
    from quantdesk.data.store_locking import StoreBusyError
    from quantdesk.data.validation import ValidationError, validate_bars


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
