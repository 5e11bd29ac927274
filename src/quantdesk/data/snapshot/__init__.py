"""Versioned Parquet snapshots of the store, on a local disk or any fsspec URL, and their reader.

Workers on other machines read a snapshot, never the DuckDB file:

- ``writer``: :func:`write_snapshot` (``MarketStore.snapshot``, ``quantdesk data snapshot
  URL``) writes the store's changed partitions and a new manifest version;
- ``reader``: :class:`SnapshotReader` answers the store's reads (``bars``, ``panel``,
  ``panels``, ``regimes``) from one version, with the store's own SQL;
- ``layout``: partitions, file names and the tables a snapshot holds;
- ``manifest``: the versions, their manifests and how one is published;
- ``storage``: URLs, credentials, timeouts and the errors of the storage;
- ``prune``: :func:`collect_garbage`, which deletes files no manifest names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "SnapshotReader": "quantdesk.data.snapshot.reader",
    "SnapshotVersion": "quantdesk.data.snapshot.writer",
    "write_snapshot": "quantdesk.data.snapshot.writer",
    "SnapshotError": "quantdesk.data.snapshot.storage",
    "SnapshotStorageError": "quantdesk.data.snapshot.storage",
    "collect_garbage": "quantdesk.data.snapshot.prune",
    "GarbageReport": "quantdesk.data.snapshot.prune",
}
_SUBMODULES = frozenset({"layout", "manifest", "reader", "storage", "writer", "prune"})

__all__ = [
    "GarbageReport",
    "SnapshotError",
    "SnapshotReader",
    "SnapshotStorageError",
    "SnapshotVersion",
    "collect_garbage",
    "write_snapshot",
]

if TYPE_CHECKING:
    from quantdesk.data.snapshot.prune import GarbageReport, collect_garbage
    from quantdesk.data.snapshot.reader import SnapshotReader
    from quantdesk.data.snapshot.storage import SnapshotError, SnapshotStorageError
    from quantdesk.data.snapshot.writer import SnapshotVersion, write_snapshot

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
