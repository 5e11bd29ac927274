"""The symbols a notebook works on, and the demonstration universes that fill a store.

Notebooks and reports run on the researcher's own stored symbols.  Demonstration data
enters the store only when asked for: :func:`select_symbols` with
``universe="samples"`` (the bundled real data of
:mod:`~quantdesk.data.sources.bundled`) or ``universe="simulated"`` (the
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

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from quantdesk.core.coerce import as_symbols
from quantdesk.data.sources.bundled import SAMPLES
from quantdesk.data.sources.ingest import ingest_samples, ingest_simulated

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore

__all__ = [
    "SIMULATED_DAYS",
    "SIMULATED_SEED",
    "UNIVERSES",
    "ensure_samples",
    "ensure_simulated",
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
    missing = [name for name in dict.fromkeys(wanted) if SAMPLES[name].symbol not in stored]
    if missing:
        logger.info("writing the samples %s into %s", ", ".join(missing), store.path)
        ingest_samples(store, missing, progress=False)
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

    if not store.exists():
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
    ``quantdesk.data.simulate(n_symbols, 2520, seed=7)`` is written by
    :func:`~quantdesk.data.sources.ingest.ingest_simulated` (what ``make demo``
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
        from quantdesk.data.sources.simulator import _symbol_names, is_simulator_source

        names = _symbol_names(n_symbols)
        taken: list[str] = []
        if store.exists():  # a store with no file yet holds nobody's symbols
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
        logger.info("writing a simulated universe of %d symbols into %s", n_symbols, store.path)
        ingest_simulated(
            store, symbols=n_symbols, days=SIMULATED_DAYS, seed=SIMULATED_SEED, progress=False
        )
        return names
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
