"""SnapshotReader: the market store's reads, answered from a snapshot's Parquet files.

A reader opens one version of a snapshot (the latest, or ``as_of=`` a version number)
and answers :meth:`~SnapshotReader.bars`, :meth:`~SnapshotReader.panel`,
:meth:`~SnapshotReader.panels` and :meth:`~SnapshotReader.regimes` with the store's own
SQL (:func:`~quantdesk.data.store.bars.query_bars`,
:func:`~quantdesk.data.store.regimes.query_regimes`), run by an in-memory DuckDB over
views of the version's files: the same query gives the same frame, dtypes, order and
errors as :class:`~quantdesk.data.store.market.MarketStore`.

Before DuckDB sees a file list, the manifest prunes it: a read opens only the files of
its timeframe, of its symbols' buckets and of the years its window touches, whose
recorded ``ts`` and symbol ranges overlap the read.  Files of a remote snapshot
(``s3://`` and any non-local URL) are fetched once into a local cache and checked
against their SHA-256; their names carry their content hash, so a cached file is never
stale and many readers (Dask workers on one machine) share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.data.snapshot.layout import symbol_bucket
from quantdesk.data.snapshot.manifest import list_versions, read_manifest
from quantdesk.data.snapshot.storage import (
    SnapshotError,
    SnapshotStorageError,
    open_location,
    redact,
    storage_errors,
)
from quantdesk.data.wide import VALUE_FIELDS, check_fields, panels_from_bars

if TYPE_CHECKING:
    import duckdb

    from quantdesk.data.schemas import Timeframe
    from quantdesk.data.store.news import ScoreKey

__all__ = ["SnapshotReader"]

logger = logging.getLogger(__name__)

# A source bar lies within this of the target bar that holds it: a day in a symbol's
# zone starts up to 14 h from 00:00 UTC, and a calendar month is at most 31 days.
_ZONE_SLACK = pd.Timedelta(hours=15)
_MONTH = pd.Timedelta(days=32)


class SnapshotReader:
    """Reads one version of a snapshot with the store's API.

    Parameters
    ----------
    url
        The snapshot: a local folder, ``file://``, ``s3://bucket/prefix`` or any fsspec URL.
    as_of
        The version to read (an integer from :meth:`versions`); ``None`` reads the latest.
    cache_dir
        Where files of a remote snapshot are kept (default ``<home>/snapshot_cache``,
        ``QUANTDESK_SNAPSHOT_CACHE``); a local snapshot is read in place.
    storage_options
        Passed to the fsspec filesystem (credentials come from the environment by default).

    Raises
    ------
    SnapshotError
        When the URL holds no published version, or not ``as_of``.
    SnapshotStorageError
        When the storage cannot be reached; the message names the URL.

    Examples
    --------
    >>> reader = SnapshotReader("s3://research/snapshots", as_of=3)  # doctest: +SKIP
    >>> close = reader.panel("close", symbols=["SPX"], start="2008-01-01")  # doctest: +SKIP
    >>> reader.version, reader.versions()  # doctest: +SKIP
    (3, [1, 2, 3, 4])
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        as_of: int | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.url = str(url)
        self.location = open_location(self.url, storage_options)
        if as_of is None:
            published = list_versions(self.location)
            if not published:
                raise SnapshotError(
                    f"{self.location}: no snapshot published there "
                    "(`quantdesk data snapshot URL` writes one)"
                )
            as_of = published[-1]
        #: The version read: what a report or a model records as the data it used.
        self.version: int = int(as_of)
        #: The version's manifest (files, rows, ranges, hashes, schema, libraries).
        self.manifest: dict[str, Any] = read_manifest(self.location, self.version)
        if cache_dir is None:
            from quantdesk.config import settings

            cache_dir = settings().snapshot_cache
        self.cache_dir = Path(cache_dir)
        self._buckets = int(self.manifest["partitioning"]["buckets"])
        self._con: duckdb.DuckDBPyConnection | None = None
        #: Every file path handed to DuckDB by this reader, in order (what reads opened).
        self.files_read: list[str] = []

    def __repr__(self) -> str:
        return f"SnapshotReader({redact(self.url)!r}, as_of={self.version})"

    def versions(self) -> list[int]:
        """Return the versions published at this URL, oldest first."""
        return list_versions(self.location)

    def tables(self) -> list[str]:
        """Return the tables this version holds."""
        return list(self.manifest["tables"])

    # -- reads with the store's API ---------------------------------------------------

    def bars(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        timeframe: str = "1d",
    ) -> pd.DataFrame:
        """Return long bars as :meth:`MarketStore.bars <quantdesk.data.store.bars.BarTables.bars>`
        returns them for the same arguments, from this version's files."""
        return self._query_bars(symbols, start, end, timeframe, ordered=True)

    def panel(
        self,
        field: str = "close",
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        timeframe: str = "1d",
    ) -> pd.DataFrame:
        """Return a wide panel of one field, as ``MarketStore.panel`` does."""
        return self.panels([field], symbols, start, end, timeframe)[field]

    def panels(
        self,
        fields: Sequence[str] = VALUE_FIELDS,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        timeframe: str = "1d",
    ) -> dict[str, pd.DataFrame]:
        """Return one wide panel per field, as ``MarketStore.panels`` does."""
        from quantdesk.data.schemas import parse_timeframe

        check_fields(fields)
        tf = parse_timeframe(timeframe)
        bars = self._query_bars(symbols, start, end, tf.name, ordered=False)
        return panels_from_bars(bars, fields, tf.name)

    def symbols(self) -> list[str]:
        """Return the sorted symbols that have bars in this version."""
        con = self._connection()
        frame = _fetch(con, "SELECT DISTINCT symbol FROM bar_series ORDER BY 1")
        return [str(s) for s in frame["symbol"]]

    def metadata(self, symbols: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Return symbol metadata (name, asset class, currency, timezone, source)."""
        from quantdesk.core.coerce import as_symbols
        from quantdesk.data.schemas import SYMBOL_COLUMNS

        return _fetch(
            self._connection(),
            f"SELECT {', '.join(SYMBOL_COLUMNS)} FROM symbols "
            "WHERE $syms IS NULL OR list_contains($syms, symbol) ORDER BY symbol",
            {"syms": as_symbols(symbols)},
        )

    def timeframes(self) -> pd.DataFrame:
        """Return bar counts by symbol and timeframe with first and last ts."""
        from quantdesk.data.timestamps import utc_ns_column

        frame = _fetch(
            self._connection(),
            "SELECT symbol, timeframe, rows, first, last FROM bar_series "
            "ORDER BY symbol, timeframe",
        )
        return utc_ns_column(utc_ns_column(frame, "first"), "last")

    def regimes(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        model_version: str | None = None,
    ) -> pd.DataFrame:
        """Return regimes as ``MarketStore.regimes`` does (this version must hold them)."""
        from quantdesk.data.store.regimes import query_regimes

        self._require("regimes", "regimes")
        with self._file_errors():
            return query_regimes(
                self._connection(), symbols, start, end, model_version, scope=self._scope_regimes
            )

    def news(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Return news items as ``NewsStore.news`` does (this version must hold news)."""
        from quantdesk.core.coerce import as_utc
        from quantdesk.data.store.news import empty_news, query_news

        if self._absent("news", "news"):
            return empty_news()
        lo, last = as_utc(start), as_utc(end)
        hi = None if last is None else last + pd.Timedelta(1, "ns")  # end is inclusive
        self._view("news", self._prune("news", None, lo, hi))
        with self._file_errors():
            return query_news(self._connection(), symbols, start, end)

    def score_keys(self) -> list[ScoreKey]:
        """Return the keys of the scores in this version, the most recently written first."""
        from quantdesk.data.store.news import query_score_keys

        if self._absent("news_scores", "scores"):
            return []
        self._view("news_scores", self.manifest["tables"]["news_scores"]["files"])
        with self._file_errors():
            return query_score_keys(self._connection())

    def unscored(self, key: ScoreKey | None) -> pd.DataFrame:
        """Return the stories of this version that ``key`` has not scored, as
        ``NewsStore.unscored`` does (the version must hold news and scores)."""
        from quantdesk.data.store.news import query_unscored

        self._absent("news", "news")
        self._absent("news_scores", "scores")
        for table in ("news", "news_scores"):
            self._view(table, self.manifest["tables"][table]["files"])
        with self._file_errors():
            return query_unscored(self._connection(), key)

    def scored_news(
        self,
        symbols: str | Sequence[str] | None = None,
        key: ScoreKey | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Return one row per (story, symbol) with its scores, as ``NewsStore.scored_news``."""
        from quantdesk.data.store.news import query_scored_news

        if self._absent("news", "news") or self._absent("news_scores", "scores"):
            return query_scored_news(None, symbols, key, start, end)
        for table in ("news", "news_scores"):
            self._view(table, self.manifest["tables"][table]["files"])
        with self._file_errors():
            return query_scored_news(self._connection(), symbols, key, start, end)

    def _absent(self, table: str, option: str) -> bool:
        """Return whether the store had no ``table`` when this version was written
        (raise when the version was written without it)."""
        self._require(table, option)
        return bool(self.manifest["tables"][table].get("absent"))

    # -- the views the store's SQL runs on --------------------------------------------

    def _query_bars(
        self,
        symbols: str | Sequence[str] | None,
        start: Any,
        end: Any,
        timeframe: str,
        *,
        ordered: bool,
    ) -> pd.DataFrame:
        from quantdesk.data.store.bars import query_bars

        self._require("bars", "bars")
        with self._file_errors():
            return query_bars(
                self._connection(),
                symbols,
                start,
                end,
                timeframe,
                ordered=ordered,
                series="bar_series",
                scope=self._scope_bars,
            )

    @contextlib.contextmanager
    def _file_errors(self) -> Iterator[None]:
        """Raise a file of the version that DuckDB cannot read as SnapshotStorageError."""
        import duckdb

        try:
            yield
        except duckdb.IOException as exc:
            raise SnapshotStorageError(
                f"{redact(self.url)} version {self.version}: a file of the version "
                f"cannot be read ({exc})"
            ) from exc

    def _require(self, table: str, option: str) -> None:
        if table not in self.manifest["tables"]:
            raise SnapshotError(
                f"{self.location} version {self.version} holds no {table} "
                f"(it holds {', '.join(self.manifest['tables'])}); "
                f"snapshot them with --tables {option}"
            )

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """Return this reader's in-memory DuckDB, with the small tables' views made."""
        if self._con is None:
            import duckdb

            con = duckdb.connect(":memory:")
            con.execute("SET TimeZone = 'UTC'")
            self._con = con
            for table in ("symbols", "bar_series"):
                if table in self.manifest["tables"]:
                    self._view(table, self.manifest["tables"][table]["files"])
        return self._con

    def _scope_bars(
        self,
        con: duckdb.DuckDBPyConnection,
        source_tf: str,
        symbols: Sequence[str],
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
        target: Timeframe,
    ) -> None:
        """Point the ``bars`` view at the files one part of a bars read needs."""
        if source_tf != target.name:
            # A target bar holds source bars up to a zone offset before its label and
            # up to its own length (plus that offset) after it.
            width = _MONTH if target.is_calendar else pd.Timedelta(seconds=target.seconds)
            lo = None if lo is None else lo - _ZONE_SLACK
            hi = None if hi is None else hi + width + _ZONE_SLACK
        files = self._prune("bars", symbols, lo, hi, timeframe=source_tf)
        self._view("bars", files)

    def _scope_regimes(
        self,
        con: duckdb.DuckDBPyConnection,
        symbols: list[str] | None,
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
    ) -> None:
        """Point the ``regimes`` view at the files a regimes read needs."""
        self._view("regimes", self._prune("regimes", symbols, lo, hi))

    def _prune(
        self,
        table: str,
        symbols: Sequence[str] | None,
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
        timeframe: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return the files of ``table`` that can hold rows of ``symbols`` in ``[lo, hi)``."""
        if symbols is not None and not symbols:
            return []
        buckets = None if symbols is None else {symbol_bucket(s, self._buckets) for s in symbols}
        names = None if symbols is None else (min(symbols), max(symbols))
        return [
            entry
            for entry in self.manifest["tables"][table]["files"]
            if (timeframe is None or entry["partition"].get("timeframe") == timeframe)
            and (buckets is None or entry["partition"].get("bucket") in buckets)
            and _overlaps(entry.get("min_symbol"), entry.get("max_symbol"), names)
            and _overlaps(
                _timestamp(entry.get("min_ts")), _timestamp(entry.get("max_ts")), (lo, hi), True
            )
        ]

    def _view(self, table: str, files: list[dict[str, Any]]) -> None:
        """(Re)define the view ``table`` over ``files`` (none: an empty view of its columns)."""
        con = self._connection()
        entry = self.manifest["tables"][table]
        columns: dict[str, str] = entry["columns"]
        if files:
            # The files of one view share their partition levels (a bars view holds one
            # timeframe; days have no month level).
            levels = {k: entry["partitions"][k] for k in files[0]["partition"]}
            paths = self._local_paths(files)
            self.files_read.extend(paths)
            listed = ", ".join(_quote(p) for p in paths)
            options = ""
            if levels:
                types = ", ".join(f"{_quote(k)}: {v}" for k, v in levels.items())
                options = f", hive_partitioning = true, hive_types = {{{types}}}"
            source = f"read_parquet([{listed}]{options})"
            select = ", ".join([*levels, *columns])
        else:
            types_of = {**entry["partitions"], **columns}
            source = "(SELECT 1) AS _none WHERE false"
            select = ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in types_of.items())
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT {select} FROM {source}")

    def _local_paths(self, files: list[dict[str, Any]]) -> list[str]:
        """Return local paths of ``files``: in place, or fetched into the cache first."""
        if self.location.local:
            return [self.location.path(f["path"]) for f in files]
        missing = [f for f in files if not (self.cache_dir / f["path"]).exists()]
        if missing:
            self._fetch(missing)
        return [str(self.cache_dir / f["path"]) for f in files]

    def _fetch(self, files: list[dict[str, Any]]) -> None:
        """Copy remote files into the cache, checking each one's SHA-256."""
        temps = [self.cache_dir / f"{f['path']}.{uuid.uuid4().hex}.tmp" for f in files]
        for temp in temps:
            temp.parent.mkdir(parents=True, exist_ok=True)
        with storage_errors(self.url, f"reading {len(files)} files of version {self.version} of"):
            self.location.fs.get(
                [self.location.path(f["path"]) for f in files], [str(t) for t in temps]
            )
        for entry, temp in zip(files, temps, strict=True):
            digest = hashlib.sha256(temp.read_bytes()).hexdigest()
            if digest != entry["sha256"]:
                temp.unlink()
                raise SnapshotStorageError(
                    f"{redact(self.url)}: {entry['path']} does not match its manifest's "
                    f"SHA-256 (version {self.version}); the file is corrupt or was replaced"
                )
            # Renamed into place: another process reading the cache sees it whole or not.
            os.replace(temp, self.cache_dir / entry["path"])
        logger.debug("fetched %d files of %s into %s", len(files), redact(self.url), self.cache_dir)

    def close(self) -> None:
        """Close the in-memory DuckDB (reopened on the next read)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __getstate__(self) -> dict[str, Any]:
        # A reader sent to a Dask worker carries its URL and version, not a connection.
        state = dict(self.__dict__)
        state["_con"] = None
        return state


def _overlaps(low: Any, high: Any, wanted: tuple[Any, Any] | None, half_open: bool = False) -> bool:
    """Return whether a file's ``[low, high]`` can meet the wanted range (None: open).

    ``half_open`` reads the wanted range as ``[lo, hi)`` (time windows), else ``[lo, hi]``.
    """
    if wanted is None or low is None or high is None:
        return True
    lo, hi = wanted
    if lo is not None and high < lo:
        return False
    if hi is None:
        return True
    return bool(low < hi) if half_open else bool(low <= hi)


def _timestamp(text: str | None) -> pd.Timestamp | None:
    return None if text is None else pd.Timestamp(text)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fetch(
    con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    from quantdesk.data.store.file import fetch_frame

    return fetch_frame(con, query, params)
