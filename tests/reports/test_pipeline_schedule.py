"""The evening pipeline's schedule entry: its crontab line and systemd units.

The crontab line is run through /bin/sh with cron's bare environment, as cron would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.reports.catalog import Catalog
from quantdesk.reports.scheduler import pipeline_entry
from quantdesk.reports.timers import crontab_lines, systemd_units

SRC = Path(__file__).resolve().parents[2] / "src"
CATALOG = """
jobs:
  daily:
    schedule: "15 17 * * 1-5"
    timezone: America/New_York
    reports:
      - notebook: market_overview
pipeline:
  name: nightly
  exchange: XNYS
  delay_minutes: 75
  steps:
    update: {params: {simulated: true}}
"""
ENVIRON = {"QUANTDESK_HOME": "/srv/qd", "QUANTDESK_REPORTS": "/srv/reports",
           "QUANTDESK_WEBHOOK_TOKEN": "never-printed-123456"}  # fmt: skip


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "nightly.yaml"
    path.write_text(CATALOG, encoding="utf-8")
    return Catalog.load(path)


def test_the_pipeline_fires_at_17_15_new_york_on_weekdays(catalog: Catalog) -> None:
    entry = pipeline_entry(catalog)
    assert entry is not None
    # XNYS closes at 16:00 New York; 75 minutes later is 17:15.
    assert (entry.hour, entry.minute, entry.timezone) == (17, 15, "America/New_York")
    assert entry.schedule == "15 17 * * 1-5"
    assert entry.on_calendar == "Mon..Fri *-*-* 17:15:00 America/New_York"
    project = pipeline_entry(Catalog.load())
    assert project is not None and project.schedule == "15 17 * * 1-5"


def test_crontab_has_one_pipeline_line_that_runs_through_sh(
    catalog: Catalog, tmp_path: Path
) -> None:
    root, path = catalog.root, catalog.path
    environ = {**ENVIRON, "QUANTDESK_HOME": str(tmp_path / "home"),
               "QUANTDESK_REPORTS": str(tmp_path / "reports")}  # fmt: skip
    lines = crontab_lines(catalog, command="quantdesk", environ=environ)
    env = (f"mkdir -p {tmp_path}/reports && QUANTDESK_CATALOG={path} "
           f"QUANTDESK_HOME={tmp_path}/home QUANTDESK_REPORTS={tmp_path}/reports")  # fmt: skip
    assert lines[-3:] == [
        "CRON_TZ=America/New_York",
        "# the nightly pipeline: every step of each XNYS session due, in order "
        "(quantdesk pipeline status)",
        f"15 17 * * 1-5 cd {root} && {env} quantdesk pipeline run --catalog {path} "
        f">> {tmp_path}/reports/cron.log 2>&1",
    ]
    assert sum("pipeline run" in line for line in lines) == 1
    assert "never-printed" not in "\n".join(lines)
    # Only the report jobs asked for: no pipeline line.
    only_daily = crontab_lines(catalog, jobs=["daily"], environ=environ)
    assert not any("pipeline run" in x for x in only_daily)
    # The line's command through /bin/sh in cron's bare environment: `pipeline status`
    # instead of `run`, to see which catalog and store it reached.
    command = (
        lines[-1]
        .split(" ", 5)[5]
        .replace(
            "quantdesk pipeline run",
            f"PYTHONPATH={SRC} {sys.executable} -m quantdesk pipeline status --json",
        )
    )
    (tmp_path / "home").mkdir()
    ingest_simulated(tmp_path / "home" / "quantdesk.duckdb", symbols=1, days=30, progress=False)
    result = subprocess.run(["/bin/sh", "-c", command.replace(r"\%", "%")], cwd="/",
                            env={"PATH": os.defpath}, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = json.loads((tmp_path / "reports" / "cron.log").read_text())
    assert status["pipeline"] == "nightly" and status["last_session"] is None
    assert status["exchange"] == "XNYS"


def test_systemd_units_carry_the_settings_never_secrets(catalog: Catalog) -> None:
    units = systemd_units(catalog, command="/venv/bin/quantdesk", environ=ENVIRON)
    service, timer = units["quantdesk-pipeline.service"], units["quantdesk-pipeline.timer"]
    assert service.splitlines() == [
        "[Unit]",
        "Description=quantdesk nightly pipeline (XNYS sessions)",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={catalog.root}",
        "# left out, their names look like secrets: QUANTDESK_WEBHOOK_TOKEN",
        f'Environment="QUANTDESK_CATALOG={catalog.path}"',
        'Environment="QUANTDESK_HOME=/srv/qd"',
        'Environment="QUANTDESK_REPORTS=/srv/reports"',
        f"ExecStart=/bin/sh -c '/venv/bin/quantdesk pipeline run --catalog {catalog.path}'",
    ]
    assert "OnCalendar=Mon..Fri *-*-* 17:15:00 America/New_York" in timer.splitlines()
    assert "Persistent=true" in timer and "never-printed" not in service + timer


def test_a_catalog_without_a_pipeline_has_no_entry(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(CATALOG.split("pipeline:")[0], encoding="utf-8")
    catalog = Catalog.load(path)
    assert pipeline_entry(catalog) is None
    assert not any("pipeline run" in line for line in crontab_lines(catalog, environ=ENVIRON))
    with pytest.raises(ValueError, match="no pipeline: section"):
        systemd_units(catalog)


def test_schedule_systemd_prints_both_units(catalog: Catalog) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "quantdesk", "schedule", "systemd", "--catalog", str(catalog.path)],
        env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "# ~/.config/systemd/user/quantdesk-pipeline.service" in out
    assert "# ~/.config/systemd/user/quantdesk-pipeline.timer" in out
    assert "OnCalendar=Mon..Fri *-*-* 17:15:00 America/New_York" in out
