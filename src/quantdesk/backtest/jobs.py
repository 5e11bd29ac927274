"""Backtest jobs: a strategy run on stored prices in one call, with an account.

:func:`backtest_trend` reads the closes from the store, sizes the volatility-targeted
trend strategy (:func:`quantdesk.strategies.vol_target_trend`), runs it
(:func:`quantdesk.backtest.run`), measures it against a stored benchmark and writes the
result files.  ``quantdesk backtest``, notebooks and scheduled jobs all call it.

:func:`sweep_trend` (``quantdesk sweep``) runs the strategy's parameter grid, or its
walk-forward evaluation, on the store's closes or on a Parquet snapshot's, locally or
on a Dask cluster whose workers read the snapshot themselves.

Examples
--------
>>> import tempfile, pathlib
>>> from quantdesk.data.sources.ingest import ingest_samples
>>> home = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(home.name, "demo.duckdb")
>>> _ = ingest_samples(path, progress=False)
>>> job = backtest_trend(path, ["IXIC"], start="2015-01-01", benchmark="SPX")
>>> job.to_dict()["symbols"], job.to_dict()["benchmark"]
(['IXIC'], 'SPX')
>>> print(job.summary().splitlines()[0])
Backtest: 1 assets x 1006 bars (2015-01-02 .. 2018-12-31)
>>> home.cleanup()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.config import DEFAULT_COMMISSION_BPS, DEFAULT_SLIPPAGE_BPS
from quantdesk.strategies import DEFAULT_LOOKBACKS

if TYPE_CHECKING:
    import pandas as pd

    from quantdesk.backtest.engine import BacktestResult
    from quantdesk.backtest.sweeps import SweepResult, WalkForwardResult
    from quantdesk.data.pinned import SnapshotBars
    from quantdesk.data.store.market import MarketStore
    from quantdesk.strategies.sizing import Rebalance

__all__ = ["TrendBacktest", "TrendSweep", "backtest_trend", "sweep_trend"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrendBacktest:
    """A trend backtest on stored prices: the run, its metrics and the files written."""

    result: BacktestResult
    metrics: pd.Series
    benchmark: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    out: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return symbols, dates, benchmark, final equity, metrics (NaN as None), files."""
        close = self.result.close
        return {
            "symbols": [str(c) for c in close.columns],
            "start": close.index[0].isoformat(),
            "end": close.index[-1].isoformat(),
            "benchmark": self.benchmark,
            "final_equity": float(self.result.equity.iloc[-1]),
            "metrics": {k: (None if v != v else float(v)) for k, v in self.metrics.items()},
            "files": [str(p) for p in self.files.values()],
        }

    def summary(self) -> str:
        """Return the run's account, the benchmark-relative metrics and the files written."""
        lines = [self.result.summary()]
        if self.benchmark is not None:
            from quantdesk.backtest.metrics import BENCHMARK_METRICS

            lines.append(f"against {self.benchmark}:")
            lines += [f"  {k:<24}{self.metrics[k]:,.4f}" for k in BENCHMARK_METRICS]
        if self.files:
            lines.append(f"wrote {len(self.files)} files to {self.out}")
        return "\n".join(lines)


def backtest_trend(
    store: MarketStore | str | Path | None = None,
    symbols: Sequence[str] | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    target_vol: float = 0.10,
    rebalance: Rebalance = "daily",
    band: float = 0.0,
    max_weight: float = 1.0,
    max_gross: float = 1.0,
    long_only: bool = False,
    commission_bps: float = DEFAULT_COMMISSION_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    init_cash: float = 1_000_000.0,
    benchmark: str | None = None,
    out: str | Path | None = None,
) -> TrendBacktest:
    """Return the backtest of volatility-targeted trend following on stored closes.

    Parameters
    ----------
    store
        The store, or its file (default ``$QUANTDESK_HOME/quantdesk.duckdb``); read only.
    symbols
        Symbols to trade (default: every symbol with closes at the store's bar length).
    start, end
        First and last date (inclusive).
    lookbacks, target_vol, rebalance, band, max_weight, max_gross, long_only
        The strategy's settings (:func:`quantdesk.strategies.vol_target_trend`).
    commission_bps, slippage_bps, init_cash
        The run's costs and capital (:func:`quantdesk.backtest.run`).
    benchmark
        A stored symbol to measure against: excess return, beta, alpha, tracking
        error, information ratio, up/down capture.
    out
        Directory to write equity, weights, trades and metrics to
        (:func:`quantdesk.backtest.export.write_result`).

    Raises
    ------
    quantdesk.data.UnknownSymbolError
        A symbol is not stored.
    ValueError
        No closes for the selection or for a symbol, or the benchmark is not stored.
    """
    from quantdesk.backtest.engine import run
    from quantdesk.core.coerce import as_symbols
    from quantdesk.data.store import as_store
    from quantdesk.data.store.market import UnknownSymbolError
    from quantdesk.strategies import vol_target_trend

    source = as_store(store, read_only=True)
    names = as_symbols(symbols) or None
    close = source.panel("close", symbols=names, start=start, end=end)
    if close.empty:
        raise ValueError("no daily closes for that selection; see `quantdesk data info`")
    missing = sorted(set(names or []) - set(close.columns))
    if missing:
        raise ValueError(f"no data for {missing}")
    weights = vol_target_trend(
        close,
        lookbacks=lookbacks,
        target_vol=target_vol,
        max_weight=max_weight,
        max_gross=max_gross,
        long_only=long_only,
        rebalance=rebalance,
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
            raise ValueError(f"benchmark {benchmark!r}: {exc}") from exc
        if benchmark not in prices.columns:
            raise ValueError(f"no closes for benchmark {benchmark!r}; see `quantdesk data info`")
        bench = prices[benchmark]
    metrics = result.metrics(benchmark=bench)
    files: dict[str, Path] = {}
    if out is not None:
        from quantdesk.backtest.export import write_result

        files = write_result(result, out, metrics=metrics)
        logger.info("wrote %d files to %s", len(files), out)
    out_dir = Path(out) if out is not None else None
    return TrendBacktest(result, metrics, benchmark if bench is not None else None, files, out_dir)


@dataclass(frozen=True)
class TrendSweep:
    """A sweep (or walk-forward) of the trend strategy's grid, and where its data came from.

    Attributes
    ----------
    result
        The :class:`~quantdesk.backtest.sweeps.SweepResult`, or the
        :class:`~quantdesk.backtest.sweeps.WalkForwardResult` with ``walk_forward``.
    symbols
        The symbols traded.
    snapshot
        ``{"url", "version"}`` of the snapshot the closes were read from (None: the store).
    executor
        Where the grid ran: ``"threads"``, or the executor given (a Dask address).
    """

    result: SweepResult | WalkForwardResult
    symbols: list[str]
    snapshot: dict[str, Any] | None
    executor: str

    @property
    def table(self) -> pd.DataFrame:
        """Return the grid's metrics, one row per combination."""
        from quantdesk.backtest.sweeps import SweepResult

        return (
            self.result.table if isinstance(self.result, SweepResult) else (self.result.sweep.table)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the grid's table, the walk-forward folds when run, and the data read."""
        from quantdesk.backtest.sweeps import WalkForwardResult
        from quantdesk.core.jsonable import jsonable

        doc: dict[str, Any] = {
            "symbols": self.symbols,
            "snapshot": self.snapshot,
            "executor": self.executor,
            "table": self.table.to_dict(orient="records"),
        }
        if isinstance(self.result, WalkForwardResult):
            doc["folds"] = self.result.folds.to_dict(orient="records")
            doc["overfitting"] = self.result.overfitting().to_dict()
        out: dict[str, Any] = jsonable(doc)
        return out

    def summary(self) -> str:
        """Return the result's summary and a line on the data and where it ran."""
        source = (
            "the store"
            if self.snapshot is None
            else f"snapshot {self.snapshot['url']} version {self.snapshot['version']}"
        )
        return (
            f"{self.result.summary()}\n{len(self.symbols)} symbols from {source}, "
            f"grid run on {self.executor}"
        )


def sweep_trend(
    store: MarketStore | str | Path | None = None,
    symbols: Sequence[str] | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    target_vols: Sequence[float] = (0.05, 0.10, 0.15, 0.20),
    walk_forward: bool = False,
    train: int = 756,
    test: int = 126,
    metric: str = "Sharpe",
    commission_bps: float = DEFAULT_COMMISSION_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    init_cash: float = 1_000_000.0,
    snapshot: str | SnapshotBars | None = None,
    scheduler: str | Any | None = None,
    **strategy: Any,
) -> TrendSweep:
    """Return the sweep of the trend strategy's grid (or its walk-forward) on closes.

    Parameters
    ----------
    store
        The store, or its file, whose closes are read (read only); not opened with
        ``snapshot``.
    symbols
        Symbols to trade (default: every symbol with daily closes).
    start, end
        First and last date (inclusive).
    lookbacks, target_vols
        The grid (:func:`quantdesk.backtest.sweeps.sweep`).
    walk_forward, train, test, metric
        Choose the best combination in sample and trade it out of sample
        (:func:`quantdesk.backtest.sweeps.walk_forward`).
    commission_bps, slippage_bps, init_cash
        The runs' costs and capital.
    snapshot
        Read the closes from this Parquet snapshot (its URL; the newest version is
        pinned now, or a pinned :class:`~quantdesk.data.pinned.SnapshotBars`).
    scheduler
        A Dask scheduler address (or client, or ``"process"``): the grid runs there, a
        task per lookback, each reading the closes from ``snapshot`` itself (without a
        snapshot the closes are sent to each task).  Default: threads here.
    **strategy
        More sizing options (``rebalance``, ``max_weight``, ``max_gross``,
        ``long_only``, ``band``).

    Raises
    ------
    quantdesk.data.UnknownSymbolError
        A symbol is not stored (or not in the snapshot).
    ValueError
        No closes for the selection, or a bad grid or walk-forward setting.
    """
    from quantdesk.backtest import sweeps
    from quantdesk.core.coerce import as_symbols
    from quantdesk.data.pinned import SnapshotBars
    from quantdesk.data.store import as_store

    names = as_symbols(symbols) or None
    pinned: SnapshotBars | None = None
    if snapshot is not None:
        pinned = (
            snapshot
            if isinstance(snapshot, SnapshotBars)
            else SnapshotBars.pin(str(snapshot), start=start, end=end)
        )
        close = pinned.panels(["close"], names)["close"]
        where = f"snapshot {pinned.url} version {pinned.version}"
    else:
        source = as_store(store, read_only=True)
        close = source.panel("close", symbols=names, start=start, end=end)
        where = str(source.path)
    if close.empty:
        raise ValueError(f"no daily closes for that selection in {where}")
    options: dict[str, Any] = {
        "lookbacks": lookbacks,
        "target_vols": target_vols,
        "commission_bps": commission_bps,
        "slippage_bps": slippage_bps,
        "init_cash": init_cash,
        "executor": scheduler,
        "source": pinned,
        **strategy,
    }
    result: SweepResult | WalkForwardResult
    if walk_forward:
        result = sweeps.walk_forward(close, train=train, test=test, metric=metric, **options)
    else:
        result = sweeps.sweep(close, **options)
    ran = (
        "threads"
        if scheduler is None
        else scheduler
        if isinstance(scheduler, str)
        else type(scheduler).__name__
    )
    return TrendSweep(
        result,
        [str(c) for c in close.columns],
        None if pinned is None else pinned.to_dict(),
        ran,
    )
