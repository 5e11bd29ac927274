"""MarketStore: the embedded DuckDB market-data store, one facade over its parts.

Every operation opens a short-lived connection and closes it, retrying while another
process holds the file (:mod:`quantdesk.data.store.locking`: why, and
:class:`StoreBusyError` past ``lock_timeout``, default 60 s,
``QUANTDESK_LOCK_TIMEOUT``), so a notebook kernel, a dashboard and an ingest job work
on the store at once.  A write is one transaction, so readers see all of an ingest or
none of it, and a failed write changes nothing.

The store is cut by concept, and :class:`MarketStore` puts the parts together:

- :mod:`~quantdesk.data.store.file`: the file, its connections, the schema on first write;
- :mod:`~quantdesk.data.store.bars`: bars, ticks and symbol metadata, writes and reads;
- :mod:`~quantdesk.data.store.regimes`: regimes, validated, by model version;
- :mod:`~quantdesk.data.store.ingest_log`: the ingest log and rejects;
- :mod:`~quantdesk.data.store.schema`: every table's DDL and migrations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.html import summary_html
from quantdesk.data.schemas import SYMBOL_COLUMNS
from quantdesk.data.store.bars import BarTables, UnknownSymbolError
from quantdesk.data.store.ingest_log import IngestReport
from quantdesk.data.store.locking import StoreBusyError
from quantdesk.data.store.regimes import RegimeTables, validate_regimes
from quantdesk.data.store.schema import has_column
from quantdesk.errors import StoreNotFoundError

if TYPE_CHECKING:
    from quantdesk.data.snapshot.writer import SnapshotVersion

__all__ = [
    "SYMBOL_COLUMNS",
    "IngestReport",
    "MarketStore",
    "StoreBusyError",
    "StoreNotFoundError",
    "UnknownSymbolError",
    "as_store",
    "validate_regimes",
]


class MarketStore(BarTables, RegimeTables):
    """The local market-data store: bars, ticks, symbol metadata, regimes, ingest log, rejects.

    Parameters
    ----------
    path
        DuckDB file; ``None`` means the one the store rule chooses
        (``<home>/quantdesk.duckdb``: :mod:`quantdesk.config`).  Opening never creates
        it: the first write does, and a read of a missing file raises
        :class:`~quantdesk.errors.StoreNotFoundError` naming it and how to fill it.
    read_only
        Refuse writes (reads never take the write lock either way).
    lock_timeout
        Seconds to wait for another process's lock (default from settings).

    Examples
    --------
    >>> store = MarketStore(tmp_path / "demo.duckdb")  # doctest: +SKIP
    >>> store.write_bars(bars, "1d").summary()  # doctest: +SKIP
    >>> close = store.panel("close", symbols=["SPX"])  # doctest: +SKIP
    """

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        state = "" if self.exists() else ", not created yet"
        return f"MarketStore({str(self.path)!r}, {mode}, chosen by: {self.source}{state})"

    def _repr_html_(self) -> str:
        headline: dict[str, Any] = {"file": str(self.path), "chosen by": self.source}
        if not self.exists():
            headline["state"] = "not created yet: `quantdesk ingest sample` fills it"
            return summary_html("MarketStore", headline)
        series = pd.DataFrame(self.info()["series"])
        headline["symbols"] = int(series["symbol"].nunique()) if len(series) else 0
        headline["bars"] = int(series["rows"].sum()) if len(series) else 0
        return summary_html("MarketStore", headline, {"series": series})

    def info(self) -> dict[str, Any]:
        """Return a summary of the store: symbols, ranges, rows per timeframe, rejects.

        ``series`` lists every stored (symbol, timeframe) and source with its row count,
        first and last bar; ``bars`` and ``sources`` total them by timeframe and source.
        A row's source is that of the ingest that last wrote it (its ``ingest_id``), so
        two files of one symbol each show their own rows, and a row a later file
        corrected counts for that file; rows stored before the store recorded ingests
        count for the symbol's first source.
        """
        with self._connect() as con:
            # A file of an older schema opened read-only has no bars.ingest_id yet.
            recorded = has_column(con, "bars", "ingest_id")
            credited = (
                f"bars b LEFT JOIN ingest_log l ON l.ingest_id = "
                f"{'b.ingest_id' if recorded else 'NULL'} "
                "LEFT JOIN symbols s ON s.symbol = b.symbol"
            )
            source = "coalesce(l.source, s.source, '?')"
            per_tf = con.execute(
                "SELECT timeframe, count(DISTINCT symbol) AS symbols, count(*) AS rows, "
                "min(ts) AS first, max(ts) AS last FROM bars GROUP BY ALL ORDER BY timeframe"
            ).fetchall()
            ticks = con.execute(
                "SELECT count(*), count(DISTINCT symbol), min(ts), max(ts) FROM ticks"
            ).fetchall()[0]
            per_source = con.execute(
                f"SELECT {source}, count(DISTINCT b.symbol), count(*), min(b.ts), max(b.ts) "
                f"FROM {credited} GROUP BY ALL ORDER BY 1"
            ).fetchall()
            rejects = con.execute(
                "SELECT source, count(*) FROM rejects GROUP BY ALL ORDER BY 1"
            ).fetchall()
            ingests = con.execute("SELECT count(*) FROM ingest_log").fetchall()[0]

            series = con.execute(
                f"SELECT b.symbol, b.timeframe, count(*), min(b.ts), max(b.ts), {source} "
                f"FROM {credited} GROUP BY ALL ORDER BY 1, 2, 4, 6"
            ).fetchall()

        def iso(value: Any) -> str | None:
            return None if value is None else pd.Timestamp(value).isoformat()

        return {
            "path": str(self.path),
            "source": self.source,
            "symbols": len(self.symbols()),
            "series": [
                {
                    "symbol": sym,
                    "timeframe": tf,
                    "rows": int(rows),
                    "first": iso(a),
                    "last": iso(b),
                    "source": src,
                }
                for sym, tf, rows, a, b, src in series
            ],
            "bars": [
                {"timeframe": tf, "symbols": n, "rows": rows, "first": iso(a), "last": iso(b)}
                for tf, n, rows, a, b in per_tf
            ],
            "sources": [
                {"source": src, "symbols": n, "rows": rows, "first": iso(a), "last": iso(b)}
                for src, n, rows, a, b in per_source
            ],
            "ticks": {
                "rows": int(ticks[0]),
                "symbols": int(ticks[1]),
                "first": iso(ticks[2]),
                "last": iso(ticks[3]),
            },
            "rejects": {src: int(n) for src, n in rejects},
            "ingests": int(ingests[0]),
        }

    def to_json(self) -> str:
        """Return :meth:`info` as a JSON document."""
        return json.dumps(self.info(), indent=2)

    def snapshot(
        self,
        url: str | Path,
        tables: str | Sequence[str] = ("bars",),
        *,
        storage_options: dict[str, Any] | None = None,
    ) -> SnapshotVersion:
        """Return the version of a Parquet snapshot of this store written at ``url``.

        ``url`` is a local folder or any fsspec URL (``s3://bucket/prefix``); ``tables``
        are ``"bars"`` (with symbol metadata), ``"regimes"``, ``"news"``, ``"scores"``.
        Only partitions that changed since the latest version are written; the new
        version's manifest is published last, so a failed snapshot publishes nothing.
        ``int(result)`` is the version number, which
        :class:`~quantdesk.data.snapshot.reader.SnapshotReader` takes as ``as_of``.
        Details: :func:`quantdesk.data.snapshot.writer.write_snapshot`.

        Examples
        --------
        >>> version = store.snapshot("s3://research/snapshots")  # doctest: +SKIP
        >>> SnapshotReader("s3://research/snapshots", as_of=version.version)  # doctest: +SKIP
        """
        from quantdesk.data.snapshot.writer import write_snapshot

        return write_snapshot(self, url, tables, storage_options=storage_options)


def as_store(store: MarketStore | str | Path | None, *, read_only: bool = False) -> MarketStore:
    """Return ``store`` itself, or the store at a path (``None``: the store rule's file).

    Every function that takes "a store or a path" opens it here, one way.

    Examples
    --------
    >>> s = as_store(tmp_path / "x.duckdb")  # doctest: +SKIP
    >>> as_store(s) is s  # doctest: +SKIP
    True
    """
    return store if isinstance(store, MarketStore) else MarketStore(store, read_only=read_only)
