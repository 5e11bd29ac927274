"""MarketFeed's lifecycle with a real scripted source on its own thread."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import pandas as pd
import pytest

from quantdesk.data.live import Backoff, FeedError, MarketFeed


def _ticks(symbols: list[str], second: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbols,
            "ts": [pd.Timestamp("2024-01-02", tz="UTC") + pd.Timedelta(seconds=second)]
            * len(symbols),
            "price": [10.0 + second] * len(symbols),
            "size": [1.0] * len(symbols),
        }
    )


class ScriptedFeed(MarketFeed):
    """A source that publishes whatever the test puts on its queue.

    Items: a frame (published), an exception (raised, ending the session), ``None``
    (the source runs out).  ``fail_first`` makes the first session fail before ready.
    """

    kind = "scripted"

    def __init__(self, symbols: list[str], *, fail_first: bool = False, **kwargs: object) -> None:
        super().__init__(symbols, backoff=Backoff(0.01, jitter=False), **kwargs)  # type: ignore[arg-type]
        self.items: queue.Queue[object] = queue.Queue()
        self.fail_first = fail_first
        self.subscribed_hook: list[list[str]] = []

    def _on_subscribe(self, symbols: list[str]) -> None:
        self.subscribed_hook.append(symbols)

    def _session(self, stop: threading.Event, ready: Callable[[], None]) -> None:
        if self.fail_first:
            raise ConnectionRefusedError("nothing listens there")
        ready()
        while not stop.is_set():
            try:
                item = self.items.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            assert isinstance(item, pd.DataFrame)
            self.publish(item)


class Collector:
    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.cond = threading.Condition()

    def __call__(self, ticks: pd.DataFrame) -> None:
        with self.cond:
            self.frames.append(ticks)
            self.cond.notify_all()

    def wait_for(self, n: int) -> list[pd.DataFrame]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.frames) >= n, timeout=60)
            return list(self.frames)


def test_subscriptions_change_at_runtime_and_stop_ends_the_thread() -> None:
    feed = ScriptedFeed(["A"])
    got = Collector()
    feed.add_listener(got)
    feed.start()
    assert feed.running and feed.status.state == "running"
    feed.items.put(_ticks(["A", "B"], 1))
    assert got.wait_for(1)[0]["symbol"].tolist() == ["A"]  # B is not subscribed
    assert feed.subscribe(["B", "A"]) == ["B"] and feed.subscribed_hook == [["B"]]
    feed.items.put(_ticks(["A", "B"], 2))
    assert got.wait_for(2)[1]["symbol"].tolist() == ["A", "B"]
    assert feed.unsubscribe("A") == ["A"] and feed.symbols == ["B"]
    feed.items.put(_ticks(["A", "B"], 3))
    assert got.wait_for(3)[2]["symbol"].tolist() == ["B"]
    thread = feed._thread
    feed.stop()
    assert thread is not None and not thread.is_alive()
    assert not feed.running and feed.status.state == "stopped"
    assert feed.status.ticks == 4 and feed.status.batches == 3
    with pytest.raises(ValueError, match="non-empty strings"):
        feed.subscribe([""])


def test_a_failing_listener_is_logged_and_the_feed_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = ScriptedFeed(["A"])

    def broken(ticks: pd.DataFrame) -> None:
        raise RuntimeError("listener bug")

    got = Collector()
    feed.add_listener(broken)
    feed.add_listener(got)
    with feed:
        feed.items.put(_ticks(["A"], 1))
        feed.items.put(_ticks(["A"], 2))
        assert len(got.wait_for(2)) == 2
    assert "listener" in caplog.text and "listener bug" in caplog.text
    quote = feed.cache.get("A")
    assert quote is not None and quote.price == 12.0


def test_a_session_that_breaks_after_ready_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    feed = ScriptedFeed(["A"])
    got = Collector()
    feed.add_listener(got)
    caplog.set_level(logging.WARNING)
    with feed:
        feed.items.put(ConnectionResetError("peer went away"))
        feed.items.put(_ticks(["A"], 1))
        got.wait_for(1)
        assert feed.status.sessions == 2 and feed.status.retries == 1
        assert "peer went away" in (feed.status.last_error or "")
    assert "session failed" in caplog.text and "retry 1" in caplog.text


def test_a_first_session_failure_is_a_feed_error_at_start() -> None:
    feed = ScriptedFeed(["A"], fail_first=True)
    with pytest.raises(FeedError, match="nothing listens there"):
        feed.start()
    assert not feed.running and feed.status.state == "failed"


def test_a_source_that_runs_out_finishes() -> None:
    feed = ScriptedFeed(["A"])
    feed.start()
    feed.items.put(None)
    assert feed.wait(60) and feed.status.state == "finished"
    feed.stop()
    assert feed.status.state == "finished"


def test_backoff_grows_to_its_cap() -> None:
    backoff = Backoff(base=0.5, factor=2.0, cap=3.0, jitter=False)
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = Backoff(base=1.0, cap=4.0)
    assert all(0 <= jittered.delay(3) <= 4.0 for _ in range(100))
