"""A snapshot's manifests: one JSON document per version, the commit of that version.

A version exists once its manifest does.  The manifest lists every file of the version
(its table, partition, rows, first and last ``ts`` and symbol, SHA-256, size and the
partition's row fingerprint), the columns of each table, the store's schema version and
the libraries that wrote it.  It never holds the URL, an endpoint or a credential: a
snapshot copied elsewhere reads the same.

Publishing is atomic and never overwrites: on a local disk the manifest is written
under a temporary name and hard-linked into place (which fails if the version exists);
on an object store it is one PUT of the whole document, after checking that the version
is not there yet.  One writer per snapshot URL at a time is assumed (two racing
writers on an object store could both pass the check; the later PUT would win).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

from quantdesk.data.snapshot.layout import (
    FORMAT,
    MANIFESTS,
    manifest_name,
    parse_manifest_name,
)
from quantdesk.data.snapshot.storage import (
    SnapshotError,
    SnapshotLocation,
    open_location,
    redact,
    storage_errors,
)

__all__ = [
    "VersionHistory",
    "list_versions",
    "publish_manifest",
    "read_manifest",
    "version_history",
]

logger = logging.getLogger(__name__)


def list_versions(location: SnapshotLocation) -> list[int]:
    """Return the published versions at ``location``, oldest first ([] for none)."""
    folder = location.path(MANIFESTS)
    with storage_errors(location.url, "listing the versions of"):
        # A listing cached by the filesystem would miss versions published since.
        location.fs.invalidate_cache(folder)
        try:
            names = location.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
    found = (parse_manifest_name(str(name).rstrip("/").rsplit("/", 1)[-1]) for name in names)
    return sorted(v for v in found if v is not None)


def read_manifest(location: SnapshotLocation, version: int) -> dict[str, Any]:
    """Return the manifest of ``version``.

    Raises
    ------
    SnapshotError
        When the version was never published, or its manifest is of another format.
    """
    path = location.path(f"{MANIFESTS}/{manifest_name(version)}")
    with storage_errors(location.url, f"reading version {version} of"):
        try:
            text = location.fs.cat_file(path)
        except FileNotFoundError:
            published = list_versions(location)
            raise SnapshotError(
                f"{location}: no version {version}; published: "
                f"{', '.join(map(str, published)) or 'none'}"
            ) from None
    doc: dict[str, Any] = json.loads(text)
    if doc.get("format") != FORMAT:
        raise SnapshotError(
            f"{location}: version {version} is in format {doc.get('format')!r}; "
            f"this quantdesk reads {FORMAT!r}"
        )
    return doc


def publish_manifest(location: SnapshotLocation, version: int, doc: dict[str, Any]) -> str:
    """Write the manifest of ``version`` last and atomically; return its path.

    Raises
    ------
    SnapshotError
        When the version exists already (another writer published it meanwhile).
    """
    data = json.dumps(doc, indent=1, sort_keys=False).encode()
    folder = location.path(MANIFESTS)
    final = f"{folder}/{manifest_name(version)}"
    taken = SnapshotError(
        f"{location}: version {version} was published by another writer meanwhile; "
        "nothing of this snapshot was published (run it again)"
    )
    with storage_errors(location.url, f"publishing version {version} of"):
        if location.local:
            os.makedirs(folder, exist_ok=True)
            temp = f"{folder}/.{manifest_name(version)}.{uuid.uuid4().hex}.tmp"
            with open(temp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                # A hard link publishes the whole file at once and refuses an existing name.
                os.link(temp, final)
            except FileExistsError:
                raise taken from None
            finally:
                os.unlink(temp)
        else:
            location.fs.invalidate_cache(folder)
            if location.fs.exists(final):
                raise taken
            # One PUT: the object appears whole or not at all.
            location.fs.pipe_file(final, data)
    logger.debug("published %s", final)
    return final


@dataclass(frozen=True)
class VersionHistory:
    """The versions of a snapshot: number, time written, and rows and files per table."""

    url: str
    versions: tuple[dict[str, Any], ...]

    def summary(self) -> str:
        """Return one line per version, oldest first."""
        if not self.versions:
            return f"{redact(self.url)}: no version published"
        lines = [f"{redact(self.url)}: {len(self.versions)} versions"]
        for v in self.versions:
            held = ", ".join(
                f"{name} {t['rows']:,} rows/{t['files']} files" for name, t in v["tables"].items()
            )
            lines.append(f"  v{v['version']}  {v['created_at']}  {held}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the history as plain data (``--json``)."""
        return {"url": redact(self.url), "versions": list(self.versions)}


def version_history(url: str, storage_options: dict[str, Any] | None = None) -> VersionHistory:
    """Return the published versions of the snapshot at ``url`` with what each holds."""
    location = open_location(url, storage_options)
    rows = []
    for version in list_versions(location):
        doc = read_manifest(location, version)
        rows.append(
            {
                "version": version,
                "created_at": doc["created_at"],
                "tables": {
                    name: {"rows": t["rows"], "files": len(t["files"])}
                    for name, t in doc["tables"].items()
                },
            }
        )
    return VersionHistory(url=url, versions=tuple(rows))
