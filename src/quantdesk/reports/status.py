"""The catalog's jobs with their schedules and each notebook's last run by the job.

``quantdesk report list`` prints :func:`catalog_status`; a notebook or a dashboard
reads the same rows.

Examples
--------
>>> import tempfile
>>> from datetime import UTC, datetime
>>> reports = tempfile.TemporaryDirectory()
>>> status = catalog_status(reports_dir=reports.name, now=datetime(2026, 1, 5, 12, tzinfo=UTC))
>>> print(status.summary().splitlines()[0])  # doctest: +ELLIPSIS
daily: ... runs, 15 17 * * 1-5 America/New_York (next 2026-01-05T17:15:00-05:00)
>>> reports.cleanup()
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quantdesk.reports.catalog import Catalog

__all__ = ["CatalogStatus", "catalog_status"]


@dataclass(frozen=True)
class CatalogStatus:
    """One row per catalog job: schedule, timezone, next run, runs, last run per notebook."""

    jobs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"jobs": [row, ...]}``; each row as in :attr:`jobs`."""
        return {"jobs": self.jobs}

    def summary(self) -> str:
        """Return each job's run count and schedule, then its notebooks' last runs."""
        lines = []
        for j in self.jobs:
            when = (
                f"{j['schedule']} {j['timezone']} (next {j['next_run']})"
                if j["schedule"]
                else "manual"
            )
            lines.append(f"{j['job']}: {j['runs']} runs, {when}")
            if j["description"]:
                lines.append(f"  {j['description']}")
            lines += [
                f"  last {stem}: {last['status']} {last['started_at']} ({last['run_id']})"
                for stem, last in j["last_runs"].items()
            ]
        return "\n".join(lines)


def catalog_status(
    catalog: Catalog | str | os.PathLike[str] | None = None,
    reports_dir: str | Path | None = None,
    now: datetime | None = None,
) -> CatalogStatus:
    """Return the catalog's jobs, their schedules and each notebook's last run by the job.

    Parameters
    ----------
    catalog
        A loaded catalog or its file (default ``research/reports.yaml``).
    reports_dir
        Where the runs are (default ``$QUANTDESK_REPORTS`` or ``./reports``).
    now
        The time the next runs are counted from (default: now).

    Raises
    ------
    quantdesk.reports.catalog.CatalogError
        The catalog file is invalid (the message names file, job and field).
    FileNotFoundError
        No catalog file.
    """
    from quantdesk.reports.catalog import Catalog
    from quantdesk.reports.publish import list_runs

    cat = catalog if isinstance(catalog, Catalog) else Catalog.load(catalog)
    runs = list_runs(reports_dir)
    now = now or datetime.now(UTC)
    jobs = []
    for name, job in cat.jobs.items():
        last = {}
        # Only runs made by this job's batches count: a one-off `report run` of the same
        # notebook (other parameters, another store) is not the job's last run.
        own = runs[runs["job"] == name] if len(runs) else runs
        for notebook in job.notebooks:
            stem = Path(str(notebook)).stem
            mine = own[own["notebook"] == stem] if len(own) else own
            if len(mine):
                top = mine.iloc[0]
                last[stem] = {"run_id": top["run_id"], "status": top["status"],
                              "started_at": str(top["started_at"])}  # fmt: skip
        jobs.append(
            {
                "job": name,
                "description": job.description,
                "schedule": job.schedule,
                "timezone": job.timezone,
                "next_run": job.next_run(now).isoformat() if job.schedule else None,
                "runs": len(job.runs()),
                "last_runs": last,
            }
        )
    return CatalogStatus(jobs)
