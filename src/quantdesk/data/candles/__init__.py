"""Ticks to OHLCV candles: one set of compiled kernels, read in batch and as a stream.

- ``ticks``: tick frames checked and turned into the arrays the kernels read;
- ``kernels``: the compiled aggregation kernels and the constants they share;
- ``batch``: :func:`aggregate`, bars from a whole tick frame;
- ``stream``: :class:`CandleAggregator`, bars built tick by tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "aggregate": "quantdesk.data.candles.batch",
    "CandleAggregator": "quantdesk.data.candles.stream",
}
_SUBMODULES = frozenset({"ticks", "kernels", "batch", "stream"})

__all__ = [
    "CandleAggregator",
    "aggregate",
]

if TYPE_CHECKING:
    from quantdesk.data.candles.batch import aggregate
    from quantdesk.data.candles.stream import CandleAggregator

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
