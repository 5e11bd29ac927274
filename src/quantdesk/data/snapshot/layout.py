"""How a snapshot lays out its tables: partitions, file names, manifests.

Layout
------
A snapshot at ``URL`` holds hive-partitioned Parquet files and one manifest per version::

    URL/bars/timeframe=1d/bucket=07/year=2021/part-<sha256[:32]>.parquet
    URL/bars/timeframe=1min/bucket=07/year=2021/month=3/part-<...>.parquet
    URL/symbols/part-<...>.parquet          symbol metadata (time zones)
    URL/bar_series/part-<...>.parquet       one row per stored (symbol, timeframe)
    URL/regimes/bucket=07/year=2021/part-<...>.parquet
    URL/news/year=2021/part-<...>.parquet
    URL/news_scores/year=2021/part-<...>.parquet   (by the year of the story scored)
    URL/_manifests/v000001.json, v000002.json, ...

Partitions
----------
Bars and regimes are cut by timeframe, a *bucket* of the symbol and the UTC year of
``ts`` (and intraday bars by month too: a new session rewrites a month of minute
bars, not a year), so that a read by timeframe, symbols and dates opens only their
files.  The
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

import re

from quantdesk.data.store.export import BUCKETS, TABLES, TableSpec, symbol_bucket

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
#: The folder of the manifests under the snapshot's root.
MANIFESTS = "_manifests"

_MANIFEST_NAME = re.compile(r"^v(\d{6,})\.json$")
# A partition value becomes a path component: letters, digits and . _ - only.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.-]+$")


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
