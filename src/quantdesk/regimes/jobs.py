"""Regime jobs: fit regime models for stored symbols, save them, store their regimes.

:func:`fit_regimes` is what ``quantdesk regimes fit`` runs, so that a notebook, a scheduled
job and the command line share one implementation::

    from quantdesk.data import MarketStore
    from quantdesk.regimes import fit_regimes
    run = fit_regimes(MarketStore(), ["SPX"], walk_forward=True, window=2520, refit=21)
    print(run.summary())
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.jsonable import jsonable
from quantdesk.data.schemas import regime_probability_column

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore
    from quantdesk.regimes.registry import ModelRecord, ModelRegistry
    from quantdesk.regimes.walkforward import SymbolFits

__all__ = ["RegimeFitRun", "SymbolRegimeFit", "fit_regimes"]

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
    """

    name: str
    version: str
    symbols: dict[str, SymbolRegimeFit] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fits: SymbolFits | None = None

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
    scheduler: str | None = None,
    command: str = "quantdesk.regimes.fit_regimes",
) -> RegimeFitRun:
    """Return the run that fits a regime model per symbol, saves it and stores its regimes.

    Plain fits label the whole history with a model fitted on all of it (in-sample
    parameters, causal filtering); ``walk_forward=True`` labels each period with a model
    fitted before it (out of sample).  Models go to the registry as
    ``name/version/symbol``, regime rows to the store with ``model_version``
    ``name/version`` (plus ``/wf-YYYYMMDD`` per refit).  A symbol whose fit, save or write
    fails is recorded in :attr:`RegimeFitRun.errors` and the others go on.

    Parameters
    ----------
    store : MarketStore
        Where the daily bars are read and the regimes written.
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
    scheduler : str, optional
        Dask scheduler address (``tcp://...``) to fit on instead of local processes.
    command : str
        What ran the job, recorded in each saved model's metadata (``extra.command``).

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
    bars = store.bars(names, start, end, "1d")
    missing = sorted(set(names or []) - set(bars["symbol"].unique()))
    if missing:
        raise ValueError(f"no daily bars for {missing}; see `quantdesk data info`")
    if bars.empty:
        raise ValueError("no daily bars for that selection; see `quantdesk data info`")
    if not isinstance(registry, ModelRegistry):
        try:
            registry = ModelRegistry(registry)
        except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
            raise ValueError(f"model registry {registry!r}: {exc}") from exc
    name = name or ("regimes-wf" if walk_forward else "regimes")
    version = version or registry.next_version(name)
    run = RegimeFitRun(name, version)
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
    run.fits = fit_symbols(
        bars,
        walk_forward=walk_forward,
        executor=scheduler or "process",
        max_workers=workers,
        **kwargs,
    )
    run.errors.update(run.fits.errors)
    by_symbol = {str(s): g for s, g in bars.groupby("symbol", sort=True)}
    for symbol, result in run.fits.results.items():
        try:
            run.symbols[symbol] = _save_and_store(
                store, registry, run, symbol, result, by_symbol[symbol], command
            )
        except Exception as exc:
            logger.exception("%s: saving the fit failed", symbol)
            run.errors[symbol] = f"{type(exc).__name__}: {exc}"
    return run


def _save_and_store(
    store: MarketStore,
    registry: ModelRegistry,
    run: RegimeFitRun,
    symbol: str,
    result: Any,
    symbol_bars: pd.DataFrame,
    command: str,
) -> SymbolRegimeFit:
    """Return one symbol's fit after saving its model and writing its regimes."""
    from quantdesk.regimes.registry import data_fingerprint
    from quantdesk.regimes.walkforward import WalkForwardRegimes

    if isinstance(result, WalkForwardRegimes):
        if result.model is None:
            raise ValueError("walk-forward fitted no model")
        model, regimes = result.model, result.regimes
        last = result.refits.iloc[-1]
        trained = symbol_bars[
            (symbol_bars["ts"] >= last["train_start"]) & (symbol_bars["ts"] <= last["train_end"])
        ]
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
        model, trained, extra = result, symbol_bars, {}
        regimes = model.filter(symbol_bars).reset_index()
        regimes.insert(0, "symbol", symbol)
        regimes.insert(2, "model_version", run.model_version)
        text = ""
    record = registry.save(
        model,
        run.name,
        symbol,
        version=run.version,
        data_fingerprint=data_fingerprint(trained),
        extra={"command": command, **jsonable(extra)},
    )
    written = store.write_regimes(regimes, source=f"regimes fit {run.model_version}")
    latest = regimes.iloc[-1]
    return SymbolRegimeFit(
        symbol=symbol,
        record=record,
        rows=len(regimes),
        written=written,
        first=regimes["ts"].iloc[0],
        last=latest["ts"],
        regime=f"{latest['vol_label']}/{latest['trend_label']}",
        probability=float(
            latest[regime_probability_column(latest["vol_label"], latest["trend_label"])]
        ),
        text=text or record.summary(),
    )
