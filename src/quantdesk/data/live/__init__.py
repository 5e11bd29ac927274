"""Live market data: feeds (simulator, replay, provider), the latest-quote cache, live candles.

A :class:`MarketFeed` runs a source on a background thread and publishes tick batches;
the :class:`QuoteCache` keeps the latest quote per symbol for any number of pollers.
Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "Backoff": "quantdesk.data.live.feed",
    "FeedError": "quantdesk.data.live.feed",
    "FeedStatus": "quantdesk.data.live.feed",
    "MarketFeed": "quantdesk.data.live.feed",
    "Quote": "quantdesk.data.live.quotes",
    "QuoteCache": "quantdesk.data.live.quotes",
    "SimulatedFeed": "quantdesk.data.live.simulated",
    "ReplayFeed": "quantdesk.data.live.replay",
    "bar_ticks": "quantdesk.data.live.replay",
    "CandleRecorder": "quantdesk.data.live.recorder",
}
_SUBMODULES = frozenset({"feed", "quotes", "simulated", "replay", "recorder"})

__all__ = [
    "Backoff",
    "CandleRecorder",
    "FeedError",
    "FeedStatus",
    "MarketFeed",
    "Quote",
    "QuoteCache",
    "ReplayFeed",
    "SimulatedFeed",
    "bar_ticks",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)

if TYPE_CHECKING:
    from quantdesk.data.live.feed import Backoff, FeedError, FeedStatus, MarketFeed
    from quantdesk.data.live.quotes import Quote, QuoteCache
    from quantdesk.data.live.recorder import CandleRecorder
    from quantdesk.data.live.replay import ReplayFeed, bar_ticks
    from quantdesk.data.live.simulated import SimulatedFeed
