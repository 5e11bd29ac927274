"""The live hub: one feed of each kind per server process, shared by every session.

A Panel server runs one :class:`LiveHub`.  The first session that asks for the
simulator (or the replay) starts that feed, with its quote cache, and every later
session reads the same cache and the same candles; a session only does the work of
what it shows (its watchlist rows, its chart's symbol).  The hub stops its feeds when
the server shuts down (:meth:`LiveHub.stop`).

* simulator: :class:`~quantdesk.data.live.SimulatedFeed` ticks; closed candles go
  through a :class:`~quantdesk.data.live.CandleRecorder` to the *live store* beside the
  research store (:func:`~quantdesk.data.live.live_store_path`,
  ``quantdesk.live.duckdb``), so a notebook sees them while the monitor runs and the
  research store stays the user's: no research query (symbols, scans, reports, the
  simulated universe) ever meets them.  ``record_to_store=True`` (``quantdesk
  dashboard --record-to-store``) records them into the research store instead.  An
  empty store is fine: the simulator names its own symbols.
* replay: :class:`~quantdesk.data.live.ReplayFeed` replays stored bars of one timeframe
  (``replay_timeframe``, daily by default) at N x speed; its candles stay in memory
  (nothing is written back to the store it reads, nor anywhere else).

Candles are recorded per timeframe on first use (:meth:`LiveSource.candles`).

Each running feed also has one streaming scan (:meth:`LiveHub.scanner`, a
:class:`~quantdesk.screener.live.LiveScanner`) over its closed candles
(``scan_timeframe`` on the simulator, the replayed timeframe on a replay), started with
the feed: the alerts pane of every session shows the same alerts.  The simulator's
alerts are recorded where its candles go (the live store unless asked otherwise); a
replay's stay in memory, like its candles.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

if TYPE_CHECKING:
    from quantdesk.data.live.feed import MarketFeed
    from quantdesk.data.live.quotes import QuoteCache
    from quantdesk.data.live.recorder import CandleSource
    from quantdesk.data.store.market import MarketStore
    from quantdesk.screener.live import LiveScanner

__all__ = [
    "FEED_KINDS",
    "SIMULATOR_TIMEFRAMES",
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


class FeedUnavailableError(RuntimeError):
    """A feed cannot run on this store (nothing to replay); the message says why and what to do."""


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
        every stored symbol with bars at ``replay_timeframe``, up to ``max_replay``).
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
    replay_timeframe
        The stored bars a replay plays (``"1d"``, or intraday such as ``"1min"``).
    rules
        The live scan's rule set (names, rules or a YAML file; default
        ``$QUANTDESK_MONITOR_RULES`` when set, :attr:`~quantdesk.config.Settings.monitor_rules`,
        else :func:`~quantdesk.screener.live.default_live_rules`).
    scan_timeframe
        The simulator's candles that the live scan reads (a replay scans its daily ones).
    ledger
        The paper ledger the monitor's positions pane trades.
    record_to_store
        Record the simulator's candles and alerts into the research store itself
        (default ``False``: into the live store beside it, :attr:`live_store`).
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
        rules: Any = None,
        scan_timeframe: str = "5s",
        ledger: str = "default",
        replay_timeframe: str = "1d",
        record_to_store: bool = False,
    ) -> None:
        from quantdesk.data.schemas import parse_timeframe

        self.store_path = Path(store_path) if store_path is not None else None
        self.symbols = [s for s in symbols] if symbols else None
        self.simulated = int(simulated)
        self.rate = float(rate)
        self.speed = float(speed)
        self.seed = int(seed)
        self.loop = bool(loop)
        self.max_replay = int(max_replay)
        if rules is None:
            from quantdesk.config import settings

            configured = settings().monitor_rules
            rules = str(configured) if configured is not None else None
        self.rules = rules
        if scan_timeframe not in SIMULATOR_TIMEFRAMES:
            raise ValueError(
                f"scan_timeframe must be one of {list(SIMULATOR_TIMEFRAMES)}, "
                f"not {scan_timeframe!r}"
            )
        self.scan_timeframe = scan_timeframe
        self.ledger = ledger
        self.replay_timeframe = parse_timeframe(replay_timeframe).name
        self.record_to_store = bool(record_to_store)
        self._sources: dict[FeedKind, LiveSource] = {}
        self._scanners: dict[FeedKind, LiveScanner] = {}
        self._lock = threading.Lock()
        self._store: MarketStore | None = None
        self._live_store: MarketStore | None = None

    def __repr__(self) -> str:
        running = ", ".join(sorted(self._sources)) or "no feed"
        return f"LiveHub({running} running)"

    @property
    def store(self) -> MarketStore:
        """Return the market store (created empty when there is none yet)."""
        if self._store is None:
            from quantdesk.data.store.market import MarketStore

            self._store = MarketStore(self.store_path)
        return self._store

    @property
    def live_store(self) -> MarketStore:
        """Return where the simulator records: the live store, or the research store if asked.

        The live store is :func:`~quantdesk.data.live.live_store_path` of the research
        store (``quantdesk.live.duckdb`` beside ``quantdesk.duckdb``), created on first use.
        """
        if self.record_to_store:
            return self.store
        if self._live_store is None:
            from quantdesk.data.live import live_store_path
            from quantdesk.data.store.market import MarketStore

            # Created now, so a reader (`alerts list --store ...live.duckdb`, a notebook)
            # can open it as soon as the monitor runs, before the first candle closes.
            self._live_store = MarketStore(live_store_path(self.store.path)).create()
        return self._live_store

    def running(self) -> list[FeedKind]:
        """Return the kinds of feed started so far."""
        with self._lock:
            return sorted(self._sources)

    def replay_symbols(self) -> list[str]:
        """Return the stored symbols with bars at ``replay_timeframe`` a replay would play."""
        stored = self._stored_timeframes()
        held = stored.loc[stored["timeframe"] == self.replay_timeframe, "symbol"].astype(str)
        playable = sorted(set(held))
        if self.symbols:
            return [s for s in self.symbols if s in playable]
        return playable[: self.max_replay]

    def _stored_timeframes(self) -> pd.DataFrame:
        # A store with no file yet holds nothing to replay (reading it would refuse);
        # check_replay then says what to ingest.
        if not self.store.exists():
            return pd.DataFrame({"symbol": pd.Series(dtype=str), "timeframe": pd.Series(dtype=str)})
        return self.store.timeframes()

    def check_replay(self) -> list[str]:
        """Return the symbols a replay plays, or raise saying what the store holds instead.

        Raises
        ------
        FeedUnavailableError
            No asked-for symbol has bars at ``replay_timeframe``: the message names the
            symbols, the timeframes the store holds them at, and what to do.
        """
        symbols = self.replay_symbols()
        if symbols:
            return symbols
        stored = self._stored_timeframes()
        if self.symbols:
            stored = stored[stored["symbol"].isin(self.symbols)]
        wanted = f" of {', '.join(self.symbols)}" if self.symbols else ""
        by_timeframe = {
            str(tf): sorted(set(group["symbol"].astype(str)))
            for tf, group in stored.groupby("timeframe", sort=True)
        }
        if by_timeframe:
            held = "; ".join(
                f"{', '.join(names) if len(names) <= 10 else f'{len(names)} symbols'} at {tf}"
                for tf, names in by_timeframe.items()
            )
            first = next(iter(by_timeframe))
            hint = f"it holds {held}: replay one of those with --timeframe {first}"
        else:
            hint = (
                f"it holds no bars{wanted}: run `quantdesk ingest file` (your own data), "
                "`quantdesk ingest sample` (real S&P 500 and NASDAQ bars) or "
                "`quantdesk ingest simulate` first, or use --feed simulator"
            )
        raise FeedUnavailableError(
            f"the store at {self.store.path} holds no {self.replay_timeframe} bars{wanted} "
            f"to replay; {hint}"
        )

    def source(self, kind: FeedKind) -> LiveSource:
        """Return the running source of ``kind``, starting its feed on the first call.

        Raises
        ------
        FeedUnavailableError
            A replay was asked for and the store holds no bars to replay at
            ``replay_timeframe`` (see :meth:`check_replay`).
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
            try:
                self._scanners[kind] = self._start_scanner(made)
            except BaseException:
                self._sources.pop(kind).close()
                raise
            logger.info("started the %s feed: %s", kind, made.feed)
            return made

    def scanner(self, kind: FeedKind) -> LiveScanner:
        """Return the streaming scan of the ``kind`` feed (starting the feed on first use)."""
        self.source(kind)
        with self._lock:
            return self._scanners[kind]

    def _start_scanner(self, source: LiveSource) -> LiveScanner:
        from quantdesk.screener.live import LiveScanner

        simulated = source.kind == "simulator"
        timeframe = self.scan_timeframe if simulated else source.timeframes[0]
        # The recorder is made (and attached) before the scanner: the feed calls its
        # listeners in order, so the scanner sees each candle in the tick that closed it.
        candles = source.candles(timeframe)
        scanner = LiveScanner(
            candles,
            self.rules,
            timeframe=timeframe,
            store=self.live_store if simulated else None,
        )
        return scanner.attach(source.feed)

    def _start_simulator(self) -> LiveSource:
        from quantdesk.data.live import SimulatedFeed

        feed = SimulatedFeed(
            self.symbols if self.symbols else self.simulated, rate=self.rate, seed=self.seed
        )
        # Simulated candles are written as they close: to the live store unless asked.
        source = LiveSource("simulator", feed, SIMULATOR_TIMEFRAMES, store=self.live_store)
        source.candles(SIMULATOR_TIMEFRAMES[0])  # record before the first tick arrives
        feed.start()
        return source

    def _start_replay(self) -> LiveSource:
        from quantdesk.data.live import ReplayFeed

        symbols = self.check_replay()
        feed = ReplayFeed(
            self.store, symbols, timeframe=self.replay_timeframe, speed=self.speed, loop=self.loop
        )
        # A replay reads the store: its candles stay in memory, nothing is written back.
        source = LiveSource("replay", feed, (self.replay_timeframe,), store=None)
        source.candles(self.replay_timeframe)
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
            scanners = list(self._scanners.values())
            self._sources.clear()
            self._scanners.clear()
        for scanner in scanners:
            scanner.close()
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
