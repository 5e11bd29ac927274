"""The record of one report run: :class:`RunRecord`, stored as ``run.json`` in its folder.

:func:`quantdesk.reports.runner.run_report` writes it; :mod:`quantdesk.reports.publish`
(the index, ``quantdesk report list``) and batches read it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["RECORD_NAME", "SCHEMA_VERSION", "RunRecord"]

RECORD_NAME = "run.json"
SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    """The record of one report run, as stored in ``run.json``.

    Attributes
    ----------
    notebook
        Notebook name (the file stem), also the first folder level under ``reports_dir``.
    run_id
        Folder name of the run: a sortable UTC timestamp and a short parameter hash
        unless given.
    parameters
        The parameters injected into the notebook (after a JSON round trip).
    status
        ``"ok"`` or ``"failed"``.
    reason
        ``None`` when ok, else one line: ``"cell error: ValueError: ..."``,
        ``"kernel died ..."``, ``"cell exceeded timeout of N s"``, ...
    error
        ``None`` when ok, else ``{"ename", "evalue", "cell_index"}`` of the failure.
    started_at, finished_at
        ISO 8601 UTC times around the execution (kernel start to kernel stop).
    duration_s
        Seconds from start to the run folder being complete (HTML written).
    input_path
        Absolute path of the source notebook.
    run_dir
        Absolute path of the run folder when the run was written.
    outputs
        File names relative to ``run_dir``: ``ipynb``, ``html``, ``record``.
    kernel_name, timeout
        Execution settings (``timeout`` in seconds per cell, ``None`` for never).
    versions
        Versions of Python and of the installed packages that matter to a report.
    data_fingerprint
        A short hash of the market store's ingest log and table sizes, or
        ``"no store"`` / ``"unavailable"``; equal fingerprints mean the same data.
    data_summary
        What the fingerprint was computed from (store path, counts, last ingest).
    host
        Machine that ran the report.
    redacted
        Names of environment variables whose values were found and redacted.
    job
        The catalog job whose batch made the run; ``None`` for a one-off run
        (``quantdesk report run``, a notebook's own call).  ``quantdesk report list``
        counts only a job's own runs as its last run.
    snapshot
        ``{"url", "version"}`` of the Parquet snapshot the kernel read its bars from
        (pinned for the whole run), or ``None`` when it read the store: a run with a
        snapshot can be rerun on the same data (``quantdesk report rerun``).
    code
        The notebook's code: ``commit`` (git ``HEAD`` of its work tree, or None),
        ``dirty`` (uncommitted changes) and ``sha256`` of the notebook file
        (:func:`quantdesk.core.provenance.code_version`).
    rerun_of
        The run id this run repeated (``quantdesk report rerun``), else ``None``.
    """

    notebook: str
    run_id: str
    parameters: dict[str, Any]
    status: str
    reason: str | None
    error: dict[str, Any] | None
    started_at: str
    finished_at: str
    duration_s: float
    input_path: str
    run_dir: str
    outputs: dict[str, str]
    kernel_name: str
    timeout: float | None
    versions: dict[str, str] = field(default_factory=dict)
    data_fingerprint: str = "unavailable"
    data_summary: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    redacted: list[str] = field(default_factory=list)
    job: str | None = None
    snapshot: dict[str, Any] | None = None
    code: dict[str, Any] = field(default_factory=dict)
    rerun_of: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        """Return whether the run succeeded (the CLI exits non-zero when it did not)."""
        return self.status == "ok"

    @property
    def html_path(self) -> Path:
        """Return the path of the published HTML."""
        return Path(self.run_dir) / self.outputs["html"]

    @property
    def ipynb_path(self) -> Path:
        """Return the path of the executed notebook."""
        return Path(self.run_dir) / self.outputs["ipynb"]

    @property
    def record_path(self) -> Path:
        """Return the path of ``run.json``."""
        return Path(self.run_dir) / self.outputs.get("record", RECORD_NAME)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (the content of ``run.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Return a record from a ``run.json`` dict; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Return the record stored in a ``run.json`` file (or in a run folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / RECORD_NAME
        record = cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        # The folder may have moved since the run; trust where the file is now.
        record.run_dir = str(path.parent.resolve())
        return record

    def summary(self) -> str:
        """Return a few readable lines: what ran, how it ended, where the report is."""
        head = f"{self.notebook} {self.run_id}: {self.status} in {self.duration_s:.1f} s"
        lines = [head]
        if self.reason:
            lines.append(f"  reason:     {self.reason}")
        params = json.dumps(self.parameters, sort_keys=True, default=str)
        lines += [
            f"  parameters: {params}",
            f"  data:       {self.data_fingerprint}",
        ]
        if self.snapshot:
            lines.append(
                f"  snapshot:   {self.snapshot.get('url')} version {self.snapshot.get('version')}"
            )
        if self.rerun_of:
            lines.append(f"  rerun of:   {self.rerun_of}")
        lines += [
            f"  html:       {self.html_path}",
            f"  notebook:   {self.ipynb_path}",
        ]
        return "\n".join(lines)
