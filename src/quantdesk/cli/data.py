"""The ``quantdesk ingest`` and ``quantdesk data`` commands: fill the store, inspect it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantdesk.cli.options import (
    JsonOption,
    StoreOption,
    echo_result,
    fail,
    open_store,
    print_ingest,
)

__all__ = ["data_app", "ingest_app"]

ingest_app = typer.Typer(help="Fill the market store.", no_args_is_help=True, rich_markup_mode=None)
data_app = typer.Typer(
    help="Inspect the market store.", no_args_is_help=True, rich_markup_mode=None
)


@ingest_app.command("sample")
def ingest_sample(
    names: Annotated[
        list[str] | None,
        typer.Option("--name", help="Bundled data set(s): sp500, nasdaq (default: all)."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Load the real daily S&P 500 and NASDAQ data (1999-2018) that ships with `arch`."""
    from quantdesk.data.sources.ingest import ingest_samples

    print_ingest(ingest_samples(open_store(store), names))


@ingest_app.command("simulate")
def ingest_simulate(
    symbols: Annotated[int, typer.Option("--symbols", help="Number of symbols.")] = 50,
    days: Annotated[int, typer.Option("--days", help="Number of business days.")] = 2520,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same market).")] = 0,
    start: Annotated[str, typer.Option("--start", help="First session date.")] = "2010-01-04",
    tick_days: Annotated[
        int, typer.Option("--tick-days", help="Also store intraday ticks for the last N days.")
    ] = 0,
    store: StoreOption = None,
) -> None:
    """Simulate a correlated regime-switching market and store its daily bars."""
    from quantdesk.data.sources.ingest import ingest_simulated

    result = ingest_simulated(
        open_store(store), symbols=symbols, days=days, seed=seed, start=start, tick_days=tick_days
    )
    print_ingest(result)


@ingest_app.command("file")
def ingest_file(
    path: Annotated[Path, typer.Argument(help="A .csv, .csv.gz, .tsv or .parquet file.")],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Symbol, for files without a symbol column.")
    ] = None,
    timeframe: Annotated[
        str,
        typer.Option("--timeframe", help="Bar length: 1min, 1h, 1d, 1w, 1mo ('1M' is refused)."),
    ] = "1d",
    strict: Annotated[
        bool, typer.Option("--strict", help="Write nothing and fail at the first bad row.")
    ] = False,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            help="Time zone of naive timestamps (default UTC); recorded as the symbols' "
            "zone, whose calendar days daily bars built from intraday bars follow.",
        ),
    ] = None,
    ts_format: Annotated[
        str | None, typer.Option("--format", help="strftime format of the timestamps.")
    ] = None,
    dayfirst: Annotated[
        bool | None,
        typer.Option(
            "--dayfirst/--monthfirst",
            help="Read DD/MM/YYYY or MM/DD/YYYY dates (needed only when every date fits both).",
        ),
    ] = None,
    sep: Annotated[
        str | None,
        typer.Option("--sep", help="Delimiter: ',', ';', 'tab', '|' (default: detected)."),
    ] = None,
    decimal: Annotated[
        str | None, typer.Option("--decimal", help="Decimal mark: '.' or ',' (default: detected).")
    ] = None,
    adjusted: Annotated[
        bool,
        typer.Option("--adjusted", help="Store Adj Close as the close; scale open, high, low."),
    ] = False,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="Column mapping FILE_COLUMN=FIELD, e.g. 'Px Last=close'."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Import bars from a CSV or Parquet file; bad rows are rejected with their reasons.

    Exits non-zero when nothing is stored (every row rejected, or none in the file).
    """
    from quantdesk.data.schemas import parse_timeframe
    from quantdesk.data.sources.ingest import ingest_file as ingest
    from quantdesk.data.validation import ValidationError

    try:
        timeframe = parse_timeframe(timeframe).name
    except ValueError as exc:
        fail(f"--timeframe: {exc}")
    columns = {}
    for item in mapping or []:
        if "=" not in item:
            fail(f"--map {item!r}: expected FILE_COLUMN=FIELD")
        src, dst = item.split("=", 1)
        columns[src.strip()] = dst.strip()
    try:
        result = ingest(
            path,
            store,
            symbol=symbol,
            timeframe=timeframe,
            columns=columns,
            ts_format=ts_format,
            dayfirst=dayfirst,
            tz=tz,
            sep="\t" if sep == "tab" else sep,
            decimal=decimal,
            adjusted=adjusted,
            strict=strict,
        )
    except (ValidationError, FileNotFoundError) as exc:
        fail(f"{exc}{'; nothing written (--strict)' if strict else ''}")
    print_ingest(result)


@ingest_app.command("yahoo")
def ingest_yahoo(
    symbols: Annotated[list[str], typer.Argument(help="Yahoo tickers, e.g. SPY TLT GLD.")],
    start: Annotated[str | None, typer.Option("--start")] = None,
    end: Annotated[str | None, typer.Option("--end")] = None,
    store: StoreOption = None,
) -> None:
    """Download daily bars from Yahoo Finance (needs quantdesk[online] and a network)."""
    from quantdesk.data.sources.ingest import ingest_yahoo as ingest
    from quantdesk.data.sources.online import SourceUnavailableError

    try:
        result = ingest(symbols, store, start=start, end=end)
    except SourceUnavailableError as exc:
        fail(str(exc))
    print_ingest(result)


@data_app.command("info")
def data_info(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Show symbols, date ranges, row counts per timeframe and rejects."""
    from quantdesk.data.store.inventory import store_contents

    contents = store_contents(open_store(store, read_only=True))
    echo_result(contents, as_json)


@data_app.command("rejects")
def data_rejects(
    ingest: Annotated[int | None, typer.Option("--ingest", help="Only this ingest id.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show.")] = 50,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List rejected rows with their file, row number, field and reason."""
    from quantdesk.data.store.inventory import rejected_rows

    rows = rejected_rows(open_store(store, read_only=True), ingest, limit)
    typer.echo(rows.to_json() if as_json else rows.summary())


SnapshotTablesOption = Annotated[
    str,
    typer.Option(
        "--tables",
        help="What to snapshot, comma-separated: bars (with symbol metadata), regimes, "
        "news, scores.",
    ),
]


@data_app.command("snapshot")
def data_snapshot(
    url: Annotated[
        str, typer.Argument(help="A folder or fsspec URL (s3://bucket/prefix, file://...).")
    ],
    tables: SnapshotTablesOption = "bars",
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Write a versioned Parquet snapshot of the store; print the version and what changed.

    Only partitions that changed since the latest version are written; the manifest is
    published last, so a failed run publishes nothing.  Credentials for s3:// come from
    the environment (AWS_* variables, AWS_ENDPOINT_URL) or fsspec's configuration.
    """
    from quantdesk.data.snapshot import SnapshotError

    opened = open_store(store, read_only=True)
    try:
        result = opened.snapshot(url, tables)
    except (SnapshotError, ValueError) as exc:
        fail(str(exc))
    echo_result(result, as_json)


@data_app.command("snapshots")
def data_snapshots(
    url: Annotated[str, typer.Argument(help="The snapshot's folder or fsspec URL.")],
    as_json: JsonOption = False,
) -> None:
    """List the versions of a snapshot: when each was written and what it holds."""
    from quantdesk.data.snapshot import SnapshotError
    from quantdesk.data.snapshot.manifest import version_history

    try:
        history = version_history(url)
    except SnapshotError as exc:
        fail(str(exc))
    echo_result(history, as_json)


@data_app.command("snapshot-gc")
def data_snapshot_gc(
    url: Annotated[str, typer.Argument(help="The snapshot's folder or fsspec URL.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the orphan files, delete nothing.")
    ] = False,
    min_age: Annotated[
        float,
        typer.Option("--min-age", help="Hours: younger files may be a snapshot being written."),
    ] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """Delete files that no version's manifest names (left by failed or killed snapshots)."""
    from datetime import timedelta

    from quantdesk.data.snapshot import SnapshotError, collect_garbage

    try:
        report = collect_garbage(url, min_age=timedelta(hours=min_age), dry_run=dry_run)
    except SnapshotError as exc:
        fail(str(exc))
    echo_result(report, as_json)
