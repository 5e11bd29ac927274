"""The ``quantdesk forecast`` commands: fit, run, score, show.

Each parses its options, calls one job of :mod:`quantdesk.forecast.jobs` and prints its
``.summary()`` (or, with ``--json``, exactly one JSON document on stdout).  Registered
by ``quantdesk.cli`` with one ``add_typer`` line, as the report commands are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["forecast_app"]

forecast_app = typer.Typer(
    help="Fit forecast models, record their forecasts, score them, show a symbol's.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

SymbolsOption = Annotated[
    str | None,
    typer.Option("--symbols", help="Comma-separated symbols (default: all with daily bars)."),
]
StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="DuckDB store file (default $QUANTDESK_HOME/quantdesk.duckdb)."),
]
ModelsOption = Annotated[
    str | None,
    typer.Option(
        "--models", help="Model registry directory or fsspec URL (default $QUANTDESK_MODELS)."
    ),
]
TargetsOption = Annotated[
    str | None,
    typer.Option("--targets", help="Comma-separated targets (default: all four)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _fail(message: str, code: int = 1) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _store(path: Path | None, read_only: bool = False) -> Any:
    from quantdesk.data.store.market import MarketStore

    try:
        return MarketStore(path, read_only=read_only)
    except FileNotFoundError as exc:
        _fail(str(exc))


def _print(result: Any, as_json: bool) -> None:
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())


@forecast_app.command("fit")
def forecast_fit(
    symbols: SymbolsOption = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last session trained on (default: all).")
    ] = None,
    targets: TargetsOption = None,
    models: ModelsOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Fit every forecast model of each target on bars up to --end and save it."""
    from quantdesk.data.store.market import UnknownSymbolError
    from quantdesk.forecast.jobs import fit_forecasts

    try:
        run = fit_forecasts(_store(store), symbols, end, targets, registry=models)
    except (UnknownSymbolError, ValueError) as exc:
        _fail(str(exc))
    _print(run, as_json)
    if not run.ok:
        raise typer.Exit(1)


@forecast_app.command("run")
def forecast_run(
    symbols: SymbolsOption = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="Session to forecast as of (default: the latest)."),
    ] = None,
    backfill: Annotated[
        bool,
        typer.Option("--backfill", help="Record as origin 'backfill' (made after the fact)."),
    ] = False,
    targets: TargetsOption = None,
    models: ModelsOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Record the fitted models' forecasts as of --session (a rerun records nothing new)."""
    from quantdesk.data.store.market import UnknownSymbolError
    from quantdesk.forecast.jobs import run_forecasts

    origin = "backfill" if backfill else "live"
    try:
        run = run_forecasts(
            _store(store), symbols, session, origin, targets=targets, registry=models
        )
    except (UnknownSymbolError, ValueError) as exc:
        _fail(str(exc))
    _print(run, as_json)


@forecast_app.command("score")
def forecast_score(
    symbols: SymbolsOption = None,
    models: ModelsOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Record the outcomes now due, then print each model's scores beside its baselines."""
    from quantdesk.data.store.market import UnknownSymbolError
    from quantdesk.forecast.jobs import score_forecasts

    try:
        scores = score_forecasts(_store(store), symbols, registry=models)
    except (UnknownSymbolError, ValueError) as exc:
        _fail(str(exc))
    _print(scores, as_json)


@forecast_app.command("show")
def forecast_show(
    symbol: Annotated[str, typer.Argument(help="The symbol.")],
    history: Annotated[
        int, typer.Option("--history", help="Sessions of recent history to include.")
    ] = 20,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Print a symbol's latest forecasts, their accuracy so far and recent history."""
    from quantdesk.forecast.jobs import forecast_view

    try:
        view = forecast_view(_store(store, read_only=True), symbol, history=history)
    except ValueError as exc:
        _fail(str(exc))
    _print(view, as_json)
