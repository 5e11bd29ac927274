"""Bars of one snapshot version, pinned when a job is submitted and read where it runs.

A cluster job (regime fits, sweeps, scoring, backfills) hands its tasks a
:class:`SnapshotBars`: the snapshot's URL, the version the job pinned when it was
submitted, and the window and timeframe of every read.  A task on a Dask worker calls
:meth:`SnapshotBars.bars` for its own symbols and reads them from object storage with
:class:`~quantdesk.data.snapshot.SnapshotReader`; no bars travel from the client, no
worker sees the DuckDB file, and every task reads the same data even when a new
snapshot version is published while the job runs.

The object carries no credentials: a worker's filesystem finds its own in its
environment or fsspec's configuration (``AWS_*`` variables, ``FSSPEC_S3_*``,
``~/.config/fsspec``), as :mod:`fsspec` does for any URL.

Examples
--------
>>> pin = SnapshotBars("s3://research/snapshots", 7, start="2020-01-01")
>>> pin
SnapshotBars('s3://research/snapshots', version 7, 1d, 2020-01-01 .. last bar)
>>> pin.to_dict()
{'url': 's3://research/snapshots', 'version': 7}
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from quantdesk.data.snapshot import SnapshotReader

__all__ = ["SnapshotBars", "snapshot_reader"]

logger = logging.getLogger(__name__)

# One reader per thread: a reader holds a DuckDB connection, which one thread at a time
# may use (a Dask worker may run several tasks at once on its threads).
_READERS = threading.local()


def _readers() -> dict[tuple[str, int], SnapshotReader]:
    cache: dict[tuple[str, int], SnapshotReader] | None = getattr(_READERS, "cache", None)
    if cache is None:
        cache = _READERS.cache = {}
    return cache


def snapshot_reader(url: str, version: int) -> SnapshotReader:
    """Return this thread's reader of ``url`` at ``version`` (opened once, then reused).

    A version never changes once published, so one reader serves every task of a
    worker thread that reads it (a worker runs thousands of small tasks; each would
    otherwise read the manifest again).
    """
    from quantdesk.data.snapshot import SnapshotReader

    cache = _readers()
    key = (url, int(version))
    reader = cache.get(key)
    if reader is None:
        reader = cache[key] = SnapshotReader(url, as_of=int(version))
    return reader


@dataclass(frozen=True)
class SnapshotBars:
    """A snapshot version and a window: what a cluster task reads its bars from.

    Attributes
    ----------
    url
        The snapshot's fsspec URL (``s3://bucket/prefix``, ``gs://...``, a local folder).
    version
        The manifest version every read uses (pinned by :meth:`pin` at submit time).
    timeframe
        The bar length of every read.
    start, end
        The window of every read (inclusive; ``None``: the first or the last bar).
    """

    url: str
    version: int
    timeframe: str = "1d"
    start: Any = None
    end: Any = None

    @classmethod
    def pin(
        cls,
        url: str,
        as_of: int | None = None,
        *,
        timeframe: str = "1d",
        start: Any = None,
        end: Any = None,
    ) -> SnapshotBars:
        """Return the snapshot at ``as_of`` (default: its newest version), pinned.

        Raises
        ------
        FileNotFoundError, OSError, ValueError
            As :class:`~quantdesk.data.snapshot.SnapshotReader`: no snapshot at the URL or
            no such version (``SnapshotError``), an unreachable object store
            (``SnapshotStorageError``); the message names the URL.
        """
        from quantdesk.data.snapshot import SnapshotReader

        reader = SnapshotReader(url, as_of=as_of)
        pinned = cls(url, int(reader.version), timeframe, start, end)
        _readers().setdefault((url, pinned.version), reader)
        logger.info("pinned snapshot %s version %d", url, pinned.version)
        return pinned

    def reader(self) -> SnapshotReader:
        """Return this process's reader of the pinned version."""
        return snapshot_reader(self.url, self.version)

    def symbols(self) -> list[str]:
        """Return the sorted symbols that have bars in the snapshot version."""
        return self.reader().symbols()

    def bars(self, symbols: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Return long bars of ``symbols`` over the window, as ``MarketStore.bars`` would."""
        return self.reader().bars(symbols, self.start, self.end, self.timeframe)

    def panels(
        self, fields: Sequence[str], symbols: str | Sequence[str] | None = None
    ) -> dict[str, pd.DataFrame]:
        """Return one wide panel per field over the window, as ``MarketStore.panels``."""
        return self.reader().panels(list(fields), symbols, self.start, self.end, self.timeframe)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"url", "version"}``: what a record of the data read says."""
        return {"url": self.url, "version": self.version}

    def __repr__(self) -> str:
        start = "first bar" if self.start is None else str(self.start)
        end = "last bar" if self.end is None else str(self.end)
        return (
            f"SnapshotBars({self.url!r}, version {self.version}, {self.timeframe}, "
            f"{start} .. {end})"
        )
