"""The ``quantdesk backtest`` and ``quantdesk sweep`` commands: vol-targeted trend on closes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantdesk.cli.options import (
    JsonOption,
    SchedulerOption,
    SnapshotOption,
    StoreOption,
    echo_result,
    fail,
    int_list,
    open_store,
)
from quantdesk.config import DEFAULT_COMMISSION_BPS, DEFAULT_SLIPPAGE_BPS
from quantdesk.core.coerce import as_symbols

__all__ = ["backtest", "sweep"]


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
        fail(f"--rebalance must be daily, weekly or monthly, not {rebalance!r}")
    try:
        job = backtest_trend(
            open_store(store, read_only=True),
            (as_symbols(symbols) or None),
            start=start,
            end=end,
            lookbacks=int_list(lookbacks),
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
        fail(str(exc))
    echo_result(job, as_json)


def sweep(
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated symbols (default: all).")
    ] = None,
    start: Annotated[str | None, typer.Option("--start", help="First date.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last date (inclusive).")] = None,
    lookbacks: Annotated[
        str, typer.Option("--lookbacks", help="Momentum lookbacks of the grid, in bars.")
    ] = "21,63,126,252",
    target_vols: Annotated[
        str, typer.Option("--target-vols", help="Annualised volatility targets of the grid.")
    ] = "0.05,0.10,0.15,0.20",
    walk_forward: Annotated[
        bool,
        typer.Option(
            "--walk-forward", help="Choose the best combination in sample, trade it out of sample."
        ),
    ] = False,
    train: Annotated[int, typer.Option("--train", help="Walk-forward training bars.")] = 756,
    test: Annotated[int, typer.Option("--test", help="Walk-forward test bars.")] = 126,
    metric: Annotated[str, typer.Option("--metric", help="Sharpe, CAGR, Calmar or Sortino.")] = (
        "Sharpe"
    ),
    rebalance: Annotated[str, typer.Option("--rebalance", help="daily, weekly or monthly.")] = (
        "daily"
    ),
    commission_bps: Annotated[float, typer.Option("--commission-bps")] = DEFAULT_COMMISSION_BPS,
    slippage_bps: Annotated[float, typer.Option("--slippage-bps")] = DEFAULT_SLIPPAGE_BPS,
    snapshot: SnapshotOption = None,
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Sweep the trend strategy's lookback x target-volatility grid (or walk it forward).

    With --scheduler tcp://HOST:PORT the grid runs on that Dask cluster, a task per
    lookback; with --snapshot URL each task reads the closes from the snapshot itself.
    """
    from quantdesk.backtest.jobs import sweep_trend
    from quantdesk.data.snapshot import SnapshotError
    from quantdesk.data.store.market import UnknownSymbolError

    if rebalance not in ("daily", "weekly", "monthly"):
        fail(f"--rebalance must be daily, weekly or monthly, not {rebalance!r}")
    try:
        vols = [float(v) for v in target_vols.replace(" ", "").split(",") if v]
    except ValueError:
        fail(f"--target-vols: expected comma-separated numbers, got {target_vols!r}")
    try:
        job = sweep_trend(
            None if snapshot else open_store(store, read_only=True),
            (as_symbols(symbols) or None),
            start=start,
            end=end,
            lookbacks=int_list(lookbacks),
            target_vols=vols,
            walk_forward=walk_forward,
            train=train,
            test=test,
            metric=metric,
            commission_bps=commission_bps,
            slippage_bps=slippage_bps,
            snapshot=snapshot,
            scheduler=scheduler,
            rebalance=rebalance,
        )
    except (UnknownSymbolError, ValueError, OSError, RuntimeError, SnapshotError) as exc:
        fail(str(exc))
    echo_result(job, as_json)
