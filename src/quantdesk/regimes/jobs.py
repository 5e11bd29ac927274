"""Regime jobs: fit regime models for stored symbols, save them, store their regimes.

:func:`fit_regimes` is what ``quantdesk regimes fit`` runs, so that a notebook, a scheduled
job and the command line share one implementation::

    from quantdesk.data import MarketStore
    from quantdesk.regimes import fit_regimes
    run = fit_regimes(MarketStore(), ["SPX"], walk_forward=True, window=2520, refit=21)
    print(run.summary())

:func:`update_regimes` is the evening pipeline's ``regimes`` step: it filters each
symbol's new sessions with its latest saved model and refits a model only when it is
older than the refit schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.jsonable import jsonable
from quantdesk.data.schemas import regime_probability_column

if TYPE_CHECKING:
    from quantdesk.data.pinned import SnapshotBars
    from quantdesk.data.store.market import MarketStore
    from quantdesk.regimes.registry import ModelRecord, ModelRegistry
    from quantdesk.regimes.walkforward import SymbolFits

__all__ = ["RegimeFitRun", "RegimeUpdateRun", "SymbolRegimeFit", "fit_regimes", "update_regimes"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SymbolRegimeFit:
    """One symbol's saved model and stored regimes from a :func:`fit_regimes` run."""

    symbol: str
    record: ModelRecord
    rows: int
    written: int
    first: pd.Timestamp
    last: pd.Timestamp
    regime: str
    probability: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Return the fit as JSON-able values (the ``--json`` document's per-symbol entry)."""
        meta = self.record.metadata
        doc: dict[str, Any] = jsonable(
            {
                "model": self.record.model_version,
                "url": self.record.url,
                "kind": meta.get("kind"),
                "degenerate": meta.get("degenerate"),
                "converged": meta.get("converged"),
                "log_likelihood": meta.get("log_likelihood"),
                "rows": self.rows,
                "written": self.written,
                "first": self.first,
                "last": self.last,
                "regime": self.regime,
                "probability": self.probability,
                "summary": self.text,
            }
        )
        return doc

    def summary(self) -> str:
        """Return the model's summary and one line on the stored regimes."""
        return (
            f"{self.text}\n"
            f"  {self.symbol}: {self.rows} regime rows {self.first:%Y-%m-%d}.."
            f"{self.last:%Y-%m-%d} ({self.written} new or changed) as "
            f"{self.record.model_version}; latest {self.regime} (p={self.probability:.2f})"
        )


@dataclass
class RegimeFitRun:
    """What :func:`fit_regimes` did: per symbol, the saved model and the stored regimes.

    Attributes
    ----------
    name, version : str
        The registry name and version every symbol of the run was saved under; stored
        regime rows carry ``model_version`` ``name/version`` (walk-forward:
        ``name/version/wf-YYYYMMDD`` per refit).
    symbols : dict
        Symbol to :class:`SymbolRegimeFit`, for the symbols that were fitted, saved and
        stored.
    errors : dict
        Symbol to the error that stopped it (fit, save or store write); the other symbols
        are unaffected.
    fits : SymbolFits
        The raw fits (models or walk-forwards) from
        :func:`~quantdesk.regimes.walkforward.fit_symbols`.
    snapshot : dict, optional
        ``{"url", "version"}`` of the snapshot the bars were read from (None: the store).
    """

    name: str
    version: str
    symbols: dict[str, SymbolRegimeFit] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fits: SymbolFits | None = None
    snapshot: dict[str, Any] | None = None

    @property
    def model_version(self) -> str:
        """Return ``"name/version"``, the id the run's regime rows carry."""
        return f"{self.name}/{self.version}"

    @property
    def ok(self) -> bool:
        """Return True when every symbol was fitted, saved and stored."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Return the run as one JSON-able document (what ``--json`` prints)."""
        doc: dict[str, Any] = jsonable(
            {
                "name": self.name,
                "version": self.version,
                "symbols": {s: fit.to_dict() for s, fit in self.symbols.items()},
                "errors": self.errors,
                "snapshot": self.snapshot,
            }
        )
        return doc

    def summary(self) -> str:
        """Return each symbol's model summary and stored regimes, then the fit counts."""
        lines = [fit.summary() for fit in self.symbols.values()]
        if self.fits is not None:
            lines.append(self.fits.summary().splitlines()[0])
        for symbol, error in sorted(self.errors.items()):
            lines.append(f"  {symbol} failed: {error.strip().splitlines()[-1]}")
        return "\n".join(lines)


def fit_regimes(
    store: MarketStore,
    symbols: str | Sequence[str] | None = None,
    *,
    start: Any = None,
    end: Any = None,
    walk_forward: bool = False,
    window: int = 2520,
    refit: int = 21,
    expanding: bool = False,
    name: str | None = None,
    version: str | None = None,
    seed: int = 0,
    registry: ModelRegistry | str | None = None,
    workers: int | None = None,
    scheduler: str | Any | None = None,
    snapshot: str | SnapshotBars | None = None,
    command: str = "quantdesk.regimes.fit_regimes",
    progress: bool = True,
) -> RegimeFitRun:
    """Return the run that fits a regime model per symbol, saves it and stores its regimes.

    Plain fits label the whole history with a model fitted on all of it (in-sample
    parameters, causal filtering); ``walk_forward=True`` labels each period with a model
    fitted before it (out of sample).  Models go to the registry as
    ``name/version/symbol``, regime rows to the store with ``model_version``
    ``name/version`` (plus ``/wf-YYYYMMDD`` per refit).  A symbol whose fit, save or write
    fails is recorded in :attr:`RegimeFitRun.errors` and the others go on.

    Each symbol is fitted and labelled where it runs (a local process or a Dask worker);
    the models are saved and the regimes written here, through the store's and the
    registry's one writer, each symbol's exactly once (a task whose worker died and that
    Dask ran again still comes back once).

    Parameters
    ----------
    store : MarketStore
        Where the regimes are written; and the daily bars are read, unless ``snapshot``.
    symbols : str or sequence of str, optional
        Symbol(s) to fit (default: every symbol with daily bars).
    start, end : optional
        Bounds of the bars (inclusive).
    walk_forward : bool
        Refit every ``refit`` bars on the last ``window`` bars (all bars so far with
        ``expanding``) and keep each model's out-of-sample regimes only.
    window, refit, expanding
        Walk-forward settings (ignored otherwise).
    name : str, optional
        Registry name (default ``"regimes"``, or ``"regimes-wf"`` with ``walk_forward``).
    version : str, optional
        Registry version (default: the next ``vN`` of the name).
    seed : int
        Random state of the model fits.
    registry : ModelRegistry or str, optional
        The registry, or its directory or fsspec URL (default ``$QUANTDESK_MODELS``).
    workers : int, optional
        Local worker processes (default: CPUs).
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``tcp://...``) to fit on instead of local processes.
    snapshot : str or SnapshotBars, optional
        Read the bars from this Parquet snapshot (an fsspec URL, see
        :meth:`MarketStore.snapshot`) instead of the store: its newest version is pinned
        now, each task reads its own symbol from it where it runs, and the models record
        the URL and version.  Workers on other machines need only the snapshot's object
        store (credentials from their environment or fsspec's configuration).
    command : str
        What ran the job, recorded in each saved model's metadata (``extra.command``).
    progress : bool
        Show a progress bar over symbols.

    Returns
    -------
    RegimeFitRun

    Raises
    ------
    quantdesk.data.UnknownSymbolError
        For a symbol the store does not hold.
    ValueError
        When the selection has no daily bars, or the registry cannot be opened or has no
        such version to give.
    """
    from quantdesk.regimes.registry import ModelRegistry
    from quantdesk.regimes.walkforward import fit_symbols

    names = [symbols] if isinstance(symbols, str) else list(symbols) if symbols else None
    inputs: dict[str, Any]
    if snapshot is not None:
        pinned = _pin(snapshot, start, end)
        held = pinned.symbols()
        missing = sorted(set(names or []) - set(held))
        if missing:
            raise ValueError(f"no daily bars for {missing} in {pinned}")
        if not (names or held):
            raise ValueError(f"no daily bars in {pinned}")
        inputs = dict.fromkeys(sorted(names or held), pinned)
    else:
        pinned = None
        bars = store.bars(names, start, end, "1d")
        missing = sorted(set(names or []) - set(bars["symbol"].unique()))
        if missing:
            raise ValueError(f"no daily bars for {missing}; see `quantdesk data info`")
        if bars.empty:
            raise ValueError("no daily bars for that selection; see `quantdesk data info`")
        inputs = {str(s): g.reset_index(drop=True) for s, g in bars.groupby("symbol", sort=True)}
    if not isinstance(registry, ModelRegistry):
        try:
            registry = ModelRegistry(registry)
        except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
            raise ValueError(f"model registry {registry!r}: {exc}") from exc
    name = name or ("regimes-wf" if walk_forward else "regimes")
    version = version or registry.next_version(name)
    run = RegimeFitRun(name, version, snapshot=None if pinned is None else pinned.to_dict())
    if walk_forward:
        kwargs: dict[str, Any] = {
            "window": window,
            "refit": refit,
            "expanding": expanding,
            "model_kwargs": {"random_state": seed},
            "version_prefix": f"{run.model_version}/wf",
        }
    else:
        kwargs = {"random_state": seed}
    writer = _Writer(store, registry, run, command)
    try:
        run.fits = fit_symbols(
            inputs,
            walk_forward=walk_forward,
            executor=scheduler or "process",
            max_workers=workers,
            progress=progress,
            finish=_labelled,
            on_fit=writer.add,
            **kwargs,
        )
    finally:
        writer.close()
    run.errors.update(run.fits.errors)
    run.symbols = dict(sorted(run.symbols.items()))
    return run


def _pin(snapshot: str | SnapshotBars, start: Any, end: Any) -> SnapshotBars:
    """Return the snapshot's daily bars over the window, its version pinned now."""
    from quantdesk.data.pinned import SnapshotBars

    if isinstance(snapshot, SnapshotBars):
        return snapshot
    return SnapshotBars.pin(str(snapshot), timeframe="1d", start=start, end=end)


@dataclass(frozen=True)
class _Labelled:
    """What a fit's worker computes beside it: the regime rows and the training data's hash."""

    regimes: pd.DataFrame
    fingerprint: str


def _labelled(symbol: str, result: Any, bars: pd.DataFrame) -> _Labelled:
    """Return a fit's regime rows (without ``model_version`` for a plain fit) and its hash.

    Runs where the symbol was fitted, beside its bars (a Dask worker reading a
    snapshot), so that only the rows to store come back.
    """
    from quantdesk.regimes.registry import data_fingerprint
    from quantdesk.regimes.walkforward import WalkForwardRegimes

    if isinstance(result, WalkForwardRegimes):
        last = result.refits.iloc[-1]
        trained = bars[(bars["ts"] >= last["train_start"]) & (bars["ts"] <= last["train_end"])]
        return _Labelled(result.regimes, data_fingerprint(trained))
    regimes = result.filter(bars).reset_index()
    regimes.insert(0, "symbol", symbol)
    return _Labelled(regimes, data_fingerprint(bars))


@dataclass(frozen=True)
class _Saved:
    """A symbol's saved model, and its regime rows still to write."""

    record: ModelRecord
    regimes: pd.DataFrame
    text: str


def _save(
    registry: ModelRegistry,
    run: RegimeFitRun,
    symbol: str,
    result: Any,
    labelled: _Labelled,
    command: str,
) -> _Saved:
    """Return one symbol's model, saved to the registry, and the regime rows to store."""
    from quantdesk.regimes.walkforward import WalkForwardRegimes

    regimes = labelled.regimes
    if isinstance(result, WalkForwardRegimes):
        if result.model is None:
            raise ValueError("walk-forward fitted no model")
        model = result.model
        extra: dict[str, Any] = {
            "walk_forward": {
                "window": result.window,
                "refit": result.refit,
                "expanding": result.expanding,
                "refits": len(result.refits),
                "mean_agreement": result.refits["agreement"].mean(),
                "first_oos": regimes["ts"].iloc[0],
                "last_oos": regimes["ts"].iloc[-1],
            }
        }
        text = result.summary()
    else:
        model, extra, text = result, {}, ""
        regimes = regimes.copy()
        regimes.insert(2, "model_version", run.model_version)
    if run.snapshot is not None:
        extra["snapshot"] = run.snapshot
    record = registry.save(
        model,
        run.name,
        symbol,
        version=run.version,
        data_fingerprint=labelled.fingerprint,
        extra={"command": command, **jsonable(extra)},
    )
    return _Saved(record, regimes, text or record.summary())


# Threads saving models at once (each save writes two files and renames one).
_SAVE_THREADS = 8
# Regime rows per write: one transaction per symbol costs more than the rows (hundreds
# of ms each under load); a batch bounds the memory of one write.
_WRITE_ROWS = 500_000


class _Writer:
    """The one writer of a fit run: saves each fit as it arrives, writes rows in batches.

    Models are saved on threads as the fits come back (file or object-store I/O that
    overlaps the fits still running); the regime rows are written once
    :data:`_WRITE_ROWS` of them are waiting, and the rest at :meth:`close`.  Failures
    are the symbol's errors; nothing here raises into the run.
    """

    def __init__(
        self, store: MarketStore, registry: ModelRegistry, run: RegimeFitRun, command: str
    ) -> None:
        self.store, self.registry, self.run, self.command = store, registry, run, command
        self.pool = ThreadPoolExecutor(_SAVE_THREADS, thread_name_prefix="regimes-save")
        self.pending: dict[str, Future[_Saved]] = {}
        self.rows = 0

    def add(self, symbol: str, result: Any, labelled: _Labelled) -> None:
        """Take one symbol's fit: start saving its model; write when a batch is full."""
        self.pending[symbol] = self.pool.submit(
            _save, self.registry, self.run, symbol, result, labelled, self.command
        )
        self.rows += len(labelled.regimes)
        if self.rows >= _WRITE_ROWS:
            self.flush()

    def flush(self) -> None:
        """Wait for the pending saves, then write their symbols' regimes."""
        saved: dict[str, _Saved] = {}
        for symbol, future in self.pending.items():
            try:
                saved[symbol] = future.result()
            except Exception as exc:
                logger.error("%s: saving the fit failed: %s", symbol, exc, exc_info=exc)
                self.run.errors[symbol] = f"{type(exc).__name__}: {exc}"
        self.pending, self.rows = {}, 0
        _store_regimes(self.store, self.run, saved)

    def close(self) -> None:
        """Write what is left and stop the threads."""
        try:
            self.flush()
        finally:
            self.pool.shutdown(wait=True)


def _store_regimes(store: MarketStore, run: RegimeFitRun, saved: dict[str, _Saved]) -> None:
    """Write the saved symbols' regimes in batches; a failed batch is retried by symbol."""
    source = f"regimes fit {run.model_version}"
    batch: list[str] = []
    rows = 0
    for position, symbol in enumerate(saved):
        batch.append(symbol)
        rows += len(saved[symbol].regimes)
        if rows < _WRITE_ROWS and position < len(saved) - 1:
            continue
        frame = pd.concat([saved[s].regimes for s in batch], ignore_index=True)
        try:
            written = store.write_regimes_by_symbol(frame, source=source)
        except Exception:
            # One bad symbol must not cost the others their rows: write them one by one.
            logger.warning("writing %d symbols' regimes failed; one by one now", len(batch))
            written = {}
            for symbol in batch:
                try:
                    written.update(
                        store.write_regimes_by_symbol(saved[symbol].regimes, source=source)
                    )
                except Exception as exc:
                    logger.exception("%s: writing the regimes failed", symbol)
                    run.errors[symbol] = f"{type(exc).__name__}: {exc}"
        for symbol in batch:
            if symbol not in run.errors:
                run.symbols[symbol] = _fitted(symbol, saved[symbol], written.get(symbol, 0))
        batch, rows = [], 0


def _fitted(symbol: str, saved: _Saved, written: int) -> SymbolRegimeFit:
    regimes = saved.regimes
    latest = regimes.iloc[-1]
    return SymbolRegimeFit(
        symbol=symbol,
        record=saved.record,
        rows=len(regimes),
        written=written,
        first=regimes["ts"].iloc[0],
        last=latest["ts"],
        regime=f"{latest['vol_label']}/{latest['trend_label']}",
        probability=float(
            latest[regime_probability_column(latest["vol_label"], latest["trend_label"])]
        ),
        text=saved.text,
    )


# -- the evening update: filter with saved models, refit on schedule ----------------------


@dataclass
class RegimeUpdateRun:
    """What :func:`update_regimes` did for one session.

    Attributes
    ----------
    session : pandas.Timestamp
        The session's bar time (00:00 UTC of its date).
    name : str
        The registry name of the models (regime rows carry ``name/version``).
    fitted : dict
        Symbol to the version of the model fitted and saved by this run (refit due or
        no model yet).
    filtered : dict
        Symbol to the number of new regime rows its model filtered (sessions after the
        symbol's last stored row of ``name``, up to the session).
    written : int
        Regime rows inserted or changed in the store (0 on a rerun).
    errors : dict
        Symbol to the error that stopped it; the other symbols are unaffected.
    short : list
        Symbols without a model whose history is still too short to fit one (skipped
        until it is long enough; not an error).
    executor : str
        Where the per-symbol work ran (``serial``, ``process x2``, ``dask tcp://...``).
    """

    session: pd.Timestamp
    name: str
    fitted: dict[str, str] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    written: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    short: list[str] = field(default_factory=list)
    executor: str = "serial"

    @property
    def ok(self) -> bool:
        """Return True when no symbol failed."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Return the run as one JSON-able document."""
        doc: dict[str, Any] = jsonable(
            {
                "session": self.session,
                "name": self.name,
                "fitted": self.fitted,
                "filtered": self.filtered,
                "written": self.written,
                "errors": self.errors,
                "short": self.short,
                "executor": self.executor,
            }
        )
        return doc

    def summary(self) -> str:
        """Return one line of counts, then one line per failed symbol."""
        lines = [
            f"regimes {self.name} {self.session:%Y-%m-%d}: {len(self.fitted)} fitted, "
            f"{sum(self.filtered.values())} rows filtered for {len(self.filtered)} symbols, "
            f"{self.written} written ({self.executor})"
            + (f"; {len(self.short)} too short to fit" if self.short else "")
        ]
        for symbol, error in sorted(self.errors.items()):
            lines.append(f"  {symbol} failed: {error.strip().splitlines()[-1]}")
        return "\n".join(lines)


def _update_task(
    symbol: str, bars: pd.DataFrame, model: Any, after: pd.Timestamp | None, seed: int
) -> tuple[str, Any, pd.DataFrame | None, str | None]:
    """Return ``(symbol, model fitted here or None, new regime rows, error)`` for one symbol.

    ``model`` None fits one on ``bars``; the rows are the model's causal filter over
    ``bars``, kept after ``after`` (all when None).  Top level, so that process pools and
    Dask can pickle it; an error comes back as text.
    """
    import traceback

    try:
        fitted = None
        if model is None:
            from quantdesk.regimes.model import RegimeModel

            model = fitted = RegimeModel(random_state=seed).fit(bars)
        rows = model.filter(bars)
        if after is not None:
            rows = rows[rows.index > after]
        return symbol, fitted, rows.reset_index(), None
    except Exception:
        return symbol, None, None, traceback.format_exc()


def _latest_models(
    registry: ModelRegistry, name: str, symbols: Sequence[str], ts: pd.Timestamp
) -> dict[str, tuple[str, pd.Timestamp]]:
    """Return symbol to ``(version, train_end)`` of its newest model trained up to ``ts``."""
    saved = registry.list(name)
    if saved.empty:
        return {}
    saved = saved[saved["symbol"].isin(list(symbols))].copy()
    saved["train_end"] = pd.to_datetime(saved["train_end"], utc=True)
    saved = saved[saved["train_end"].notna() & (saved["train_end"] <= ts)]
    newest = saved.sort_values(["train_end", "created_at"]).groupby("symbol").tail(1)
    return {
        str(symbol): (str(version), pd.Timestamp(end))
        for symbol, version, end in zip(
            newest["symbol"], newest["version"], newest["train_end"], strict=True
        )
    }


def update_regimes(
    store: MarketStore,
    session: Any,
    symbols: str | Sequence[str] | None = None,
    *,
    name: str = "pipeline",
    refit_every: int = 63,
    history_start: Any = None,
    registry: ModelRegistry | str | None = None,
    seed: int = 0,
    workers: int | None = 1,
    scheduler: str | None = None,
    progress: bool = False,
) -> RegimeUpdateRun:
    """Return the run that brings each symbol's stored regimes up to ``session``.

    For each symbol with daily bars up to ``session`` (from ``history_start``):

    - the model is its newest one saved under ``name`` whose training ended by
      ``session`` (a backfill never uses a model fitted on later bars);
    - when there is none, or ``refit_every`` or more of the symbol's sessions have
      passed since its training end, a model is fitted on the bars up to ``session``
      and saved as version ``sYYYYMMDD`` (the session's date); a symbol without a
      model whose history is too short to fit one is listed in ``short`` and skipped;
    - the model filters the bars up to ``session`` (causal: each row uses bars up to
      its own date only) and the rows after the symbol's last stored row of ``name``
      are written with ``model_version`` ``name/version`` (a symbol with no row yet
      gets its whole filtered history).

    Idempotent by session: a rerun finds the model saved and the rows stored, and
    fits and writes nothing.  The per-symbol fits and filters run on
    :func:`quantdesk.core.parallel.run_tasks`: in this process (``workers`` 1), in
    ``workers`` local processes, or on the Dask ``scheduler`` at that address; the
    models are saved and the rows written here (the store has one writer).

    Parameters
    ----------
    store : MarketStore
        Where the bars are read and the regimes written.
    session : date-like
        The session (its daily bar is dated 00:00 UTC that day).
    symbols : str or sequence of str, optional
        The symbols (default: every symbol with daily bars).
    name : str
        Registry name of the models.
    refit_every : int
        Sessions after a model's training end at which it is refitted.
    history_start : optional
        First bar of the fits and filters (default: all stored bars).
    registry : ModelRegistry or str, optional
        The registry, or its directory or fsspec URL (default ``$QUANTDESK_MODELS``).
    seed : int
        Random state of the fits.
    workers : int, optional
        Local worker processes (1: this process; None: one per CPU).
    scheduler : str, optional
        A Dask scheduler address to run on instead of local processes.
    progress : bool
        Show a progress bar over symbols.

    Returns
    -------
    RegimeUpdateRun

    Raises
    ------
    ValueError
        For ``refit_every`` below 1 or a registry that cannot be opened.
    """
    from quantdesk.core.coerce import as_symbols, as_utc
    from quantdesk.core.parallel import cpu_count, run_tasks
    from quantdesk.regimes.features import FeatureConfig
    from quantdesk.regimes.model import _MIN_TRAIN_OBS
    from quantdesk.regimes.registry import ModelRegistry, data_fingerprint
    from quantdesk.regimes.walkforward import _limit_threads

    if isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1:
        raise ValueError(
            f"refit_every must be a whole number of sessions >= 1, not {refit_every!r}"
        )
    ts = as_utc(pd.Timestamp(pd.Timestamp(session).date()))
    assert ts is not None
    if not isinstance(registry, ModelRegistry):
        try:
            registry = ModelRegistry(registry)
        except (ImportError, ValueError) as exc:
            raise ValueError(f"model registry {registry!r}: {exc}") from exc
    run = RegimeUpdateRun(ts, name)
    bars = store.bars(as_symbols(symbols) or None, history_start, ts, "1d")
    if bars.empty:
        return run
    by_symbol = {str(s): g.reset_index(drop=True) for s, g in bars.groupby("symbol", sort=True)}
    models = _latest_models(registry, name, list(by_symbol), ts)
    stored = store.regime_versions(list(by_symbol))
    stored = stored[stored["model_version"].str.startswith(f"{name}/")]
    last_row = stored.groupby("symbol")["last"].max().to_dict()
    version = f"s{ts:%Y%m%d}"
    shortest = _MIN_TRAIN_OBS + FeatureConfig().warmup  # bars a first fit needs
    tasks: list[tuple[Any, ...]] = []
    for symbol, frame in by_symbol.items():
        after = last_row.get(symbol)
        saved = models.get(symbol)
        due = saved is None or int((frame["ts"] > saved[1]).sum()) >= refit_every
        if not due and after is not None and after >= ts:
            continue  # model current, rows stored: nothing to do
        if saved is None and len(frame) < shortest:
            run.short.append(symbol)
            continue
        model = None if due else registry.load(name, symbol, saved[0])  # type: ignore[index]
        tasks.append((symbol, frame, model, after, seed))
    if not tasks:
        return run
    if scheduler:
        executor: Any = scheduler
    else:
        pool = max(1, min(workers or cpu_count(), len(tasks)))
        executor = "process" if pool > 1 else "serial"
    outcome = run_tasks(
        _update_task,
        tasks,
        executor=executor,
        max_workers=None if scheduler else pool,
        initializer=_limit_threads,
        names=[t[0] for t in tasks],
        failed=lambda task: not task.ok or task.value[3] is not None,
        progress=progress,
        desc="regimes",
        unit="symbol",
    )
    run.executor = outcome.executor
    frames: list[pd.DataFrame] = []
    for task in outcome.outcomes:
        symbol = tasks[task.index][0]
        if not task.ok:
            run.errors[symbol] = task.reason or "worker lost"
            continue
        _, fitted, rows, error = task.value
        if error is not None:
            run.errors[symbol] = error
            logger.error("%s: regime update failed:\n%s", symbol, error)
            continue
        used = models[symbol][0] if fitted is None else version
        if fitted is not None:
            try:
                registry.save(
                    fitted, name, symbol, version=version,
                    data_fingerprint=data_fingerprint(by_symbol[symbol]),
                    extra={"command": "quantdesk.regimes.update_regimes",
                           "refit_every": refit_every},
                )  # fmt: skip
            except Exception as exc:
                logger.exception("%s: saving the refit failed", symbol)
                run.errors[symbol] = f"{type(exc).__name__}: {exc}"
                continue
            run.fitted[symbol] = version
        rows = rows.assign(symbol=symbol, model_version=f"{name}/{used}")
        run.filtered[symbol] = len(rows)
        frames.append(rows)
    if frames:
        new = pd.concat(frames, ignore_index=True)
        if len(new):
            run.written = store.write_regimes(new, source=f"regimes update {name} {ts:%Y-%m-%d}")
    logger.info(run.summary())
    return run
