"""The monitor's Viewer classes as plain objects, without a server.

The watchlist and the chart are rendered into a real Bokeh document and the document's
own change events are recorded: a patch is a ``ColumnsPatched`` event, a stream a
``ColumnsStreamed`` one, a rebuild a change of the whole ``data``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.live import MarketFeed, QuoteCache


class ManualFeed(MarketFeed):
    """A feed whose ticks the test publishes itself (no thread, no clock)."""

    kind = "manual"

    def _session(self, stop: threading.Event, ready: Callable[[], None]) -> None:
        ready()
        stop.wait()


def _ticks(symbol: str, start: str, n: int, step: str, first: float = 100.0) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq=step, tz="UTC").as_unit("ns")
    return pd.DataFrame(
        {"symbol": symbol, "ts": ts, "price": first + np.arange(n, dtype=float), "size": 1.0}
    )


class DocEvents:
    """The change events a Bokeh document sees, by kind."""

    def __init__(self, doc: Any) -> None:
        self.events: list[Any] = []
        doc.on_change(self.events.append)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]

    def replaced(self) -> list[Any]:
        """Return the events that replace a whole source's data (a rebuild)."""
        return [
            e
            for e in self.events
            if type(e).__name__ == "ColumnDataChangedEvent"
            or (type(e).__name__ == "ModelChangedEvent" and e.attr in ("data", "source"))
        ]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
def doc() -> Iterator[Any]:
    from bokeh.document import Document

    yield Document()


def test_watchlist_patches_only_the_rows_that_changed(doc: Any) -> None:
    from quantdesk.dashboards.monitor import Watchlist

    cache = QuoteCache()
    symbols = ["AAA", "BBB", "CCC", "DDD"]
    cache.set_prev_close({s: 100.0 for s in symbols})
    for s in symbols:
        cache.update(s, "2024-01-02 14:30", 100.0)
    watchlist = Watchlist(cache, symbols)
    model = watchlist.table.get_root(doc)
    doc.add_root(model)
    table_value = watchlist.table.value
    events = DocEvents(doc)

    cache.update("BBB", "2024-01-02 14:30:01", 101.0)
    cache.update("DDD", "2024-01-02 14:30:01", 99.0)
    assert watchlist.refresh() == 2

    patched = [e for e in events.events if type(e).__name__ == "ColumnsPatchedEvent"]
    assert patched and not events.replaced()
    touched = {index for e in patched for patches in e.patches.values() for index, _ in patches}
    assert touched == {1, 3}  # BBB and DDD, nothing else
    assert watchlist.table.value is table_value  # patched in place, never rebuilt
    row = watchlist.table.value.loc["BBB"]
    assert (row["price"], row["change"], row["direction"]) == (101.0, 1.0, "up")
    assert watchlist.table.value.loc["DDD", "direction"] == "down"
    assert watchlist.table.value.loc["DDD", "change_pct"] == pytest.approx(-1.0)

    events.clear()
    assert watchlist.refresh() == 0  # nothing moved: nothing sent
    assert events.kinds() == []


def test_regime_pane_escapes_the_symbol() -> None:
    from quantdesk.dashboards.panes import RegimePane

    view = RegimePane(symbol="<img src=x onerror=alert(1)>")
    view.refresh(force=True)
    assert "<img" not in view.pane.object
    assert "&lt;img src=x onerror=alert(1)&gt;" in view.pane.object


def test_a_periodic_callback_that_raises_is_logged_and_the_next_tick_updates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from quantdesk.dashboards.monitor import Watchlist, guarded

    class FlakyCache(QuoteCache):
        """A cache whose first read fails (as a store or feed hiccup would)."""

        failed = False

        def changed_since(self, version: int) -> tuple[int, list[Any]]:
            if not self.failed:
                self.failed = True
                raise RuntimeError("cache read failed once")
            return super().changed_since(version)

    cache = FlakyCache()
    watchlist = Watchlist()
    watchlist.cache = cache
    watchlist._rows = {"AAA": 0}
    watchlist.table.value = Watchlist._frame(["AAA"])
    tick = guarded(watchlist.refresh, "watchlist")
    cache.update("AAA", "2024-01-02", 10.0)

    with caplog.at_level(logging.ERROR, logger="quantdesk.dashboards.monitor"):
        tick()  # raises inside: logged, not propagated
    assert any("cache read failed once" in r.exc_text for r in caplog.records if r.exc_text)
    assert np.isnan(watchlist.table.value.loc["AAA", "price"])

    tick()  # the next tick works as if nothing happened
    assert watchlist.table.value.loc["AAA", "price"] == 10.0


@pytest.fixture
def recorder_feed() -> Iterator[tuple[Any, ManualFeed]]:
    from quantdesk.data.live import CandleRecorder

    feed = ManualFeed(["AAA", "BBB"])
    recorder = CandleRecorder("1min")
    recorder.attach(feed)
    yield recorder, feed


def test_chart_streams_closed_candles_with_rollover_and_patches_the_open_one(
    doc: Any, recorder_feed: tuple[Any, ManualFeed]
) -> None:
    from quantdesk.dashboards.monitor import CandleChart

    recorder, feed = recorder_feed
    feed.publish(_ticks("AAA", "2024-01-02 14:30", 3, "20s"))  # one minute, still open
    chart = CandleChart(rollover=10)
    chart.bind(recorder, "AAA", "1min")
    doc.add_root(chart.pane.get_root(doc))
    assert len(chart.closed.data["ts"]) == 0
    assert chart.open.data["open"] == [100.0] and chart.open.data["close"] == [102.0]
    events = DocEvents(doc)

    # 15 more minutes of AAA (and some BBB the chart must ignore): 15 candles close.
    feed.publish(_ticks("AAA", "2024-01-02 14:31", 45, "20s", first=103.0))
    feed.publish(_ticks("BBB", "2024-01-02 14:31", 45, "20s", first=50.0))
    assert chart.refresh() == 15
    kinds = events.kinds()
    assert "ColumnsStreamedEvent" in kinds
    assert not events.replaced()  # streamed, not redrawn
    streamed = [e for e in events.events if type(e).__name__ == "ColumnsStreamedEvent"]
    assert all(e.rollover == 10 for e in streamed)
    assert len(chart.closed.data["ts"]) == 10  # rolled over to the last 10
    expected = recorder.recent("AAA", 10)
    got = pd.to_datetime(pd.Series(chart.closed.data["ts"]), unit="ms", utc=True)
    assert list(got) == list(pd.DatetimeIndex(expected["ts"]))
    assert chart.closed.data["close"] == list(expected["close"].astype(float))

    events.clear()
    feed.publish(_ticks("AAA", "2024-01-02 14:45:50", 1, "1s", first=500.0))
    assert chart.refresh() == 0
    assert "ColumnsPatchedEvent" in events.kinds() and not events.replaced()  # patched
    assert chart.open.data["close"] == [500.0]


def test_switching_symbol_resets_the_chart_title_and_data(
    recorder_feed: tuple[Any, ManualFeed],
) -> None:
    from quantdesk.dashboards.monitor import CandleChart

    recorder, feed = recorder_feed
    feed.publish(_ticks("AAA", "2024-01-02 14:30", 30, "20s"))
    feed.publish(_ticks("BBB", "2024-01-02 14:30", 12, "20s", first=50.0))
    chart = CandleChart()
    chart.bind(recorder, "AAA", "1min")
    assert chart.title.text == "AAA 1min"
    assert len(chart.closed.data["ts"]) == 9
    chart.bind(recorder, "BBB", "1min")
    assert chart.title.text == "BBB 1min"
    assert len(chart.closed.data["ts"]) == 3
    assert min(chart.closed.data["low"]) >= 50.0  # BBB's prices, nothing of AAA's left


def test_session_destroy_releases_the_callback_and_references(tmp_path: Any) -> None:
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.dashboards.monitor import MarketMonitor

    hub = LiveHub(tmp_path / "store.duckdb", symbols=["AAA", "BBB"])
    try:
        monitor = MarketMonitor(hub)
        document = Document()
        with set_curdoc(document):
            callback = monitor.start_updates()
        destroyed = document.callbacks.session_destroyed_callbacks
        assert any(getattr(cb, "__self__", None) is monitor for cb in destroyed)
        for cb in list(destroyed):
            cb(None)
        assert monitor.callback is None and not callback.running
        assert monitor.source is None and monitor.watchlist.cache is None
        assert monitor.chart.candles is None
        assert hub.running() == ["simulator"]  # the shared feed outlives the session
    finally:
        hub.stop()


def test_monitor_slots_take_later_panes_and_refuse_unknown_ones(tmp_path: Any) -> None:
    import panel as pn

    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.dashboards.monitor import SLOTS, MarketMonitor

    hub = LiveHub(tmp_path / "store.duckdb", symbols=["AAA"])
    try:
        monitor = MarketMonitor(hub, panes=False)
        assert (
            set(monitor.slots)
            == set(SLOTS)
            == {"alerts", "positions", "sentiment", "forecasts", "pipeline"}
        )
        pane = pn.pane.Markdown("3 alerts")
        monitor.add_pane("alerts", pane)
        assert list(monitor.slots["alerts"].objects) == [pane]
        with pytest.raises(KeyError, match="no slot 'news'"):
            monitor.add_pane("news", pane)
    finally:
        hub.stop()


def test_replay_on_an_empty_store_says_what_to_ingest(tmp_path: Any) -> None:
    from quantdesk.dashboards.hub import FeedUnavailableError, LiveHub
    from quantdesk.dashboards.monitor import MarketMonitor

    hub = LiveHub(tmp_path / "store.duckdb", symbols=["AAA"])
    try:
        with pytest.raises(FeedUnavailableError, match="quantdesk ingest sample"):
            hub.source("replay")
        monitor = MarketMonitor(hub)
        monitor.feed = "replay"
        assert monitor.feed == "simulator"  # stays on what works
        assert "quantdesk ingest sample" in monitor.message
    finally:
        hub.stop()


def test_the_watchlist_arrow_is_the_sign_of_the_change_beside_it() -> None:
    """Issue 20: the arrow often disagreed with the sign of the change (property test)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from quantdesk.dashboards.monitor import Watchlist

    prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)

    @settings(max_examples=150, deadline=None)
    @given(prev_close=prices, path=st.lists(prices, min_size=1, max_size=6))
    def check(prev_close: float, path: list[float]) -> None:
        cache = QuoteCache()
        cache.set_prev_close({"AAA": prev_close})
        watchlist = Watchlist(cache, ["AAA"])
        for i, price in enumerate(path):
            cache.update(
                "AAA", pd.Timestamp("2024-03-08 14:30", tz="UTC") + pd.Timedelta(i, "s"), price
            )
            watchlist.refresh()
            row = watchlist.table.value.loc["AAA"]
            change = row["change"]
            expected = "up" if change > 0 else "down" if change < 0 else "flat"
            assert row["direction"] == expected, (prev_close, path[: i + 1], change)
            # The change shown is the price's move from the previous close.
            assert change == pytest.approx(price - prev_close, abs=0.005 + 1e-9 * price)

    check()
