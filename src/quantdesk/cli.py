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
from quantdesk.core.coerce import as_symbols

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
from quantdesk.forecast.commands import forecast_app  # noqa: E402
from quantdesk.reports.commands import report_app, schedule_app  # noqa: E402

app.add_typer(report_app, name="report")
app.add_typer(schedule_app, name="schedule")
from quantdesk.pipeline.commands import pipeline_app  # noqa: E402

app.add_typer(pipeline_app, name="pipeline")
app.add_typer(regimes_app, name="regimes")
app.add_typer(forecast_app, name="forecast")
paper_app = typer.Typer(
    help="Trade a paper ledger in the store: buy, sell, follow a strategy, show, watch.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(paper_app, name="paper")

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="DuckDB store file (default: <project>/data/quantdesk.duckdb, see `data info`).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _store(path: Path | None, read_only: bool = False) -> Any:
    from quantdesk.data.store.market import MarketStore

    try:
        return MarketStore(path, read_only=read_only)
    except FileNotFoundError as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 1) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _print_ingest(result: Any) -> None:
    """Print an ingest's account; exit non-zero, saying why, when it stored nothing."""
    typer.echo(result.summary())
    if result.problem:
        _fail(result.problem)


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
    from quantdesk.data.sources.ingest import ingest_samples

    _print_ingest(ingest_samples(_store(store), names))


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
        _store(store), symbols=symbols, days=days, seed=seed, start=start, tick_days=tick_days
    )
    _print_ingest(result)


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
        _fail(f"--timeframe: {exc}")
    columns = {}
    for item in mapping or []:
        if "=" not in item:
            _fail(f"--map {item!r}: expected FILE_COLUMN=FIELD")
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
        _fail(f"{exc}{'; nothing written (--strict)' if strict else ''}")
    _print_ingest(result)


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
        _fail(str(exc))
    _print_ingest(result)


@data_app.command("info")
def data_info(as_json: JsonOption = False, store: StoreOption = None) -> None:
    """Show symbols, date ranges, row counts per timeframe and rejects."""
    from quantdesk.data.store.inventory import store_contents

    contents = store_contents(_store(store, read_only=True))
    typer.echo(json.dumps(contents.to_dict(), indent=2) if as_json else contents.summary())


@data_app.command("rejects")
def data_rejects(
    ingest: Annotated[int | None, typer.Option("--ingest", help="Only this ingest id.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show.")] = 50,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List rejected rows with their file, row number, field and reason."""
    from quantdesk.data.store.inventory import rejected_rows

    rows = rejected_rows(_store(store, read_only=True), ingest, limit)
    typer.echo(rows.to_json() if as_json else rows.summary())


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
    from quantdesk.backtest.jobs import backtest_trend
    from quantdesk.data.store.market import UnknownSymbolError

    if rebalance not in ("daily", "weekly", "monthly"):
        _fail(f"--rebalance must be daily, weekly or monthly, not {rebalance!r}")
    try:
        job = backtest_trend(
            _store(store, read_only=True),
            (as_symbols(symbols) or None),
            start=start,
            end=end,
            lookbacks=_int_list(lookbacks),
            target_vol=target_vol,
            rebalance=rebalance,  # type: ignore[arg-type]
            band=band,
            max_weight=max_weight,
            max_gross=max_gross,
            long_only=long_only,
            commission_bps=commission_bps,
            slippage_bps=slippage_bps,
            init_cash=init_cash,
            benchmark=benchmark,
            out=out,
        )
    except (UnknownSymbolError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(job.to_dict(), indent=2) if as_json else job.summary())


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


# -- paper trading (quantdesk.portfolio.ledger) ------------------------------------------

LedgerOption = Annotated[str, typer.Option("--ledger", help="Ledger name (default 'default').")]
CashOption = Annotated[
    float, typer.Option("--cash", help="Starting cash of a ledger created by this command.")
]
MaxAgeOption = Annotated[
    str | None,
    typer.Option(
        "--max-price-age",
        help="Oldest bar or quote a trade may use, e.g. '30min' or '10d' "
        "(default: 5 min for quotes, 4 days for bars).",
    ),
]


def _ledger(store: Path | None, name: str, cash: float, max_price_age: str | None = None) -> Any:
    import pandas as pd

    from quantdesk.portfolio.ledger import PaperLedger

    try:
        age = None if max_price_age is None else pd.Timedelta(max_price_age)
    except ValueError as exc:
        _fail(f"--max-price-age {max_price_age!r}: {exc}")
    return PaperLedger(_store(store), initial_cash=cash, name=name, max_price_age=age)


def _paper_trade(side: str, symbol: str, qty: float, price: float | None, **opts: Any) -> None:
    from quantdesk.errors import TradeRejected

    ledger = _ledger(opts["store"], opts["ledger"], opts["cash"], opts["max_price_age"])
    try:
        trade = ledger.buy(symbol, qty, price) if side == "buy" else ledger.sell(symbol, qty, price)
    except TradeRejected as exc:
        _fail(f"rejected ({exc.reason}): {exc}")
    typer.echo(json.dumps(trade.to_dict(), indent=2) if opts["as_json"] else trade.summary())


@paper_app.command("buy")
def paper_buy(
    symbol: Annotated[str, typer.Argument(help="Symbol to buy.")],
    qty: Annotated[float, typer.Argument(help="Units to buy.")],
    price: Annotated[
        float | None, typer.Option("--price", help="Explicit price (default: latest bar).")
    ] = None,
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    max_price_age: MaxAgeOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Buy units at an explicit price or the latest stored bar; a rejection exits 1."""
    _paper_trade("buy", symbol, qty, price, ledger=ledger, cash=cash, store=store,
                 max_price_age=max_price_age, as_json=as_json)  # fmt: skip


@paper_app.command("sell")
def paper_sell(
    symbol: Annotated[str, typer.Argument(help="Symbol to sell.")],
    qty: Annotated[float, typer.Argument(help="Units to sell.")],
    price: Annotated[
        float | None, typer.Option("--price", help="Explicit price (default: latest bar).")
    ] = None,
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    max_price_age: MaxAgeOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Sell units at an explicit price or the latest stored bar; a rejection exits 1."""
    _paper_trade("sell", symbol, qty, price, ledger=ledger, cash=cash, store=store,
                 max_price_age=max_price_age, as_json=as_json)  # fmt: skip


@paper_app.command("rebalance")
def paper_rebalance(
    strategy: Annotated[
        str, typer.Option("--strategy", help="Strategy to follow (vol_target_trend).")
    ] = "vol_target_trend",
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated symbols (default: all).")
    ] = None,
    lookbacks: Annotated[
        str, typer.Option("--lookbacks", help="Momentum lookbacks in bars, blended.")
    ] = "21,63,126,252",
    target_vol: Annotated[
        float, typer.Option("--target-vol", help="Annualised volatility target.")
    ] = 0.10,
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    max_price_age: MaxAgeOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Rebalance the ledger, long only, to the strategy's latest weights at the latest bars.

    Long only: the strategy's short signals become weight 0 (flat), never a short sale.
    A held symbol the strategy has no opinion on yet (too little history) is kept, and
    the summary says so; with no opinion on any symbol nothing trades (exit 1).
    """
    from quantdesk.errors import TradeRejected
    from quantdesk.portfolio.ledger import follow_strategy

    book = _ledger(store, ledger, cash, max_price_age)
    try:
        result = follow_strategy(
            book, strategy, (as_symbols(symbols) or None), lookbacks=_int_list(lookbacks),
            target_vol=target_vol, long_only=True,  # the command's ledgers do not short
        )  # fmt: skip
    except TradeRejected as exc:
        _fail(f"rejected ({exc.reason}): {exc}")
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())


@paper_app.command("show")
def paper_show(
    ledger: LedgerOption = "default",
    cash: CashOption = 100_000.0,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Show cash, positions at the latest stored bars, and P&L."""
    snapshot = _ledger(store, ledger, cash).snapshot()
    typer.echo(json.dumps(snapshot.to_dict(), indent=2) if as_json else snapshot.summary())


@paper_app.command("watch")
def paper_watch(
    action: Annotated[str, typer.Argument(help="add, remove or list.")],
    symbol: Annotated[str | None, typer.Argument(help="Symbol (for add and remove).")] = None,
    ledger: LedgerOption = "default",
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Add a symbol to the ledger's watchlist, remove one, or list them."""
    from quantdesk.errors import TradeRejected

    book = _ledger(store, ledger, 100_000.0)
    if action not in ("add", "remove", "list"):
        _fail(f"watch action must be add, remove or list, not {action!r}")
    if action != "list" and not symbol:
        _fail(f"watch {action} needs a symbol")
    try:
        if action == "add":
            symbols = book.watch_add(symbol)
        elif action == "remove":
            symbols = book.watch_remove(symbol)
        else:
            symbols = book.watchlist()
    except TradeRejected as exc:
        _fail(f"rejected ({exc.reason}): {exc}")
    typer.echo(json.dumps({"ledger": ledger, "watchlist": symbols}) if as_json
               else "\n".join(symbols) or "(watchlist empty)")  # fmt: skip


@app.command("dashboard")
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
        _fail(str(exc))
    typer.echo(f"quantdesk market monitor: {server.url} (Ctrl-C to stop)")
    server.run()


@app.command("voila")
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
        _fail(str(exc))


@app.command("lab", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1.")] = 8888,
) -> None:
    """Start JupyterLab at the project root with this environment; extra args go to it."""
    from quantdesk.dashboards.lab import lab_launch

    launch = lab_launch(port=port, extra=list(ctx.args))
    typer.echo(launch.summary())
    launch.run()


# -- news and sentiment (quantdesk.data.sources.news*, quantdesk.sentiment) ---------------------

news_app = typer.Typer(
    help="Import news into the store.", no_args_is_help=True, rich_markup_mode=None
)
sentiment_app = typer.Typer(
    help="Score the store's news and show sentiment.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(news_app, name="news")
app.add_typer(sentiment_app, name="sentiment")


@news_app.command("import")
def news_import(
    path: Annotated[Path, typer.Argument(help="A .csv, .json, .jsonl or .ndjson file of news.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Write nothing and fail at the first bad row.")
    ] = False,
    tz: Annotated[str, typer.Option("--tz", help="Timezone of naive timestamps.")] = "UTC",
    store: StoreOption = None,
) -> None:
    """Import news items; bad rows are rejected with their file, row, field and reason."""
    from quantdesk.data.sources.ingest import ingest_news_file
    from quantdesk.data.validation import ValidationError

    try:
        result = ingest_news_file(path, store, tz=tz, strict=strict)
    except (ValidationError, FileNotFoundError) as exc:
        _fail(f"{exc}{'; nothing written (--strict)' if strict else ''}")
    _print_ingest(result)


@news_app.command("demo")
def news_demo(
    symbols: Annotated[int, typer.Option("--symbols", help="Number of symbols.")] = 50,
    days: Annotated[int, typer.Option("--days", help="Number of business days.")] = 2520,
    seed: Annotated[int, typer.Option("--seed", help="Seed of `ingest simulate`.")] = 0,
    start: Annotated[str, typer.Option("--start", help="First session date.")] = "2010-01-04",
    rate: Annotated[
        float, typer.Option("--rate", help="Probability of a headline per symbol-day.")
    ] = 0.3,
    store: StoreOption = None,
) -> None:
    """Store synthetic headlines (source 'synthetic') whose tone follows the simulated regimes.

    Use the options given to `quantdesk ingest simulate`, so the headlines match its market.
    """
    from quantdesk.data.sources.ingest import ingest_synthetic_news

    _print_ingest(
        ingest_synthetic_news(
            _store(store), symbols=symbols, days=days, seed=seed, start=start, rate=rate
        )
    )


@sentiment_app.command("score")
def sentiment_score(
    model: Annotated[
        str,
        typer.Option("--model", help="auto, finbert, lexicon, or a FinBERT directory / hub id."),
    ] = "auto",
    rescore: Annotated[
        bool, typer.Option("--rescore", help="Score every story again under this model.")
    ] = False,
    quantize: Annotated[
        str, typer.Option("--quantize", help="FinBERT on CPU: auto, none or int8.")
    ] = "auto",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="'process' or a Dask scheduler address: score chunks on workers "
            "(default: in this process, torch uses every core).",
        ),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score the stored news that this model has not scored yet (the cache makes it incremental)."""
    from quantdesk.sentiment.finbert import FinBertUnavailableError
    from quantdesk.sentiment.jobs import score_news

    options = {} if model == "lexicon" else {"quantize": quantize}
    try:
        result = score_news(
            _store(store),
            model,
            rescore=rescore,
            scheduler=scheduler,
            progress=not as_json,
            **options,
        )
    except (FinBertUnavailableError, ImportError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())
    if result.failed:
        raise typer.Exit(1)


@sentiment_app.command("show")
def sentiment_show(
    symbol: Annotated[str, typer.Argument(help="The symbol.")],
    n: Annotated[int, typer.Option("--n", help="Headlines shown.")] = 10,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a symbol's latest scored headlines (by the most recently used model); times in UTC."""
    from quantdesk.data.store.news import NewsStore
    from quantdesk.sentiment.headlines import latest_headlines

    news = NewsStore(_store(store, read_only=True))
    keys = news.score_keys()
    frame = latest_headlines(news.scored_news([symbol]), n=n)
    if as_json:
        payload = {
            "symbol": symbol,
            "model": str(keys[0]) if keys else None,
            "headlines": json.loads(frame.to_json(orient="records", date_format="iso")),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    if frame.empty:
        _fail(f"no scored news for {symbol!r}; run `quantdesk sentiment score` first")
    typer.echo(f"{symbol}: latest {len(frame)} headlines, scored by {keys[0]}")
    shown = frame.assign(ts=frame["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M"))
    shown = shown[["ts", "score", "source", "headline"]].round(3)
    typer.echo(shown.rename(columns={"ts": "time (UTC)"}).to_string(index=False))


# -- screener and alerts (quantdesk.screener, quantdesk.data.store.alerts) --------------

screen_app = typer.Typer(
    help="Scan the whole universe with a rule set and store its alerts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
alerts_app = typer.Typer(
    help="List stored alerts, queue them for the webhook and deliver them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(screen_app, name="screen")
app.add_typer(alerts_app, name="alerts")


def _alert_records(frame: Any) -> list[dict[str, Any]]:
    """Return alert rows as JSON-able dicts (timestamps in ISO 8601, NaN as null)."""
    from quantdesk.core.jsonable import jsonable

    records: list[dict[str, Any]] = jsonable(frame.to_dict("records"))
    return records


def _alert_table(frame: Any) -> str:
    """Return alerts as an aligned text table, one line per alert, times in UTC.

    With a delivery state, ``delivery`` says ``never queued``, ``pending``, ``delivered``
    or ``rejected``.
    """
    columns = [c for c in ("ts", "symbol", "rule", "trigger_price", "status", "attempts",
                           "last_error") if c in frame.columns]  # fmt: skip
    shown = frame[columns].copy()
    shown["ts"] = shown["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M")
    shown["trigger_price"] = shown["trigger_price"].round(4)
    if "status" in shown.columns:
        shown["status"] = shown["status"].fillna("never queued")
    shown = shown.rename(columns={"ts": "ts (UTC)", "status": "delivery"})
    return str(shown.to_string(index=False))


def _delivery_failed(report: Any, as_json: bool) -> None:
    """Exit 1, saying why on stderr (unless --json), when a delivery was not complete."""
    if report is None or report.ok:
        return
    if not as_json:
        typer.echo(f"error: webhook delivery incomplete: {report.errors[-1]}", err=True)
    raise typer.Exit(1)


QueueOption = Annotated[
    str,
    typer.Option(
        "--queue",
        help="Which new alerts go to the webhook: latest (the latest session's, the "
        "default: a backfill sends no history), all, none, or a max age such as 3d.",
    ),
]


@screen_app.command("run")
def screen_run(
    rules: Annotated[
        Path, typer.Option("--rules", help="YAML rule set (see quantdesk.screener.rulesets).")
    ],
    date: Annotated[str | None, typer.Option("--date", help="Alert on this day's bars.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Backfill from this date.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Backfill to this date.")] = None,
    new_only: Annotated[
        bool, typer.Option("--new-only", help="Alert only when a symbol newly enters a scan.")
    ] = False,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Bar length.")] = "1d",
    deliver_now: Annotated[
        bool,
        typer.Option(
            "--deliver/--no-deliver",
            help="POST the new alerts to the configured webhook (if any) after storing them.",
        ),
    ] = True,
    queue: QueueOption = "latest",
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Scan the store with a rule set (default: the latest bar) and store the alerts.

    Alert times are UTC.  Only the latest session's alerts are queued for the webhook
    unless --queue says otherwise; `quantdesk alerts queue` queues stored ones later.
    """
    from quantdesk.screener import scan
    from quantdesk.screener.rulesets import RuleSetError, load_rules
    from quantdesk.screener.webhooks import WebhookConfig, deliver, record_alerts

    if date is not None and (start is not None or end is not None):
        _fail("give either --date or --start/--end, not both")
    try:
        rule_set = load_rules(rules)
        webhook = WebhookConfig.from_env()
    except (RuleSetError, ValueError) as exc:
        _fail(str(exc))
    market = _store(store)
    alerts = scan(
        market, rule_set, date=date, start=start, end=end, timeframe=timeframe, new_only=new_only
    )
    try:
        written = record_alerts(market, alerts, webhook, queue=queue)
    except ValueError as exc:
        _fail(str(exc))
    delivery = deliver(market, webhook) if webhook is not None and deliver_now else None
    if as_json:
        payload = {
            "rules": [r.name for r in rule_set],
            "found": written.found,
            "stored": written.stored,
            "queued": written.queued,
            "delivery": delivery.to_dict() if delivery else None,
            "alerts": _alert_records(alerts),
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(f"{len(rule_set)} rules: {written.summary()}")
        if len(alerts):
            typer.echo(_alert_table(alerts))
        if delivery is not None:
            typer.echo(delivery.summary())
    _delivery_failed(delivery, as_json)


@alerts_app.command("list")
def alerts_list(
    today: Annotated[bool, typer.Option("--today", help="Only alerts on today's bars.")] = False,
    start: Annotated[
        str | None, typer.Option("--start", help="Only alerts on bars from this date on.")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Only alerts on bars up to this date (the whole day)."),
    ] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol.")] = None,
    undelivered: Annotated[
        bool, typer.Option("--undelivered", help="Only alerts the webhook still owes.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="Newest alerts shown.")] = 50,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stored alerts, newest first (times in UTC), with their webhook delivery state:
    never queued, pending, delivered or rejected."""
    import pandas as pd

    from quantdesk.data.store.alerts import AlertStore

    since = pd.Timestamp.now(tz="UTC").normalize() if today else start
    frame = AlertStore(_store(store, read_only=True)).alerts(
        symbol, start=since, end=end, undelivered=undelivered, limit=limit
    )
    if as_json:
        typer.echo(json.dumps(_alert_records(frame), indent=2))
        return
    if frame.empty:
        typer.echo("no alerts")
        return
    typer.echo(_alert_table(frame))


@alerts_app.command("queue")
def alerts_queue(
    since: Annotated[
        str | None, typer.Option("--since", help="Only alerts on bars from this day on.")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Only these symbols (comma-separated).")
    ] = None,
    rejected: Annotated[
        bool,
        typer.Option(
            "--rejected", help="Also queue again the alerts the webhook rejected (once fixed)."
        ),
    ] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue stored alerts for the webhook: those never queued (stored before a webhook
    was configured, or by a backfill), and with --rejected those it rejected."""
    from quantdesk.screener.webhooks import queue_alerts

    market = _store(store)
    try:
        result = queue_alerts(
            market, since=since, symbols=(as_symbols(symbols) or None), rejected=rejected
        )
    except ValueError as exc:
        _fail(f"--since {since!r}: {exc}")
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())


@alerts_app.command("deliver")
def alerts_deliver(
    limit: Annotated[int | None, typer.Option("--limit", help="Deliver at most this many.")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """POST the pending alerts to the webhook (QUANTDESK_WEBHOOK_URL or webhook.yaml).

    Exits 1 when the webhook rejected an alert (the status and URL are shown; fix the
    configuration, then `alerts queue --rejected`) or some stay pending (the receiver
    failed; the next run retries them).  Alerts never queued are not sent: see
    `alerts queue`.
    """
    from quantdesk.screener.webhooks import deliver

    try:
        report = deliver(_store(store), limit=limit)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    _delivery_failed(report, as_json)


def main() -> None:
    """Run the ``quantdesk`` command line."""
    from quantdesk.errors import StoreNotFoundError

    try:
        app()
    except StoreNotFoundError as exc:
        # Any command that reads a store that is not there: say which file and how to fill it.
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
