"""The live hub (one feed of each kind per process) and the monitor server's checks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from ..conftest import free_port, make_bars


def _poll(predicate, timeout: float = 60.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Return the predicate's first truthy value; ``timeout`` only bounds a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} not reached within {timeout:g} s")


def _bar_counts(path: Path) -> dict[tuple[str, str], int]:
    """Return the store's bar count per (symbol, timeframe), read through a fresh reader."""
    from quantdesk.data import MarketStore

    frame = MarketStore(path, read_only=True).sql(
        "SELECT symbol, timeframe, count(*) AS n FROM bars GROUP BY ALL"
    )
    return {(r.symbol, r.timeframe): int(r.n) for r in frame.itertuples()}


def test_sessions_share_one_feed_and_simulated_candles_reach_the_live_store(
    tmp_path: Path,
) -> None:
    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.dashboards.monitor import MarketMonitor
    from quantdesk.data import MarketStore
    from quantdesk.data.live import live_store_path

    path = tmp_path / "store.duckdb"
    MarketStore(path).write_bars(make_bars(["AAA"], 5, seed=1), "1d")
    before = _bar_counts(path)
    hub = LiveHub(path, symbols=["AAA", "BBB"], rate=4.0)
    try:
        first, second = MarketMonitor(hub), MarketMonitor(hub)
        assert first.source is second.source is hub.source("simulator")
        assert first.watchlist.cache is second.watchlist.cache
        assert hub.running() == ["simulator"]
        recorder = hub.source("simulator").candles("5s")
        assert first.chart.candles is recorder is second.chart.candles
        # Closed 5 s candles are written to the live store beside the research store.
        assert hub.live_store.path == live_store_path(path) == tmp_path / "store.live.duckdb"
        reader = MarketStore(hub.live_store.path, read_only=True)
        stored = _poll(
            lambda: len(reader.sql("SELECT * FROM bars WHERE timeframe = '5s'")),
            what="a simulated candle in the live store",
        )
        assert stored >= 1
        feed = hub.source("simulator").feed
    finally:
        hub.stop()
    assert not feed.running and hub.running() == []
    assert _bar_counts(path) == before  # the research store is the user's


def test_replay_source_replays_stored_bars_without_writing_back(tmp_path: Path) -> None:
    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.data import MarketStore

    path = tmp_path / "store.duckdb"
    store = MarketStore(path)
    store.write_bars(make_bars(["AAA"], 40, seed=1), "1d")
    before = store.sql("SELECT count(*) AS n FROM bars")["n"].iat[0]
    hub = LiveHub(path, speed=1e9)
    try:
        source = hub.source("replay")
        assert source.feed.wait(60)
        recorder = source.candles("1d")
        drawn = recorder.recent("AAA", 100)
        stored = store.bars("AAA")
        assert len(drawn) == 39  # the last bar stays open: no later tick closed it
        np.testing.assert_allclose(
            drawn[["open", "high", "low", "close"]].to_numpy(),
            stored[["open", "high", "low", "close"]].iloc[:39].to_numpy(),
        )
        hub.set_speed(10.0)
        assert source.feed.speed == 10.0  # type: ignore[attr-defined]
    finally:
        hub.stop()
    assert store.sql("SELECT count(*) AS n FROM bars")["n"].iat[0] == before


def test_the_server_refuses_an_open_bind_without_auth_before_starting_anything(
    tmp_path: Path,
) -> None:
    from quantdesk.dashboards.security import InsecureBindError
    from quantdesk.dashboards.server import monitor_server

    with pytest.raises(InsecureBindError, match="--basic-auth FILE --cookie-secret S"):
        monitor_server(address="0.0.0.0", port=free_port(), store_path=tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()  # refused before the store was touched


def test_basic_auth_needs_a_cookie_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quantdesk.dashboards.server import monitor_server

    monkeypatch.delenv("QUANTDESK_COOKIE_SECRET", raising=False)
    creds = tmp_path / "users"
    creds.write_text("alice:pw\n")
    with pytest.raises(ValueError, match="QUANTDESK_COOKIE_SECRET"):
        monitor_server(basic_auth=creds, port=free_port(), store_path=tmp_path / "s.duckdb")


def test_panel_gets_the_credentials_never_a_path_it_could_take_as_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from panel.io.state import state

    from quantdesk.dashboards.server import monitor_server

    monkeypatch.setenv("QUANTDESK_COOKIE_SECRET", "x" * 40)
    creds = tmp_path / "users.json"
    creds.write_text('{"alice": "pw1", "bob": "pw2"}')
    built = monitor_server(
        basic_auth=creds,
        address="0.0.0.0",
        port=free_port(),
        store_path=tmp_path / "s.duckdb",
        symbols=["AAA"],
    )
    try:
        config = state._server_config[built.server._tornado]
        assert config["basic_auth"] == {"alice": "pw1", "bob": "pw2"}
        assert built.authenticated
        origins = built.server._tornado._websocket_origins
        assert origins and "*" not in origins
    finally:
        built.close()


def test_a_replay_server_on_an_empty_store_says_what_to_ingest(tmp_path: Path) -> None:
    from quantdesk.dashboards.hub import FeedUnavailableError
    from quantdesk.dashboards.server import monitor_server

    with pytest.raises(FeedUnavailableError, match="quantdesk ingest sample"):
        monitor_server(feed="replay", port=free_port(), store_path=tmp_path / "s.duckdb")


def test_regime_pane_filters_with_the_saved_model(tmp_path: Path) -> None:
    from quantdesk.dashboards.panes import RegimePane
    from quantdesk.data import MarketStore, simulate
    from quantdesk.regimes import ModelRegistry, RegimeModel
    from quantdesk.regimes.model import CELL_NAMES, STATE_COLUMNS

    bars = simulate(n_symbols=1, n_days=800, seed=2).bars
    symbol = str(bars["symbol"].iat[0])
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(bars, "1d")
    model = RegimeModel().fit(bars)
    registry_url = str(tmp_path / "models")
    ModelRegistry(registry_url).save(model, "regimes", symbol)

    view = RegimePane(store=store, models=registry_url)
    view.bind(symbol)
    expected = model.filter(store.bars(symbol)).iloc[-1]
    # One spelling of a regime everywhere (issue 22): "<vol> volatility, <trend> trend".
    assert view.label == f"{expected['vol_label']} volatility, {expected['trend_label']} trend"
    assert view.probabilities == pytest.approx(
        {cell: float(expected[c]) for cell, c in zip(CELL_NAMES, STATE_COLUMNS, strict=True)}
    )
    assert sum(view.probabilities.values()) == pytest.approx(1.0)
    assert "model regimes" in view.source

    view.bind("NOPE")  # no model, no stored regimes
    assert view.label == "no model" and view.probabilities == {}


def test_a_closed_browser_tab_is_a_debug_line_not_an_error_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20: closing a tab logged "Task exception was never retrieved" (WebSocketClosedError).

    Tornado's ``write_message`` returns a task that fails once the tab is gone; Panel
    leaves some of them unawaited.  Here such a task fails on the server's own loop and
    is dropped unretrieved, as after a closed tab, and Bokeh warns as it does then.
    """
    import asyncio
    import gc
    import logging
    import threading

    from tornado.websocket import WebSocketClosedError

    from quantdesk.dashboards.server import monitor_server

    def serve_and_drop_a_failed_write() -> None:
        built = monitor_server(port=free_port(), store_path=tmp_path / "s.duckdb", symbols=["AAA"])
        try:
            loop = built.server.io_loop.asyncio_loop  # type: ignore[attr-defined]

            async def write_to_closed_tab() -> None:
                raise WebSocketClosedError()

            caplog.set_level(logging.DEBUG)
            task = loop.create_task(write_to_closed_tab())
            loop.run_until_complete(asyncio.wait([task]))
            del task
            gc.collect()  # the unretrieved exception is reported when the task goes
            logging.getLogger("bokeh.server.views.ws").warning(
                "Failed sending message as connection was closed"
            )
            # Any other failure on the loop is still an error.
            loop.call_exception_handler({"message": "boom", "exception": RuntimeError("boom")})
        finally:
            built.close()

    # On a thread of its own, as the server's loop is when served: the test process's own
    # thread may already run a loop (Playwright's sync API keeps one running).
    failures: list[BaseException] = []

    def guarded() -> None:
        asyncio.set_event_loop(own := asyncio.new_event_loop())
        try:
            serve_and_drop_a_failed_write()
        except BaseException as exc:
            failures.append(exc)
        finally:
            own.close()

    worker = threading.Thread(target=guarded)
    worker.start()
    worker.join()
    if failures:
        raise failures[0]
    loud = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == [("asyncio", "boom")]
    assert any(
        r.name == "quantdesk.dashboards.server" and "WebSocketClosedError" in r.getMessage()
        for r in caplog.records
    )
