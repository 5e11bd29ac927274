"""Where bars and news come from: files, online, shipped samples, the simulator.

- ``files``: bars from CSV and Parquet files, any dialect a vendor or spreadsheet saves;
- ``online``: daily bars from Yahoo Finance (optional, needs a network);
- ``samples``: real sample data shipped inside installed packages;
- ``simulator``: the regime-switching market simulator;
- ``ingest``: fill the store from any of these in one call, with an account;
- ``news``, ``news_ingest``, ``synthetic_news``: news items from vendor files, their
  ingest, and synthetic headlines tied to the simulator's regimes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "read_bars_file": "quantdesk.data.sources.files",
    "load_sample": "quantdesk.data.sources.samples",
    "simulate": "quantdesk.data.sources.simulator",
    "SimulatedMarket": "quantdesk.data.sources.simulator",
}
_SUBMODULES = frozenset(
    {"files", "online", "samples", "simulator", "ingest", "news", "news_ingest", "synthetic_news"}
)

__all__ = [
    "SimulatedMarket",
    "load_sample",
    "read_bars_file",
    "simulate",
]

if TYPE_CHECKING:
    from quantdesk.data.sources.files import read_bars_file
    from quantdesk.data.sources.samples import load_sample
    from quantdesk.data.sources.simulator import SimulatedMarket, simulate

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
