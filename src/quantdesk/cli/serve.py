"""The serving commands: ``quantdesk dashboard`` (Panel), ``voila`` and ``lab``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantdesk.cli.options import StoreOption, fail
from quantdesk.core.coerce import as_symbols

__all__ = ["dashboard", "lab", "voila"]


def dashboard(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 5006,
    address: Annotated[
        str,
        typer.Option(
            "--address",
            help="Address to listen on (default 127.0.0.1; any other needs --basic-auth).",
        ),
    ] = "127.0.0.1",
    feed: Annotated[
        str, typer.Option("--feed", help="Feed a new session starts on: simulator or replay.")
    ] = "simulator",
    symbols: Annotated[
        str | None,
        typer.Option(
            "--symbols",
            help="Comma-separated symbols (default: 10 simulated ones; every symbol stored "
            "at --timeframe for a replay).",
        ),
    ] = None,
    timeframe: Annotated[
        str,
        typer.Option(
            "--timeframe", help="Stored bars a replay plays: 1d (default) or intraday, e.g. 1min."
        ),
    ] = "1d",
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed, x real time (3600: a day in 24 s).")
    ] = 3600.0,
    basic_auth: Annotated[
        Path | None,
        typer.Option(
            "--basic-auth",
            help="Credentials file: JSON {user: password} or user:password lines.",
        ),
    ] = None,
    cookie_secret: Annotated[
        str | None,
        typer.Option(
            "--cookie-secret",
            help="Secret signing the login cookie (default $QUANTDESK_COOKIE_SECRET); "
            "required with --basic-auth.",
        ),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="YAML rule set of the alerts pane's live scan "
            "(default $QUANTDESK_MONITOR_RULES, else short breakouts and volume spikes).",
        ),
    ] = None,
    ledger: Annotated[
        str, typer.Option("--ledger", help="Paper ledger of the positions pane.")
    ] = "default",
    record_to_store: Annotated[
        bool,
        typer.Option(
            "--record-to-store",
            help="Record the simulator's candles and alerts into the research store "
            "(default: into the live store beside it, <store>.live.duckdb).",
        ),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Serve the live market monitor (Panel): quotes, candles, regimes, alerts, paper P&L, news."""
    from quantdesk.dashboards.hub import FeedUnavailableError
    from quantdesk.dashboards.security import InsecureBindError
    from quantdesk.dashboards.server import monitor_server
    from quantdesk.data.live import FeedError

    try:
        server = monitor_server(
            port=port,
            address=address,
            feed=feed,
            symbols=(as_symbols(symbols) or None),
            speed=speed,
            basic_auth=basic_auth,
            cookie_secret=cookie_secret,
            store_path=store,
            rules=rules,
            ledger=ledger,
            timeframe=timeframe,
            record_to_store=record_to_store,
        )
    except (InsecureBindError, FeedUnavailableError, FeedError, OSError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"quantdesk market monitor: {server.url} (Ctrl-C to stop)")
    server.run()


def voila(
    notebook: Annotated[Path, typer.Argument(help="The notebook to serve as an app.")],
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8866,
    address: Annotated[
        str, typer.Option("--address", help="Interface to listen on (non-loopback needs a token).")
    ] = "127.0.0.1",
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="QUANTDESK_VOILA_TOKEN",
            help="Token visitors must present (prefer $QUANTDESK_VOILA_TOKEN to the flag).",
            show_envvar=True,
        ),
    ] = None,
    pool_size: Annotated[int, typer.Option("--pool-size", help="Preheated kernels.")] = 1,
) -> None:
    """Serve a notebook as a Voila app: preheated kernels, its folder only, 127.0.0.1."""
    from quantdesk.dashboards.security import InsecureBindError
    from quantdesk.dashboards.voila import serve_voila

    try:
        serve_voila(notebook, port=port, address=address, token=token, pool_size=pool_size)
    except (InsecureBindError, FileNotFoundError) as exc:
        fail(str(exc))


def lab(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1.")] = 8888,
) -> None:
    """Start JupyterLab at the project root with this environment; extra args go to it."""
    from quantdesk.dashboards.lab import lab_launch

    launch = lab_launch(port=port, extra=list(ctx.args))
    typer.echo(launch.summary())
    launch.run()
