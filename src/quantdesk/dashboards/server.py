"""Serve the market monitor with Panel's server, on 127.0.0.1 unless authentication is set.

:func:`monitor_server` checks everything before anything listens: the bind rule
(:func:`~quantdesk.dashboards.security.check_bind`: an address beyond this machine
needs ``basic_auth``), the credentials file (read strictly by
:func:`~quantdesk.dashboards.security.read_credentials` and handed to Panel as a
``{user: password}`` dict, so Panel never takes a mistyped path for the password,
holoviz/panel#4703; its login page is quantdesk's own, which asks no CDN for a logo), the
cookie secret that basic auth needs (argument or
``QUANTDESK_COOKIE_SECRET``), and, for a replay, that the store holds bars to replay.
Allowed websocket origins are always explicit.  The server answers ``/liveness``.

The simulator's candles and alerts go to the live store beside the research store
(:attr:`LiveHub.live_store <quantdesk.dashboards.hub.LiveHub.live_store>`) unless
``record_to_store`` asks for the research store itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.dashboards.hub import FEED_KINDS, LiveHub, set_hub
from quantdesk.dashboards.security import DEFAULT_ADDRESS, check_bind, is_loopback, read_credentials

if TYPE_CHECKING:
    from bokeh.server.server import Server

__all__ = [
    "COOKIE_SECRET_ENV",
    "DEFAULT_PORT",
    "ClosedSessionFilter",
    "MonitorServer",
    "closed_session_handler",
    "monitor_server",
    "quiet_closed_sessions",
    "serve_monitor",
]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5006
COOKIE_SECRET_ENV = "QUANTDESK_COOKIE_SECRET"
TITLE = "quantdesk market monitor"
# Login and logout pages that fetch nothing from elsewhere (Panel's own ask its CDN for
# a logo and an icon: a request a machine without internet waits on, and a leak).
TEMPLATES = Path(__file__).with_name("templates")


def _origins(address: str, port: int, extra: Sequence[str]) -> list[str]:
    """Return the explicit websocket origins (``host:port``) the browser may connect from."""
    hosts = [address]
    if is_loopback(address):
        hosts += ["127.0.0.1", "localhost"]
    elif address in ("0.0.0.0", "::", ""):
        # Every interface: the names this machine is reached by.
        hosts = [socket.gethostname(), socket.getfqdn(), "127.0.0.1", "localhost"]
    origins = [f"{h}:{port}" for h in dict.fromkeys(h for h in hosts if h)]
    return list(dict.fromkeys([*origins, *extra]))


# What a browser tab that closes leaves behind: Bokeh's warning about a message it could
# not send, and Tornado's write futures that fail with WebSocketClosedError after it.
_CLOSED_SOCKET_MESSAGES = ("Failed sending message as connection was closed",)
_CLOSED_SOCKET_LOGGERS = ("bokeh.server.views.ws", "panel.io.document")


class ClosedSessionFilter(logging.Filter):
    """A logging filter that makes "connection was closed" a debug line (a tab closed).

    Returns ``True`` for every other record.  A closed browser session is normal: its
    last messages have nowhere to go, and that is not a warning.

    Examples
    --------
    >>> record = logging.makeLogRecord({"msg": _CLOSED_SOCKET_MESSAGES[0], "levelno": 30})
    >>> ClosedSessionFilter().filter(record), record.levelname
    (False, 'DEBUG')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not str(record.msg).startswith(
            _CLOSED_SOCKET_MESSAGES
        ):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def closed_session_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Log a write to a closed browser session at debug level, anything else as asyncio does.

    Tornado's ``write_message`` returns a task that fails with ``WebSocketClosedError``
    when the tab has gone; Panel does not always await it, and asyncio would log "Task
    exception was never retrieved" with a traceback at error level.  Installed on the
    monitor's event loop by :func:`monitor_server`.
    """
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    exc = context.get("exception")
    if isinstance(exc, (WebSocketClosedError, StreamClosedError)):
        logger.debug(
            "a browser session closed before a message reached it (%s)", type(exc).__name__
        )
        return
    loop.default_exception_handler(context)


def quiet_closed_sessions(loop: asyncio.AbstractEventLoop) -> None:
    """Make closed browser sessions a debug line on ``loop`` and Bokeh's and Panel's loggers."""
    loop.set_exception_handler(closed_session_handler)
    for name in _CLOSED_SOCKET_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, ClosedSessionFilter) for f in target.filters):
            target.addFilter(ClosedSessionFilter())


@dataclass
class MonitorServer:
    """A built (not yet running) monitor server: its URL, the hub and Panel's server."""

    server: Server
    hub: LiveHub
    url: str
    authenticated: bool

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C or SIGTERM), then stop the feeds and the server."""

        def stop(*_: Any) -> None:
            self.server.io_loop.add_callback_from_signal(self.server.io_loop.stop)

        try:
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        except ValueError:  # not the main thread: the caller stops the loop
            pass
        self.server.start()
        try:
            self.server.io_loop.start()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the feeds (flushing their candles) and the server."""
        self.hub.stop()
        with contextlib.suppress(AssertionError):  # already stopped
            self.server.stop()


def monitor_server(
    *,
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    feed: str = "simulator",
    symbols: Sequence[str] | None = None,
    speed: float = 3600.0,
    basic_auth: str | Path | None = None,
    cookie_secret: str | None = None,
    store_path: str | Path | None = None,
    simulated: int = 10,
    rate: float = 2.0,
    period: int = 250,
    websocket_origin: Sequence[str] = (),
    rules: str | Path | None = None,
    ledger: str = "default",
    timeframe: str = "1d",
    record_to_store: bool = False,
) -> MonitorServer:
    """Return the monitor's server, checked and built but not yet listening for sessions.

    Parameters
    ----------
    port, address
        Where to listen (``127.0.0.1`` by default).
    feed
        The feed a new session starts on: ``"simulator"`` or ``"replay"``.
    symbols
        Symbols to watch (default: ``simulated`` simulator symbols; every symbol stored
        at ``timeframe`` for a replay).
    speed
        Replay speed, x real time.
    basic_auth
        Credentials file (JSON ``{user: password}`` or ``user:password`` lines).
    cookie_secret
        Secret that signs the login cookie (default ``$QUANTDESK_COOKIE_SECRET``);
        required with ``basic_auth``.
    store_path
        The market store (default under ``QUANTDESK_HOME``).
    simulated, rate
        Number of simulated symbols and updates per second per symbol.
    period
        Milliseconds between two updates of a browser session.
    websocket_origin
        More allowed origins (``host:port``) beyond this address's own.
    rules
        YAML rule set of the live scan behind the alerts pane (default
        ``$QUANTDESK_MONITOR_RULES``, else
        :func:`~quantdesk.screener.live.default_live_rules`); checked before
        anything listens.
    ledger
        The paper ledger the positions pane shows and trades.
    timeframe
        The stored bars a replay plays (``"1d"``, or intraday such as ``"1min"``).
    record_to_store
        Record the simulator's candles and alerts into the research store (default: into
        the live store beside it, so research never meets simulated data).

    Raises
    ------
    InsecureBindError
        ``address`` is not loopback and no ``basic_auth`` is given.
    FileNotFoundError, PermissionError, ValueError
        The credentials file is missing, unreadable or malformed; basic auth without
        a cookie secret; an unknown feed.
    FeedUnavailableError
        ``feed="replay"`` on a store with no bars of the symbols at ``timeframe`` (the
        message names them, the timeframes it holds and what to do).
    """
    if feed not in FEED_KINDS:
        raise ValueError(f"--feed must be one of {list(FEED_KINDS)}, not {feed!r}")
    credentials = read_credentials(basic_auth) if basic_auth is not None else None
    check_bind(
        address,
        authenticated=credentials is not None,
        what="quantdesk dashboard",
        how="--basic-auth FILE --cookie-secret S",
    )
    from quantdesk.config import secret as secret_from_env

    secret = cookie_secret or secret_from_env(COOKIE_SECRET_ENV)
    if credentials is not None and not secret:
        raise ValueError(
            f"basic auth needs a cookie secret: pass --cookie-secret or set {COOKIE_SECRET_ENV}"
        )
    if not port:
        raise ValueError("give an explicit --port: the allowed websocket origins name it")
    if rules is not None:
        from quantdesk.screener.rulesets import load_rules

        load_rules(rules)  # a mistake in the file is refused now, naming rule and field
    hub = LiveHub(
        store_path,
        symbols=symbols,
        simulated=simulated,
        rate=rate,
        speed=speed,
        rules=str(rules) if rules is not None else None,
        ledger=ledger,
        replay_timeframe=timeframe,
        record_to_store=record_to_store,
    )
    if feed == "replay":
        hub.check_replay()
    # The first session should not wait for the feed: start the default one now.
    hub.source(feed)  # type: ignore[arg-type]
    try:
        server = _panel_server(
            hub, feed, port, address, period, websocket_origin, credentials, secret
        )
    except BaseException:
        hub.stop()
        raise
    # A closed tab is not an error (Tornado's loop here is an asyncio one).
    quiet_closed_sessions(getattr(server.io_loop, "asyncio_loop", None) or asyncio.get_event_loop())
    set_hub(hub)
    host = address if ":" not in address else f"[{address}]"
    return MonitorServer(server, hub, f"http://{host}:{port}/", credentials is not None)


def _panel_server(
    hub: LiveHub,
    feed: str,
    port: int,
    address: str,
    period: int,
    websocket_origin: Sequence[str],
    credentials: dict[str, str] | None,
    secret: str | None,
) -> Server:
    """Return Panel's server for the monitor (one :class:`MarketMonitor` per session)."""
    from panel.io.server import get_server

    from quantdesk.dashboards.monitor import MarketMonitor

    def session() -> MarketMonitor:
        monitor = MarketMonitor(hub, period=period, feed=feed)
        monitor.start_updates()
        return monitor

    options: dict[str, Any] = {}
    if credentials is not None:
        # A dict, never a path string: Panel would take a path it cannot open as the
        # password itself (holoviz/panel#4703).
        options["basic_auth"] = credentials
        options["login_template"] = str(TEMPLATES / "login.html")
        options["logout_template"] = str(TEMPLATES / "logout.html")
    if secret:
        options["cookie_secret"] = secret
    return get_server(
        session,
        port=port,
        address=address,
        websocket_origin=_origins(address, port, websocket_origin),
        show=False,
        start=False,
        title=TITLE,
        liveness=True,
        **options,
    )


def serve_monitor(**kwargs: Any) -> None:
    """Serve the monitor until interrupted; the arguments are :func:`monitor_server`'s."""
    built = monitor_server(**kwargs)
    logger.info("serving the market monitor at %s", built.url)
    built.run()
