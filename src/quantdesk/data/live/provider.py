"""Provider feeds over websockets: a generic JSON websocket feed and Alpaca's market-data stream.

:class:`WebsocketFeed` runs one websocket connection per session on the feed thread
(``websockets``' synchronous client, with an open timeout, so a dead address fails
instead of hanging), sends the subscriptions, and turns every message into ticks.  A
connection that drops after it worked is logged and reopened with backoff by
:class:`~quantdesk.data.live.feed.MarketFeed`, and the new session subscribes again
to every current symbol.

:class:`AlpacaFeed` speaks Alpaca's documented market-data stream protocol directly
(welcome, ``auth`` with key and secret, ``subscribe`` to trades, ``T: "t"`` trade
messages in JSON arrays, ``T: "error"`` messages).  We do not use ``alpaca-py``: the
protocol is a handful of JSON messages, speaking it over ``websockets`` needs no extra
dependency, and the tests can stand a real local websocket server in for Alpaca.

``websockets`` is imported when a session opens, never at import time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.config import secret as secret_from_env
from quantdesk.core.backoff import Backoff
from quantdesk.data.live.feed import FeedError, MarketFeed
from quantdesk.data.live.quotes import QuoteCache
from quantdesk.data.schemas import TICK_COLUMNS

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

__all__ = ["ALPACA_KEY_ENV", "ALPACA_SECRET_ENV", "ALPACA_URL", "AlpacaFeed", "WebsocketFeed"]

logger = logging.getLogger(__name__)

# websockets logs every frame at DEBUG, the auth message (key and secret) included; its
# connections log through this logger, held at INFO so no debug setting can dump a secret.
_WIRE_LOGGER = logging.getLogger(__name__ + ".wire")
_WIRE_LOGGER.setLevel(logging.INFO)

ALPACA_URL = "wss://stream.data.alpaca.markets/v2/iex"
ALPACA_KEY_ENV = "APCA_API_KEY_ID"
ALPACA_SECRET_ENV = "APCA_API_SECRET_KEY"

# Messages drained after the first one before publishing a batch: many small messages
# become one frame for the cache and listeners, and a session never starves stop().
_MAX_DRAIN = 1000

Tick = tuple[str, str, float, float]  # symbol, RFC 3339 time, price, size


class WebsocketFeed(MarketFeed):
    """Ticks from a websocket server speaking JSON; subclasses adapt a provider's protocol.

    The default protocol is minimal: the feed sends ``{"action": "subscribe", "symbols":
    [...]}`` (and ``"unsubscribe"``), and every message is a JSON object, or an array of
    them, with ``symbol``, ``ts`` (RFC 3339), ``price`` and ``size``.  A subclass
    overrides :meth:`_handshake`, :meth:`_subscribe_message`, :meth:`_unsubscribe_message`
    and :meth:`_ticks_from`.

    Parameters
    ----------
    url
        ``ws://`` or ``wss://`` address.
    symbols
        Symbols subscribed from the start.
    open_timeout
        Seconds to open the connection (TCP, TLS and websocket handshake) before the
        session fails.
    poll
        Seconds a receive waits before checking whether the feed was stopped.
    proxy
        Passed to :func:`websockets.sync.client.connect`: ``True`` uses the system's
        proxy settings, ``None`` none.
    cache, backoff
        As for :class:`~quantdesk.data.live.feed.MarketFeed`.
    start_timeout
        Seconds :meth:`start` waits for the first session; by default enough for the
        connection and two handshake replies, ``3 * open_timeout + 5``.
    """

    kind = "websocket"

    def __init__(
        self,
        url: str,
        symbols: Iterable[str] | None = None,
        *,
        open_timeout: float = 10.0,
        poll: float = 0.25,
        proxy: str | bool | None = True,
        cache: QuoteCache | None = None,
        backoff: Backoff | None = None,
        start_timeout: float | None = None,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise FeedError(f"a websocket feed needs a ws:// or wss:// url, got {url!r}")
        super().__init__(
            symbols,
            cache=cache,
            backoff=backoff,
            # Opening, then the provider's welcome and auth replies, each within open_timeout.
            start_timeout=start_timeout if start_timeout is not None else 3 * open_timeout + 5.0,
        )
        self.url = url
        self.open_timeout = float(open_timeout)
        self.poll = float(poll)
        self.proxy = proxy
        self._ws: ClientConnection | None = None
        self._send_lock = threading.Lock()

    # -- protocol hooks ----------------------------------------------------------------

    def _handshake(self, ws: ClientConnection) -> None:
        """Hook: authenticate on a fresh connection; raise :class:`FeedError` if refused."""

    def _subscribe_message(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Return the message that subscribes ``symbols``."""
        return {"action": "subscribe", "symbols": list(symbols)}

    def _unsubscribe_message(self, symbols: Sequence[str]) -> dict[str, Any]:
        """Return the message that drops ``symbols``."""
        return {"action": "unsubscribe", "symbols": list(symbols)}

    def _ticks_from(self, message: Any) -> list[Tick]:
        """Return the ticks in one decoded JSON message (raise to end the session)."""
        items = message if isinstance(message, list) else [message]
        return [
            (str(m["symbol"]), str(m["ts"]), float(m["price"]), float(m.get("size", 0.0)))
            for m in items
            if isinstance(m, Mapping) and "symbol" in m and "price" in m
        ]

    # -- plumbing ----------------------------------------------------------------------

    def _send(self, ws: ClientConnection, message: Mapping[str, Any]) -> None:
        with self._send_lock:
            ws.send(json.dumps(message))

    def _recv_json(self, ws: ClientConnection, timeout: float) -> Any:
        """Return the next message decoded (``TimeoutError`` when none came in time)."""
        raw = ws.recv(timeout=timeout)
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FeedError(f"{self.kind} sent a message that is not JSON: {exc}") from exc

    def _on_subscribe(self, symbols: list[str]) -> None:
        self._tell(self._subscribe_message(symbols), "subscribe", symbols)

    def _on_unsubscribe(self, symbols: list[str]) -> None:
        self._tell(self._unsubscribe_message(symbols), "unsubscribe", symbols)

    def _tell(self, message: Mapping[str, Any], what: str, symbols: list[str]) -> None:
        ws = self._ws
        if ws is None:
            return  # the next session subscribes to the current symbols anyway
        try:
            self._send(ws, message)
        except Exception as exc:  # the connection is going; the next session catches up
            logger.warning("%s feed could not %s %s now (%s)", self.kind, what, symbols, exc)

    def _connect(self) -> ClientConnection:
        try:
            from websockets.exceptions import InvalidHandshake, InvalidURI
            from websockets.sync.client import connect
        except ImportError as exc:
            raise FeedError(
                "provider feeds need the websockets package: pip install 'quantdesk[dashboards]'"
            ) from exc

        try:
            return connect(
                self.url,
                open_timeout=self.open_timeout,
                # Closing a dead connection must not hold up stop() or the reconnect.
                close_timeout=2.0,
                proxy=self.proxy if self.proxy is not False else None,  # type: ignore[arg-type]
                logger=_WIRE_LOGGER,
                legacy=True,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise FeedError(
                f"cannot connect to {self.kind} at {self.url}: {type(exc).__name__}: {exc}"
            ) from exc

    def _session(self, stop: threading.Event, ready: Callable[[], None]) -> None:
        ws = self._connect()
        try:
            self._handshake(ws)
            # Visible to subscribe() before the symbols are read: a symbol added meanwhile
            # is sent twice (harmless), never missed.
            self._ws = ws
            symbols = self.symbols
            if symbols:
                self._send(ws, self._subscribe_message(symbols))
            logger.info("%s feed connected to %s, %d symbols", self.kind, self.url, len(symbols))
            ready()
            while not stop.is_set():
                try:
                    first = self._recv_json(ws, self.poll)
                except TimeoutError:
                    continue
                ticks = self._ticks_from(first)
                for _ in range(_MAX_DRAIN):
                    try:
                        ticks.extend(self._ticks_from(self._recv_json(ws, 0)))
                    except TimeoutError:
                        break
                if ticks:
                    self.publish(_tick_frame(ticks))
        finally:
            self._ws = None
            ws.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.url!r}, {len(self.symbols)} symbols, {self.status.state})"
        )


class AlpacaFeed(WebsocketFeed):
    """Trades from Alpaca's real-time market-data stream (``wss://stream.data.alpaca.markets``).

    Parameters
    ----------
    symbols
        Symbols whose trades to stream.
    url
        Stream address; the free IEX feed by default (``.../v2/sip`` with a paid plan,
        ``.../v2/test`` for Alpaca's always-on test stream, or a local test server).
    key_id, secret_key
        Credentials; by default read from the environment variables ``APCA_API_KEY_ID``
        and ``APCA_API_SECRET_KEY``.  They are sent once per connection in the auth
        message and never logged or shown.
    **kwargs
        As for :class:`WebsocketFeed`.

    Raises
    ------
    FeedError
        At once when the credentials are missing; from :meth:`start` when the stream
        cannot be reached or refuses them.
    """

    kind = "alpaca"

    def __init__(
        self,
        symbols: Iterable[str] | None = None,
        *,
        url: str = ALPACA_URL,
        key_id: str | None = None,
        secret_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        key = key_id if key_id is not None else (secret_from_env(ALPACA_KEY_ENV) or "")
        secret = (
            secret_key if secret_key is not None else (secret_from_env(ALPACA_SECRET_ENV) or "")
        )
        missing = [
            name
            for name, value in ((ALPACA_KEY_ENV, key), (ALPACA_SECRET_ENV, secret))
            if not value
        ]
        if missing:
            raise FeedError(
                f"Alpaca credentials missing: set the environment variables {ALPACA_KEY_ENV} "
                f"and {ALPACA_SECRET_ENV} (not set: {', '.join(missing)})"
            )
        super().__init__(url, symbols, **kwargs)
        self.__key = key
        self.__secret = secret

    def _expect(self, ws: ClientConnection, wanted: str) -> None:
        """Read control messages until a ``success`` saying ``wanted``; raise on an error."""
        message = self._recv_json(ws, self.open_timeout)
        for item in message if isinstance(message, list) else [message]:
            kind = item.get("T") if isinstance(item, Mapping) else None
            if kind == "error":
                raise FeedError(_alpaca_error(item))
            if kind == "success" and item.get("msg") == wanted:
                return
        raise FeedError(f"Alpaca stream: expected {wanted!r}, got {str(message)[:200]!r}")

    def _handshake(self, ws: ClientConnection) -> None:
        try:
            self._expect(ws, "connected")
            self._send(ws, {"action": "auth", "key": self.__key, "secret": self.__secret})
            self._expect(ws, "authenticated")
        except TimeoutError as exc:
            raise FeedError(
                f"Alpaca stream at {self.url} did not answer within {self.open_timeout:g} s"
            ) from exc

    def _subscribe_message(self, symbols: Sequence[str]) -> dict[str, Any]:
        return {"action": "subscribe", "trades": list(symbols)}

    def _unsubscribe_message(self, symbols: Sequence[str]) -> dict[str, Any]:
        return {"action": "unsubscribe", "trades": list(symbols)}

    def _ticks_from(self, message: Any) -> list[Tick]:
        ticks: list[Tick] = []
        for item in message if isinstance(message, list) else [message]:
            if not isinstance(item, Mapping):
                continue
            kind = item.get("T")
            if kind == "t":
                ticks.append((str(item["S"]), str(item["t"]), float(item["p"]), float(item["s"])))
            elif kind == "error":
                # The stream reports a problem (slow client, limits): end the session so
                # the feed logs it and reconnects with backoff.
                raise FeedError(_alpaca_error(item))
            elif kind == "subscription":
                logger.info("Alpaca stream: subscribed to trades of %s", item.get("trades"))
        return ticks


def _alpaca_error(item: Mapping[str, Any]) -> str:
    return f"Alpaca stream error {item.get('code')}: {item.get('msg')}"


def _tick_frame(ticks: list[Tick]) -> pd.DataFrame:
    """Return ticks as a :data:`TICK_COLUMNS` frame, times parsed from RFC 3339 to UTC."""
    symbols, stamps, prices, sizes = zip(*ticks, strict=True)
    return pd.DataFrame(
        {
            "symbol": pd.array(symbols, dtype="str"),
            "ts": pd.to_datetime(list(stamps), utc=True, format="ISO8601").as_unit("ns"),
            "price": prices,
            "size": sizes,
        },
        columns=list(TICK_COLUMNS),
    )
