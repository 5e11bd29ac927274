"""The live hub: one feed of each kind per server process, shared by every session.

A Panel server runs one :class:`LiveHub`.  The first session that asks for the
simulator (or the replay) starts that feed, with its quote cache, and every later
session reads the same cache and the same candles; a session only does the work of
what it shows (its watchlist rows, its chart's symbol).  The hub stops its feeds when
the server shuts down (:meth:`LiveHub.stop`).

* simulator: :class:`~quantdesk.data.live.SimulatedFeed` ticks; closed candles go to the
  store under ``QUANTDESK_HOME`` through a
  :class:`~quantdesk.data.live.CandleRecorder`, so a notebook sees them while the
  monitor runs.  An empty store is fine: the simulator names its own symbols.
* replay: :class:`~quantdesk.data.live.ReplayFeed` replays stored bars at N x speed; its
  candles stay in memory (nothing is written back to the store it reads).

Candles are recorded per timeframe on first use (:meth:`LiveSource.candles`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pandas as pd

if TYPE_CHECKING:
    from quantdesk.data.live.feed import MarketFeed
    from quantdesk.data.live.quotes import QuoteCache
    from quantdesk.data.store import MarketStore

__all__ = [
    "FEED_KINDS",
    "REPLAY_TIMEFRAMES",
    "SIMULATOR_TIMEFRAMES",
    "CandleSource",
    "FeedKind",
    "FeedUnavailableError",
    "LiveHub",
    "LiveSource",
    "get_hub",
    "set_hub",
]

logger = logging.getLogger(__name__)

FeedKind = Literal["simulator", "replay"]
FEED_KINDS: tuple[FeedKind, ...] = ("simulator", "replay")
# Simulated ticks come a few per second: second and minute candles show them moving.
SIMULATOR_TIMEFRAMES: tuple[str, ...] = ("5s", "1min", "5min")
REPLAY_TIMEFRAMES: tuple[str, ...] = ("1d",)


class FeedUnavailableError(RuntimeError):
    """A feed cannot run on this store (a replay of an empty store); the message says why."""


class CandleSource(Protocol):
    """What the chart reads from a candle recorder (``CandleRecorder`` has it)."""

    @property
    def version(self) -> int:
        """Return the number of closed-candle batches recorded so far."""

    def recent(self, symbol: str, n: int) -> pd.DataFrame:
        """Return the last ``n`` closed candles of ``symbol``."""

    def open_candle(self, symbol: str) -> dict[str, Any] | None:
        """Return the candle still forming for ``symbol``, or ``None``."""

    def closed_since(self, version: int) -> tuple[int, pd.DataFrame]:
        """Return the current version and the candles closed after ``version``."""


@dataclass
class LiveSource:
    """Return-value of :meth:`LiveHub.source`: one running feed, its cache and its candles.

    ``candles(timeframe)`` records that timeframe from the first call on (the recorder
    is shared by every session that shows it).
    """

    kind: FeedKind
    feed: MarketFeed
    timeframes: tuple[str, ...]
    store: MarketStore | None = None
    _recorders: dict[str, CandleSource] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def cache(self) -> QuoteCache:
        """Return the feed's latest-quote cache."""
        return self.feed.cache

    @property
    def symbols(self) -> list[str]:
        """Return the symbols the feed publishes, sorted."""
        return self.feed.symbols

    def candles(self, timeframe: str) -> CandleSource:
        """Return the shared candle recorder of ``timeframe`` (created and attached once).

        Raises
        ------
        ValueError
            ``timeframe`` is not one this feed offers.
        """
        if timeframe not in self.timeframes:
            raise ValueError(
                f"the {self.kind} feed offers timeframes {list(self.timeframes)}, not {timeframe!r}"
            )
        with self._lock:
            recorder = self._recorders.get(timeframe)
            if recorder is None:
                from quantdesk.data.live import CandleRecorder

                made = CandleRecorder(timeframe, store=self.store)
                made.attach(self.feed)
                self._recorders[timeframe] = made
                recorder = made
            return recorder

    def close(self) -> None:
        """Stop the feed and flush every recorder (pending candles reach the store)."""
        self.feed.stop()
        for recorder in self._recorders.values():
            closer = getattr(recorder, "close", None) or getattr(recorder, "flush", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # shutdown goes on; the log says what was lost
                    logger.exception("%s candle recorder failed to flush", self.kind)


class LiveHub:
    """Start at most one feed of each kind, on first use, and share it.

    Parameters
    ----------
    store_path
        The market store file (default ``$QUANTDESK_HOME/quantdesk.duckdb``).
    symbols
        Symbols to watch: the simulator's names, or the stored symbols to replay
        (default: the simulator names ``simulated`` symbols itself; the replay takes
        every stored symbol with daily bars, up to ``max_replay``).
    simulated
        Number of simulated symbols when ``symbols`` is not given.
    rate
        Simulated updates per second per symbol.
    speed
        Replay speed (1.0 is real time; 3600 plays a trading day of daily bars in 24 s).
    seed
        The simulator's random seed.
    loop
        Whether the replay starts over at the end of the stored bars.
    """

    def __init__(
        self,
        store_path: str | Path | None = None,
        *,
        symbols: Sequence[str] | None = None,
        simulated: int = 10,
        rate: float = 2.0,
        speed: float = 3600.0,
        seed: int = 0,
        loop: bool = False,
        max_replay: int = 50,
    ) -> None:
        self.store_path = Path(store_path) if store_path is not None else None
        self.symbols = [s for s in symbols] if symbols else None
        self.simulated = int(simulated)
        self.rate = float(rate)
        self.speed = float(speed)
        self.seed = int(seed)
        self.loop = bool(loop)
        self.max_replay = int(max_replay)
        self._sources: dict[FeedKind, LiveSource] = {}
        self._lock = threading.Lock()
        self._store: MarketStore | None = None

    def __repr__(self) -> str:
        running = ", ".join(sorted(self._sources)) or "no feed"
        return f"LiveHub({running} running)"

    @property
    def store(self) -> MarketStore:
        """Return the market store (created empty when there is none yet)."""
        if self._store is None:
            from quantdesk.data.store import MarketStore

            self._store = MarketStore(self.store_path)
        return self._store

    def running(self) -> list[FeedKind]:
        """Return the kinds of feed started so far."""
        with self._lock:
            return sorted(self._sources)

    def replay_symbols(self) -> list[str]:
        """Return the stored symbols with daily bars a replay would play (may be empty)."""
        stored = self.store.timeframes()
        daily = sorted(set(stored.loc[stored["timeframe"] == "1d", "symbol"].astype(str)))
        if self.symbols:
            return [s for s in self.symbols if s in daily]
        return daily[: self.max_replay]

    def source(self, kind: FeedKind) -> LiveSource:
        """Return the running source of ``kind``, starting its feed on the first call.

        Raises
        ------
        FeedUnavailableError
            A replay was asked for and the store holds no daily bars to replay.
        ValueError
            ``kind`` is neither ``"simulator"`` nor ``"replay"``.
        """
        if kind not in FEED_KINDS:
            raise ValueError(f"feed must be one of {list(FEED_KINDS)}, not {kind!r}")
        with self._lock:
            existing = self._sources.get(kind)
            if existing is not None:
                return existing
            made = self._start_simulator() if kind == "simulator" else self._start_replay()
            self._sources[kind] = made
            logger.info("started the %s feed: %s", kind, made.feed)
            return made

    def _start_simulator(self) -> LiveSource:
        from quantdesk.data.live import SimulatedFeed

        feed = SimulatedFeed(
            self.symbols if self.symbols else self.simulated, rate=self.rate, seed=self.seed
        )
        # Candles recorded by the simulator are written to the store as they close.
        source = LiveSource("simulator", feed, SIMULATOR_TIMEFRAMES, store=self.store)
        source.candles(SIMULATOR_TIMEFRAMES[0])  # record before the first tick arrives
        feed.start()
        return source

    def _start_replay(self) -> LiveSource:
        from quantdesk.data.live import ReplayFeed

        symbols = self.replay_symbols()
        if not symbols:
            wanted = f" ({', '.join(self.symbols)})" if self.symbols else ""
            raise FeedUnavailableError(
                f"the store at {self.store.path} holds no daily bars to replay{wanted}; "
                "run `quantdesk ingest sample` (real S&P 500 and NASDAQ bars) or "
                "`quantdesk ingest simulate` first"
            )
        feed = ReplayFeed(self.store, symbols, timeframe="1d", speed=self.speed, loop=self.loop)
        # A replay reads the store: its candles stay in memory, nothing is written back.
        source = LiveSource("replay", feed, REPLAY_TIMEFRAMES, store=None)
        source.candles(REPLAY_TIMEFRAMES[0])
        feed.start()
        return source

    def set_speed(self, speed: float) -> None:
        """Set the replay speed (of the running replay too: every session shares it)."""
        if not speed > 0:
            raise ValueError(f"replay speed must be positive, got {speed!r}")
        self.speed = float(speed)
        with self._lock:
            replay = self._sources.get("replay")
        if replay is not None:
            replay.feed.speed = self.speed  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop every feed (and flush its candles); the hub can start them again later."""
        with self._lock:
            sources = list(self._sources.values())
            self._sources.clear()
        for source in sources:
            source.close()
            logger.info("stopped the %s feed", source.kind)


_HUB: LiveHub | None = None
_HUB_LOCK = threading.Lock()


def get_hub() -> LiveHub:
    """Return the process-wide hub (a default one on first use)."""
    global _HUB
    with _HUB_LOCK:
        if _HUB is None:
            _HUB = LiveHub()
        return _HUB


def set_hub(hub: LiveHub | None) -> LiveHub | None:
    """Return the previous process-wide hub after installing ``hub`` (``None`` clears it)."""
    global _HUB
    with _HUB_LOCK:
        previous, _HUB = _HUB, hub
        return previous
