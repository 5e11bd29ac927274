"""Ingest jobs: fill the market store from a source in one call, with an account.

Each job reads one source (the bundled samples, the simulator, a file of bars, Yahoo
Finance, a vendor file of news, the synthetic demo headlines), writes it through the
store (:class:`~quantdesk.data.store.market.MarketStore`,
:class:`~quantdesk.data.store.news.NewsStore`) and returns an :class:`IngestResult`:
the store's report of every write, and, when nothing was stored, why.  ``quantdesk
ingest ...``, ``quantdesk news ...``, notebooks, scheduled jobs and the demonstration
universes of :mod:`~quantdesk.data.sources.samples` all call these: each source is
written one way.

Examples
--------
>>> import tempfile, pathlib
>>> home = tempfile.TemporaryDirectory()
>>> result = ingest_samples(pathlib.Path(home.name, "demo.duckdb"), ["sp500"], progress=False)
>>> print(result.summary())
arch:sp500: 5031 bars 1d rows in -> 5031 inserted, 0 updated, 0 unchanged, 0 duplicates, 0 rejected
>>> result.ok
True
>>> home.cleanup()
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.data.store.market import as_store

if TYPE_CHECKING:
    from quantdesk.data.store.market import IngestReport, MarketStore
    from quantdesk.data.store.news import NewsStore

__all__ = [
    "IngestResult",
    "ingest_file",
    "ingest_news_file",
    "ingest_samples",
    "ingest_simulated",
    "ingest_synthetic_news",
    "ingest_yahoo",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What an ingest job wrote: the store's reports, and why nothing was stored if so.

    ``reports`` are shown one by one in :meth:`summary`; ``headline`` (when set) totals
    writes that are not shown one by one (the simulator writes its bars in chunks).
    ``problem`` is None when rows were stored, else the reason nothing was.
    """

    reports: tuple[IngestReport, ...]
    headline: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Return whether the job stored rows (``problem`` is None)."""
        return self.problem is None

    def summary(self) -> str:
        """Return one line per write (plus its notes), and where rejected rows are kept."""
        lines = [self.headline] if self.headline else []
        for report in self.reports:
            lines.append(report.summary())
            if report.rejected:
                lines.append(
                    f"  {report.rejected} rejected rows stored with their reasons: "
                    f"quantdesk data rejects --ingest {report.ingest_id}"
                )
        return "\n".join(lines)

    def _headline(self) -> dict[str, Any]:
        total = {
            name: sum(getattr(r, name) for r in self.reports)
            for name in ("rows_in", "inserted", "updated", "unchanged", "rejected")
        }
        return {"writes": len(self.reports), **total, "problem": self.problem or "none"}

    def __repr__(self) -> str:
        from quantdesk.core.html import summary_text

        return summary_text(self.headline or "Ingest", self._headline())

    def _repr_html_(self) -> str:
        import pandas as pd

        from quantdesk.core.html import summary_html

        frame = pd.DataFrame([r.to_dict() for r in self.reports])
        details = {"writes": frame, "account": self.summary()}
        return summary_html(self.headline or "Ingest", self._headline(), details)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain data (for JSON output)."""
        return {
            "headline": self.headline,
            "problem": self.problem,
            "reports": [report.to_dict() for report in self.reports],
        }


def _why_nothing_stored(store: MarketStore, report: IngestReport) -> str | None:
    """Return why a write stored no row (the commonest reject reasons), None if it did.

    Bars and news alike: their rejects are kept in the store's ``rejects`` table, and a
    write whose bad rows an earlier import already kept says so.
    """
    if report.stored:
        return None
    if report.rows_in == 0:
        return f"{report.source}: no rows to store"
    head = f"{report.source}: nothing stored, all {report.rows_in} rows rejected"
    if not report.rejected:
        return f"{head} (kept by an earlier import: see the notes)"
    reasons = (
        store.rejects(report.ingest_id)["reason"].str.split("; ").explode().value_counts().head(3)
    )
    why = "; ".join(f"{reason} ({count} rows)" for reason, count in reasons.items())
    return f"{head}: {why}"


def ingest_samples(
    store: MarketStore | str | Path | None = None,
    names: Sequence[str] | None = None,
    *,
    progress: bool = True,
) -> IngestResult:
    """Return the account of storing the real daily data sets that ship with ``arch``.

    Parameters
    ----------
    store
        The store, or its file (default ``$QUANTDESK_HOME/quantdesk.duckdb``).
    names
        Data sets (``sp500``, ``nasdaq``; default all of
        :data:`~quantdesk.data.sources.bundled.SAMPLES`).
    progress
        Show a progress bar on stderr.
    """
    from quantdesk.core.progress import progress_bar
    from quantdesk.data.sources.bundled import SAMPLES, load_sample

    target = as_store(store)
    reports = []
    for name in progress_bar(
        list(names or SAMPLES), desc="samples", unit="set", disable=not progress
    ):
        bars, meta = load_sample(name)
        reports.append(target.write_bars(bars, "1d", source=f"arch:{name}", metadata=meta))
    return IngestResult(tuple(reports))


def ingest_simulated(
    store: MarketStore | str | Path | None = None,
    *,
    symbols: int = 50,
    days: int = 2520,
    seed: int = 0,
    start: str = "2010-01-04",
    tick_days: int = 0,
    progress: bool = True,
) -> IngestResult:
    """Return the account of storing a simulated regime-switching market's daily bars.

    Bars are written 25 symbols at a time (one transaction each) and totalled in the
    result's headline; with ``tick_days`` the intraday ticks of the last that many
    sessions are stored too, and their write is reported on its own.
    """
    from quantdesk.core.progress import progress_bar
    from quantdesk.data.sources.simulator import simulate

    target = as_store(store)
    market = simulate(n_symbols=symbols, n_days=days, seed=seed, start=start)
    source = f"simulator:seed={seed}"
    meta = market.metadata()
    chunk = 25  # symbols per transaction: bounded memory, a readable progress bar
    names = market.symbols
    totals = {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    with progress_bar(total=len(market.bars), desc="bars", unit="row", disable=not progress) as bar:
        for i in range(0, len(names), chunk):
            part = names[i : i + chunk]
            bars = market.bars[market.bars["symbol"].isin(part)]
            report = target.write_bars(
                bars, "1d", source=source, metadata=meta[meta["symbol"].isin(part)]
            )
            for key in totals:
                totals[key] += getattr(report, key)
            bar.update(len(bars))
    headline = f"{source}: {len(names)} symbols x {days} days -> " + ", ".join(
        f"{v} {k}" for k, v in totals.items()
    )
    reports = []
    if tick_days > 0:
        sessions = market.bars["ts"].drop_duplicates().sort_values()
        first = sessions.iloc[-min(tick_days, len(sessions))]
        reports.append(target.write_ticks(market.ticks(start=first), source=source))
    return IngestResult(tuple(reports), headline=headline)


def ingest_file(
    path: str | Path,
    store: MarketStore | str | Path | None = None,
    *,
    symbol: str | None = None,
    timeframe: str = "1d",
    columns: Mapping[str, str] | None = None,
    ts_format: str | None = None,
    dayfirst: bool | None = None,
    tz: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    adjusted: bool = False,
    strict: bool = False,
) -> IngestResult:
    """Return the account of importing a CSV or Parquet file of bars into the store.

    The file is read with :func:`~quantdesk.data.sources.files.read_bars_file` (same
    parameters) before the store is opened, so a file that cannot be read leaves no
    store behind; bad rows are stored as rejects with their reasons.

    Raises
    ------
    ValueError
        ``timeframe`` is not a bar length (``1M`` is refused as ambiguous).
    quantdesk.data.validation.ValidationError
        The file cannot be read as bars, or (``strict``) a row is bad: nothing written.
    FileNotFoundError
        No such file.
    """
    from quantdesk.data.schemas import parse_timeframe
    from quantdesk.data.sources.files import read_bars_file

    timeframe = parse_timeframe(timeframe).name
    result = read_bars_file(
        path,
        symbol=symbol,
        timeframe=timeframe,
        columns=dict(columns or {}),
        ts_format=ts_format,
        dayfirst=dayfirst,
        tz=tz or "UTC",
        sep=sep,
        decimal=decimal,
        adjusted=adjusted,
        strict=strict,
    )
    target = as_store(store)
    report = target.write_bars(
        result.good, timeframe, source=result.source, validation=result, timezone=tz
    )
    return IngestResult((report,), problem=_why_nothing_stored(target, report))


def ingest_yahoo(
    symbols: Sequence[str],
    store: MarketStore | str | Path | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
) -> IngestResult:
    """Return the account of storing daily bars downloaded from Yahoo Finance.

    Raises
    ------
    quantdesk.data.sources.online.SourceUnavailableError
        ``yfinance`` is not installed or Yahoo cannot be reached; nothing is written.
    """
    from quantdesk.data.sources.online import fetch_yahoo

    bars = fetch_yahoo(list(symbols), start, end)
    target = as_store(store)
    report = target.write_bars(bars, "1d", source="yahoo")
    return IngestResult((report,), problem=_why_nothing_stored(target, report))


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

    The file is read and validated (:func:`~quantdesk.data.sources.news.read_news_file`)
    before the store is opened; bad rows (a JSONL line that is not a JSON object among
    them) are kept in ``rejects`` once, however often the file is imported, and the good
    rows are stored; with ``strict`` the first bad row raises
    :class:`~quantdesk.data.validation.ValidationError` and nothing is written.
    """
    from quantdesk.data.sources.news import read_news_file
    from quantdesk.data.store.news import NewsStore

    result = read_news_file(path, tz=tz, ts_format=ts_format, dayfirst=dayfirst, strict=strict)
    news = NewsStore.of(store)
    report = news.write_news(result.good, source=result.source, validation=result)
    return IngestResult((report,), problem=_why_nothing_stored(news.market, report))


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

    The market is simulated again with the same parameters as :func:`ingest_simulated`
    (same seed, same market), and its true trend regimes set the headlines' tone
    (:func:`~quantdesk.data.sources.synthetic_news.synthetic_news`).
    """
    from quantdesk.data.sources.simulator import simulate
    from quantdesk.data.sources.synthetic_news import synthetic_news
    from quantdesk.data.store.news import NewsStore

    market = simulate(n_symbols=symbols, n_days=days, seed=seed, start=start)
    items = synthetic_news(market, rate=rate, seed=seed)
    report = NewsStore.of(store).write_news(items, source=f"synthetic:seed={seed}")
    return IngestResult((report,))
