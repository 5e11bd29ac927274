"""Walk-forward regimes: periodic refits, each labelling only the period after its fit.

:func:`walk_forward` refits a :class:`~quantdesk.regimes.model.RegimeModel` every
``refit`` bars on the trailing ``window`` bars (or on everything so far) and keeps, from
each model, only the filtered regimes of the ``refit`` bars that follow its training
data.  The filter runs forward over the training window into that period, so a regime
at t uses data up to t and parameters fitted on data before the period: the series is
out of sample and causal, and the regimes of period k are the same whether or not later
data exists.

Continuity across refits comes from the model's semantic cell mapping (each state is
put in its (volatility, trend) cell by its emission means, so ``high_bearish`` means the
same after every refit).  Each refit also logs how often the new and the previous model
agree on the bars both could label (the new training window), and starts from the
previous model's parameters when :meth:`RegimeModel.fit` accepts ``init_from``.

:func:`fit_symbols` runs fits or walk-forwards of many symbols in parallel: a local
process pool by default, or a Dask distributed cluster given its scheduler address.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

from quantdesk.core.parallel import check_executor, cpu_count, run_tasks
from quantdesk.data.schemas import (
    REGIME_COLUMNS,
    REGIME_PROBABILITY_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
    regime_probability_column,
)

if TYPE_CHECKING:
    from quantdesk.regimes.model import RegimeModel

__all__ = ["BarSource", "SymbolFits", "WalkForwardRegimes", "fit_symbols", "walk_forward"]

logger = logging.getLogger(__name__)

_OHLCV = ("open", "high", "low", "close", "volume")
# Refits whose labels agree with the previous model's on less than this share of the
# overlap are logged as warnings: the semantic mapping should keep agreement high.
_LOW_AGREEMENT = 0.8
_REFIT_COLUMNS = (
    "refit",
    "model_version",
    "train_start",
    "train_end",
    "n_train",
    "oos_start",
    "oos_end",
    "n_oos",
    "log_likelihood",
    "converged",
    "n_iter",
    "kind",
    "degenerate",
    "warm_start",
    "overlap",
    "agreement",
    "vol_agreement",
    "trend_agreement",
    "fit_seconds",
    "error",
)


class BarSource(Protocol):
    """Where a task reads one symbol's bars itself (a pinned snapshot, on a worker)."""

    def bars(self, symbol: str) -> pd.DataFrame:
        """Return the symbol's long bars (empty when the source has none)."""
        ...


def _one_symbol(bars: pd.DataFrame, symbol: str | None) -> tuple[pd.DataFrame, str]:
    """Return one symbol's bars indexed by ts in time order, and the symbol's name."""
    frame = bars
    if "symbol" in frame.columns:
        names = frame["symbol"].dropna().unique()
        if len(names) > 1:
            raise ValueError(
                f"walk_forward takes one symbol's bars, got {len(names)} symbols; "
                "use fit_symbols for several"
            )
        if symbol is None and len(names):
            symbol = str(names[0])
    if "ts" in frame.columns:
        frame = frame.set_index("ts")
    missing = [c for c in ("high", "low", "close") if c not in frame.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}")
    index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True), name="ts")
    frame = frame.set_axis(index, axis=0)
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    if frame.index.has_duplicates:
        raise ValueError("bars have duplicate timestamps")
    columns = [c for c in _OHLCV if c in frame.columns]
    return frame[columns], symbol or "?"


def _supports_warm_start(model: Any) -> bool:
    try:
        return "init_from" in inspect.signature(model.fit).parameters
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class WalkForwardRegimes:
    """Return value of :func:`walk_forward`: out-of-sample regimes and the refit log.

    Attributes
    ----------
    symbol
        The symbol.
    regimes
        Long frame ``symbol, ts, model_version, state, vol_label, trend_label`` and the
        nine ``p_*`` probabilities, one row per out-of-sample bar, ready for
        :meth:`~quantdesk.data.store.market.MarketStore.write_regimes`.
    refits
        One row per refit: model version, training and out-of-sample windows, fit
        diagnostics (log-likelihood, convergence, iterations, kind, degenerate), whether
        it was warm-started, agreement with the previous model on the overlap
        (``agreement`` for the cell, ``vol_agreement``, ``trend_agreement``; NaN for the
        first), fit time and any error (a failed refit keeps the previous model).
    model
        The last fitted model (the one that would label the next bars).
    window, refit, expanding
        The settings used.
    """

    symbol: str
    regimes: pd.DataFrame
    refits: pd.DataFrame
    model: RegimeModel | None = field(repr=False)
    window: int
    refit: int
    expanding: bool

    @property
    def probabilities(self) -> pd.DataFrame:
        """Return the nine filtered probabilities indexed by ts."""
        return self.regimes.set_index("ts")[list(REGIME_PROBABILITY_COLUMNS)]

    def summary(self) -> str:
        """Return a short account: refits, out-of-sample span, convergence, agreement."""
        refits, regimes = self.refits, self.regimes
        scheme = "expanding" if self.expanding else f"rolling {self.window}"
        lines = [
            f"{self.symbol} walk-forward: {len(refits)} refits ({scheme}, every {self.refit} "
            f"bars), {len(regimes)} out-of-sample bars"
            + (
                f" {regimes['ts'].iloc[0]:%Y-%m-%d}..{regimes['ts'].iloc[-1]:%Y-%m-%d}"
                if len(regimes)
                else ""
            )
        ]
        if len(refits):
            ok = refits["error"].isna()

            def count(column: str) -> int:
                # `degenerate` holds the reason (a string) or None, the others booleans.
                return sum(1 for v in refits[column] if isinstance(v, (bool, str, np.bool_)) and v)

            lines.append(
                f"  converged {count('converged')}/{len(refits)}, "
                f"degenerate {count('degenerate')}, failed {int((~ok).sum())}, "
                f"warm-started {count('warm_start')}, "
                f"fit time {refits['fit_seconds'].sum():.1f} s"
            )
            agreement = refits["agreement"].dropna()
            if len(agreement):
                lines.append(
                    f"  agreement with previous model: cell {agreement.mean():.3f} "
                    f"(min {agreement.min():.3f}), vol {refits['vol_agreement'].mean():.3f}, "
                    f"trend {refits['trend_agreement'].mean():.3f}"
                )
        if len(regimes):
            share = regimes["vol_label"].value_counts(normalize=True)
            trend = regimes["trend_label"].value_counts(normalize=True)
            lines.append(
                "  volatility: "
                + ", ".join(f"{v} {share.get(v, 0.0):.0%}" for v in VOL_LABELS)
                + "; trend: "
                + ", ".join(f"{t} {trend.get(t, 0.0):.0%}" for t in TREND_LABELS)
            )
            last = regimes.iloc[-1]
            cell = regime_probability_column(last["vol_label"], last["trend_label"])
            lines.append(
                f"  latest {last['ts']:%Y-%m-%d}: {last['vol_label']}/{last['trend_label']} "
                f"(p={float(last[cell]):.2f})"
            )
        return "\n".join(lines)


def walk_forward(
    bars: pd.DataFrame,
    *,
    window: int = 2520,
    refit: int = 21,
    expanding: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    symbol: str | None = None,
    version_prefix: str = "wf",
) -> WalkForwardRegimes:
    """Return out-of-sample filtered regimes of one symbol from periodic refits.

    The first model is fitted on bars ``0 .. window-1`` and labels bars ``window ..
    window+refit-1``; the next is fitted ``refit`` bars later, and so on to the end.
    Refit dates are anchored at the first bar, so appending data never moves them.

    Parameters
    ----------
    bars
        One symbol's bars: long (``symbol, ts, open, high, low, close, volume``) or
        OHLCV indexed by ts.  Needs more than ``window`` bars.
    window
        Training bars per fit (2520 is ten years of daily bars); with ``expanding``
        the first fit's length, later fits use everything before their period.
    refit
        Bars between refits, the length of each out-of-sample period (21 ~ monthly).
    expanding
        Train on all data so far instead of a trailing window.
    model_kwargs
        Keyword arguments of :class:`~quantdesk.regimes.model.RegimeModel` (default
        ``random_state=0``).
    progress
        Show a progress bar (``tqdm.auto``).
    symbol
        Name for the output (default: the ``symbol`` column, else ``"?"``).
    version_prefix
        Each refit's ``model_version`` is ``f"{version_prefix}-{train_end:%Y%m%d}"``,
        named after the last bar its model saw.

    Returns
    -------
    WalkForwardRegimes
        ``.regimes`` (long, store-ready), ``.refits`` (the per-refit log), ``.model``.

    Examples
    --------
    >>> wf = walk_forward(bars, window=1260, refit=21)  # doctest: +SKIP
    >>> print(wf.summary())  # doctest: +SKIP
    >>> store.write_regimes(wf.regimes)  # doctest: +SKIP
    """
    from quantdesk.core.progress import progress_bar
    from quantdesk.regimes.model import RegimeModel

    if window < 2 or refit < 1:
        raise ValueError(f"need window >= 2 and refit >= 1, got window={window}, refit={refit}")
    frame, name = _one_symbol(bars, symbol)
    n = len(frame)
    if n <= window:
        raise ValueError(
            f"{name}: walk-forward needs more than window={window} bars, got {n}; "
            "use a shorter window or more history"
        )
    kwargs = {"random_state": 0, **dict(model_kwargs or {})}
    ts = frame.index
    starts = range(window, n, refit)
    pieces: list[pd.DataFrame] = []
    log: list[dict[str, Any]] = []
    previous: RegimeModel | None = None
    previous_version = ""
    previous_filtered: pd.DataFrame | None = None
    for k, start in enumerate(
        progress_bar(starts, desc=f"walk-forward {name}", unit="refit", disable=not progress)
    ):
        stop = min(start + refit, n)
        first = 0 if expanding else start - window
        train = frame.iloc[first:start]
        version = f"{version_prefix}-{ts[start - 1]:%Y%m%d}"
        row: dict[str, Any] = {
            "refit": k,
            "model_version": version,
            "train_start": ts[first],
            "train_end": ts[start - 1],
            "n_train": len(train),
            "oos_start": ts[start],
            "oos_end": ts[stop - 1],
            "n_oos": stop - start,
            "warm_start": False,
            "error": None,
        }
        model = RegimeModel(**kwargs)
        began = time.perf_counter()
        try:
            if previous is not None and _supports_warm_start(model):
                fit: Any = model.fit  # init_from is optional in the model's interface
                fit(train, init_from=previous)
                row["warm_start"] = True
            else:
                model.fit(train)
        except Exception as exc:
            if previous is None:
                raise
            # One bad window should not end a decade-long run: keep labelling with the
            # last good model and say so in the log.
            logger.warning("%s refit %s failed (%s); keeping %s", name, version, exc, previous)
            row["error"] = f"{type(exc).__name__}: {exc}"
            model, version = previous, previous_version
            row["model_version"] = version
        row["fit_seconds"] = time.perf_counter() - began
        # The forward filter over the training window runs on into the new period; only
        # the new period's rows are kept, each using data up to its own bar.
        context = frame.iloc[first:stop]
        filtered = model.filter(context)
        oos = filtered.loc[filtered.index >= ts[start]]
        if len(oos) != stop - start:
            logger.warning(
                "%s %s: filter returned %d of %d out-of-sample bars",
                name,
                version,
                len(oos),
                stop - start,
            )
        piece = oos.reset_index()
        piece.insert(0, "symbol", name)
        piece.insert(2, "model_version", version)
        pieces.append(piece)
        row.update(
            log_likelihood=getattr(model, "log_likelihood_", np.nan),
            converged=getattr(model, "converged_", None),
            n_iter=getattr(model, "n_iter_", None),
            kind=getattr(model, "kind_", None),
            degenerate=getattr(model, "degenerate_", None),
        )
        row.update(
            _agreement(None if model is previous else previous_filtered, filtered, ts[start])
        )
        if row["agreement"] < _LOW_AGREEMENT:
            logger.warning(
                "%s %s agrees with the previous model on only %.0f%% of %d overlapping bars",
                name,
                version,
                100 * row["agreement"],
                row["overlap"],
            )
        log.append(row)
        previous, previous_version, previous_filtered = model, version, filtered
    regimes = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()
    regimes = regimes.reindex(columns=list(REGIME_COLUMNS))
    regimes["state"] = regimes["state"].astype("int64")
    refits = pd.DataFrame(log).reindex(columns=list(_REFIT_COLUMNS))
    logger.info("%s walk-forward: %d refits, %d out-of-sample bars", name, len(log), len(regimes))
    return WalkForwardRegimes(
        symbol=name,
        regimes=regimes,
        refits=refits,
        model=previous,
        window=window,
        refit=refit,
        expanding=expanding,
    )


def _agreement(
    previous: pd.DataFrame | None, filtered: pd.DataFrame, cutoff: pd.Timestamp
) -> dict[str, Any]:
    """Return how often the new model's labels before ``cutoff`` match the previous model's.

    ``previous`` is what the previous model said (its own filtered output, which ends at
    ``cutoff``), so the comparison costs no extra filter pass; ``None`` (first fit, or a
    failed refit that kept the previous model) gives NaN.
    """
    nothing = {
        "overlap": 0,
        "agreement": np.nan,
        "vol_agreement": np.nan,
        "trend_agreement": np.nan,
    }
    if previous is None:
        return nothing
    new = filtered.loc[filtered.index < cutoff]
    old = previous.reindex(new.index)
    both = old["state"].notna().to_numpy()
    new, old = new.loc[both], old.loc[both]
    if not len(new):
        return nothing

    def share(column: str) -> float:
        return float((new[column].to_numpy() == old[column].to_numpy()).mean())

    return {
        "overlap": len(new),
        "agreement": share("state"),
        "vol_agreement": share("vol_label"),
        "trend_agreement": share("trend_label"),
    }


# -- many symbols ----------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolFits:
    """Return value of :func:`fit_symbols`: per-symbol results and errors.

    Attributes
    ----------
    results
        Symbol -> fitted :class:`~quantdesk.regimes.model.RegimeModel`, or
        :class:`WalkForwardRegimes` when run with ``walk_forward=True``.
    errors
        Symbol -> the failure's traceback text, for symbols that failed.
    seconds
        Symbol -> seconds the fit or walk-forward took where it ran.
    executor
        ``"serial"``, ``"process"`` or the Dask scheduler address.
    wall_seconds
        Elapsed time of the whole batch.
    finished
        Symbol -> what ``fit_symbols(finish=...)`` computed beside the fit (empty
        without ``finish``).
    """

    results: dict[str, Any]
    errors: dict[str, str]
    seconds: dict[str, float]
    executor: str
    wall_seconds: float
    finished: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Return True when no symbol failed."""
        return not self.errors

    def regimes(self) -> pd.DataFrame:
        """Return the walk-forward regimes of every symbol as one long frame."""
        frames = [r.regimes for r in self.results.values() if isinstance(r, WalkForwardRegimes)]
        if not frames:
            return pd.DataFrame(columns=list(REGIME_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> str:
        """Return a short account: successes, failures (first line of each), timing."""
        busy = sum(self.seconds.values())
        lines = [
            f"{len(self.results)} symbols fitted, {len(self.errors)} failed "
            f"({self.executor}, {self.wall_seconds:.1f} s wall, {busy:.1f} s of fitting)"
        ]
        for symbol, text in sorted(self.errors.items()):
            last = text.strip().splitlines()[-1] if text.strip() else "?"
            lines.append(f"  {symbol}: {last}")
        return "\n".join(lines)


def _limit_threads() -> None:
    """Keep each worker's BLAS single-threaded: the pool already uses every core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    threadpool_limits(1)


def _fit_task(
    symbol: str,
    bars: pd.DataFrame | BarSource,
    walk: bool,
    kwargs: dict[str, Any],
    finish: Callable[[str, Any, pd.DataFrame], Any] | None = None,
) -> tuple[str, Any, str | None, float, Any]:
    """Return ``(symbol, result, error, seconds, finished)`` of one symbol's fit or walk-forward.

    ``bars`` is the symbol's bars, or a source read here (on the worker): a snapshot
    pinned at submit time.  ``finished`` is ``finish(symbol, result, bars)`` (None
    without ``finish``), computed here beside the bars.  Top level so that process pools
    and Dask can pickle it; errors come back as text so that an exception class the
    parent cannot unpickle never hides the failure.
    """
    began = time.perf_counter()
    try:
        if not isinstance(bars, pd.DataFrame):
            source = bars
            bars = source.bars(symbol)
            if bars.empty:
                raise ValueError(f"{symbol}: no bars in {source}")
        if walk:
            result: Any = walk_forward(bars, symbol=symbol, progress=False, **kwargs)
        else:
            from quantdesk.regimes.model import RegimeModel

            frame, _ = _one_symbol(bars, symbol)
            result = RegimeModel(**{"random_state": 0, **kwargs}).fit(frame)
        finished = None if finish is None else finish(symbol, result, bars)
        return symbol, result, None, time.perf_counter() - began, finished
    except Exception:
        return symbol, None, traceback.format_exc(), time.perf_counter() - began, None


def _split(
    bars_by_symbol: Mapping[str, pd.DataFrame | BarSource] | pd.DataFrame,
) -> dict[str, pd.DataFrame | BarSource]:
    if isinstance(bars_by_symbol, pd.DataFrame):
        if "symbol" not in bars_by_symbol.columns:
            raise ValueError("long bars need a 'symbol' column; or pass {symbol: bars}")
        return {
            str(symbol): group.reset_index(drop=True)
            for symbol, group in bars_by_symbol.groupby("symbol", sort=True)
        }
    return {str(symbol): frame for symbol, frame in bars_by_symbol.items()}


def fit_symbols(
    bars_by_symbol: Mapping[str, pd.DataFrame | BarSource] | pd.DataFrame,
    *,
    walk_forward: bool = False,
    executor: Literal["process", "serial"] | str | Any = "process",
    max_workers: int | None = None,
    progress: bool = True,
    finish: Callable[[str, Any, pd.DataFrame], Any] | None = None,
    on_fit: Callable[[str, Any, Any], None] | None = None,
    **kwargs: Any,
) -> SymbolFits:
    """Return per-symbol fits (or walk-forwards) run in parallel, with failures collected.

    Parameters
    ----------
    bars_by_symbol
        ``{symbol: bars}`` or long bars with a ``symbol`` column.  A value may instead be
        a source whose ``bars(symbol)`` the task calls where it runs (a
        :class:`~quantdesk.data.pinned.SnapshotBars`: workers read a pinned snapshot
        themselves, and no bars travel from this process).
    walk_forward
        Run :func:`walk_forward` per symbol (``kwargs`` are its keywords: ``window``,
        ``refit``, ``expanding``, ``model_kwargs``, ``version_prefix``); otherwise fit one
        :class:`~quantdesk.regimes.model.RegimeModel` per symbol on all its bars
        (``kwargs`` are the model's keywords).
    executor
        ``"process"`` (default): a local ``ProcessPoolExecutor`` with the ``spawn``
        start method, which is safe whatever threads the parent runs (a notebook
        kernel, Dask, BLAS); as with any spawned pool, a script must call this under
        ``if __name__ == "__main__":`` (notebooks need nothing).  ``"serial"``: in this
        process.  A Dask scheduler address (``"tcp://host:8786"``) or a
        ``distributed.Client``: on that cluster, whose workers need quantdesk installed.
    max_workers
        Process-pool size (default: one per CPU, at most one per symbol).  One worker
        or one symbol runs in this process, without the start-up cost of a pool.
    progress
        Show a progress bar over symbols.
    finish
        A top-level function ``finish(symbol, result, bars)`` run where each symbol was
        fitted, beside its bars; what it returns is in :attr:`SymbolFits.finished`
        (e.g. the regime rows to store, so that no bars come back to this process).
    on_fit
        Called here with ``(symbol, result, finished)`` as each symbol's fit arrives
        (once per symbol), so that results are saved while the other fits run.

    Returns
    -------
    SymbolFits
        ``.results`` per symbol, ``.errors`` with the traceback of each failure (one
        failure never stops the others), timings and a ``.summary()``.
    """
    check_executor(executor)
    frames = _split(bars_by_symbol)
    tasks = [
        (symbol, frame, walk_forward, dict(kwargs), finish) for symbol, frame in frames.items()
    ]
    began = time.perf_counter()
    workers = max(1, min(max_workers or cpu_count(), len(tasks)))
    if executor == "process" and workers == 1:
        executor = "serial"  # one worker: no pool start-up cost

    def arrived(task: Any) -> None:
        if on_fit is not None and task.ok and task.value[2] is None:
            symbol, result, _, _, output = task.value
            on_fit(symbol, result, output)

    ran = run_tasks(
        _fit_task,
        tasks,
        executor=executor,
        max_workers=workers,
        initializer=_limit_threads,
        names=list(frames),
        failed=lambda task: not task.ok or task.value[2] is not None,
        on_final=arrived,
        progress=progress,
        desc="regimes",
        unit="symbol",
    )
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    finished: dict[str, Any] = {}
    for task in ran.outcomes:
        symbol = tasks[task.index][0]
        if not task.ok:  # the worker itself was lost (killed, out of memory)
            errors[symbol] = task.reason or "worker lost"
            continue
        _, result, error, seconds[symbol], output = task.value
        if error is None:
            results[symbol] = result
            if finish is not None:
                finished[symbol] = output
        else:
            errors[symbol] = error
            logger.error("%s failed:\n%s", symbol, error)
    fits = SymbolFits(
        results=dict(sorted(results.items())),
        errors=dict(sorted(errors.items())),
        seconds=seconds,
        executor=ran.executor,
        wall_seconds=time.perf_counter() - began,
        finished=finished,
    )
    logger.info(fits.summary())
    return fits
