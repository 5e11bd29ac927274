"""News ingest jobs: import a vendor file, or the synthetic demo headlines, into the store.

Each returns an :class:`~quantdesk.data.sources.ingest.IngestResult`, like the bar jobs of
:mod:`quantdesk.data.sources.ingest`; ``quantdesk news import`` and ``quantdesk news demo``
call them.
"""

from __future__ import annotations

from pathlib import Path

from quantdesk.data.sources.ingest import IngestResult
from quantdesk.data.sources.news import read_news_file
from quantdesk.data.store.market import MarketStore
from quantdesk.data.store.news import NewsStore

__all__ = ["ingest_news_file", "ingest_synthetic_news"]


def _news(store: NewsStore | MarketStore | str | Path | None) -> NewsStore:
    return store if isinstance(store, NewsStore) else NewsStore(store)


def ingest_news_file(
    path: str | Path,
    store: NewsStore | MarketStore | str | Path | None = None,
    *,
    tz: str = "UTC",
    ts_format: str | None = None,
    dayfirst: bool | None = None,
    strict: bool = False,
) -> IngestResult:
    """Return the account of importing a CSV, JSON or JSONL file of news into the store.

    The file is read and validated (:func:`~quantdesk.data.sources.news.read_news_file`) before
    the store is opened; bad rows (a JSONL line that is not a JSON object among them)
    are kept in ``rejects`` once, however often the file is imported, and the good rows
    are stored; with ``strict`` the first bad row raises
    :class:`~quantdesk.data.validation.ValidationError` and nothing is written.
    """
    result = read_news_file(path, tz=tz, ts_format=ts_format, dayfirst=dayfirst, strict=strict)
    news = _news(store)
    report = news.write_news(result.good, source=result.source, validation=result)
    problem = None
    if not report.stored:
        problem = (
            f"{report.source}: no rows to store"
            if report.rows_in == 0
            else f"{report.source}: nothing stored, all {report.rows_in} rows rejected "
            + (
                f"(quantdesk data rejects --ingest {report.ingest_id})"
                if report.rejected
                else "(kept by an earlier import: see the notes)"
            )
        )
    return IngestResult((report,), problem=problem)


def ingest_synthetic_news(
    store: NewsStore | MarketStore | str | Path | None = None,
    *,
    symbols: int = 50,
    days: int = 2520,
    seed: int = 0,
    start: str = "2010-01-04",
    rate: float = 0.3,
) -> IngestResult:
    """Return the account of storing synthetic headlines for the simulated market.

    The market is simulated again with the same parameters as ``quantdesk ingest
    simulate`` (same seed, same market), and its true trend regimes set the headlines'
    tone (:func:`~quantdesk.data.sources.synthetic_news.synthetic_news`).
    """
    from quantdesk.data.sources.simulator import simulate
    from quantdesk.data.sources.synthetic_news import synthetic_news

    market = simulate(n_symbols=symbols, n_days=days, seed=seed, start=start)
    items = synthetic_news(market, rate=rate, seed=seed)
    report = _news(store).write_news(items, source=f"synthetic:seed={seed}")
    return IngestResult((report,))
