"""Rerun a past report on the data it read, and say what else changed since.

A report run that read a Parquet snapshot records its URL and version in ``run.json``
(beside the notebook's code commit and the library versions).  :func:`rerun_report`
(``quantdesk report rerun RUN_ID``) runs the same notebook with the same parameters
and kernel settings, its kernel pinned to that snapshot version, into a new run folder
whose record names the run it repeats; :class:`ReportRerun` says whether the code or
the libraries differ from the original's, so a difference in the numbers can be
traced to its cause (papermill records parameters only; Quarto's freeze hashes the
source, not the data).

Examples
--------
>>> rerun = rerun_report("20261121T201500Z-3fa2c1")  # doctest: +SKIP
>>> print(rerun.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdesk.config import settings
from quantdesk.reports.records import RECORD_NAME, RunRecord

__all__ = ["ReportRerun", "find_run", "rerun_report"]

logger = logging.getLogger(__name__)


def find_run(run_id: str, reports_dir: str | Path | None = None) -> RunRecord:
    """Return the record of the run ``run_id`` (of any notebook) under ``reports_dir``.

    Raises
    ------
    LookupError
        No run, or several runs of different notebooks, have that id.
    """
    root = Path(reports_dir) if reports_dir is not None else settings().reports_dir
    found = sorted(root.glob(f"*/{run_id}/{RECORD_NAME}")) if root.is_dir() else []
    if not found:
        raise LookupError(f"no report run {run_id!r} under {root} (see `quantdesk report list`)")
    if len(found) > 1:
        names = ", ".join(p.parent.parent.name for p in found)
        raise LookupError(f"run id {run_id!r} names runs of several notebooks: {names}")
    return RunRecord.load(found[0])


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Return ``{key: (before, after)}`` for every key whose value differs."""
    keys = sorted(set(before) | set(after))
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)}


@dataclass(frozen=True)
class ReportRerun:
    """A past report run again on its snapshot version, and what differs from then.

    Attributes
    ----------
    original, record
        The run repeated and the new run.
    code
        ``{field: (then, now)}`` of the notebook's code (``commit``, ``dirty``,
        ``sha256``) that differ; empty when the code is the same.
    libraries
        ``{library: (then, now)}`` of the recorded library versions that differ.
    """

    original: RunRecord
    record: RunRecord
    code: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    libraries: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Return whether the rerun succeeded."""
        return self.record.ok

    def to_dict(self) -> dict[str, Any]:
        """Return the rerun as one JSON-able document."""
        return {
            "original": self.original.run_id,
            "rerun": self.record.to_dict(),
            "snapshot": self.record.snapshot,
            "code_differs": bool(self.code),
            "code": {k: list(v) for k, v in self.code.items()},
            "libraries_differ": bool(self.libraries),
            "libraries": {k: list(v) for k, v in self.libraries.items()},
        }

    def summary(self) -> str:
        """Return the new run's summary and one line each on code and libraries."""
        snap = self.record.snapshot or {}
        lines = [
            f"reran {self.original.notebook} {self.original.run_id} as {self.record.run_id} "
            f"on snapshot {snap.get('url')} version {snap.get('version')}",
            self.record.summary(),
        ]
        if self.code:
            shown = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in self.code.items())
            lines.append(f"code differs: {shown}")
        else:
            lines.append("code: the same")
        if self.libraries:
            shown = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in self.libraries.items())
            lines.append(f"libraries differ: {shown}")
        else:
            lines.append("libraries: the same")
        return "\n".join(lines)


def rerun_report(
    run_id: str,
    *,
    reports_dir: str | Path | None = None,
    timeout: float | None = None,
) -> ReportRerun:
    """Return the rerun of a past report on the snapshot version it read.

    The notebook (the same path), parameters, kernel, timeout and job of the original
    run are used again; the kernel reads the recorded snapshot version, whatever was
    ingested or published since.  The new run gets its own folder and id; its record's
    ``rerun_of`` names the original.

    Parameters
    ----------
    run_id
        The id of the past run (its folder name, as ``quantdesk report list`` shows).
    reports_dir
        Where the runs are (default ``$QUANTDESK_REPORTS`` or the project's).
    timeout
        Seconds per cell (default: the original run's).

    Raises
    ------
    LookupError
        No such run.
    ValueError
        The run read the store, not a snapshot, so its data cannot be read again.
    FileNotFoundError
        The notebook is no longer where it was.
    OSError
        The snapshot cannot be read (the message names its URL).
    """
    from quantdesk.reports.runner import run_report

    original = find_run(run_id, reports_dir)
    snap = original.snapshot
    if not snap:
        raise ValueError(
            f"run {run_id} of {original.notebook} read the store, not a snapshot: its data "
            "cannot be read again. Runs given a snapshot (`quantdesk report run NOTEBOOK "
            "--snapshot URL`, or QUANTDESK_SNAPSHOT) record the version they read"
        )
    notebook = Path(original.input_path)
    if not notebook.is_file():
        raise FileNotFoundError(f"the notebook of run {run_id} is gone: {notebook}")
    record = run_report(
        notebook,
        original.parameters,
        reports_dir=Path(reports_dir) if reports_dir is not None else None,
        timeout=timeout if timeout is not None else original.timeout,
        kernel_name=original.kernel_name,
        job=original.job,
        snapshot=str(snap["url"]),
        snapshot_version=int(snap["version"]),
        rerun_of=original.run_id,
    )
    # The new record holds the code and versions of now: compare the two records.
    rerun = ReportRerun(
        original,
        record,
        code=_changed(original.code, record.code) if original.code else {},
        libraries=_changed(original.versions, record.versions),
    )
    logger.info(rerun.summary())
    return rerun
