"""Garbage of a snapshot: files that no manifest names, left by failed or killed runs.

:func:`collect_garbage` lists (and unless ``dry_run`` deletes) every data file under the
snapshot's root that no published manifest references, and the staging folders of runs
that died.  It never deletes a file that any version's manifest names, so every
published version stays readable; and it leaves alone what is younger than
``min_age`` (default one hour), which may belong to a snapshot being written now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from quantdesk.data.snapshot.layout import TABLES
from quantdesk.data.snapshot.manifest import list_versions, read_manifest
from quantdesk.data.snapshot.storage import SnapshotLocation, open_location, redact, storage_errors

__all__ = ["GarbageReport", "collect_garbage"]

logger = logging.getLogger(__name__)

_STAGING = "_staging"


@dataclass(frozen=True)
class GarbageReport:
    """What a garbage collection found: orphan files, and whether they were deleted."""

    url: str
    versions: int
    referenced: int
    orphans: tuple[str, ...]
    deleted: bool

    def summary(self) -> str:
        """Return one line: how many files are referenced, and the orphans."""
        verb = "deleted" if self.deleted else "found (dry run)"
        return (
            f"{redact(self.url)}: {self.versions} versions reference {self.referenced} files; "
            f"{len(self.orphans)} orphan paths {verb}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data (``--json``)."""
        return {
            "url": redact(self.url),
            "versions": self.versions,
            "referenced": self.referenced,
            "orphans": list(self.orphans),
            "deleted": self.deleted,
        }


def collect_garbage(
    url: str,
    *,
    min_age: timedelta = timedelta(hours=1),
    dry_run: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> GarbageReport:
    """Return the orphan files of the snapshot at ``url``, deleted unless ``dry_run``.

    An orphan is a file under a table's folder that no published manifest names, or a
    staging folder of a run that died, older than ``min_age``.
    """
    location = open_location(url, storage_options)
    versions = list_versions(location)
    referenced: set[str] = set()
    for version in versions:
        for table in read_manifest(location, version)["tables"].values():
            referenced.update(location.path(f["path"]) for f in table["files"])
    cutoff = datetime.now(UTC) - min_age
    orphans: list[str] = []
    with storage_errors(location.url, "listing the files of"):
        for table in TABLES:
            for path in _find(location, table):
                if path not in referenced and _older(location, path, cutoff):
                    orphans.append(path)
        orphans.extend(p for p in _children(location, _STAGING) if _older(location, p, cutoff))
    if orphans and not dry_run:
        with storage_errors(location.url, "deleting the orphan files of"):
            for path in orphans:
                location.fs.rm(path, recursive=True)
    report = GarbageReport(
        url=url,
        versions=len(versions),
        referenced=len(referenced),
        orphans=tuple(orphans),
        deleted=bool(orphans) and not dry_run,
    )
    logger.info("%s", report.summary())
    return report


def _find(location: SnapshotLocation, folder: str) -> list[str]:
    try:
        return [str(p) for p in location.fs.find(location.path(folder))]
    except FileNotFoundError:
        return []


def _children(location: SnapshotLocation, folder: str) -> list[str]:
    try:
        return [str(p) for p in location.fs.ls(location.path(folder), detail=False)]
    except FileNotFoundError:
        return []


def _older(location: SnapshotLocation, path: str, cutoff: datetime) -> bool:
    """Return whether ``path`` was last modified before ``cutoff`` (unknown: it was)."""
    try:
        modified = location.fs.modified(path)
    except (NotImplementedError, FileNotFoundError, IsADirectoryError):
        return True
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return bool(modified < cutoff)
