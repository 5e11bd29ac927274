"""Live market data: feeds (simulator, replay, provider), the latest-quote cache, live candles.

A :class:`MarketFeed` runs a source on a background thread and publishes tick batches:
:class:`SimulatedFeed` (the regime-switching simulator in wall-clock time),
:class:`ReplayFeed` (stored bars or ticks at N x speed) and :class:`AlpacaFeed` (a
provider's websocket, on the generic :class:`WebsocketFeed`).  The :class:`QuoteCache`
keeps the latest quote per symbol for any number of pollers, and a
:class:`CandleRecorder` builds candles from the ticks and writes them to a store (the
monitor's go to the live store beside the research store, :func:`live_store_path`).
Names load on first use (``websockets`` only when a provider session opens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "Backoff": "quantdesk.core.backoff",
    "FeedError": "quantdesk.data.live.feed",
    "FeedStatus": "quantdesk.data.live.feed",
    "MarketFeed": "quantdesk.data.live.feed",
    "Quote": "quantdesk.data.live.quotes",
    "QuoteCache": "quantdesk.data.live.quotes",
    "SimulatedFeed": "quantdesk.data.live.simulated",
    "ReplayFeed": "quantdesk.data.live.replay",
    "bar_ticks": "quantdesk.data.live.replay",
    "CandleRecorder": "quantdesk.data.live.recorder",
    "CandleSource": "quantdesk.data.live.recorder",
    "live_store_path": "quantdesk.data.live.recorder",
    "WebsocketFeed": "quantdesk.data.live.provider",
    "AlpacaFeed": "quantdesk.data.live.provider",
}
_SUBMODULES = frozenset({"feed", "quotes", "simulated", "replay", "recorder", "provider"})

__all__ = [
    "AlpacaFeed",
    "Backoff",
    "CandleRecorder",
    "CandleSource",
    "FeedError",
    "FeedStatus",
    "MarketFeed",
    "Quote",
    "QuoteCache",
    "ReplayFeed",
    "SimulatedFeed",
    "WebsocketFeed",
    "bar_ticks",
    "live_store_path",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)

if TYPE_CHECKING:
    from quantdesk.core.backoff import Backoff
    from quantdesk.data.live.feed import FeedError, FeedStatus, MarketFeed
    from quantdesk.data.live.provider import AlpacaFeed, WebsocketFeed
    from quantdesk.data.live.quotes import Quote, QuoteCache
    from quantdesk.data.live.recorder import CandleRecorder, CandleSource, live_store_path
    from quantdesk.data.live.replay import ReplayFeed, bar_ticks
    from quantdesk.data.live.simulated import SimulatedFeed
