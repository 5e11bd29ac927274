"""Backtest jobs: a strategy run on stored prices in one call, with an account.

:func:`backtest_trend` reads the closes from the store, sizes the volatility-targeted
trend strategy (:func:`quantdesk.strategies.vol_target_trend`), runs it
(:func:`quantdesk.backtest.run`), measures it against a stored benchmark and writes the
result files.  ``quantdesk backtest``, notebooks and scheduled jobs all call it.

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
    from quantdesk.data.store.market import MarketStore
    from quantdesk.strategies.sizing import Rebalance

__all__ = ["TrendBacktest", "backtest_trend"]

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
