"""The scheduler on a clock the test controls: fires on time, reports missed runs after a
downtime, never runs a job twice at once, persists its state; and the crontab lines.

The scheduler is real; only the *runner* it calls is a test double (it records the job and
can block on an event), and time is a fake clock that the fake ``sleep`` moves on.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quantdesk.reports.catalog import Catalog, Job
from quantdesk.reports.scheduler import Scheduler, default_state_path
from quantdesk.reports.timers import crontab_lines

NY = ZoneInfo("America/New_York")
# Seconds a test waits for an event (a run finishing, a runner entered) before failing: an
# upper bound for a hang, returned from as soon as the event happens, so a slow machine
# never fails a test that a fast one passes.
WAIT = 60.0

CATALOG = """
jobs:
  daily:
    description: After the US close
    schedule: "15 17 * * 1-5"
    timezone: America/New_York
    notebook: regime_report
    grid: {symbols: [SPX, IXIC]}
  hourly:
    schedule: "0 * * * *"
    timezone: UTC
    notebook: market_overview
  adhoc:
    notebook: strategy_tearsheet
"""


class FakeClock:
    """A clock that moves only when told; ``sleep`` on it advances it."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def set(self, t: datetime) -> None:
        self.now = t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


class RecordingRunner:
    """Runner double: records each job, optionally blocks until released, returns ok."""

    def __init__(self, block: bool = False, ok: bool = True, error: bool = False) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        if not block:
            self.release.set()
        self.ok, self.error = ok, error

    def __call__(self, job: Job) -> Any:
        self.calls.append(job.name)
        self.entered.set()
        assert self.release.wait(WAIT), "test never released the runner"
        if self.error:
            raise RuntimeError("cluster unreachable")
        return type("Result", (), {"ok": self.ok, "failed": [] if self.ok else ["x"]})()


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "research" / "reports.yaml"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(CATALOG))
    return Catalog.load(path)


def only(cat: Catalog, *names: str) -> Catalog:
    return Catalog(cat.path, {n: cat.jobs[n] for n in names})


def kinds(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.job, e.kind) for e in events]


def test_fires_at_the_scheduled_new_york_times(catalog: Catalog, tmp_path: Path) -> None:
    clock, runner = FakeClock(datetime(2024, 6, 3, 16, 0, tzinfo=NY)), RecordingRunner()
    sched = Scheduler(
        only(catalog, "daily"), state_path=tmp_path / "state.json", clock=clock, runner=runner
    )
    assert sched.tick() == []  # first sight: no backlog
    clock.set(datetime(2024, 6, 3, 17, 14, 59, tzinfo=NY))
    assert sched.tick() == []
    clock.set(datetime(2024, 6, 3, 17, 15, tzinfo=NY))  # Monday 17:15 EDT = 21:15 UTC
    events = sched.tick()
    assert kinds(events) == [("daily", "started")]
    assert events[0].scheduled_for == datetime(2024, 6, 3, 21, 15, tzinfo=UTC)
    assert sched.wait(WAIT)
    assert runner.calls == ["daily"]
    clock.set(datetime(2024, 6, 3, 17, 16, tzinfo=NY))
    assert sched.tick() == []
    # Friday 17:15 fires; the weekend does not; Monday does.
    clock.set(datetime(2024, 6, 7, 17, 15, tzinfo=NY))
    sched.tick()
    assert sched.wait(WAIT)
    clock.set(datetime(2024, 6, 9, 23, 0, tzinfo=NY))
    assert sched.tick() == []
    assert sched.next_due() == datetime(2024, 6, 10, 17, 15, tzinfo=NY)
    state = json.loads((tmp_path / "state.json").read_text())["jobs"]["daily"]
    assert state["last_status"] == "ok" and state["running"] is False


def test_run_forever_fires_across_the_dst_change_with_bounded_sleeps(
    catalog: Catalog, tmp_path: Path
) -> None:
    clock, runner = FakeClock(datetime(2024, 11, 1, 12, 0, tzinfo=UTC)), RecordingRunner()
    stop = threading.Event()
    sched: Scheduler

    def sleep(seconds: float) -> None:
        assert sched.wait(WAIT)  # each fake sleep starts after the runs it follows have finished
        clock.sleep(seconds)
        if clock.now >= datetime(2024, 11, 5, 0, 0, tzinfo=UTC):
            stop.set()

    sched = Scheduler(
        only(catalog, "daily"),
        state_path=tmp_path / "state.json",
        clock=clock,
        sleep=sleep,
        runner=runner,
    )
    sched.run_forever(stop)
    events = sched.state["jobs"]["daily"]["events"]
    started = [e["times"][0] for e in events if e["kind"] == "started"]
    # Friday 17:15 EDT = 21:15 UTC; after the fall-back, Monday 17:15 EST = 22:15 UTC.
    assert started == ["2024-11-01T21:15:00+00:00", "2024-11-04T22:15:00+00:00"]
    started_at = [e["at"] for e in events if e["kind"] == "started"]
    assert started_at == started  # woke exactly on time: the sleep aims at the due time
    assert runner.calls == ["daily", "daily"]
    assert min(clock.sleeps) > 0 and max(clock.sleeps) <= 60.0
    # Bounded by 60 s: about one wake-up a minute over 3.5 days, not a busy loop.
    assert 4000 < len(clock.sleeps) < 6000


def test_missed_runs_after_downtime_are_reported_and_caught_up_once(
    catalog: Catalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_path = tmp_path / "state.json"
    clock, runner = FakeClock(datetime(2024, 6, 3, 17, 0, tzinfo=NY)), RecordingRunner()
    first = Scheduler(only(catalog, "daily"), state_path=state_path, clock=clock, runner=runner)
    first.tick()
    clock.set(datetime(2024, 6, 3, 17, 15, tzinfo=NY))
    first.tick()
    assert first.wait(WAIT)
    # The scheduler is down from Monday evening until Thursday 18:00 New York.
    clock.set(datetime(2024, 6, 6, 18, 0, tzinfo=NY))
    second = Scheduler(only(catalog, "daily"), state_path=state_path, clock=clock, runner=runner)
    with caplog.at_level(logging.WARNING, logger="quantdesk.reports.scheduler"):
        events = second.tick()
    assert second.wait(WAIT)
    assert kinds(events) == [("daily", "missed"), ("daily", "started")]
    missed, started = events
    assert [t.astimezone(NY).strftime("%a %H:%M") for t in missed.times] == [
        "Tue 17:15",
        "Wed 17:15",
    ]
    assert started.scheduled_for == datetime(2024, 6, 6, 17, 15, tzinfo=NY)
    assert "catch-up" in started.detail and "late by 0:45:00" in started.detail
    assert runner.calls == ["daily", "daily"]  # once for Monday, once to catch up
    messages = [r.getMessage() for r in caplog.records]
    assert any("missed" in m and "2 due time" in m for m in messages)
    saved = json.loads(state_path.read_text())["jobs"]["daily"]
    recorded = [e for e in saved["events"] if e["kind"] == "missed"]
    assert recorded[0]["times"] == ["2024-06-04T21:15:00+00:00", "2024-06-05T21:15:00+00:00"]
    assert saved["last_scheduled"] == "2024-06-06T21:15:00+00:00"


def test_a_running_job_is_not_started_twice_and_does_not_block_others(
    catalog: Catalog, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2024, 6, 3, 17, 0, tzinfo=NY))
    runner = RecordingRunner(block=True)
    sched = Scheduler(
        only(catalog, "daily", "hourly"),
        state_path=tmp_path / "state.json",
        clock=clock,
        runner=runner,
    )
    sched.tick()
    clock.set(datetime(2024, 6, 3, 17, 15, tzinfo=NY))
    assert kinds(sched.tick()) == [("daily", "started")]
    assert runner.entered.wait(WAIT)
    # 18:00 NY = 22:00 UTC: the hourly job is due and starts while daily still runs.
    clock.set(datetime(2024, 6, 3, 18, 0, tzinfo=NY))
    assert kinds(sched.tick()) == [("hourly", "started")]
    assert sorted(sched.running()) == ["daily", "hourly"]
    # Daily is due again on Tuesday while Monday's run is still going: skipped.
    clock.set(datetime(2024, 6, 4, 17, 15, tzinfo=NY))
    events = [e for e in sched.tick() if e.job == "daily"]
    assert kinds(events) == [("daily", "skipped")]
    assert "still running" in events[0].detail
    assert runner.calls.count("daily") == 1
    runner.release.set()
    assert sched.wait(WAIT) and sched.running() == []
    clock.set(datetime(2024, 6, 5, 17, 15, tzinfo=NY))
    assert ("daily", "started") in kinds(sched.tick())
    assert sched.wait(WAIT)
    assert runner.calls.count("daily") == 2
    daily = sched.state["jobs"]["daily"]
    assert [e["kind"] for e in daily["events"]] == [
        "started",
        "skipped",
        "finished",
        "started",
        "finished",
    ]
    assert daily["events"][1]["times"] == ["2024-06-04T21:15:00+00:00"]


def test_state_is_persisted_atomically_and_reloaded(catalog: Catalog, tmp_path: Path) -> None:
    state_path = tmp_path / "home" / "scheduler_state.json"
    clock, runner = FakeClock(datetime(2024, 6, 3, 17, 0, tzinfo=NY)), RecordingRunner()
    sched = Scheduler(only(catalog, "daily"), state_path=state_path, clock=clock, runner=runner)
    sched.tick()
    clock.set(datetime(2024, 6, 3, 17, 20, tzinfo=NY))
    sched.tick()
    assert sched.wait(WAIT)
    assert [p.name for p in state_path.parent.iterdir()] == [state_path.name]  # no temp left
    saved = json.loads(state_path.read_text())
    assert saved["version"] == 1 and saved["jobs"]["daily"]["last_status"] == "ok"
    # A restarted scheduler knows Monday's run happened: nothing to do until Tuesday.
    again = Scheduler(only(catalog, "daily"), state_path=state_path, clock=clock, runner=runner)
    assert again.state == sched.state
    clock.set(datetime(2024, 6, 4, 9, 0, tzinfo=NY))
    assert again.tick() == []
    assert runner.calls == ["daily"]


def test_default_state_path_is_under_quantdesk_home(_isolated_home: Path) -> None:
    assert default_state_path() == _isolated_home / "scheduler_state.json"


def test_a_job_running_when_the_scheduler_died_is_marked_interrupted(
    catalog: Catalog, tmp_path: Path
) -> None:
    state_path = tmp_path / "state.json"
    clock = FakeClock(datetime(2024, 6, 3, 17, 0, tzinfo=NY))
    runner = RecordingRunner(block=True)
    sched = Scheduler(only(catalog, "daily"), state_path=state_path, clock=clock, runner=runner)
    sched.tick()
    clock.set(datetime(2024, 6, 3, 17, 15, tzinfo=NY))
    sched.tick()
    assert runner.entered.wait(WAIT)
    # The process "dies" here: a new scheduler reads the file the old one left.
    reborn = Scheduler(only(catalog, "daily"), state_path=state_path, clock=clock)
    daily = json.loads(state_path.read_text())["jobs"]["daily"]  # saved at once
    assert reborn.state["jobs"]["daily"] == daily
    assert daily["last_status"] == "interrupted" and daily["running"] is False
    assert daily["events"][-1]["kind"] == "interrupted"
    runner.release.set()
    assert sched.wait(WAIT)


@pytest.mark.parametrize(
    ("runner", "status", "reason"),
    [
        (RecordingRunner(ok=False), "failed", "1 run(s) failed"),
        (RecordingRunner(error=True), "error", "RuntimeError: cluster unreachable"),
    ],
)
def test_failures_of_a_job_are_recorded(
    catalog: Catalog, tmp_path: Path, runner: RecordingRunner, status: str, reason: str
) -> None:
    clock = FakeClock(datetime(2024, 6, 3, 17, 0, tzinfo=NY))
    sched = Scheduler(
        only(catalog, "daily"), state_path=tmp_path / "s.json", clock=clock, runner=runner
    )
    sched.tick()
    clock.set(datetime(2024, 6, 3, 17, 15, tzinfo=NY))
    sched.tick()
    assert sched.wait(WAIT)
    daily = sched.state["jobs"]["daily"]
    assert daily["last_status"] == status and reason in daily["last_reason"]
    # A failure does not stop the schedule: Tuesday fires again.
    clock.set(datetime(2024, 6, 4, 17, 15, tzinfo=NY))
    assert kinds(sched.tick()) == [("daily", "started")]
    assert sched.wait(WAIT)


def test_bad_state_file_and_naive_clock_are_clear_errors(catalog: Catalog, tmp_path: Path) -> None:
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"state\.json.*unreadable"):
        Scheduler(catalog, state_path=bad)
    naive = Scheduler(catalog, state_path=tmp_path / "ok.json", clock=lambda: datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.tick()


def test_crontab_lines(catalog: Catalog, tmp_path: Path) -> None:
    root = catalog.root
    environ = {"QUANTDESK_HOME": "/srv/qd", "QUANTDESK_REPORTS": "/srv/reports"}
    env = "mkdir -p /srv/reports && QUANTDESK_HOME=/srv/qd QUANTDESK_REPORTS=/srv/reports"
    log = ">> /srv/reports/cron.log 2>&1"  # the reports directory's, not the checkout's
    lines = crontab_lines(catalog, command="quantdesk", environ=environ)
    assert lines == [
        f"# quantdesk report jobs from {catalog.path} (quantdesk schedule crontab)",
        "# settings of the shell that printed these lines: QUANTDESK_HOME, QUANTDESK_REPORTS",
        "CRON_TZ=America/New_York",
        "# daily: After the US close",
        f"15 17 * * 1-5 cd {root} && {env} quantdesk report batch daily {log}",
        "CRON_TZ=UTC",
        f"0 * * * * cd {root} && {env} quantdesk report batch hourly {log}",
    ]
    py = crontab_lines(catalog, python="/opt/py 3/bin/python", jobs=["daily"], environ=environ)
    assert py[-1] == (
        f"15 17 * * 1-5 cd {root} && {env} '/opt/py 3/bin/python' -m quantdesk report batch "
        f"daily {log}"
    )
    assert not any("hourly" in line for line in py)
    # A catalog elsewhere than research/reports.yaml is passed on; cron's % is escaped.
    other = tmp_path / "cat%s.yaml"
    other.write_text(textwrap.dedent(CATALOG))
    line = crontab_lines(Catalog.load(other), command="quantdesk", environ=environ)[4]
    assert line.startswith(
        f"15 17 * * 1-5 cd {tmp_path} && mkdir -p /srv/reports && QUANTDESK_CATALOG="
    )
    assert r"cat\%s.yaml" in line


def test_crontab_carries_the_shells_settings_never_secrets(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug 10: cron read another store.  Relative paths become absolute, values are quoted."""
    monkeypatch.chdir(tmp_path)
    # The shell runs in a quantdesk project: its reports folder is <project>/reports.
    (tmp_path / "pyproject.toml").write_text("[tool.quantdesk]\n")
    store = tmp_path / "it's a store" / "q.duckdb"
    environ = {
        "QUANTDESK_HOME": "qd home",  # relative to the shell's directory
        "QUANTDESK_STORE": str(store),
        "QUANTDESK_LOCK_TIMEOUT": "7.5",
        "QUANTDESK_POLYGON_API_KEY": "s3cr3t-value-123",
        "QUANTDESK_FEED_TOKEN": "another-s3cr3t",
        "NUMBA_CACHE_DIR": "cache",
        "HOME": "/home/someone",
    }
    lines = crontab_lines(catalog, command="quantdesk", environ=environ)
    text = "\n".join(lines)
    assert "s3cr3t" not in text
    assert "# left out, their names look like secrets: QUANTDESK_FEED_TOKEN, " in text
    assert "QUANTDESK_POLYGON_API_KEY" in lines[2] and "HOME=/home" not in text
    daily = next(line for line in lines if "batch daily" in line)
    command = daily.split(" ", 5)[5]
    # The line runs in a shell as cron runs it: an empty environment, from cron's own
    # directory.  What the command sees is what the shell that printed the line had.
    show = tmp_path / "show_env.py"
    show.write_text(
        "import json, os, sys\n"
        "keys = [k for k in os.environ if k.startswith('QUANTDESK_') or k == 'NUMBA_CACHE_DIR']\n"
        "print(json.dumps({k: os.environ[k] for k in keys}))\n"
    )
    command = command.replace("quantdesk report batch", f"{sys.executable} {show} report batch")
    (catalog.root / "reports").mkdir()
    result = subprocess.run(
        ["/bin/sh", "-c", command.replace(r"\%", "%")],
        cwd="/",
        env={"PATH": os.defpath},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads((catalog.root / "reports" / "cron.log").read_text())
    assert seen == {
        "QUANTDESK_HOME": str(tmp_path / "qd home"),
        "QUANTDESK_STORE": str(store),
        "QUANTDESK_LOCK_TIMEOUT": "7.5",
        "QUANTDESK_REPORTS": str(tmp_path / "reports"),  # carried: cron starts elsewhere
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
    }


def test_crontab_log_goes_to_the_reports_directory_not_the_checkout(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20: cron's log went to the checkout's reports/ whatever QUANTDESK_REPORTS said."""
    shell = tmp_path / "shell"
    shell.mkdir()
    # The shell works in a project of its own (the store rule's second step), so with
    # QUANTDESK_REPORTS unset the reports directory is that project's reports/.
    (shell / "pyproject.toml").write_text("[tool.quantdesk]\n")
    monkeypatch.chdir(shell)
    cases = [
        ({"QUANTDESK_REPORTS": str(tmp_path / "my reports")}, tmp_path / "my reports"),
        ({}, shell / "reports"),  # unset: the project's reports/, as settings() reads it
    ]
    for environ, reports in cases:
        daily = next(
            line
            for line in crontab_lines(catalog, command="quantdesk", environ=environ)
            if "batch daily" in line
        )
        command = daily.split(" ", 5)[5].replace(
            "quantdesk report batch daily", f"{sys.executable} -c \"print('ran')\""
        )
        result = subprocess.run(
            ["/bin/sh", "-c", command.replace(r"\%", "%")],
            cwd="/",
            env={"PATH": os.defpath},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert (reports / "cron.log").read_text() == "ran\n"
        assert not (catalog.root / "reports").exists()


def test_crontab_refuses_a_value_cron_cannot_carry(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="QUANTDESK_LOG_LEVEL holds a line break"):
        crontab_lines(catalog, environ={"QUANTDESK_LOG_LEVEL": "INFO\n* * * * * rm -rf ~"})


def test_crontab_default_command_is_the_installed_script(catalog: Catalog) -> None:
    line = next(line for line in crontab_lines(catalog) if "batch daily" in line)
    assert "/bin/quantdesk report batch daily" in line or " quantdesk report batch" in line
