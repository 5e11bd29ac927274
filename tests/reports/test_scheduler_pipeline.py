"""The long-running scheduler fires the evening pipeline at its entry's time, on sessions.

The scheduler and the pipeline are real (a real store, real ``run_pipeline``); time is a
clock the test moves, so nothing sleeps.  17:15 New York is the XNYS close plus 75
minutes, the catalog's entry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.pipeline import PipelineRecord, run_pipeline
from quantdesk.reports.catalog import Catalog
from quantdesk.reports.scheduler import Scheduler

from .test_scheduler import WAIT, FakeClock

NY = ZoneInfo("America/New_York")
TESTS = Path(__file__).resolve().parents[1]


def _catalog(tmp_path: Path) -> Catalog:
    steps = {
        "update": {"params": {"simulated": True}},
        "log": {"run": "pipeline_test_steps:log_step", "needs": ["update"],
                "params": {"log": str(tmp_path / "log.txt"), "name": "log"}},
    }  # fmt: skip
    document = {
        "jobs": {"adhoc": {"notebook": "strategy_tearsheet"}},
        "pipeline": {"name": "evening", "exchange": "XNYS", "delay_minutes": 75,
                     "steps": steps},
    }  # fmt: skip
    path = tmp_path / "research" / "reports.yaml"
    path.parent.mkdir()
    path.write_text(json.dumps(document), encoding="utf-8")
    return Catalog.load(path)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(TESTS / "pipeline"))
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL", raising=False)
    path = tmp_path / "store.duckdb"
    # 300 business days from 2023-05-08: the last stored bar is Friday 2024-06-28.
    ingest_simulated(path, symbols=3, days=300, seed=3, start="2023-05-08", progress=False)
    monkeypatch.setenv("QUANTDESK_STORE", str(path))
    return path


def _at(day: int, hour: int = 17, minute: int = 15) -> datetime:
    return datetime(2024, 7, day, hour, minute, tzinfo=NY)


def _sessions(store: Path) -> list[str]:
    return [f"{d:%Y-%m-%d}" for d in PipelineRecord(store).sessions("evening")]


def _logged(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    return log.read_text(encoding="utf-8").split("\n")[:-1] if log.exists() else []


def _tick(scheduler: Scheduler, clock: FakeClock, when: datetime) -> list[tuple[str, str]]:
    clock.set(when)
    events = [(e.kind, e.detail) for e in scheduler.tick() if e.job == "pipeline:evening"]
    assert scheduler.wait(WAIT)
    return events


def test_the_scheduler_runs_the_pipeline_at_17_15_new_york_on_sessions_only(
    store: Path, tmp_path: Path
) -> None:
    clock = FakeClock(_at(1, 17, 0))
    scheduler = Scheduler(_catalog(tmp_path), state_path=tmp_path / "state.json", clock=clock)
    assert [j.name for j in scheduler.scheduled()] == ["pipeline:evening"]
    assert _tick(scheduler, clock, _at(1, 17, 0)) == []  # first sight: no backlog
    assert _tick(scheduler, clock, _at(1, 17, 14)) == []
    assert scheduler.next_due() == _at(1)
    assert _tick(scheduler, clock, _at(1)) == [("started", "")]
    assert _sessions(store) == ["2024-07-01"] and _logged(tmp_path) == ["log 2024-07-01"]
    for day in (2, 3):  # the 3rd closes early (13:00): its session is due at 17:15 too
        assert _tick(scheduler, clock, _at(day)) == [("started", "")]
    # Independence Day: the entry's time passes, no run starts.
    assert _tick(scheduler, clock, _at(4)) == [("skipped", "not a XNYS session (holiday)")]
    assert _tick(scheduler, clock, _at(5)) == [("started", "")]
    assert _sessions(store) == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05"]
    assert _logged(tmp_path) == [f"log 2024-07-0{d}" for d in (1, 2, 3, 5)]
    state = scheduler.state["jobs"]["pipeline:evening"]
    assert state["last_status"] == "ok" and state["running"] is False
    finished = [e for e in state["events"] if e["kind"] == "finished"]
    assert [e["detail"] for e in finished] == ["ok"] * 4


def test_one_pipeline_run_at_a_time_and_the_next_firing_catches_up(
    store: Path, tmp_path: Path
) -> None:
    catalog = _catalog(tmp_path)
    entered, release = threading.Event(), threading.Event()

    def held_run(scheduled_for: datetime) -> Any:
        """The real run, as of the due time, after the test lets it go (the first time)."""
        entered.set()
        assert release.wait(WAIT), "the test never let the run go"
        return run_pipeline(definition=catalog.path, now=scheduled_for)

    runner: Callable[[datetime], Any] = held_run
    clock = FakeClock(_at(8, 17, 0))
    scheduler = Scheduler(catalog, state_path=tmp_path / "state.json", clock=clock,
                          pipeline=runner)  # fmt: skip
    clock.set(_at(8, 17, 0))
    scheduler.tick()
    clock.set(_at(8))
    assert [e.kind for e in scheduler.tick()] == ["started"]
    assert entered.wait(WAIT)
    clock.set(_at(9))  # Tuesday's time comes while Monday's run still runs
    skipped = scheduler.tick()
    assert [e.kind for e in skipped] == ["skipped"] and "still running" in skipped[0].detail
    assert scheduler.running() == ["pipeline:evening"]
    release.set()
    assert scheduler.wait(WAIT)
    assert _sessions(store) == ["2024-07-08"]  # a store with no record: the latest session
    # Wednesday's firing runs Tuesday's missed session, then Wednesday's, in order.
    clock.set(_at(10))
    assert [e.kind for e in scheduler.tick()] == ["started"]
    assert scheduler.wait(WAIT)
    assert _sessions(store) == ["2024-07-08", "2024-07-09", "2024-07-10"]
    assert _logged(tmp_path) == ["log 2024-07-08", "log 2024-07-09", "log 2024-07-10"]
