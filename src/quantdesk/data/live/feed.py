"""The market-feed contract: a start/stop lifecycle, subscriptions, ticks out, retry built in.

A :class:`MarketFeed` runs its source on one background thread.  Implementations write
one method, :meth:`MarketFeed._session`, which connects, calls ``ready()`` once ticks
can flow, and then hands batches of ticks (:data:`~quantdesk.data.schemas.TICK_COLUMNS`)
to :meth:`MarketFeed.publish` until the stop event is set.  The base class does the rest
the same way for every source:

* :meth:`publish` keeps the subscribed symbols only, updates the shared
  :class:`~quantdesk.data.live.quotes.QuoteCache` and calls every listener (a listener
  that raises is logged and the others still run);
* a session that raises after it was ready is logged and restarted with exponential
  backoff (:class:`Backoff`); the feed never dies silently, and :attr:`status` says what
  it is doing;
* a session that fails *before* it was ever ready (no keys, no network, a bad URL) fails
  :meth:`start` at once with :class:`FeedError`: a mistake is reported, never retried
  into a hang.
"""

from __future__ import annotations

import logging
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import pandas as pd

from quantdesk.core.backoff import Backoff
from quantdesk.data.live.quotes import QuoteCache
from quantdesk.data.schemas import TICK_COLUMNS

__all__ = ["FeedError", "FeedState", "FeedStatus", "MarketFeed", "TickListener"]

logger = logging.getLogger(__name__)

FeedState = Literal["idle", "starting", "running", "retrying", "finished", "stopped", "failed"]
TickListener = Callable[[pd.DataFrame], None]


class FeedError(RuntimeError):
    """A feed could not start (bad configuration, no credentials, source unreachable)."""


@dataclass(frozen=True)
class FeedStatus:
    """Return what a feed is doing: its state, counts and the last error it logged."""

    state: FeedState = "idle"
    ticks: int = 0
    batches: int = 0
    sessions: int = 0
    retries: int = 0
    last_error: str | None = None
    last_tick: pd.Timestamp | None = None

    def summary(self) -> str:
        """Return a one-line account of the feed's state."""
        text = (
            f"{self.state}: {self.ticks} ticks in {self.batches} batches, "
            f"{self.sessions} session(s), {self.retries} retries"
        )
        return text + (f"; last error: {self.last_error}" if self.last_error else "")


class MarketFeed(ABC):
    """Base class of every live source: simulator, replay, provider.

    Parameters
    ----------
    symbols
        Symbols subscribed from the start (more with :meth:`subscribe`).
    cache
        The quote cache to update (a new one by default); share one to merge feeds.
    backoff
        Retry policy after a session fails.
    start_timeout
        Seconds :meth:`start` waits for the first session to be ready before it raises
        :class:`FeedError`.
    """

    #: Short name used in logs, store sources and the dashboard ("simulator", "replay", ...).
    kind: str = "feed"

    def __init__(
        self,
        symbols: Iterable[str] | None = None,
        *,
        cache: QuoteCache | None = None,
        backoff: Backoff | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        self.cache = cache if cache is not None else QuoteCache()
        self.backoff = backoff if backoff is not None else Backoff()
        self.start_timeout = float(start_timeout)
        self._symbols: set[str] = set()
        self._listeners: list[TickListener] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = FeedStatus()
        self._ever_ready = False
        self._session_ready = False
        self._start_error: BaseException | None = None
        if symbols is not None:
            self._symbols.update(_symbol_set(symbols))

    # -- subscriptions and listeners ---------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """Return the subscribed symbols, sorted."""
        with self._lock:
            return sorted(self._symbols)

    def subscribe(self, symbols: str | Iterable[str]) -> list[str]:
        """Return the symbols newly subscribed (already subscribed ones are ignored)."""
        with self._lock:
            added = sorted(_symbol_set(symbols) - self._symbols)
            self._symbols.update(added)
        if added:
            self._on_subscribe(added)
        return added

    def unsubscribe(self, symbols: str | Iterable[str]) -> list[str]:
        """Return the symbols removed from the subscription."""
        with self._lock:
            removed = sorted(_symbol_set(symbols) & self._symbols)
            self._symbols.difference_update(removed)
        if removed:
            self._on_unsubscribe(removed)
        return removed

    def add_listener(self, listener: TickListener) -> Callable[[], None]:
        """Return a function that removes ``listener``; it gets every published tick batch."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _on_subscribe(self, symbols: list[str]) -> None:  # noqa: B027 (optional hook)
        """Hook: tell the source about new symbols (a provider sends a message)."""

    def _on_unsubscribe(self, symbols: list[str]) -> None:  # noqa: B027 (optional hook)
        """Hook: tell the source about dropped symbols."""

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def status(self) -> FeedStatus:
        """Return the feed's current :class:`FeedStatus`."""
        return self._status

    @property
    def running(self) -> bool:
        """Return whether the feed thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _set_status(self, **changes: Any) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def start(self, *, wait: bool = True) -> MarketFeed:
        """Return the feed after starting its thread (and, with ``wait``, its first session).

        Raises
        ------
        FeedError
            The first session failed before it was ready, or was not ready within
            ``start_timeout`` seconds; the feed is stopped again.
        """
        if self.running:
            return self
        self._stop.clear()
        self._ready.clear()
        self._start_error = None
        self._ever_ready = False
        self._set_status(state="starting", last_error=None)
        self._thread = threading.Thread(
            target=self._loop, name=f"quantdesk-{self.kind}-feed", daemon=True
        )
        self._thread.start()
        if not wait:
            return self
        if not self._ready.wait(self.start_timeout):
            self.stop()
            raise FeedError(
                f"{self.kind} feed was not ready within {self.start_timeout:g} s; "
                "check the source's address and the network"
            )
        if self._start_error is not None:
            self.stop()
            raise FeedError(f"{self.kind} feed failed to start: {self._start_error}") from (
                self._start_error
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the feed and wait up to ``timeout`` seconds for its thread to end."""
        self._stop.set()
        self._ready.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s feed thread did not stop within %g s", self.kind, timeout)
        if self._status.state not in ("failed", "finished"):
            self._set_status(state="stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Return whether the feed thread ended within ``timeout`` (a replay runs out)."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def __enter__(self) -> MarketFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _mark_ready(self) -> None:
        self._ever_ready = True
        self._session_ready = True
        self._set_status(state="running", sessions=self._status.sessions + 1)
        self._ready.set()

    def _loop(self) -> None:
        attempt = 0
        rng = random.Random()
        while not self._stop.is_set():
            self._session_ready = False
            try:
                self._session(self._stop, self._mark_ready)
            except Exception as exc:  # a feed never dies silently: log, then retry or fail
                if not self._ever_ready:
                    logger.error("%s feed failed to start: %s", self.kind, exc)
                    self._start_error = exc
                    self._set_status(state="failed", last_error=f"{type(exc).__name__}: {exc}")
                    self._ready.set()
                    return
                if self._session_ready:
                    attempt = 0  # the connection worked for a while: start the backoff over
                delay = self.backoff.delay(attempt, rng)
                attempt += 1
                logger.warning(
                    "%s feed session failed (%s: %s); retry %d in %.2f s",
                    self.kind,
                    type(exc).__name__,
                    exc,
                    attempt,
                    delay,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
                self._set_status(
                    state="retrying",
                    retries=self._status.retries + 1,
                    last_error=f"{type(exc).__name__}: {exc}",
                )
                self._stop.wait(delay)
                continue
            if not self._stop.is_set():
                # The source ran out (a replay reached its end).
                self._set_status(state="finished")
                self._ready.set()
            return

    @abstractmethod
    def _session(self, stop: threading.Event, ready: Callable[[], None]) -> None:
        """Run one connection to the source until ``stop`` is set or the source ends.

        Call ``ready()`` once ticks can flow and hand them to :meth:`publish`.  Raise on
        a broken connection; the base class logs it and starts a new session after a
        backoff.  Return normally only when ``stop`` is set or the source has no more
        data.
        """

    # -- ticks out ---------------------------------------------------------------------

    def publish(self, ticks: pd.DataFrame) -> int:
        """Return the number of ticks delivered after filtering to subscribed symbols.

        ``ticks`` has :data:`TICK_COLUMNS` with ``ts`` timezone-aware UTC; the quote cache
        is updated first, then every listener gets the (filtered) frame.
        """
        if ticks.empty:
            return 0
        with self._lock:
            wanted = self._symbols
            listeners = list(self._listeners)
        # Test the batch's few distinct symbols against the subscription, not every tick
        # (Series.isin on arrow strings builds a scalar per subscribed symbol each call).
        symbols = ticks["symbol"]
        present = pd.unique(symbols).tolist()
        unwanted = [s for s in present if s not in wanted]
        if unwanted:
            ticks = ticks.loc[~symbols.isin(unwanted)]
            if ticks.empty:
                return 0
        ticks = ticks.reset_index(drop=True)[list(TICK_COLUMNS)]
        self.cache.update_many(ticks["symbol"].to_numpy(), ticks["ts"], ticks["price"].to_numpy())
        for fn in listeners:
            try:
                fn(ticks)
            except Exception:
                logger.exception("%s feed listener %r failed; the feed goes on", self.kind, fn)
        self._set_status(
            ticks=self._status.ticks + len(ticks),
            batches=self._status.batches + 1,
            last_tick=ticks["ts"].iloc[-1],
        )
        return len(ticks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._symbols)} symbols, {self._status.state})"


def _symbol_set(symbols: str | Iterable[str]) -> set[str]:
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    bad = [s for s in items if not isinstance(s, str) or not s.strip()]
    if bad:
        raise ValueError(f"symbols must be non-empty strings, got {bad[:3]!r}")
    return {s.strip() for s in items}
