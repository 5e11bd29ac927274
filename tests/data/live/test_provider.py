"""AlpacaFeed against a real local websocket server speaking Alpaca's stream protocol."""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from quantdesk.data.candles.batch import aggregate
from quantdesk.data.live import AlpacaFeed, Backoff, CandleRecorder, FeedError, WebsocketFeed

from ...conftest import free_port

KEY, SECRET = "PKTESTKEY0123456789", "s3cr3t-Alpaca-value-9876"
T0 = pd.Timestamp("2024-03-04 14:30", tz="UTC")
# The stub server's own frame log shows the auth message it received: kept apart, so the
# checks below look at what the client side logged.
STUB_LOGGER = logging.getLogger("tests.alpaca_stub")


def _leaked(records: list[logging.LogRecord], *secrets: str) -> list[str]:
    """Return the client-side log lines that contain any of ``secrets``."""
    lines = [r.getMessage() + str(r.args) for r in records if r.name != STUB_LOGGER.name]
    return [line for line in lines if any(s in line for s in secrets)]


class Session:
    """One client connection as the stub server sees it."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.trades: set[str] = set()
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()

    def send_trades(self, trades: list[tuple[str, pd.Timestamp, float, int]]) -> None:
        """Send trades as one Alpaca message array."""
        self.ws.send(
            json.dumps(
                [
                    {
                        "T": "t",
                        "S": sym,
                        "i": n,
                        "x": "V",
                        "p": price,
                        "s": size,
                        "t": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "c": ["@"],
                        "z": "C",
                    }
                    for n, (sym, ts, price, size) in enumerate(trades)
                ]
            )
        )

    def kill(self) -> None:
        """Drop the TCP connection mid-stream, without a websocket close frame."""
        self.ws.socket.shutdown(socket.SHUT_RDWR)


class AlpacaStub:
    """A local server speaking Alpaca's market-data stream protocol (JSON, trades only)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sessions: queue.Queue[Session] = queue.Queue()
        self.server = serve(self._handle, "127.0.0.1", self.port, logger=STUB_LOGGER)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/iex"

    def _handle(self, ws: ServerConnection) -> None:
        ws.send(json.dumps([{"T": "success", "msg": "connected"}]))
        auth = json.loads(ws.recv(timeout=30))
        if auth != {"action": "auth", "key": KEY, "secret": SECRET}:
            ws.send(json.dumps([{"T": "error", "code": 402, "msg": "auth failed"}]))
            return
        ws.send(json.dumps([{"T": "success", "msg": "authenticated"}]))
        session = Session(ws)
        try:
            first = True
            while True:
                message = json.loads(ws.recv())
                if message.get("action") == "subscribe":
                    session.trades |= set(message.get("trades", []))
                elif message.get("action") == "unsubscribe":
                    session.trades -= set(message.get("trades", []))
                ws.send(json.dumps([{"T": "subscription", "trades": sorted(session.trades)}]))
                if first:  # the client is authenticated and subscribed: hand it to the test
                    self.sessions.put(session)
                    first = False
                else:  # later subscription changes, for the test to check
                    session.messages.put(message)
        except (ConnectionClosed, OSError):
            return

    def next_session(self) -> Session:
        return self.sessions.get(timeout=60)


@pytest.fixture
def alpaca(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlpacaStub]:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    stub = AlpacaStub()
    stub.thread.start()
    yield stub
    stub.server.shutdown()
    stub.thread.join(30)


def _minute_trades(
    symbols: list[str], minute: int, n: int = 5
) -> list[tuple[str, pd.Timestamp, float, int]]:
    """Return ``n`` trades per symbol inside minute ``minute`` after T0."""
    start = T0 + pd.Timedelta(minutes=minute)
    return [
        (sym, start + pd.Timedelta(seconds=7 * k + i), 100.0 + i + 0.25 * k + minute, 10 * (k + 1))
        for k in range(n)
        for i, sym in enumerate(symbols)
    ]


class TickCounter:
    """A feed listener that lets the test wait for the n-th tick."""

    def __init__(self) -> None:
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self, ticks: pd.DataFrame) -> None:
        with self.cond:
            self.count += len(ticks)
            self.cond.notify_all()

    def wait_for(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.count >= n, timeout=60), (self.count, n)


def test_a_killed_connection_reconnects_resubscribes_and_loses_no_candle(
    alpaca: AlpacaStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="quantdesk")  # the wire logger included
    caplog.set_level(logging.DEBUG, logger="websockets")
    caplog.set_level(logging.DEBUG, logger=STUB_LOGGER.name)
    feed = AlpacaFeed(["AAA", "BBB"], url=alpaca.url, backoff=Backoff(0.05, jitter=False))
    counter = TickCounter()
    feed.add_listener(counter)
    recorder = CandleRecorder("1min").attach(feed)
    feed.start()
    first = alpaca.next_session()
    assert first.trades == {"AAA", "BBB"}
    feed.subscribe("CCC")  # at runtime: sent on the open connection
    assert first.messages.get(timeout=60) == {"action": "subscribe", "trades": ["CCC"]}
    symbols = ["AAA", "BBB", "CCC"]
    before = _minute_trades(symbols, 0)
    first.send_trades(before)
    counter.wait_for(len(before))

    first.kill()
    second = alpaca.next_session()
    assert second.trades == set(symbols)  # resubscribed to everything, CCC included
    after = [t for minute in range(1, 6) for t in _minute_trades(symbols, minute)]
    for lo in range(0, len(after), 7):  # several message arrays
        second.send_trades(after[lo : lo + 7])
    closing = _minute_trades(symbols, 6, n=1)  # closes the minute-5 candles
    second.send_trades(closing)
    counter.wait_for(len(before) + len(after) + len(closing))
    feed.stop()

    assert feed.status.sessions == 2 and feed.status.retries >= 1
    assert any("session failed" in r.getMessage() for r in caplog.records)
    frame = pd.DataFrame(after, columns=["symbol", "ts", "price", "size"])
    expected = aggregate(frame, "1min")
    _, closed = recorder.closed_since(0)
    got = closed[closed["ts"] >= T0 + pd.Timedelta(minutes=1)]
    got = got.sort_values(["symbol", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False)
    assert len(got) == 5 * 3
    quote = feed.cache.get("CCC")
    assert quote is not None and quote.price == closing[-1][2]
    # The key and secret went over the wire in the auth message, and nowhere else.
    assert _leaked(caplog.records, KEY, SECRET) == []
    # The check can fail: the stub server logs the auth frame it received, key included.
    assert any(r.name == STUB_LOGGER.name and KEY in r.getMessage() for r in caplog.records)
    assert KEY not in repr(feed) and SECRET not in repr(feed)


def test_missing_keys_fail_at_once_naming_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with pytest.raises(FeedError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY") as err:
        AlpacaFeed(["AAPL"])
    assert "not set: APCA_API_KEY_ID" in str(err.value) and SECRET not in str(err.value)


def test_an_unreachable_url_fails_start_without_a_hang(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    caplog.set_level(logging.DEBUG, logger="quantdesk")
    port = free_port()  # nothing listens there
    feed = AlpacaFeed(["AAPL"], url=f"ws://127.0.0.1:{port}/v2/iex", start_timeout=60)
    with pytest.raises(FeedError, match="cannot connect") as err:
        feed.start()
    # Failed, not timed out: the refusal came back at once, not after start_timeout.
    assert "not ready within" not in str(err.value)
    assert not feed.running and feed.status.state == "failed"
    assert _leaked(caplog.records, KEY, SECRET) == []


def test_refused_keys_fail_start_and_are_not_logged(
    alpaca: AlpacaStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="quantdesk")
    feed = AlpacaFeed(["AAPL"], url=alpaca.url, key_id=KEY, secret_key="wrong-secret-value")
    with pytest.raises(FeedError, match="402: auth failed"):
        feed.start()
    assert not feed.running
    assert _leaked(caplog.records, "wrong-secret-value") == []


def test_generic_websocket_feed_speaks_plain_json(alpaca: AlpacaStub) -> None:
    with pytest.raises(FeedError, match="ws:// or wss://"):
        WebsocketFeed("http://127.0.0.1:1/")
    feed = WebsocketFeed(alpaca.url, ["X"])
    ticks = feed._ticks_from(
        [{"symbol": "X", "ts": "2024-01-02T10:00:00.5Z", "price": 1.5, "size": 3}, {"other": 1}]
    )
    assert ticks == [("X", "2024-01-02T10:00:00.5Z", 1.5, 3.0)]
