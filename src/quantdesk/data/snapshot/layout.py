"""How a snapshot lays out its tables: partitions, file names, manifests.

Layout
------
A snapshot at ``URL`` holds hive-partitioned Parquet files and one manifest per version::

    URL/bars/timeframe=1d/bucket=07/year=2021/part-<sha256[:32]>.parquet
    URL/symbols/part-<...>.parquet          symbol metadata (time zones)
    URL/bar_series/part-<...>.parquet       one row per stored (symbol, timeframe)
    URL/regimes/bucket=07/year=2021/part-<...>.parquet
    URL/news/year=2021/part-<...>.parquet
    URL/news_scores/year=2021/part-<...>.parquet   (by the year of the story scored)
    URL/_manifests/v000001.json, v000002.json, ...

Partitions
----------
Bars and regimes are cut by timeframe, a *bucket* of the symbol and the UTC year of
``ts``, so that a read by timeframe, symbols and dates opens only their files.  The
bucket is a stable hash of the symbol (the first 8 hex digits of its MD5, modulo
:data:`BUCKETS`), not an alphabetical range: a hash spreads 9,000 tickers evenly (an
alphabetical cut would put S and C in large files and Q and X in tiny ones), a new
symbol never moves another one, and it is the same in every process and every version
of every library (Python's ``hash`` and DuckDB's ``hash`` are neither).  Sixteen
buckets keep the files of a 9,000-symbol daily universe at about 140,000 rows a year
(about 4 MB), a few row groups each, and a 50-symbol store at a few files a year;
inside a file rows are sorted by symbol and time, so Parquet's row-group statistics
let a one-symbol read skip most of a large intraday file.

Files are content-addressed: the name carries the SHA-256 of the file's bytes, so a
file never changes once written, a reader can cache it forever, and a second snapshot
reuses the files of every partition whose rows did not change.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from quantdesk.data.schemas import REGIME_COLUMNS, SYMBOL_COLUMNS

__all__ = [
    "BUCKETS",
    "FORMAT",
    "GROUPS",
    "MANIFESTS",
    "TABLES",
    "TableSpec",
    "manifest_name",
    "parse_manifest_name",
    "partition_path",
    "symbol_bucket",
    "tables_of",
]

#: The manifest's format; a reader refuses a manifest of another major format.
FORMAT = "quantdesk-snapshot/1"
#: Buckets of the symbol hash (recorded in each manifest: a reader uses the manifest's).
BUCKETS = 16
#: The folder of the manifests under the snapshot's root.
MANIFESTS = "_manifests"

_MANIFEST_NAME = re.compile(r"^v(\d{6,})\.json$")
# A partition value becomes a path component: letters, digits and . _ - only.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.-]+$")


def symbol_bucket(symbol: str, buckets: int = BUCKETS) -> str:
    """Return the two-digit bucket of ``symbol``: its MD5's first 8 hex digits mod ``buckets``.

    The same in every process and library version (it names files in snapshots).

    Examples
    --------
    >>> symbol_bucket("SPX"), symbol_bucket("SPX", 4)
    ('11', '03')
    """
    return f"{int(hashlib.md5(symbol.encode()).hexdigest()[:8], 16) % buckets:02d}"


def manifest_name(version: int) -> str:
    """Return the file name of a version's manifest.

    Examples
    --------
    >>> manifest_name(3)
    'v000003.json'
    """
    return f"v{version:06d}.json"


def parse_manifest_name(name: str) -> int | None:
    """Return the version a manifest file name holds, or None for any other name.

    Examples
    --------
    >>> parse_manifest_name("v000012.json"), parse_manifest_name(".v000012.json.tmp")
    (12, None)
    """
    match = _MANIFEST_NAME.match(name)
    return int(match.group(1)) if match else None


def partition_path(partition: dict[str, object]) -> str:
    """Return the hive path of a partition (``timeframe=1d/bucket=07/year=2021``).

    Examples
    --------
    >>> partition_path({"timeframe": "1d", "bucket": "07", "year": 2021})
    'timeframe=1d/bucket=07/year=2021'
    >>> partition_path({})
    ''
    """
    parts = []
    for name, value in partition.items():
        text = str(value)
        if not _SAFE_VALUE.match(text):
            raise ValueError(f"partition value {name}={text!r} cannot name a folder")
        parts.append(f"{name}={text}")
    return "/".join(parts)


@dataclass(frozen=True)
class TableSpec:
    """One table of a snapshot: what it reads from the store and how it is cut.

    ``select`` is a query on the store's file that returns the ``partitions`` columns
    and then the data ``columns``; it may join ``snapshot_keys`` (``key, bucket,
    ord``: each symbol's bucket and its rank by bucket then name), registered by the
    writer.  ``order`` sorts the rows inside a file; ``ts`` and ``symbol`` name the
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


#: Every table a snapshot can hold, by name.
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "bars",
            select=(
                f"SELECT b.timeframe, k.bucket, {_UTC_YEAR.format(ts='b.ts')} AS year, "
                f"k.ord AS _ord, b.symbol, b.ts, {_prefixed('b', _BAR_VALUES)} "
                "FROM bars b JOIN snapshot_keys k ON k.key = b.symbol"
            ),
            partitions=("timeframe", "bucket", "year"),
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

#: What each name of ``tables=`` (and ``--tables``) snapshots: bars bring their
#: symbols' metadata and the index of stored series, which every bars read needs.
GROUPS: dict[str, tuple[str, ...]] = {
    "bars": ("bars", "symbols", "bar_series"),
    "regimes": ("regimes",),
    "news": ("news",),
    "scores": ("news_scores",),
}


def tables_of(groups: str | tuple[str, ...] | list[str]) -> list[str]:
    """Return the snapshot tables of the names given to ``tables=`` (in a fixed order).

    Examples
    --------
    >>> tables_of("bars,scores")
    ['bars', 'symbols', 'bar_series', 'news_scores']
    >>> tables_of(["ticks"])
    Traceback (most recent call last):
    ...
    ValueError: unknown snapshot table 'ticks'; choose from bars, regimes, news, scores
    """
    names = [g.strip() for g in groups.split(",")] if isinstance(groups, str) else list(groups)
    chosen: list[str] = []
    for name in names:
        if name not in GROUPS:
            raise ValueError(f"unknown snapshot table {name!r}; choose from {', '.join(GROUPS)}")
        chosen.extend(GROUPS[name])
    return [t for t in TABLES if t in chosen]
