"""What a research notebook opens with: the store, its symbols, the window, the panels.

Every notebook in ``notebooks/`` starts the same way: open the market store (the
one every process finds, or a given store or path), choose the symbols of a universe
(:func:`~quantdesk.data.sources.samples.select_symbols`: unknown symbols fail before
anything is written) and read wide panels over a window, failing with a message that
names the symbols, the window and the file when the store holds no bars there.
:func:`open_research` does it once; the notebook tells the story.

The bars may come from a Parquet snapshot of the store instead (``snapshot=``, or
``QUANTDESK_SNAPSHOT`` and ``QUANTDESK_SNAPSHOT_VERSION`` in the environment, which is
how a report run pins the data its kernel reads): the same reads, from one immutable
version, so that ``quantdesk report rerun`` shows the same numbers after new bars were
ingested.  Everything else (metadata, the ingest log) still comes from the store.

Examples
--------
>>> import pathlib, tempfile
>>> from quantdesk.data.sources.simulator import simulate
>>> store = MarketStore(pathlib.Path(tempfile.mkdtemp()) / "research.duckdb")
>>> _ = store.write_bars(simulate(n_symbols=2, n_days=30, seed=1).bars, "1d")
>>> research = open_research("SIM000", store=store, start="2010-01-11")
>>> research.symbols, research.panel("close").shape[1]
(['SIM000'], 1)
>>> open_research("SIM000", store=store, start="2031-01-01").panel("close")
Traceback (most recent call last):
ValueError: no daily closes for SIM000 between 2031-01-01 and the last bar in ...
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.core.html import summary_html, summary_text
from quantdesk.data.sources.samples import select_symbols
from quantdesk.data.store.market import MarketStore, as_store
from quantdesk.data.wide import VALUE_FIELDS

if TYPE_CHECKING:
    from quantdesk.data.pinned import SnapshotBars
    from quantdesk.data.snapshot import SnapshotReader

__all__ = ["Research", "open_research", "span_text"]

logger = logging.getLogger(__name__)


def span_text(panel: pd.DataFrame, max_names: int = 10) -> str:
    """Return one line naming a wide panel's symbols, its size and its first and last bar.

    Examples
    --------
    >>> ts = pd.date_range("2024-01-02", periods=3, tz="UTC")
    >>> span_text(pd.DataFrame({"SPX": [1.0, 2, 3], "IXIC": [1.0, 2, 3]}, index=ts))
    'SPX, IXIC: 2 symbols x 3 bars, 2024-01-02 .. 2024-01-04'
    """
    names = ", ".join(map(str, panel.columns[:max_names]))
    more = " ..." if panel.shape[1] > max_names else ""
    if panel.empty:
        return f"{names}{more}: no bars"
    return (
        f"{names}{more}: {panel.shape[1]} symbols x {len(panel)} bars, "
        f"{panel.index[0]:%Y-%m-%d} .. {panel.index[-1]:%Y-%m-%d}"
    )


@dataclass(frozen=True)
class Research:
    """The store, the chosen symbols and the window a notebook works on.

    Attributes
    ----------
    store
        The market store (read through it for anything else: ``research.store.metadata()``).
    symbols
        The chosen symbols, every one of them in the store.
    universe
        Where they were chosen from (``"store"``, ``"samples"``, ``"simulated"``).
    start, end
        The window every read uses (inclusive; ``None``: the first or the last bar).
    timeframe
        The bar length of every read (``"1d"``).
    snapshot
        The snapshot version the bars are read from instead of the store, or None.
    """

    store: MarketStore
    symbols: list[str]
    universe: str = "store"
    start: Any = None
    end: Any = None
    timeframe: str = "1d"
    snapshot: SnapshotBars | None = None
    _cache: dict[tuple[str, ...], dict[str, pd.DataFrame]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def _source(self) -> MarketStore | SnapshotReader:
        """Return what the bars are read from: the store, or the snapshot's reader."""
        return self.store if self.snapshot is None else self.snapshot.reader()

    def _where(self) -> str:
        if self.snapshot is None:
            return str(self.store.path)
        return f"snapshot {self.snapshot.url} version {self.snapshot.version}"

    def _window(self) -> str:
        start = "the first bar" if self.start is None else str(self.start)
        end = "the last bar" if self.end is None else str(self.end)
        return f"between {start} and {end} in {self._where()}"

    def _bars_word(self) -> str:
        return "daily" if self.timeframe == "1d" else self.timeframe

    def panels(self, fields: Sequence[str] = VALUE_FIELDS) -> dict[str, pd.DataFrame]:
        """Return one wide panel per field over the window (read once, then kept).

        Raises
        ------
        ValueError
            The store holds no bars of the symbols in the window: the message names
            them, the window and the file.
        """
        key = tuple(fields)
        if key not in self._cache:
            panels = self._source().panels(
                list(fields), self.symbols, self.start, self.end, self.timeframe
            )
            if next(iter(panels.values())).empty:
                what = "closes" if key == ("close",) else "bars"
                raise ValueError(
                    f"no {self._bars_word()} {what} for {', '.join(self.symbols)} {self._window()}"
                )
            self._cache[key] = panels
        return self._cache[key]

    def panel(self, field: str = "close") -> pd.DataFrame:
        """Return the wide panel of one field (index ``ts``, one column per symbol).

        Raises
        ------
        ValueError
            As :meth:`panels`.
        """
        return self.panels([field])[field]

    def bars(self, symbol: str) -> pd.DataFrame:
        """Return one symbol's long bars over the window.

        Raises
        ------
        ValueError
            The store holds no bars of ``symbol`` in the window.
        """
        bars = self._source().bars(symbol, self.start, self.end, self.timeframe)
        if bars.empty:
            raise ValueError(f"no {self._bars_word()} bars for {symbol!r} {self._window()}")
        return bars

    def _headline(self) -> dict[str, Any]:
        shown = ", ".join(self.symbols[:10]) + (" ..." if len(self.symbols) > 10 else "")
        return {
            "store": self._where(),
            "universe": self.universe,
            "symbols": f"{len(self.symbols)}: {shown}",
            "start": "first bar" if self.start is None else self.start,
            "end": "last bar" if self.end is None else self.end,
            "timeframe": self.timeframe,
        }

    def summary(self) -> str:
        """Return the store, the symbols and the window as readable text."""
        return summary_text("Research", self._headline())

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return summary_html("Research", self._headline())


def open_research(
    symbols: str | Sequence[str] | None = None,
    *,
    universe: str = "store",
    n_symbols: int | None = None,
    start: Any = None,
    end: Any = None,
    timeframe: str = "1d",
    store: MarketStore | str | Path | None = None,
    snapshot: str | SnapshotBars | None = None,
    snapshot_version: int | None = None,
) -> Research:
    """Return the store, symbols and window a notebook opens with.

    Parameters
    ----------
    symbols
        ``"SPX,IXIC"``, ``"SPX IXIC"`` or a list; ``None`` (or empty): every symbol of
        the universe, at most ``n_symbols``.
    universe
        ``"store"`` (default): the store's own symbols, nothing is written;
        ``"samples"`` or ``"simulated"``: demonstration data, written if missing (see
        :func:`~quantdesk.data.sources.samples.select_symbols`).
    n_symbols
        At most this many symbols when none are named.
    start, end
        The window of every read (inclusive; a day is that whole day in the symbol's
        time zone).
    timeframe
        The bar length of every read.
    store
        A :class:`MarketStore` or the path of one; ``None``: the store every process
        finds (``QUANTDESK_HOME``, the project, ...).
    snapshot, snapshot_version
        Read the bars from this Parquet snapshot (its URL, or a pinned
        :class:`~quantdesk.data.pinned.SnapshotBars`) at that version (default: the
        newest) instead of the store; ``None``: ``QUANTDESK_SNAPSHOT`` and
        ``QUANTDESK_SNAPSHOT_VERSION`` when set (a report run sets them), else the store.
        With ``universe="store"`` the symbols are chosen from the snapshot.

    Raises
    ------
    quantdesk.errors.StoreNotFoundError
        ``universe="store"`` and the store file does not exist yet (the message says
        how to fill it).
    quantdesk.data.UnknownSymbolError
        A symbol is neither stored nor offered by the universe; nothing was written.
    ValueError
        An unknown universe, or a store that holds no symbols.
    """
    market = as_store(store)
    pinned = _pinned(snapshot, snapshot_version, timeframe)
    names = as_symbols(symbols) or None
    if pinned is not None and universe == "store":
        chosen = _snapshot_symbols(pinned, names, n_symbols)
    else:
        chosen = select_symbols(market, names, universe=universe, n_symbols=n_symbols)
    research = Research(market, chosen, universe, start, end, timeframe, pinned)
    logger.info("research on %d symbols of %s", len(chosen), research._where())
    return research


def _pinned(
    snapshot: str | SnapshotBars | None, version: int | None, timeframe: str
) -> SnapshotBars | None:
    """Return the snapshot version to read (given, or from the settings), or None."""
    from quantdesk.config import settings
    from quantdesk.data.pinned import SnapshotBars

    if isinstance(snapshot, SnapshotBars):
        return snapshot
    if snapshot is None:
        configured = settings()
        snapshot, version = configured.snapshot_url, configured.snapshot_version
        if snapshot is None:
            return None
    return SnapshotBars.pin(snapshot, version, timeframe=timeframe)


def _snapshot_symbols(
    pinned: SnapshotBars, names: list[str] | None, n_symbols: int | None
) -> list[str]:
    """Return the named symbols, all in the snapshot, or its first ``n_symbols``."""
    from quantdesk.data.store.market import UnknownSymbolError

    held = pinned.symbols()
    if names is not None:
        unknown = [s for s in names if s not in held]
        if unknown:
            raise UnknownSymbolError(
                unknown, held, detail=f" in snapshot {pinned.url} version {pinned.version}"
            )
        return names
    if not held:
        raise ValueError(f"snapshot {pinned.url} version {pinned.version} holds no bars")
    return held[:n_symbols] if n_symbols is not None else held
