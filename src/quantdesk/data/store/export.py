"""The store's tables read for export: one consistent read, cut into partitions.

This is how the snapshot writer (:mod:`quantdesk.data.snapshot.writer`) reads the store
file (whose SQL lives in this package, beside every other query of its tables).  Each
exported table (:data:`TABLES`) is a query that returns its partition columns, then its
data columns; :func:`export_tables` opens one read transaction on the file and
returns a :class:`TableExport` that gives, per table, the column types, every
partition's rows, ranges and fingerprint, and the rows of chosen partitions as sorted
Arrow batches.

Bars and regimes are cut by a *bucket* of the symbol (:func:`symbol_bucket`): a stable
hash, the same in every process and every version of every library, so a reader finds
the files of a symbol without listing them.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.data.schemas import REGIME_COLUMNS, SYMBOL_COLUMNS
from quantdesk.data.store.file import fetch_frame

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from quantdesk.data.store.file import StoreFile

__all__ = [
    "BUCKETS",
    "TABLES",
    "TableExport",
    "TableSpec",
    "export_tables",
    "symbol_bucket",
]

#: Buckets of the symbol hash (a snapshot records it: its readers use the recorded one).
BUCKETS = 16
_BATCH_ROWS = 262_144


def symbol_bucket(symbol: str, buckets: int = BUCKETS) -> str:
    """Return the two-digit bucket of ``symbol``: its MD5's first 8 hex digits mod ``buckets``.

    The same in every process and library version (it names files in snapshots).

    Examples
    --------
    >>> symbol_bucket("SPX"), symbol_bucket("SPX", 4)
    ('11', '03')
    """
    return f"{int(hashlib.md5(symbol.encode()).hexdigest()[:8], 16) % buckets:02d}"


@dataclass(frozen=True)
class TableSpec:
    """One exported table: what it reads from the store and how it is cut.

    ``select`` is a query on the store's file that returns the ``partitions`` columns
    and then the data ``columns``; it may join ``snapshot_keys`` (``key, bucket,
    ord``: each symbol's bucket and its rank by bucket then name), registered by
    :class:`TableExport`.  ``order`` sorts the rows inside a file; ``ts`` and ``symbol`` name the
    columns whose ranges the manifest records per file (for pruning), if any;
    ``requires`` is the store table whose absence means the table is empty.
    """

    name: str
    select: str
    partitions: tuple[str, ...]
    columns: tuple[str, ...]
    order: str
    ts: str | None = None
    symbol: str | None = None
    requires: str = ""


_UTC_YEAR = "year(timezone('UTC', {ts}))"
# The timeframes of a day or longer (``parse_timeframe`` accepts no others above hours).
_DAILY = ("1d", "1w", "1mo")
_BAR_VALUES = ("open", "high", "low", "close", "volume")
_NEWS_COLUMNS = ("content_hash", "id", "ts", "source", "headline", "body", "symbols")
_SCORE_COLUMNS = (
    "content_hash",
    "model_id",
    "model_revision",
    "quantization",
    "positive",
    "negative",
    "neutral",
    "score",
    "scored_at",
)


def _prefixed(alias: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{c}" for c in columns)


#: Every exported table (what a snapshot can hold), by name.
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "bars",
            # Intraday bars are cut by month too (none for days, weeks and months):
            # the evening's new session rewrites a month of minute bars, not a year.
            select=(
                f"SELECT b.timeframe, k.bucket, {_UTC_YEAR.format(ts='b.ts')} AS year, "
                f"CASE WHEN b.timeframe IN ({', '.join(repr(t) for t in _DAILY)}) THEN NULL "
                "ELSE month(timezone('UTC', b.ts)) END AS month, "
                f"k.ord AS _ord, b.symbol, b.ts, {_prefixed('b', _BAR_VALUES)} "
                "FROM bars b JOIN snapshot_keys k ON k.key = b.symbol"
            ),
            partitions=("timeframe", "bucket", "year", "month"),
            columns=("symbol", "ts", *_BAR_VALUES),
            order="_ord, ts",
            ts="ts",
            symbol="symbol",
            requires="bars",
        ),
        TableSpec(
            "symbols",
            select=f"SELECT {', '.join(SYMBOL_COLUMNS)} FROM symbols",
            partitions=(),
            columns=tuple(SYMBOL_COLUMNS),
            order="symbol",
            symbol="symbol",
            requires="symbols",
        ),
        TableSpec(
            "bar_series",
            select=(
                "SELECT symbol, timeframe, count(*) AS rows, min(ts) AS first, max(ts) AS last "
                "FROM bars GROUP BY ALL"
            ),
            partitions=(),
            columns=("symbol", "timeframe", "rows", "first", "last"),
            order="symbol, timeframe",
            symbol="symbol",
            requires="bars",
        ),
        TableSpec(
            "regimes",
            select=(
                f"SELECT k.bucket, {_UTC_YEAR.format(ts='r.ts')} AS year, k.ord AS _ord, "
                f"{_prefixed('r', (*REGIME_COLUMNS, 'written_at'))} "
                "FROM regimes r JOIN snapshot_keys k ON k.key = r.symbol"
            ),
            partitions=("bucket", "year"),
            columns=(*REGIME_COLUMNS, "written_at"),
            order="_ord, ts, model_version",
            ts="ts",
            symbol="symbol",
            requires="regimes",
        ),
        TableSpec(
            "news",
            select=(
                f"SELECT {_UTC_YEAR.format(ts='ts')} AS year, {', '.join(_NEWS_COLUMNS)} FROM news"
            ),
            partitions=("year",),
            columns=_NEWS_COLUMNS,
            order="ts, content_hash",
            ts="ts",
            requires="news",
        ),
        TableSpec(
            "news_scores",
            # Cut by the year of the story scored: scoring new stories touches one year.
            select=(
                f"SELECT {_UTC_YEAR.format(ts='n.ts')} AS year, {_prefixed('s', _SCORE_COLUMNS)} "
                "FROM news_scores s JOIN news n USING (content_hash)"
            ),
            partitions=("year",),
            columns=_SCORE_COLUMNS,
            order="content_hash, model_id, model_revision, quantization",
            requires="news_scores",
        ),
    )
}


class TableExport:
    """One read transaction on the store, reading the tables to export (:func:`export_tables`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.tables = set(
            fetch_frame(con, "SELECT table_name FROM information_schema.tables")["table_name"]
        )
        _register_keys(con, self.tables)

    def holds(self, spec: TableSpec) -> bool:
        """Return whether the store has created the table ``spec`` reads."""
        return spec.requires in self.tables

    def layout(self, spec: TableSpec) -> dict[str, dict[str, str]]:
        """Return the DuckDB types of the table's ``partitions`` and data ``columns``.

        A table the store has not created yet is described from its DDL, in a scratch
        in-memory database: its readers still know its columns.
        """
        if self.holds(spec):
            return _layout(self.con, spec)
        import duckdb

        from quantdesk.data.store.news_ddl import NEWS_DDL
        from quantdesk.data.store.schema import create_schema

        scratch = duckdb.connect(":memory:")
        try:
            create_schema(scratch, NEWS_DDL)
            _register_keys(scratch, set())
            return _layout(scratch, spec)
        finally:
            scratch.close()

    def stats(self, spec: TableSpec) -> pd.DataFrame:
        """Return one row per partition: its values, ``rows``, ranges and ``fingerprint``.

        The fingerprint is the sum of DuckDB's ``hash`` of every row (see
        :func:`fingerprint_method`): equal partitions give equal fingerprints, and a
        changed, added or removed row changes it.
        """
        ranges = []
        if spec.ts:
            ranges += [f"min({spec.ts}) AS min_ts", f"max({spec.ts}) AS max_ts"]
        if spec.symbol:
            ranges += [f"min({spec.symbol}) AS min_symbol", f"max({spec.symbol}) AS max_symbol"]
        group = ", ".join(spec.partitions)
        query = (
            f"SELECT {group + ', ' if group else ''}count(*) AS rows, "
            + "".join(r + ", " for r in ranges)
            + f"CAST(sum(CAST(hash({', '.join(spec.columns)}) AS HUGEINT)) AS VARCHAR) "
            f"AS fingerprint FROM ({spec.select}) GROUP BY ALL"
        )
        return fetch_frame(self.con, query)

    def batches(
        self, spec: TableSpec, partitions: list[dict[str, Any]]
    ) -> Iterator[pa.RecordBatch]:
        """Yield the rows of ``partitions`` as Arrow batches, sorted by partition then
        ``spec.order``; column ``_part`` holds the index of each row's partition.

        One scan of the table and one sort (by integers: the partition's index and the
        symbol's rank), streamed: memory holds a batch, not the table.
        """
        import numpy as np

        columns = ", ".join(f"t.{c}" for c in spec.columns)
        if spec.partitions:
            # A partition leaves out a value that is NULL (the month of daily bars).
            types = _layout(self.con, spec)["partitions"]
            parts = pd.DataFrame(
                {
                    p: pd.array(
                        [part.get(p) for part in partitions],
                        dtype="Int64" if "INT" in types[p] else object,
                    )
                    for p in spec.partitions
                }
            )
            parts["_part"] = np.arange(len(partitions), dtype="int32")
            self.con.register("export_parts", parts)
            match = " AND ".join(f"p.{c} IS NOT DISTINCT FROM t.{c}" for c in spec.partitions)
            query = (
                f"SELECT p._part, {columns} FROM ({spec.select}) t "
                f"JOIN export_parts p ON {match} ORDER BY p._part, {spec.order}"
            )
        else:
            query = f"SELECT 0 AS _part, {columns} FROM ({spec.select}) t ORDER BY {spec.order}"
        try:
            yield from self.con.sql(query).to_arrow_reader(_BATCH_ROWS)
        finally:
            if spec.partitions:
                self.con.unregister("export_parts")


@contextlib.contextmanager
def export_tables(store: StoreFile) -> Iterator[TableExport]:
    """Yield a :class:`TableExport` on one read transaction of ``store``'s file.

    Every table is read from the same state of the store; other processes' writes wait
    (retrying, :mod:`~quantdesk.data.store.locking`) until the block ends, so a caller
    keeps the block to the reading and does its uploads after.
    """
    with store._connect() as con:
        con.execute("BEGIN TRANSACTION")
        yield TableExport(con)
        con.execute("COMMIT")


def fingerprint_method() -> str:
    """Return how partition fingerprints are made: comparable only between equal methods."""
    import duckdb

    return f"duckdb {duckdb.__version__}: count, sum(hash(row))"


def _layout(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> dict[str, dict[str, str]]:
    described = fetch_frame(con, f"DESCRIBE ({spec.select})")
    types = dict(zip(described["column_name"], described["column_type"], strict=True))
    return {
        "partitions": {p: types[p] for p in spec.partitions},
        "columns": {c: types[c] for c in spec.columns},
    }


def _register_keys(con: duckdb.DuckDBPyConnection, tables: set[str]) -> None:
    """Register ``snapshot_keys``: each symbol's bucket and its rank by bucket, then name."""
    sources = [f"SELECT DISTINCT symbol FROM {t}" for t in ("bars", "regimes") if t in tables]
    symbols = (
        [str(s) for s in fetch_frame(con, " UNION ".join(sources))["symbol"]] if sources else []
    )
    keys = pd.DataFrame({"key": symbols, "bucket": [symbol_bucket(s) for s in symbols]})
    keys = keys.sort_values(["bucket", "key"], ignore_index=True)
    keys["ord"] = range(len(keys))
    con.register("snapshot_keys", keys.astype({"key": object, "bucket": object, "ord": "int32"}))
