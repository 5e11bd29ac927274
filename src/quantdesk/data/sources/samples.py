"""Real sample data that ships inside installed packages (no network needed), and the
symbols a notebook works on.

The ``arch`` package bundles daily OHLCV for the S&P 500 index (``sp500``) and the
NASDAQ Composite (``nasdaq``), January 1999 to December 2018.

Notebooks and reports run on the researcher's own stored symbols.  Demonstration data
enters the store only when asked for: :func:`select_symbols` with
``universe="samples"`` (the bundled real data) or ``universe="simulated"`` (the
simulated market), and an unknown symbol fails before anything is written.

Examples
--------
>>> store = MarketStore()  # doctest: +SKIP
>>> select_symbols(store, "SPX,IXIC")  # doctest: +SKIP
Traceback (most recent call last):
UnknownSymbolError: unknown symbol(s) ['SPX', 'IXIC']; the store holds 1: GOOG ...
>>> select_symbols(store, "SPX,IXIC", universe="samples")  # doctest: +SKIP
['SPX', 'IXIC']
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.data.schemas import BAR_COLUMNS

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore

__all__ = [
    "SAMPLES",
    "SIMULATED_SEED",
    "UNIVERSES",
    "Sample",
    "ensure_samples",
    "ensure_simulated",
    "load_sample",
    "select_symbols",
    "simulated_symbols",
]

logger = logging.getLogger(__name__)

UNIVERSES = ("store", "samples", "simulated")
"""Where :func:`select_symbols` takes symbols from (see there)."""

SIMULATED_SEED = 7
"""Seed of the simulated universe, the one ``make demo`` ingests."""
SIMULATED_DAYS = 2520
# What the monitor's simulated feed records under (CandleRecorder's ``live:<feed kind>``,
# with --record-to-store): simulated prices too, so a universe may share their names.
_LIVE_SIMULATOR_SOURCE = "live:simulator"


@dataclass(frozen=True)
class Sample:
    """A bundled data set: its ``arch.data`` module and the symbol metadata it becomes."""

    module: str
    file: str
    symbol: str
    name: str
    asset_class: str = "index"
    currency: str = "USD"
    timezone: str = "America/New_York"


SAMPLES: dict[str, Sample] = {
    "sp500": Sample("arch.data.sp500", "sp500.csv.gz", "SPX", "S&P 500 index"),
    "nasdaq": Sample("arch.data.nasdaq", "nasdaq.csv.gz", "IXIC", "NASDAQ Composite index"),
}


def _data_file(sample: Sample) -> Path:
    """Return the bundled file's path without importing ``arch``.

    Importing ``arch.data`` pulls in arch, statsmodels and matplotlib (about 2.5 s);
    the data is a plain gzipped CSV inside the installed package.
    """
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the sample data ships with the `arch` package: pip install arch")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    return package_dir.joinpath(*sample.module.split(".")[1:], sample.file)


def load_sample(name: str = "sp500") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(bars, metadata)`` for a bundled sample: long daily bars and one metadata row.

    Examples
    --------
    >>> bars, meta = load_sample("sp500")
    >>> bars["symbol"].iloc[0], str(bars["ts"].iloc[0].date())
    ('SPX', '1999-01-04')
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; available: {sorted(SAMPLES)}")
    sample = SAMPLES[name]
    raw = pd.read_csv(_data_file(sample), index_col="Date")
    dates = pd.to_datetime(raw.index).normalize().tz_localize("UTC").as_unit("ns")
    bars = pd.DataFrame(
        {
            "symbol": sample.symbol,
            "ts": dates,
            "open": raw["Open"].to_numpy(float),
            "high": raw["High"].to_numpy(float),
            "low": raw["Low"].to_numpy(float),
            "close": raw["Close"].to_numpy(float),
            "volume": raw["Volume"].to_numpy(float),
        }
    )[list(BAR_COLUMNS)]
    meta = pd.DataFrame(
        [
            {
                "symbol": sample.symbol,
                "name": sample.name,
                "asset_class": sample.asset_class,
                "currency": sample.currency,
                "timezone": sample.timezone,
                "source": f"arch:{name}",
            }
        ]
    )
    return bars, meta


def _sample_of_symbol() -> dict[str, str]:
    return {sample.symbol: name for name, sample in SAMPLES.items()}


def ensure_samples(store: MarketStore, symbols: Sequence[str] | None = None) -> list[str]:
    """Return the sample symbols after writing those the store lacks (all when ``None``).

    Parameters
    ----------
    store
        The store to fill.
    symbols
        Sample symbols (``SPX``, ``IXIC``) or sample names (``sp500``, ``nasdaq``).

    Raises
    ------
    ValueError
        A name is not a bundled sample; nothing is written.
    """
    by_symbol = _sample_of_symbol()
    wanted = list(SAMPLES) if symbols is None else [by_symbol.get(s, s) for s in symbols]
    unknown = [s for s, name in zip(symbols or [], wanted, strict=False) if name not in SAMPLES]
    if unknown:
        raise ValueError(
            f"not bundled samples: {', '.join(map(repr, unknown))}; the samples are "
            + ", ".join(f"{sample.symbol} ({name})" for name, sample in SAMPLES.items())
        )
    stored = set(_stored_symbols(store))
    for name in dict.fromkeys(wanted):
        sample = SAMPLES[name]
        if sample.symbol not in stored:
            bars, meta = load_sample(name)
            logger.info("writing the %s sample (%s) into %s", name, sample.symbol, store.path)
            store.write_bars(bars, "1d", source=f"arch:{name}", metadata=meta)
    return [SAMPLES[name].symbol for name in dict.fromkeys(wanted)]


def _stored_symbols(store: MarketStore) -> list[str]:
    # Before a fill, a store with no file yet holds nothing (reading it would refuse).
    return store.symbols() if store.exists() else []


def simulated_symbols(store: MarketStore) -> list[str]:
    """Return the stored symbols of the simulated universe: those the simulator wrote.

    A symbol belongs to it by the source recorded when it was ingested
    (:func:`~quantdesk.data.sources.simulator.is_simulator_source`), never by its name: a user's
    ``SIMPLY`` or ``SIM001`` from a file is the user's, and live candles recorded from
    the monitor's simulated feed (source ``live:simulator``) are not a universe.
    """
    from quantdesk.data.sources.simulator import is_simulator_source

    if not store.path.exists():
        return []  # before a fill, a store with no file yet holds nothing
    meta = store.metadata()
    simulated = {
        str(symbol)
        for symbol, source in zip(meta["symbol"], meta["source"], strict=True)
        if is_simulator_source(source)
    }
    return [s for s in store.symbols() if s in simulated]


def ensure_simulated(store: MarketStore, n_symbols: int = 50) -> list[str]:
    """Return up to ``n_symbols`` simulated symbols, simulating a universe into an empty one.

    When the store holds no simulated symbols (by source: :func:`simulated_symbols`),
    ``quantdesk.data.simulate(n_symbols, 2520, seed=7)`` is written (what ``make demo``
    ingests).  When it holds some, they are used as they are: a second universe with
    another size would overwrite the first one's prices under the same names.  Fewer
    stored than asked for is logged.

    Raises
    ------
    ValueError
        The simulator's names (``SIM000`` ...) are taken by symbols from another source:
        writing the universe would overwrite them, so nothing is written.
    """
    if n_symbols < 1:
        raise ValueError(f"n_symbols must be >= 1, got {n_symbols}")
    stored = simulated_symbols(store)
    if not stored:
        from quantdesk.data.sources.simulator import _symbol_names, is_simulator_source, simulate

        names = _symbol_names(n_symbols)
        taken: list[str] = []
        if store.path.exists():  # a store with no file yet holds nobody's symbols
            meta = store.metadata(names)
            taken = sorted(
                set(store.symbols()).intersection(
                    str(symbol)
                    for symbol, source in zip(meta["symbol"], meta["source"], strict=True)
                    if not is_simulator_source(source) and source != _LIVE_SIMULATOR_SOURCE
                )
            )
        if taken:
            raise ValueError(
                f"the store {store.path} holds {', '.join(taken)} from another source than "
                "the simulator; a simulated universe would overwrite them. Use another store "
                "(--store or QUANTDESK_STORE) for the simulated universe"
            )
        market = simulate(n_symbols=n_symbols, n_days=SIMULATED_DAYS, seed=SIMULATED_SEED)
        logger.info("writing a simulated universe of %d symbols into %s", n_symbols, store.path)
        store.write_bars(
            market.bars,
            "1d",
            source=f"simulator:seed={SIMULATED_SEED}",
            metadata=market.metadata(),
        )
        return list(market.symbols)
    if len(stored) < n_symbols:
        logger.warning(
            "the store holds %d simulated symbols, fewer than the %d asked for; using those",
            len(stored),
            n_symbols,
        )
    return stored[:n_symbols]


def select_symbols(
    store: MarketStore,
    symbols: str | Sequence[str] | None = None,
    *,
    universe: str = "store",
    n_symbols: int | None = None,
) -> list[str]:
    """Return the symbols a notebook or report runs on, all of them in the store.

    Parameters
    ----------
    store
        The market store.
    symbols
        ``"SPX,IXIC"`` or a list; ``None``: every symbol of the universe.
    universe
        ``"store"`` (default): the store's own symbols; nothing is ever written.
        ``"samples"``: the bundled real samples (SPX, IXIC) are written into the store
        if missing, then used (with ``symbols``, any of them and any stored symbol).
        ``"simulated"``: the simulated universe (see :func:`ensure_simulated`).
    n_symbols
        At most this many symbols when ``symbols`` is not given (the size of a simulated
        universe to create; default 50 there, no limit otherwise).

    Raises
    ------
    quantdesk.data.UnknownSymbolError
        A symbol is neither stored nor provided by the universe: the message names the
        unknown symbols and the stored ones, and nothing has been written.
    ValueError
        An unknown ``universe``, or an empty store with no symbols to offer.
    """
    if universe not in UNIVERSES:
        raise ValueError(
            f"unknown universe {universe!r}; use one of {', '.join(map(repr, UNIVERSES))} "
            "(your own data: universe='store' with symbols='A,B')"
        )
    names = as_symbols(symbols) or None
    # A universe that fills the store may start from no file; the user's own may not.
    stored = store.symbols() if universe == "store" else _stored_symbols(store)
    size = n_symbols or 50
    offered = set(stored)
    if universe == "samples":
        offered |= set(_sample_of_symbol())
    elif universe == "simulated" and not simulated_symbols(store):
        from quantdesk.data.sources.simulator import _symbol_names

        offered |= set(_symbol_names(size))
    if names is not None:
        # Checked before anything is written: a typo must leave the store as it was.
        unknown = [s for s in names if s not in offered]
        if unknown:
            extra = {"samples": " or the bundled samples", "simulated": " or simulated"}
            from quantdesk.data.store.market import UnknownSymbolError

            raise UnknownSymbolError(
                unknown,
                stored,
                detail=f" in {store.path}{extra.get(universe, '')}",
                hint="Ingest your data first (quantdesk ingest file ...), or ask for the "
                "bundled samples with universe='samples'",
            )
    if universe == "samples":
        samples = _sample_of_symbol()
        ensure_samples(store, [s for s in names or list(samples) if s in samples])
        chosen = names or list(samples)
    elif universe == "simulated":
        simulated = ensure_simulated(store, size)
        chosen = names or simulated
    else:
        if not stored:
            raise ValueError(
                f"the store {store.path} holds no symbols: ingest your data "
                "(quantdesk ingest file ...), or ask for demonstration data with "
                "universe='samples' or universe='simulated'"
            )
        chosen = names or stored
    if names is None and n_symbols is not None:
        chosen = chosen[:n_symbols]
    return chosen
