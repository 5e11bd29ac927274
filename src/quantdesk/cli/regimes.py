"""The ``quantdesk regimes`` commands: fit regime models, store their regimes, show them."""

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
from quantdesk.core.coerce import as_symbols

__all__ = ["regimes_app"]

regimes_app = typer.Typer(
    help="Fit market-regime models, store their regimes, show them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@regimes_app.command("fit")
def regimes_fit(
    symbols: Annotated[
        str | None,
        typer.Option("--symbols", help="Comma-separated symbols (default: all with daily bars)."),
    ] = None,
    walk_forward: Annotated[
        bool,
        typer.Option(
            "--walk-forward",
            help="Refit periodically and keep each model's out-of-sample regimes only.",
        ),
    ] = False,
    window: Annotated[
        int, typer.Option("--window", help="Walk-forward training window in bars.")
    ] = 2520,
    refit: Annotated[int, typer.Option("--refit", help="Walk-forward bars between refits.")] = 21,
    expanding: Annotated[
        bool, typer.Option("--expanding", help="Walk-forward on an expanding window.")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Registry name (default 'regimes', or 'regimes-wf' with --walk-forward)."
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Registry version (default: the next vN of the name)."),
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="First date of the bars.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last date (inclusive).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random state of the model fits.")] = 0,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Local worker processes (default: CPUs).")
    ] = None,
    scheduler: SchedulerOption = None,
    snapshot: SnapshotOption = None,
    models: ModelsOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Fit (or walk-forward) a 9-state regime model per symbol, save it, store its regimes.

    Plain fits label the whole history with a model fitted on all of it (in-sample
    parameters, causal filtering); --walk-forward labels each period with a model fitted
    before it (out of sample).  Models go to the registry as NAME/VERSION/SYMBOL, regime
    rows to the store with model_version NAME/VERSION (plus /wf-YYYYMMDD per refit).
    With --snapshot URL the bars come from that Parquet snapshot (its newest version,
    pinned now) and each worker reads its own symbols from it; with --scheduler
    tcp://HOST:PORT the fits run on that Dask cluster.  Models and regimes are written
    here either way.
    """
    from quantdesk.data.snapshot import SnapshotError
    from quantdesk.regimes.jobs import fit_regimes

    try:
        run = fit_regimes(
            open_store(store),
            (as_symbols(symbols) or None),
            start=start,
            end=end,
            walk_forward=walk_forward,
            window=window,
            refit=refit,
            expanding=expanding,
            name=name,
            version=version,
            seed=seed,
            registry=models,
            workers=workers,
            scheduler=scheduler,
            snapshot=snapshot,
            command="quantdesk regimes fit",
        )
    except (LookupError, ValueError, OSError, SnapshotError) as exc:
        fail(str(exc))
    echo_result(run, as_json)
    for symbol, error in sorted(run.errors.items()):
        typer.echo(f"error: {symbol}: {error.strip().splitlines()[-1]}", err=True)
    if run.errors:
        raise typer.Exit(1)


@regimes_app.command("show")
def regimes_show(
    symbol: Annotated[str, typer.Argument(help="The symbol.")],
    last: Annotated[int, typer.Option("--last", help="Days of history to show.")] = 10,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Stored model_version or glob, e.g. 'regimes-wf/v1/*' (default: newest per day).",
        ),
    ] = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show a symbol's current regime and probabilities, recent bars and per-regime stats."""
    from quantdesk.regimes.snapshot import regime_snapshot

    try:
        snapshot = regime_snapshot(
            open_store(store, read_only=True), symbol, last=last, version=version
        )
    except LookupError as exc:
        fail(str(exc))
    echo_result(snapshot, as_json)


@regimes_app.command("models")
def regimes_models(
    name: Annotated[str | None, typer.Option("--name", help="Only this model name.")] = None,
    models: ModelsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the saved models in the registry (name, version, symbol, training window)."""
    from quantdesk.regimes.registry import ModelRegistry

    try:
        frame = ModelRegistry(models).list(name)
    except (ImportError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(frame.to_json(orient="records", date_format="iso"))
        return
    if frame.empty:
        typer.echo("no saved models")
        return
    columns = ["name", "version", "symbol", "created_at", "train_start", "train_end"]
    columns += ["log_likelihood", "kind", "degenerate"]
    typer.echo(frame[columns].to_string(index=False))
