"""Parameter sweeps and walk-forward evaluation of the vol-targeted trend strategy.

A sweep runs every combination of a lookback x target-volatility grid in one
compiled simulation (columns = combination x asset, grouped per combination with
shared cash), and returns a tidy table plus a heatmap.

Walk-forward evaluation shows overfitting instead of hiding it: on each rolling
training window it picks the combination with the best in-sample metric, holds it
for the following test window, and stitches the out-of-sample periods into one
equity curve traded with real costs.  Because every strategy here is causal, one
grid run over the whole sample gives each combination's returns on any window;
only the choice of combination is made window by window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from quantdesk.backtest import metrics as m
from quantdesk.backtest.engine import (
    DEFAULT_COMMISSION_BPS,
    DEFAULT_SLIPPAGE_BPS,
    BacktestResult,
    _check_close,
    run,
    simulate_fills,
)
from quantdesk.core.html import summary_html, summary_text
from quantdesk.core.parallel import Executor, cpu_count, run_tasks
from quantdesk.data.frequency import resolve_periods_per_year
from quantdesk.strategies import DEFAULT_LOOKBACKS, size_trend, trend_inputs, trend_signal

__all__ = ["ClosesSource", "SweepResult", "WalkForwardResult", "sweep", "walk_forward"]

logger = logging.getLogger(__name__)

PARAMS = ("lookback", "target_vol")
_SELECTABLE: dict[str, Callable[..., float]] = {
    "Sharpe": m.sharpe,
    "CAGR": m.cagr,
    "Calmar": m.calmar,
    "Sortino": m.sortino,
}


@dataclass
class SweepResult:
    """Return value of :func:`sweep`: one row of metrics per parameter combination."""

    table: pd.DataFrame
    returns: pd.DataFrame
    equity: pd.DataFrame

    def best(self, metric: str = "Sharpe") -> pd.Series:
        """Return the row of the combination with the highest ``metric``."""
        best: pd.Series = self.table.iloc[int(np.argmax(self.table[metric].to_numpy()))]
        return best

    def heatmap(self, metric: str = "Sharpe") -> Any:
        """Return a HoloViews heatmap of ``metric`` over lookback x target volatility."""
        from quantdesk.core import charts

        hv = charts.load_holoviews()
        data = self.table.assign(lookback=self.table["lookback"].astype(str))
        heatmap = hv.HeatMap(data, kdims=["lookback", "target_vol"], vdims=[metric])
        options = charts.heatmap_options(
            [("lookback", "Lookback", "text"), ("target_vol", "Target vol", "percent"),
             (metric, metric, "number")],
            title=f"{metric} by parameters", width=600, height=350,
        )  # fmt: skip
        return heatmap.opts(**options)

    def summary(self) -> str:
        """Return the table as text, best combinations first."""
        return self.table.sort_values("Sharpe", ascending=False).to_string(index=False)

    def _headline(self) -> dict[str, Any]:
        best = self.best()
        return {
            "combinations": len(self.table),
            "best lookback": int(best["lookback"]),
            "best target vol": float(best["target_vol"]),
            "best Sharpe": float(best["Sharpe"]),
        }

    def __repr__(self) -> str:
        return summary_text(f"Sweep of {len(self.table)} combinations", self._headline())

    def _repr_html_(self) -> str:
        table = self.table.sort_values("Sharpe", ascending=False)
        title = f"Sweep of {len(self.table)} combinations"
        return summary_html(title, self._headline(), {"all combinations, best first": table})


class ClosesSource(Protocol):
    """Where a sweep task reads the close panel itself (a pinned snapshot, on a worker)."""

    def panels(
        self, fields: Sequence[str], symbols: str | Sequence[str] | None = None
    ) -> dict[str, pd.DataFrame]:
        """Return one wide panel per field of ``symbols``."""
        ...


class _Grid:
    """The inputs every combination shares: each lookback's signal once, the volatility once.

    Volatility does not depend on the grid and each lookback's signal not on the target,
    so a combination only sizes (:meth:`weights`).
    """

    def __init__(
        self, close: pd.DataFrame, lookbacks: Sequence[int], strategy_kwargs: dict[str, Any]
    ) -> None:
        sizing = dict(strategy_kwargs)
        inputs = {k: sizing.pop(k) for k in ("vol_halflife", "lag", "periods_per_year")
                  if k in sizing}  # fmt: skip
        self.sizing = sizing
        if not lookbacks:
            raise ValueError("lookbacks must name at least one lookback")
        first, *rest = (int(lookback) for lookback in lookbacks)
        signal, self.vol = trend_inputs(close, lookbacks=(first,), **inputs)
        self.signals = {first: signal}
        lag = {k: v for k, v in inputs.items() if k == "lag"}
        for lookback in rest:
            self.signals[lookback] = trend_signal(close, lookbacks=(lookback,), **lag)

    def weights(self, lookback: int, target_vol: float) -> pd.DataFrame:
        """Return the target weights of one combination."""
        signal = self.signals[int(lookback)]
        return size_trend(signal, self.vol, target_vol=float(target_vol), **self.sizing)


def _grid_equity(
    close: pd.DataFrame,
    keys: Sequence[tuple[int, float]],
    strategy_kwargs: dict[str, Any],
    costs: dict[str, float],
    chunk_cells: int,
    threads: int | None,
) -> np.ndarray:
    """Return the equity of each combination in ``keys`` (bars x combinations).

    Each combination is its own group of columns with shared cash, so a combination's
    equity does not depend on which others run beside it: any split of the grid gives
    the same columns.
    """
    lookbacks = list(dict.fromkeys(int(lb) for lb, _ in keys))
    grid = _Grid(close, lookbacks, strategy_kwargs)
    n_assets = close.shape[1]
    valuation = close.ffill().bfill().to_numpy(dtype=np.float64)
    missing = close.isna().to_numpy()
    # Broadcast a chunk of combinations per simulation: one run over the whole grid
    # moves arrays of bars x combos x assets through memory several times, which on a
    # large grid costs more than the per-run overhead it saves.  Each chunk sizes its
    # own combinations, so the grid's weights are never all in memory at once.
    chunk = max(1, chunk_cells // max(1, valuation.size))

    def simulate(first: int) -> np.ndarray:
        part = keys[first : first + chunk]
        orders = np.empty((len(close), len(part) * n_assets))
        for k, key in enumerate(part):
            weights = grid.weights(*key).to_numpy(dtype=np.float64, copy=True)
            weights[missing] = np.nan  # no order where the asset has no price
            orders[:, k * n_assets : (k + 1) * n_assets] = weights
        equity = np.empty((len(close), len(part)))  # each combination's value per bar
        simulate_fills(
            valuation,  # one group wide: every combination trades the same prices
            orders,
            group_size=n_assets,
            commission_bps=costs["commission_bps"],
            slippage_bps=costs["slippage_bps"],
            init_cash=costs["init_cash"],
            values=equity,
        )
        return equity

    firsts = range(0, len(keys), chunk)
    workers = min(len(firsts), threads if threads is not None else cpu_count())
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="sweep") as pool:
            parts = list(pool.map(simulate, firsts))  # in the grid's order
    else:
        parts = [simulate(first) for first in firsts]
    return np.hstack(parts)


def _grid_task(
    close: pd.DataFrame | ClosesSource,
    symbols: list[str],
    keys: list[tuple[int, float]],
    strategy_kwargs: dict[str, Any],
    costs: dict[str, float],
    chunk_cells: int,
) -> np.ndarray:
    """Return one task's share of a sweep: the equity of ``keys``.

    ``close`` is the panel, or a source the task reads it from where it runs (a pinned
    snapshot on a Dask worker).  Top level so that process pools and Dask pickle it.
    """
    if not isinstance(close, pd.DataFrame):
        close = close.panels(["close"], symbols)["close"]
    return _grid_equity(close, keys, strategy_kwargs, costs, chunk_cells, threads=1)


def sweep(
    close: pd.DataFrame,
    *,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    target_vols: Sequence[float] = (0.05, 0.10, 0.15, 0.20),
    commission_bps: float = DEFAULT_COMMISSION_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    init_cash: float = 1_000_000.0,
    periods_per_year: float | None = None,
    chunk_cells: int = 1_000_000,
    threads: int | None = None,
    executor: Executor | None = None,
    source: ClosesSource | None = None,
    **strategy_kwargs: Any,
) -> SweepResult:
    """Return the metrics of :func:`~quantdesk.strategies.vol_target_trend` on a grid.

    Each combination trades a single-lookback momentum signal at one target
    volatility; other strategy options (``rebalance``, ``max_gross``, ...) are passed
    through unchanged.  Combinations are simulated together (the engine's kernel), one group
    of columns with shared cash per combination, about ``chunk_cells`` bar x column
    cells per simulation.

    Lookbacks are in bars.  ``periods_per_year`` annualises both the strategy's volatility
    forecast and the metrics; ``None`` reads it from ``close``'s timeframe or index.
    The chunks run on ``threads`` threads (default: one per core; the compiled kernels
    release the GIL), with the same result as one thread.

    With ``executor`` (``"process"``, a Dask scheduler address or client, see
    :func:`quantdesk.core.parallel.run_tasks`) the grid is split by lookback into tasks
    that run there instead, with the same result; each task reads the close panel from
    ``source`` where it runs (a :class:`~quantdesk.data.pinned.SnapshotBars`, so that a
    Dask worker reads the snapshot itself), or is sent ``close`` when there is none.

    Examples
    --------
    >>> result = sweep(close, lookbacks=[63, 126, 252], target_vols=[0.1, 0.2])  # doctest: +SKIP
    >>> result.table.head()  # doctest: +SKIP
    >>> result.heatmap("Sharpe")  # doctest: +SKIP
    """
    _check_close(close)
    periods_per_year = resolve_periods_per_year(periods_per_year, close, what="close")
    strategy_kwargs = {**strategy_kwargs, "periods_per_year": periods_per_year}
    if not lookbacks:
        raise ValueError("lookbacks must name at least one lookback")
    keys = [(int(lb), float(tv)) for lb in lookbacks for tv in target_vols]
    costs = {
        "commission_bps": float(commission_bps),
        "slippage_bps": float(slippage_bps),
        "init_cash": float(init_cash),
    }
    combos = pd.MultiIndex.from_tuples(keys, names=list(PARAMS))
    logger.info("sweep: %d combinations x %d assets x %d bars", len(keys), *close.shape[::-1])
    if executor is None:
        values = _grid_equity(close, keys, strategy_kwargs, costs, chunk_cells, threads)
    else:
        values = _run_grid(close, keys, strategy_kwargs, costs, chunk_cells, executor, source)
    equity = pd.DataFrame(values, index=close.index, columns=combos)
    returns = equity / equity.shift(1).fillna(init_cash) - 1.0
    rows = []
    for key in combos:
        r = returns[key]
        rows.append(
            {
                "lookback": key[0],
                "target_vol": key[1],
                "CAGR": m.cagr(r, periods_per_year),
                "Annual volatility": m.annual_volatility(r, periods_per_year),
                "Sharpe": m.sharpe(r, periods_per_year=periods_per_year),
                "Max drawdown": m.max_drawdown(r),
                "Calmar": m.calmar(r, periods_per_year),
                "Final equity": float(equity[key].iloc[-1]),
            }
        )
    return SweepResult(table=pd.DataFrame(rows), returns=returns, equity=equity)


def _run_grid(
    close: pd.DataFrame,
    keys: list[tuple[int, float]],
    strategy_kwargs: dict[str, Any],
    costs: dict[str, float],
    chunk_cells: int,
    executor: Executor,
    source: ClosesSource | None,
) -> np.ndarray:
    """Return the grid's equity computed by one task per lookback on ``executor``."""
    by_lookback: dict[int, list[tuple[int, float]]] = {}
    for key in keys:
        by_lookback.setdefault(key[0], []).append(key)
    symbols = [str(c) for c in close.columns]
    panel: pd.DataFrame | ClosesSource = close if source is None else source
    tasks = [
        (panel, symbols, part, strategy_kwargs, costs, chunk_cells) for part in by_lookback.values()
    ]
    ran = run_tasks(
        _grid_task,
        tasks,
        executor=executor,
        names=[f"lookback{lb}" for lb in by_lookback],
        progress=False,
        desc="sweep",
        unit="lookback",
    )
    failed = [o for o in ran.outcomes if not o.ok]
    if failed:
        raise RuntimeError(
            f"sweep: {len(failed)} of {len(tasks)} tasks failed on {ran.executor}: "
            f"{failed[0].reason}"
        )
    # Tasks are grouped by lookback; put the columns back in the grid's order.
    order = [key for part in by_lookback.values() for key in part]
    values = np.hstack([o.value for o in ran.outcomes])
    position = {key: i for i, key in enumerate(order)}
    return values[:, [position[key] for key in keys]]


@dataclass
class WalkForwardResult:
    """Return value of :func:`walk_forward`: the choices, their scores and the OOS run."""

    folds: pd.DataFrame
    oos: BacktestResult
    sweep: SweepResult
    metric: str

    @property
    def equity(self) -> pd.Series:
        """Out-of-sample equity, stitched across test windows."""
        first = self.folds["test_start"].iloc[0]
        return self.oos.equity.loc[first:]

    def overfitting(self) -> pd.Series:
        """Return mean in-sample vs out-of-sample metric across folds, and their gap."""
        is_, oos = self.folds["in_sample"].mean(), self.folds["out_of_sample"].mean()
        return pd.Series(
            {"in-sample": is_, "out-of-sample": oos, "gap": is_ - oos}, name=self.metric
        )

    def _headline(self) -> dict[str, Any]:
        gap = self.overfitting()
        return {
            "folds": len(self.folds),
            f"mean in-sample {self.metric}": float(gap["in-sample"]),
            f"mean out-of-sample {self.metric}": float(gap["out-of-sample"]),
            "gap": float(gap["gap"]),
            "out-of-sample final equity": float(self.equity.iloc[-1]),
        }

    def __repr__(self) -> str:
        return summary_text(f"Walk-forward on {self.metric}", self._headline())

    def _repr_html_(self) -> str:
        details = {"folds": self.folds, "out-of-sample backtest": self.oos.summary()}
        return summary_html(f"Walk-forward on {self.metric}", self._headline(), details)

    def summary(self) -> str:
        """Return the fold table and the in-sample/out-of-sample comparison."""
        gap = self.overfitting()
        return (
            f"walk-forward on {self.metric}: {len(self.folds)} folds\n"
            f"{self.folds.to_string(index=False)}\n"
            f"mean {self.metric}: in-sample {gap['in-sample']:.3f}, "
            f"out-of-sample {gap['out-of-sample']:.3f} (gap {gap['gap']:.3f})"
        )


def walk_forward(
    close: pd.DataFrame,
    *,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    target_vols: Sequence[float] = (0.05, 0.10, 0.15, 0.20),
    train: int = 756,
    test: int = 126,
    metric: str = "Sharpe",
    commission_bps: float = DEFAULT_COMMISSION_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    init_cash: float = 1_000_000.0,
    periods_per_year: float | None = None,
    executor: Executor | None = None,
    source: ClosesSource | None = None,
    **strategy_kwargs: Any,
) -> WalkForwardResult:
    """Return a rolling walk-forward evaluation: choose in sample, trade out of sample.

    Folds start after the longest lookback has warmed up; each uses ``train`` bars to
    choose the combination with the best ``metric`` and trades it for the next
    ``test`` bars.  The out-of-sample weights are stitched into one panel and
    backtested once with the given costs, so switching between choices pays its
    trades.  ``train`` and ``test`` are in bars (the defaults are three years and six
    months of daily bars); ``periods_per_year``, ``executor`` and ``source`` as in
    :func:`sweep` (the grid runs there; the choices and the stitched run here).
    """
    if metric not in _SELECTABLE:
        raise ValueError(f"metric must be one of {sorted(_SELECTABLE)}")
    score = _SELECTABLE[metric]
    periods_per_year = resolve_periods_per_year(periods_per_year, close, what="close")
    grid = sweep(
        close,
        lookbacks=lookbacks,
        target_vols=target_vols,
        commission_bps=commission_bps,
        slippage_bps=slippage_bps,
        init_cash=init_cash,
        periods_per_year=periods_per_year,
        executor=executor,
        source=source,
        **strategy_kwargs,
    )
    start = max(lookbacks) + 1
    if start + train + test > len(close):
        raise ValueError(
            f"{len(close)} bars are too few for warm-up {start} + train {train} + test {test}"
        )
    inputs = _Grid(close, lookbacks, {**strategy_kwargs, "periods_per_year": periods_per_year})
    stitched = pd.DataFrame(0.0, index=close.index, columns=close.columns)  # flat until fold 1
    folds = []
    for a in range(start, len(close) - train, test):
        b, c = a + train, min(a + train + test, len(close))
        window = grid.returns.iloc[a:b]
        in_sample = pd.Series(
            {key: score(window[key], periods_per_year=periods_per_year) for key in window}
        )
        best: tuple[int, float] = in_sample.index[int(np.argmax(in_sample.to_numpy()))]
        oos_score = score(grid.returns[best].iloc[b:c], periods_per_year=periods_per_year)
        stitched.iloc[b:c] = inputs.weights(*best).iloc[b:c].to_numpy()
        folds.append(
            {
                "train_start": close.index[a],
                "test_start": close.index[b],
                "test_end": close.index[c - 1],
                "lookback": best[0],
                "target_vol": best[1],
                "in_sample": float(in_sample.max()),
                "out_of_sample": float(oos_score),
            }
        )
        if c == len(close):
            break
    # Typed loosely: the engine's periods_per_year was an int (252) before issue 10.
    settings: dict[str, Any] = {
        "commission_bps": commission_bps,
        "slippage_bps": slippage_bps,
        "init_cash": init_cash,
        "periods_per_year": periods_per_year,
    }
    oos = run(close, stitched, **settings)
    return WalkForwardResult(folds=pd.DataFrame(folds), oos=oos, sweep=grid, metric=metric)
