"""Where bars and news come from: files, online, shipped samples, the simulator.

- ``files``: bars from CSV and Parquet files, any dialect a vendor or spreadsheet saves;
- ``online``: daily bars from Yahoo Finance (optional, needs a network);
- ``bundled``: real sample data shipped inside installed packages;
- ``simulator``: the regime-switching market simulator;
- ``news``: news items read from vendor files (CSV, JSON, JSONL);
- ``synthetic_news``: synthetic headlines tied to the simulator's regimes;
- ``ingest``: fill the store from any of these in one call, with an account (the one
  write path of every source);
- ``samples``: the symbols a notebook works on, and the demonstration universes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "read_bars_file": "quantdesk.data.sources.files",
    "load_sample": "quantdesk.data.sources.bundled",
    "simulate": "quantdesk.data.sources.simulator",
    "SimulatedMarket": "quantdesk.data.sources.simulator",
}
_SUBMODULES = frozenset(
    {"bundled", "files", "online", "samples", "simulator", "ingest", "news", "synthetic_news"}
)

__all__ = [
    "SimulatedMarket",
    "load_sample",
    "read_bars_file",
    "simulate",
]

if TYPE_CHECKING:
    from quantdesk.data.sources.bundled import load_sample
    from quantdesk.data.sources.files import read_bars_file
    from quantdesk.data.sources.simulator import SimulatedMarket, simulate

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
