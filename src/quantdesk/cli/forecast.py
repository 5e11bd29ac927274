"""The ``quantdesk forecast`` commands: fit, run, backfill, score, show.

Each parses its options, calls one job of :mod:`quantdesk.forecast.jobs` and prints its
``.summary()`` (or, with ``--json``, exactly one JSON document on stdout).  Registered
by :mod:`quantdesk.cli.app`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from quantdesk.cli.options import (
    JsonOption,
    ModelsOption,
    SchedulerOption,
    SnapshotOption,
    StoreOption,
    echo_result,
    fail,
    open_store,
)

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
TargetsOption = Annotated[
    str | None,
    typer.Option("--targets", help="Comma-separated targets (default: all four)."),
]


@forecast_app.command("backfill")
def forecast_backfill(
    start: Annotated[str, typer.Option("--start", help="First session forecast.")],
    end: Annotated[str | None, typer.Option("--end", help="Last session forecast.")] = None,
    symbols: SymbolsOption = None,
    targets: TargetsOption = None,
    refit: Annotated[
        str, typer.Option("--refit", help="Sessions between refits, or monthly/quarterly/yearly.")
    ] = "quarterly",
    snapshot: SnapshotOption = None,
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Record the walk-forward's forecasts of --start..--end as origin 'backfill'.

    With --snapshot URL (taken with --tables bars,regimes,news,scores) each model's
    walk-forward is a task that reads its panels from the snapshot, on the Dask cluster
    at --scheduler if given; the rows are recorded here.
    """
    from quantdesk.data.snapshot import SnapshotError
    from quantdesk.data.store.market import UnknownSymbolError
    from quantdesk.forecast.jobs import backfill_forecasts

    every: int | str = int(refit) if refit.isdigit() else refit
    try:
        run = backfill_forecasts(
            open_store(store), symbols, start, end, targets=targets, refit=every,
            snapshot=snapshot, scheduler=scheduler,
        )  # fmt: skip
    except (UnknownSymbolError, ValueError, OSError, RuntimeError, SnapshotError) as exc:
        fail(str(exc))
    echo_result(run, as_json)


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
        run = fit_forecasts(open_store(store), symbols, end, targets, registry=models)
    except (UnknownSymbolError, ValueError) as exc:
        fail(str(exc))
    echo_result(run, as_json)
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
            open_store(store), symbols, session, origin, targets=targets, registry=models
        )
    except (UnknownSymbolError, ValueError) as exc:
        fail(str(exc))
    echo_result(run, as_json)


@forecast_app.command("score")
def forecast_score(
    symbols: SymbolsOption = None,
    models: ModelsOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Record the outcomes now due, then print each model's scores beside its baselines."""
    from quantdesk.data.store.market import UnknownSymbolError
    from quantdesk.forecast.scoring import score_forecasts

    try:
        scores = score_forecasts(open_store(store), symbols, registry=models)
    except (UnknownSymbolError, ValueError) as exc:
        fail(str(exc))
    echo_result(scores, as_json)


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
    from quantdesk.forecast.view import forecast_view

    try:
        view = forecast_view(open_store(store, read_only=True), symbol, history=history)
    except ValueError as exc:
        fail(str(exc))
    echo_result(view, as_json)
