"""Writing a snapshot: the store's changed partitions as Parquet files, then a manifest.

:func:`write_snapshot` (``MarketStore.snapshot``, ``quantdesk data snapshot URL``)
works in three steps:

1. **Read**, in one read transaction on the store file (a consistent view, held only
   while the files are written to a local staging folder): per table, one query gives
   every partition's row count, ranges and *fingerprint* (the count and the sum of
   DuckDB's ``hash`` of every row); a partition whose fingerprint equals the one in the
   previous version's manifest keeps that version's file; the others are read in one
   sorted scan and written, one file per partition, to the staging folder.
2. **Upload** the new files to the snapshot's URL (a rename on a local disk), under
   content-addressed names; a file already there (same content) is not sent again.
3. **Publish** the manifest of the new version, last and atomically
   (:func:`~quantdesk.data.snapshot.manifest.publish_manifest`).

A failure anywhere (the store unreachable, an exception, the process killed) publishes
nothing: the previous version stays the latest.  What an interrupted run uploaded is
removed when possible, else left as orphan files that no manifest names, which readers
never see and :func:`~quantdesk.data.snapshot.prune.collect_garbage` deletes.  When
nothing changed since the latest version, no version is added and that one is returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.data.snapshot.layout import FORMAT, partition_path, tables_of
from quantdesk.data.snapshot.manifest import list_versions, publish_manifest, read_manifest
from quantdesk.data.snapshot.storage import (
    SnapshotLocation,
    open_location,
    redact,
    storage_errors,
)
from quantdesk.data.store.export import (
    BUCKETS,
    TABLES,
    TableExport,
    TableSpec,
    export_tables,
    fingerprint_method,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from quantdesk.data.store.file import StoreFile

__all__ = ["ROW_GROUP_ROWS", "SnapshotVersion", "TableAccount", "write_snapshot"]

logger = logging.getLogger(__name__)

#: Rows per Parquet row group: a one-symbol read of a large file skips the other groups.
ROW_GROUP_ROWS = 65_536
_STAGING = "_staging"
_LIBRARIES = ("quantdesk", "duckdb", "pyarrow", "pandas", "fsspec")


@dataclass(frozen=True)
class TableAccount:
    """One table of a snapshot version: what it holds and what this snapshot wrote."""

    table: str
    files: int
    rows: int
    written_files: int
    written_rows: int
    written_bytes: int

    def summary(self) -> str:
        """Return one line: the table's files and rows, and what was written."""
        kept = self.files - self.written_files
        return (
            f"{self.table}: {self.rows:,} rows in {self.files} files; "
            f"{self.written_files} written ({self.written_rows:,} rows, "
            f"{self.written_bytes / 1e6:.1f} MB), {kept} unchanged"
        )


@dataclass(frozen=True)
class SnapshotVersion:
    """The version a snapshot wrote (or found unchanged), and what it holds.

    ``int(result)`` is the version number; ``created`` is False when nothing had
    changed since the latest version, which is returned instead of a new one.
    """

    url: str
    version: int
    created: bool
    tables: tuple[TableAccount, ...]
    manifest: dict[str, Any] = field(repr=False)

    def __int__(self) -> int:
        return self.version

    def summary(self) -> str:
        """Return a few lines: the version, and per table what was written or unchanged."""
        head = (
            f"snapshot {redact(self.url)}: version {self.version}"
            if self.created
            else f"snapshot {redact(self.url)}: no change since version {self.version}, "
            "nothing written"
        )
        return "\n".join([head, *(f"  {t.summary()}" for t in self.tables)])

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain data (``--json``)."""
        return {
            "url": redact(self.url),
            "version": self.version,
            "created": self.created,
            "tables": [vars(t) for t in self.tables],
        }


@dataclass
class _Staged:
    """What the read step made of one table: its manifest entry and the files to upload."""

    entry: dict[str, Any]
    new: list[tuple[Path, str]] = field(default_factory=list)


def write_snapshot(
    store: StoreFile,
    url: str | os.PathLike[str],
    tables: str | Sequence[str] = ("bars",),
    *,
    storage_options: dict[str, Any] | None = None,
) -> SnapshotVersion:
    """Return the version of a snapshot of ``store`` written at ``url``.

    Parameters
    ----------
    store
        The market store to snapshot (read only: a snapshot never writes to it).
    url
        A local folder, ``file://``, ``s3://bucket/prefix`` or any fsspec URL.
    tables
        What to snapshot: ``"bars"`` (with symbol metadata and the series index),
        ``"regimes"``, ``"news"``, ``"scores"``, as names or one comma-separated text.
    storage_options
        Passed to the fsspec filesystem (credentials are best left to the
        environment: :mod:`quantdesk.data.snapshot.storage`).

    Raises
    ------
    SnapshotStorageError
        When the storage fails (unreachable, refused): nothing is published.
    ValueError
        For an unknown table name.

    Examples
    --------
    >>> store.snapshot("s3://research/snapshots", tables="bars,regimes")  # doctest: +SKIP
    """
    names = tables_of(tables if isinstance(tables, str) else list(tables))
    location = open_location(str(url), storage_options)
    published = list_versions(location)
    previous = read_manifest(location, published[-1]) if published else None
    version = published[-1] + 1 if published else 1
    method = fingerprint_method()
    staging = _staging_folder(location)
    created: list[str] = []
    try:
        staged = _read_store(store, names, previous, method, staging, version)
        if previous is not None and _same_files(previous, staged):
            result = _result(location, previous, staged, created=False)
            logger.info("%s", result.summary())
            return result
        with storage_errors(location.url, "writing the files of"):
            _upload(location, staged, created)
        doc = _manifest(version, previous, method, staged)
        publish_manifest(location, version, doc)
    except BaseException:
        _remove_uploaded(location, created)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if location.local:
            with contextlib.suppress(OSError):  # another run's staging may be there
                staging.parent.rmdir()
    result = _result(location, doc, staged, created=True)
    logger.info("%s", result.summary())
    return result


def _staging_folder(location: SnapshotLocation) -> Path:
    """Return a fresh local folder for the new files (inside a local snapshot: renames)."""
    if location.local:
        folder = Path(location.path(f"{_STAGING}/{uuid.uuid4().hex}"))
        folder.mkdir(parents=True)
        return folder
    return Path(tempfile.mkdtemp(prefix="quantdesk-snapshot-"))


def _read_store(
    store: StoreFile,
    names: list[str],
    previous: dict[str, Any] | None,
    method: str,
    staging: Path,
    version: int,
) -> dict[str, _Staged]:
    """Return each table's manifest entry, writing its changed partitions to ``staging``."""
    staged: dict[str, _Staged] = {}
    with export_tables(store) as export:  # one read: every table from the same state
        for name in names:
            spec = TABLES[name]
            before = (previous or {}).get("tables", {}).get(name)
            reusable = before if (previous or {}).get("fingerprint") == method else None
            if not export.holds(spec):
                # Its columns from its DDL, no rows; readers answer as the store does.
                entry = {**export.layout(spec), "rows": 0, "files": [], "absent": True}
                staged[name] = _Staged(entry)
                continue
            staged[name] = _stage_table(export, spec, reusable, staging, version)
    return staged


def _stage_table(
    export: TableExport,
    spec: TableSpec,
    before: dict[str, Any] | None,
    staging: Path,
    version: int,
) -> _Staged:
    """Return one table's entry: unchanged partitions keep their files, the rest are written."""
    layout = export.layout(spec)
    partitions, columns = layout["partitions"], layout["columns"]
    if before is not None and (before["partitions"], before["columns"]) != (partitions, columns):
        before = None  # another layout: every partition is written again
    kept = {_key(f["partition"]): f for f in (before or {}).get("files", [])}

    files: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for row in export.stats(spec).to_dict("records"):
        if not row["rows"]:
            continue
        # A NULL partition value (the month of daily bars) is no level of the path.
        partition = {p: _plain(row[p]) for p in spec.partitions if _plain(row[p]) is not None}
        facts = {
            "partition": partition,
            "rows": int(row["rows"]),
            "fingerprint": f"{int(row['rows'])}:{row['fingerprint']}",
            "min_ts": _iso(row.get("min_ts")),
            "max_ts": _iso(row.get("max_ts")),
            "min_symbol": _plain(row.get("min_symbol")),
            "max_symbol": _plain(row.get("max_symbol")),
        }
        old = kept.get(_key(partition))
        if old is not None and old["fingerprint"] == facts["fingerprint"]:
            files.append(old)
        else:
            changed.append(facts)
    staged = _Staged({"partitions": partitions, "columns": columns, "rows": 0, "files": files})
    if changed:
        for facts, local, rel in _write_partitions(export, spec, changed, staging):
            facts.update(_file_facts(local, rel, version))
            files.append(facts)
            staged.new.append((local, rel))
    files.sort(key=lambda f: f["path"])
    staged.entry["rows"] = sum(f["rows"] for f in files)
    return staged


def _write_partitions(
    export: TableExport,
    spec: TableSpec,
    changed: list[dict[str, Any]],
    staging: Path,
) -> list[tuple[dict[str, Any], Path, str]]:
    """Write the ``changed`` partitions of a table, one sorted Parquet file each.

    The rows arrive sorted by partition (one scan); each partition's rows are gathered
    and written by a pool of threads (Parquet encoding and compression release the GIL)
    while the next partitions arrive.  At most two partitions per thread wait in memory.
    """
    import numpy as np

    from quantdesk.core.progress import progress_bar

    workers = max(1, min(4, os.cpu_count() or 1))
    total = sum(c["rows"] for c in changed)
    pending: list[Future[tuple[dict[str, Any], Path, str]]] = []
    out: list[tuple[dict[str, Any], Path, str]] = []
    rows: list[pa.RecordBatch] = []
    current = -1

    with (
        ThreadPoolExecutor(workers, thread_name_prefix="snapshot-write") as pool,
        progress_bar(total=total, desc=f"snapshot {spec.name}", unit="rows") as bar,
    ):

        def submit() -> None:
            facts = changed[current]
            folder = staging / spec.name / partition_path(facts["partition"])
            pending.append(pool.submit(_write_file, list(rows), folder, spec.name, facts))
            rows.clear()
            while len(pending) > 2 * workers:
                out.append(pending.pop(0).result())

        for batch in export.batches(spec, [c["partition"] for c in changed]):
            ids = batch.column(0).to_numpy()
            data = batch.select(range(1, batch.num_columns))
            cuts = [0, *(np.flatnonzero(np.diff(ids)) + 1).tolist(), len(ids)]
            for lo, hi in itertools.pairwise(cuts):
                part = int(ids[lo])
                if part != current and rows:
                    submit()
                current = part
                rows.append(data.slice(lo, hi - lo))
            bar.update(len(ids))
        if rows:
            submit()
        out.extend(f.result() for f in pending)
    if sum(f["rows"] for f, _, _ in out) != total:
        raise RuntimeError(f"snapshot of {spec.name}: the rows written differ from those counted")
    return out


def _write_file(
    rows: list[pa.RecordBatch], folder: Path, table: str, facts: dict[str, Any]
) -> tuple[dict[str, Any], Path, str]:
    """Write one partition's rows as a Parquet file named by its content; return its
    facts (with its SHA-256), its local path and its path in the snapshot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pa.Table.from_batches(rows)
    if len(data) != facts["rows"]:
        raise RuntimeError(
            f"{table} {facts['partition']}: wrote {len(data)} rows, counted {facts['rows']}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f"part.{uuid.uuid4().hex}.tmp"
    pq.write_table(data, temp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    digest = _sha256(temp)
    final = folder / f"part-{digest[:32]}.parquet"
    os.replace(temp, final)
    rel = "/".join(p for p in (table, partition_path(facts["partition"]), final.name) if p)
    return dict(facts, sha256=digest), final, rel


def _file_facts(local: Path, rel: str, version: int) -> dict[str, Any]:
    return {"path": rel, "bytes": local.stat().st_size, "version": version}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _upload(location: SnapshotLocation, staged: dict[str, _Staged], created: list[str]) -> None:
    """Move or send the new files to their places; note each one created in ``created``."""
    new = [(local, rel) for s in staged.values() for local, rel in s.new]
    if not new:
        return
    if location.local:
        for local, rel in new:
            dest = location.path(rel)
            if os.path.exists(dest):  # the same name holds the same bytes
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(local, dest)
            created.append(dest)
        return
    fs = location.fs
    tables = sorted({rel.split("/", 1)[0] for _, rel in new})
    existing: set[str] = set()
    for table in tables:
        with contextlib.suppress(FileNotFoundError):
            existing.update(str(p) for p in fs.find(location.path(table)))
    todo = [(str(local), location.path(rel)) for local, rel in new]
    todo = [(src, dest) for src, dest in todo if dest not in existing]
    if todo:
        # Noted before sending: a failure part-way removes whatever got there.
        created.extend(dest for _, dest in todo)
        fs.put([src for src, _ in todo], [dest for _, dest in todo])


def _remove_uploaded(location: SnapshotLocation, created: list[str]) -> None:
    """Remove the files a failed snapshot created (best effort: the garbage collector
    removes what cannot be removed now)."""
    for path in created:
        try:
            if location.local:
                if os.path.exists(path):
                    os.unlink(path)
            elif location.fs.exists(path):
                location.fs.rm(path)
        except Exception as exc:  # the failure that got us here matters more
            logger.warning(
                "%s: could not remove %s of the failed snapshot (%s); "
                "`quantdesk data snapshot-gc` removes such orphans",
                redact(location.url),
                path,
                type(exc).__name__,
            )
            return


def _same_files(previous: dict[str, Any], staged: dict[str, _Staged]) -> bool:
    """Return whether the staged tables are exactly the previous version's."""
    before = previous.get("tables", {})
    if set(before) != set(staged):
        return False
    return all(
        [f["path"] for f in before[name]["files"]] == [f["path"] for f in s.entry["files"]]
        and before[name]["columns"] == s.entry["columns"]
        for name, s in staged.items()
    )


def _manifest(
    version: int, previous: dict[str, Any] | None, method: str, staged: dict[str, _Staged]
) -> dict[str, Any]:
    from quantdesk.core.provenance import library_versions
    from quantdesk.data.store.schema import SCHEMA_VERSION

    return {
        "format": FORMAT,
        "version": version,
        "previous": None if previous is None else previous["version"],
        "created_at": datetime.now(UTC).isoformat(),
        "store": {"schema_version": SCHEMA_VERSION},
        "libraries": library_versions(_LIBRARIES, missing="unknown"),
        "partitioning": {"bucket": "int(md5(symbol)[:8], 16) % buckets", "buckets": BUCKETS},
        "fingerprint": method,
        "tables": {name: s.entry for name, s in staged.items()},
    }


def _result(
    location: SnapshotLocation, doc: dict[str, Any], staged: dict[str, _Staged], *, created: bool
) -> SnapshotVersion:
    accounts = []
    for name, s in staged.items():
        files = s.entry["files"]
        new = {rel for _, rel in s.new} if created else set()
        written = [f for f in files if f["path"] in new]
        accounts.append(
            TableAccount(
                table=name,
                files=len(files),
                rows=int(s.entry["rows"]),
                written_files=len(written),
                written_rows=sum(f["rows"] for f in written),
                written_bytes=sum(f["bytes"] for f in written),
            )
        )
    return SnapshotVersion(
        url=location.url,
        version=int(doc["version"]),
        created=created,
        tables=tuple(accounts),
        manifest=doc,
    )


def _key(partition: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f"{k}={v}" for k, v in partition.items())


def _plain(value: Any) -> Any:
    """Return a JSON-ready scalar (numpy ints and strings to Python; missing to None)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _iso(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()
