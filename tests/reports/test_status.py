"""The catalog status called as a library: schedules, next runs and each job's own runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import nbformat

from quantdesk.reports.batch import run_batch
from quantdesk.reports.catalog import Catalog
from quantdesk.reports.status import catalog_status


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(n)"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_status_counts_runs_and_finds_the_next_run(tmp_path: Path) -> None:
    good = _notebook(tmp_path / "good.ipynb")
    catalog = tmp_path / "reports.yaml"
    catalog.write_text(
        "jobs:\n"
        f"  morning:\n    notebook: {good}\n    grid: {{n: [1, 2, 3]}}\n"
        '    schedule: "0 9 * * 1-5"\n    timezone: Europe/London\n'
        f"  adhoc:\n    notebook: {good}\n    description: by hand\n"
    )
    saturday = datetime(2026, 1, 3, 12, tzinfo=UTC)
    status = catalog_status(catalog, tmp_path / "reports", now=saturday)
    morning, adhoc = status.jobs
    assert morning["runs"] == 3 and adhoc["runs"] == 1
    # by hand: the weekday after Saturday 3 January 2026 is Monday the 5th, 09:00 in
    # London in winter is UTC
    assert morning["next_run"] == "2026-01-05T09:00:00+00:00"
    assert adhoc["next_run"] is None and morning["last_runs"] == {}
    assert status.summary().splitlines() == [
        "morning: 3 runs, 0 9 * * 1-5 Europe/London (next 2026-01-05T09:00:00+00:00)",
        "adhoc: 1 runs, manual",
        "  by hand",
    ]
    batch = run_batch(
        Catalog.load(catalog).job("adhoc"), executor="serial", reports_dir=tmp_path / "reports",
        progress=False,
    )  # fmt: skip
    assert batch.ok
    again = catalog_status(Catalog.load(catalog), tmp_path / "reports", now=saturday)
    assert again.to_dict()["jobs"][1]["last_runs"]["good"]["run_id"] == batch.runs[0].run_id
    assert again.jobs[0]["last_runs"] == {}  # the other job's run is not this job's
