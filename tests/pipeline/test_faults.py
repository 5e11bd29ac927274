"""Faults of the evening pipeline with real processes: a notebook holding the store, a
clock that jumps across midnight during a run.

The holder is a real process with the store's DuckDB file open read-write (as a
notebook kernel holding a connection); it takes and releases the file when the test
tells it to, through its stdin, and says so on its stdout.  The run is a real
``quantdesk pipeline run`` process whose debug log says when it is waiting.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import pandas as pd

from quantdesk.data.store.market import MarketStore
from quantdesk.pipeline import PipelineRecord, run_pipeline

from .test_pipeline import (
    HERE,
    SRC,
    _catalog,
    _cli,
    _contents,
    _market,
    _standard,
    _statuses,
    _user_steps,
    _wait_for,
    market,
)

__all__ = ["_user_steps", "market"]  # the fixtures, shared with test_pipeline

NY = ZoneInfo("America/New_York")
HOLDER = """
import sys, duckdb
con = duckdb.connect({path!r})  # read-write: every other process now waits
con.execute("BEGIN TRANSACTION")
print("held", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
con.close()
print("released", flush=True)
"""


@contextmanager
def _holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Yield a process holding the store's file once it says so; release with ``_release``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER.format(path=str(path)))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    assert holder.wait(timeout=60) == 0


def _run(*args: str, lock_timeout: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]),
           "QUANTDESK_LOCK_TIMEOUT": str(lock_timeout), "QUANTDESK_LOG_LEVEL": "DEBUG"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "pipeline", "run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _read_until(stream: IO[str] | None, text: str) -> list[str]:
    """Return the lines of ``stream`` up to the first that holds ``text`` (fail at its end)."""
    assert stream is not None
    lines: list[str] = []
    for line in stream:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never logged:\n{''.join(lines[-40:])}")


def test_a_run_started_while_a_notebook_holds_the_store_waits_and_completes(
    tmp_path: Path,
) -> None:
    held, clean = _market(tmp_path / "held.duckdb"), _market(tmp_path / "clean.duckdb")
    catalog = _catalog(tmp_path, _standard(tmp_path))
    _cli("run", "--session", "2024-07-01", "--store", str(clean), "--catalog", str(catalog))
    with _holder(held) as holder:
        run = _run("--session", "2024-07-01", "--store", str(held), "--catalog", str(catalog),
                   lock_timeout=300)  # fmt: skip
        try:
            _read_until(run.stderr, "is busy")  # the run is waiting for the file (back-off)
            assert run.poll() is None
            _release(holder)
            out, err = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert run.returncode == 0, err[-3000:]
    assert "session 2024-07-01: ok" in out
    a, b = _contents(held), _contents(clean)
    for key in ("bars", "alerts", "trades"):
        pd.testing.assert_frame_equal(a[key], b[key], obj=key)


def test_a_store_held_for_the_whole_run_past_the_timeout_stops_it_clearly_and_it_resumes(
    tmp_path: Path,
) -> None:
    held, clean = _market(tmp_path / "held.duckdb"), _market(tmp_path / "clean.duckdb")
    catalog = _catalog(tmp_path, _standard(tmp_path))
    _cli("run", "--session", "2024-07-01", "--store", str(clean), "--catalog", str(catalog))
    with _holder(held) as holder:
        run = _run("--session", "2024-07-01", "--store", str(held), "--catalog", str(catalog),
                   lock_timeout=1)  # fmt: skip
        err = run.communicate(timeout=300)[1]
        _release(holder)
    assert run.returncode == 1
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert "held the lock for more than 1 s" in message and "run it again" in message
    _cli("run", "--session", "2024-07-01", "--store", str(held), "--catalog", str(catalog))
    a, b = _contents(held), _contents(clean)
    for key in ("bars", "alerts", "trades"):
        pd.testing.assert_frame_equal(a[key], b[key], obj=key)


def test_a_store_held_past_the_timeout_during_a_step_fails_it_clearly_and_retry_finishes(
    tmp_path: Path,
) -> None:
    held, clean = _market(tmp_path / "held.duckdb"), _market(tmp_path / "clean.duckdb")
    reached, flag = tmp_path / "reached", tmp_path / "held"
    steps = {
        **_standard(tmp_path),
        "probe": {"run": "pipeline_test_steps:read_when_held", "needs": ["update"],
                  "params": {"reached": str(reached), "held": str(flag)}},
        "after": {"run": "pipeline_test_steps:log_step", "needs": ["probe"],
                  "params": {"log": str(tmp_path / "log.txt"), "name": "after"}},
    }  # fmt: skip
    catalog = _catalog(tmp_path, steps)
    flag.touch()
    _cli("run", "--session", "2024-07-01", "--store", str(clean), "--catalog", str(catalog))
    flag.unlink()
    reached.unlink()
    run = _run("--session", "2024-07-01", "--store", str(held), "--catalog", str(catalog),
               lock_timeout=5)  # fmt: skip
    try:
        _wait_for(reached, run)  # the probe step runs; no connection is open
        with _holder(held) as holder:
            flag.touch()
            # The step's read waits out the timeout and fails; the engine logs it, then
            # waits for the store to record it: release the file now.
            _read_until(run.stderr, "attempt 1 failed: StoreBusyError")
            _release(holder)
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, err[-3000:]
    assert "probe      failed: StoreBusyError" in out and "held the lock for more than 5 s" in out
    assert "after      skipped: needs probe, which did not succeed" in out
    statuses = _statuses(held)
    assert statuses[("2024-07-01", "probe")] == "failed"
    assert statuses[("2024-07-01", "screen")] == "succeeded"

    retried = _cli("retry", "--store", str(held), "--catalog", str(catalog))
    assert "session 2024-07-01: ok" in retried.stdout
    a, b = _contents(held), _contents(clean)
    for key in ("bars", "alerts", "trades"):
        pd.testing.assert_frame_equal(a[key], b[key], obj=key)
    steps_run = a["steps"].query("step == 'probe'")["status"].tolist()
    assert steps_run == ["failed", "succeeded"]
    assert (tmp_path / "log.txt").read_text(encoding="utf-8").count("after 2024-07-01") == 2


class JumpingClock:
    """A clock that reads ``start`` once, then ``after`` ever after (it jumped)."""

    def __init__(self, start: datetime, after: datetime) -> None:
        self.start, self.after = start, after
        self.reads: list[datetime] = []

    def __call__(self) -> datetime:
        self.reads.append(self.start if not self.reads else self.after)
        return self.reads[-1]


def test_a_clock_jumping_past_midnight_during_a_run_keeps_the_session_it_started_for(
    market: Path, tmp_path: Path
) -> None:
    catalog = _catalog(tmp_path, {
        **_standard(tmp_path),
        "log": {"run": "pipeline_test_steps:log_step", "needs": ["update"],
                "params": {"log": str(tmp_path / "log.txt"), "name": "log"}},
    })  # fmt: skip
    run_pipeline(market, session="2024-06-28", definition=catalog)
    # Monday 1 July 23:59 New York (03:59 UTC on the 2nd), then past midnight.
    clock = JumpingClock(datetime(2024, 7, 1, 23, 59, tzinfo=NY),
                         datetime(2024, 7, 2, 0, 1, tzinfo=NY))  # fmt: skip
    run = run_pipeline(market, definition=catalog, clock=clock)
    assert run.ok and [f"{s.session:%Y-%m-%d}" for s in run.sessions] == ["2024-07-01"]
    assert len(clock.reads) == 1  # the one reading that fixed the session
    assert (tmp_path / "log.txt").read_text().splitlines()[-1] == "log 2024-07-01"
    assert PipelineRecord(market).sessions("evening")[-1] == pd.Timestamp("2024-07-01")
    bars = MarketStore(market).bars("SIM000", start="2024-06-28")["ts"]
    assert list(bars.dt.strftime("%m-%d")) == ["06-28", "07-01"]  # no bar for the 2nd
    # Just after midnight nothing is due: the 2nd has not closed.
    after = JumpingClock(
        datetime(2024, 7, 2, 0, 5, tzinfo=NY), datetime(2024, 7, 2, 0, 6, tzinfo=NY)
    )
    assert run_pipeline(market, definition=catalog, clock=after).sessions == ()
    # After the 2nd's close plus the delay, the 2nd (and only it) is due.
    evening = JumpingClock(
        datetime(2024, 7, 2, 16, 31, tzinfo=NY), datetime(2024, 7, 3, 0, 1, tzinfo=NY)
    )
    nxt = run_pipeline(market, definition=catalog, clock=evening)
    assert [f"{s.session:%Y-%m-%d}" for s in nxt.sessions] == ["2024-07-02"] and nxt.ok
