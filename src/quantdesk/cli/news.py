"""The ``quantdesk news`` and ``quantdesk sentiment`` commands: import news, score it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from quantdesk.cli.options import (
    JsonOption,
    SnapshotOption,
    StoreOption,
    echo_result,
    fail,
    open_store,
    print_ingest,
)

__all__ = ["news_app", "sentiment_app"]

news_app = typer.Typer(
    help="Import news into the store.", no_args_is_help=True, rich_markup_mode=None
)
sentiment_app = typer.Typer(
    help="Score the store's news and show sentiment.", no_args_is_help=True, rich_markup_mode=None
)


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
        fail(f"{exc}{'; nothing written (--strict)' if strict else ''}")
    print_ingest(result)


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

    print_ingest(
        ingest_synthetic_news(
            open_store(store), symbols=symbols, days=days, seed=seed, start=start, rate=rate
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
        str, typer.Option("--quantize", help="FinBERT on CPU: auto (int8), none or int8.")
    ] = "auto",
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="FinBERT: auto (ONNX Runtime on CPU when installed, else torch), torch or onnx.",
        ),
    ] = "auto",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="'process' or a Dask scheduler address: score chunks on workers "
            "(default: in this process, torch uses every core).",
        ),
    ] = None,
    snapshot: SnapshotOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score the stored news that this model has not scored yet (the cache makes it incremental).

    With --snapshot URL (a snapshot taken with --tables bars,news) each task reads its
    batch of stories from the snapshot itself; scores are written here either way.
    """
    from quantdesk.data.snapshot import SnapshotError
    from quantdesk.sentiment.finbert import FinBertUnavailableError
    from quantdesk.sentiment.jobs import score_news
    from quantdesk.sentiment.onnx_runtime import OnnxExportError

    options = {} if model == "lexicon" else {"quantize": quantize, "backend": backend}
    try:
        result = score_news(
            open_store(store),
            model,
            rescore=rescore,
            scheduler=scheduler,
            snapshot=snapshot,
            progress=not as_json,
            **options,
        )
    except (
        FinBertUnavailableError,
        ImportError,
        ValueError,
        OSError,
        SnapshotError,
        OnnxExportError,
    ) as exc:
        fail(str(exc))
    echo_result(result, as_json)
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

    news = NewsStore(open_store(store, read_only=True))
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
        fail(f"no scored news for {symbol!r}; run `quantdesk sentiment score` first")
    typer.echo(f"{symbol}: latest {len(frame)} headlines, scored by {keys[0]}")
    shown = frame.assign(ts=frame["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M"))
    shown = shown[["ts", "score", "source", "headline"]].round(3)
    typer.echo(shown.rename(columns={"ts": "time (UTC)"}).to_string(index=False))
