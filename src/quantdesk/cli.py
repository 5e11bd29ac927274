"""The ``quantdesk`` command: ingest data, inspect the store, backtest, fit regimes.

Human-readable output goes to stdout, logs and progress bars to stderr; with
``--json`` stdout carries exactly one JSON document.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from quantdesk.config import DEFAULT_COMMISSION_BPS, DEFAULT_SLIPPAGE_BPS, settings

__all__ = ["app", "main"]

logger = logging.getLogger("quantdesk.cli")

app = typer.Typer(
    help="quantdesk: a Jupyter-first research environment for quantitative trading research.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
ingest_app = typer.Typer(help="Fill the market store.", no_args_is_help=True, rich_markup_mode=None)
data_app = typer.Typer(
    help="Inspect the market store.", no_args_is_help=True, rich_markup_mode=None
)
regimes_app = typer.Typer(
    help="Fit market-regime models, store their regimes, show them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(data_app, name="data")

# Report and schedule commands live beside their package; registered here.
from quantdesk.reports.commands import report_app, schedule_app  # noqa: E402

app.add_typer(report_app, name="report")
app.add_typer(schedule_app, name="schedule")
app.add_typer(regimes_app, name="regimes")

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="DuckDB store file (default $QUANTDESK_HOME/quantdesk.duckdb)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _store(path: Path | None, read_only: bool = False) -> Any:
    from quantdesk.data.store import MarketStore

    try:
        return MarketStore(path, read_only=read_only)
    except FileNotFoundError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _print_report(report: Any) -> None:
    typer.echo(report.summary())
    if report.rejected:
        typer.echo(
            f"  {report.rejected} rejected rows stored with their reasons: "
            f"quantdesk data rejects --ingest {report.ingest_id}"
        )


def _fail_if_nothing_stored(target: Any, report: Any) -> None:
    """Exit non-zero when an ingest stored no row, saying why (the commonest reasons)."""
    if report.stored:
        return
    if report.rows_in == 0:
        _fail(f"{report.source}: no rows to store")
    reasons = (
        target.rejects(report.ingest_id)["reason"].str.split("; ").explode().value_counts().head(3)
    )
    why = "; ".join(f"{reason} ({count} rows)" for reason, count in reasons.items())
    _fail(f"{report.source}: nothing stored, all {report.rows_in} rows rejected: {why}")


@app.callback()
def _main(
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING (default from env).")
    ] = None,
) -> None:
    level = (log_level or settings().log_level).upper()
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
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
    from tqdm.auto import tqdm

    from quantdesk.data.samples import SAMPLES, load_sample

    target = _store(store)
    for name in tqdm(names or list(SAMPLES), desc="samples", unit="set", file=sys.stderr):
        bars, meta = load_sample(name)
        _print_report(target.write_bars(bars, "1d", source=f"arch:{name}", metadata=meta))


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
    from tqdm.auto import tqdm

    from quantdesk.data.simulator import simulate

    target = _store(store)
    market = simulate(n_symbols=symbols, n_days=days, seed=seed, start=start)
    source = f"simulator:seed={seed}"
    meta = market.metadata()
    chunk = 25
    names = market.symbols
    progress = tqdm(total=len(market.bars), desc="bars", unit="row", file=sys.stderr)
    totals = {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    for i in range(0, len(names), chunk):
        part = names[i : i + chunk]
        bars = market.bars[market.bars["symbol"].isin(part)]
        report = target.write_bars(
            bars, "1d", source=source, metadata=meta[meta["symbol"].isin(part)]
        )
        for key in totals:
            totals[key] += getattr(report, key)
        progress.update(len(bars))
    progress.close()
    typer.echo(
        f"{source}: {len(names)} symbols x {days} days -> "
        + ", ".join(f"{v} {k}" for k, v in totals.items())
    )
    if tick_days > 0:
        sessions = market.bars["ts"].drop_duplicates().sort_values()
        first = sessions.iloc[-min(tick_days, len(sessions))]
        ticks = market.ticks(start=first)
        _print_report(target.write_ticks(ticks, source=source))


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
    tz: Annotated[str, typer.Option("--tz", help="Timezone of naive timestamps.")] = "UTC",
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
    from quantdesk.data.files import read_bars_file
    from quantdesk.data.schemas import parse_timeframe
    from quantdesk.data.validation import ValidationError

    try:
        timeframe = parse_timeframe(timeframe).name
    except ValueError as exc:
        _fail(f"--timeframe: {exc}")
    columns = {}
    for item in mapping or []:
        if "=" not in item:
            _fail(f"--map {item!r}: expected FILE_COLUMN=FIELD")
        src, dst = item.split("=", 1)
        columns[src.strip()] = dst.strip()
    try:
        result = read_bars_file(
            path,
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
        _fail(f"{exc}{'; nothing written (--strict)' if strict else ''}")
    target = _store(store)
    report = target.write_bars(result.good, timeframe, source=result.source, validation=result)
    _print_report(report)
    _fail_if_nothing_stored(target, report)


@ingest_app.command("yahoo")
def ingest_yahoo(
    symbols: Annotated[list[str], typer.Argument(help="Yahoo tickers, e.g. SPY TLT GLD.")],
    start: Annotated[str | None, typer.Option("--start")] = None,
    end: Annotated[str | None, typer.Option("--end")] = None,
    store: StoreOption = None,
) -> None:
    """Download daily bars from Yahoo Finance (needs quantdesk[online] and a network)."""
    from quantdesk.data.online import SourceUnavailableError, fetch_yahoo

    try:
        bars = fetch_yahoo(symbols, start, end)
    except SourceUnavailableError as exc:
        _fail(str(exc))
    target = _store(store)
    report = target.write_bars(bars, "1d", source="yahoo")
    _print_report(report)
    _fail_if_nothing_stored(target, report)


@data_app.command("info")
def data_info(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Show symbols, date ranges, row counts per timeframe and rejects."""
    info = _store(store, read_only=True).info()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"store: {info['path']}")
    typer.echo(f"symbols: {info['symbols']}   ingests: {info['ingests']}")
    if info["series"]:
        typer.echo(f"  {'symbol':<16} {'timeframe':>9} {'rows':>10}  first .. last  source")
    for row in info["series"]:
        typer.echo(
            f"  {row['symbol']:<16} {row['timeframe']:>9} {row['rows']:>10,}  "
            f"{row['first'][:10]} .. {row['last'][:10]}  {row['source'] or '?'}"
        )
    typer.echo("bars by timeframe:")
    for row in info["bars"]:
        typer.echo(
            f"  {row['timeframe']:>6}  {row['symbols']:>5} symbols  {row['rows']:>10,} rows  "
            f"{row['first'][:10]} .. {row['last'][:10]}"
        )
    typer.echo("bars by source:")
    for row in info["sources"]:
        typer.echo(
            f"  {row['source']:<24} {row['symbols']:>5} symbols  {row['rows']:>10,} rows  "
            f"{row['first'][:10]} .. {row['last'][:10]}"
        )
    ticks = info["ticks"]
    if ticks["rows"]:
        typer.echo(
            f"ticks: {ticks['rows']:,} rows, {ticks['symbols']} symbols, "
            f"{ticks['first']} .. {ticks['last']}"
        )
    rejected = sum(info["rejects"].values())
    typer.echo(f"rejects: {rejected}" + (f" {info['rejects']}" if rejected else ""))


@data_app.command("rejects")
def data_rejects(
    ingest: Annotated[int | None, typer.Option("--ingest", help="Only this ingest id.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show.")] = 50,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List rejected rows with their file, row number, field and reason."""
    frame = _store(store, read_only=True).rejects(ingest)
    if as_json:
        typer.echo(frame.head(limit).to_json(orient="records"))
        return
    if frame.empty:
        typer.echo("no rejects")
        return
    typer.echo(frame.head(limit)[["ingest_id", "source", "row", "field", "reason"]].to_string())


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        _fail(f"expected comma-separated integers, got {text!r}")
        raise


@app.command("backtest")
def backtest(
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated symbols (default: all).")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="First date.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last date (inclusive).")] = None,
    lookbacks: Annotated[
        str, typer.Option("--lookbacks", help="Momentum lookbacks in bars, blended.")
    ] = "21,63,126,252",
    target_vol: Annotated[
        float, typer.Option("--target-vol", help="Annualised volatility target.")
    ] = 0.10,
    rebalance: Annotated[str, typer.Option("--rebalance", help="daily, weekly or monthly.")] = (
        "daily"
    ),
    band: Annotated[float, typer.Option("--band", help="No-trade band in weight units.")] = 0.0,
    max_weight: Annotated[float, typer.Option("--max-weight", help="Per-asset cap.")] = 1.0,
    max_gross: Annotated[float, typer.Option("--max-gross", help="Gross leverage cap.")] = 1.0,
    long_only: Annotated[bool, typer.Option("--long-only", help="No short positions.")] = False,
    commission_bps: Annotated[float, typer.Option("--commission-bps")] = DEFAULT_COMMISSION_BPS,
    slippage_bps: Annotated[float, typer.Option("--slippage-bps")] = DEFAULT_SLIPPAGE_BPS,
    init_cash: Annotated[float, typer.Option("--init-cash")] = 1_000_000.0,
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark",
            help="Stored symbol to measure against: excess return, beta, alpha, tracking "
            "error, information ratio, up/down capture.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory to write equity, weights, trades and metrics to (Parquet and "
            "CSV, metrics also JSON).",
        ),
    ] = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Backtest volatility-targeted trend following on stored closes (any bar length)."""
    from quantdesk.backtest import run
    from quantdesk.strategies import vol_target_trend

    if rebalance not in ("daily", "weekly", "monthly"):
        _fail(f"--rebalance must be daily, weekly or monthly, not {rebalance!r}")
    names = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    from quantdesk.data.store import UnknownSymbolError

    source = _store(store, read_only=True)
    try:
        close = source.panel("close", symbols=names, start=start, end=end)
    except UnknownSymbolError as exc:
        _fail(str(exc))
    if close.empty:
        _fail("no daily closes for that selection; see `quantdesk data info`")
    missing = sorted(set(names or []) - set(close.columns))
    if missing:
        _fail(f"no data for {missing}")
    weights = vol_target_trend(
        close,
        lookbacks=_int_list(lookbacks),
        target_vol=target_vol,
        max_weight=max_weight,
        max_gross=max_gross,
        long_only=long_only,
        rebalance=rebalance,  # type: ignore[arg-type]
        band=band,
    )
    result = run(
        close,
        weights,
        commission_bps=commission_bps,
        slippage_bps=slippage_bps,
        init_cash=init_cash,
    )
    bench = None
    if benchmark:
        try:
            prices = source.panel("close", symbols=[benchmark], start=start, end=end)
        except UnknownSymbolError as exc:
            _fail(f"benchmark {benchmark!r}: {exc}")
        if benchmark not in prices.columns:
            _fail(f"no closes for benchmark {benchmark!r}; see `quantdesk data info`")
        bench = prices[benchmark]
    metrics = result.metrics(benchmark=bench)
    written: dict[str, Path] = {}
    if out is not None:
        from quantdesk.backtest.export import write_result

        written = write_result(result, out, metrics=metrics)
        logger.info("wrote %d files to %s", len(written), out)
    if as_json:
        doc = {
            "symbols": [str(c) for c in close.columns],
            "start": close.index[0].isoformat(),
            "end": close.index[-1].isoformat(),
            "benchmark": benchmark,
            "final_equity": float(result.equity.iloc[-1]),
            "metrics": {k: (None if v != v else float(v)) for k, v in metrics.items()},
            "files": [str(p) for p in written.values()],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(result.summary())
    if bench is not None:
        from quantdesk.backtest.metrics import BENCHMARK_METRICS

        typer.echo(f"against {benchmark}:")
        typer.echo("\n".join(f"  {k:<24}{metrics[k]:,.4f}" for k in BENCHMARK_METRICS))
    if written:
        typer.echo(f"wrote {len(written)} files to {out}")


def _symbol_list(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


ModelsOption = Annotated[
    str | None,
    typer.Option(
        "--models", help="Model registry directory or fsspec URL (default $QUANTDESK_MODELS)."
    ),
]


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
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask scheduler address (tcp://...) to fit on instead."),
    ] = None,
    models: ModelsOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Fit (or walk-forward) a 9-state regime model per symbol, save it, store its regimes.

    Plain fits label the whole history with a model fitted on all of it (in-sample
    parameters, causal filtering); --walk-forward labels each period with a model fitted
    before it (out of sample).  Models go to the registry as NAME/VERSION/SYMBOL, regime
    rows to the store with model_version NAME/VERSION (plus /wf-YYYYMMDD per refit).
    """
    from quantdesk.regimes.jobs import fit_regimes

    try:
        run = fit_regimes(
            _store(store),
            _symbol_list(symbols),
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
            command="quantdesk regimes fit",
        )
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(run.to_dict(), indent=2) if as_json else run.summary())
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
            _store(store, read_only=True), symbol, last=last, version=version
        )
    except LookupError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(snapshot.to_dict(), indent=2) if as_json else snapshot.summary())


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
        _fail(str(exc))
    if as_json:
        typer.echo(frame.to_json(orient="records", date_format="iso"))
        return
    if frame.empty:
        typer.echo("no saved models")
        return
    columns = ["name", "version", "symbol", "created_at", "train_start", "train_end"]
    columns += ["log_likelihood", "kind", "degenerate"]
    typer.echo(frame[columns].to_string(index=False))


def main() -> None:
    """Run the ``quantdesk`` command line."""
    app()


if __name__ == "__main__":
    main()
