"""The evening pipeline on a real DuckDB file, with real processes for kills and locks.

The store is a small simulated market (5 symbols) whose last bar is 2024-06-28; the
pipeline's ``update`` step advances it one session at a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.data.store.market import MarketStore
from quantdesk.pipeline import PipelineRecord, backfill, retry_failed, run_pipeline
from quantdesk.pipeline.definition import PipelineDefinition, PipelineError, load_pipeline

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
LAST_STORED = pd.Timestamp("2024-06-28")

RULES = """
rules:
  - {name: up, rule: gap_up, pct: 0.05}
  - {name: down, rule: gap_down, pct: 0.05}
"""


def _market(path: Path) -> Path:
    # 300 business days from 2023-05-08 end on 2024-06-28 (pandas.bdate_range).
    ingest_simulated(path, symbols=5, days=300, seed=3, start="2023-05-08", progress=False)
    assert MarketStore(path).bars("SIM000")["ts"].max() == LAST_STORED.tz_localize("UTC")
    return path


@pytest.fixture
def market(tmp_path: Path) -> Path:
    return _market(tmp_path / "store.duckdb")


@pytest.fixture(autouse=True)
def _user_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL", raising=False)


def _catalog(tmp_path: Path, steps: dict[str, Any], name: str = "p.yaml") -> Path:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    path = tmp_path / name
    path.write_text(json.dumps({"pipeline": {"name": "evening", "steps": steps}}), "utf-8")
    return path


def _standard(tmp_path: Path) -> dict[str, Any]:
    return {
        "update": {"params": {"simulated": True, "drop_folder": str(tmp_path / "drop")}},
        "screen": {"needs": ["update"], "params": {"rules": str(tmp_path / "rules.yaml")}},
        "paper": {"needs": ["update"], "params": {"ledgers": ["paper"]}},
    }


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "pipeline", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _contents(path: Path) -> dict[str, pd.DataFrame]:
    """Return what a run leaves in the store, without the times it ran at."""
    store = MarketStore(path, read_only=True)
    queries = {
        "bars": "SELECT * FROM bars ORDER BY symbol, ts",
        "alerts": "SELECT symbol, rule, ts, trigger_price, conditions FROM alerts "
        "ORDER BY symbol, rule, ts",
        "trades": "SELECT ledger, ts, symbol, side, qty, price FROM paper_trades "
        "ORDER BY ts, symbol, side",
        "steps": "SELECT step, session, status, attempt FROM pipeline_steps "
        "ORDER BY session, step, attempt",
    }
    return {k: store.sql(q) for k, q in queries.items()}


def _statuses(path: Path) -> dict[tuple[str, str], str]:
    frame = PipelineRecord(path).attempts("evening")
    latest = frame.sort_values("attempt").groupby(["session", "step"]).tail(1)
    return {(f"{r.session:%Y-%m-%d}", r.step): r.status for r in latest.itertuples()}


# -- definition ----------------------------------------------------------------------


def test_steps_run_after_what_they_need_and_a_cycle_or_unknown_need_is_refused() -> None:
    definition = PipelineDefinition.from_mapping(
        {
            "steps": {
                "c": {"run": "m:f", "needs": ["b"]},
                "b": {"run": "m:f", "needs": ["a"]},
                "a": {"run": "m:f"},
                "d": {"run": "m:f"},
            }
        }
    )
    assert [s.name for s in definition.steps] == ["a", "b", "c", "d"]
    assert definition.dependents("b") == ["b", "c"]
    with pytest.raises(PipelineError, match="cycle"):
        PipelineDefinition.from_mapping(
            {"steps": {"a": {"run": "m:f", "needs": ["b"]}, "b": {"run": "m:f", "needs": ["a"]}}}
        )
    with pytest.raises(PipelineError, match=r"steps\.a\.needs: no step 'zz'"):
        PipelineDefinition.from_mapping({"steps": {"a": {"run": "m:f", "needs": ["zz"]}}})
    with pytest.raises(PipelineError, match="neither a built-in"):
        PipelineDefinition.from_mapping({"steps": {"mystery": {}}})


def test_the_project_catalog_defines_the_evening_pipeline() -> None:
    definition = load_pipeline(HERE.parents[1] / "research" / "reports.yaml")
    names = [s.name for s in definition.steps]
    assert names[0] == "update" and names[-1] == "reports"
    assert set(names) == {"update", "news", "regimes", "forecasts", "screen", "paper", "reports"}


# -- order, failure, retry, rerun ----------------------------------------------------


def test_a_failed_step_skips_its_dependents_and_lets_independent_steps_finish(
    market: Path, tmp_path: Path
) -> None:
    log, flag = tmp_path / "order.log", tmp_path / "fail"
    flag.touch()

    def step(name: str, needs: list[str], **extra: Any) -> dict[str, Any]:
        params = {"log": str(log), "name": name, **extra}
        return {"run": "pipeline_test_steps:log_step", "needs": needs, "params": params}

    catalog = _catalog(tmp_path, {
        "d": step("d", ["a"]),
        "c": step("c", ["b"]),
        "b": {**step("b", ["a"], fail_while=str(flag)), "retries": 2, "backoff": 0},
        "a": step("a", []),
    })  # fmt: skip
    run = run_pipeline(market, session="2024-07-01", definition=catalog)
    assert not run.ok
    # Written order d, c, b, a; run order follows the needs (a before d and b), ties in
    # written order; b tried three times; c never ran.
    assert log.read_text().split()[::2] == ["a", "d", "b", "b", "b"]
    status = {s.step: s for s in run.sessions[0].steps}
    assert status["b"].status == "failed" and status["b"].attempts == 3
    assert status["c"].status == "skipped" and "needs b" in (status["c"].error or "")
    assert status["a"].status == status["d"].status == "succeeded"
    # retry: only b runs again (now fixed), then c, which it had blocked.
    flag.unlink()
    log.write_text("")
    again = retry_failed(market, definition=catalog)
    assert [s.session for s in again.sessions] == [pd.Timestamp("2024-07-01")]
    assert log.read_text().split() == ["b", "2024-07-01", "c", "2024-07-01"]
    assert again.ok
    assert set(_statuses(market).values()) == {"succeeded"}


def test_a_rerun_of_a_finished_session_does_nothing_and_force_reruns_a_step_and_dependents(
    market: Path, tmp_path: Path
) -> None:
    catalog = _catalog(tmp_path, _standard(tmp_path))
    first = run_pipeline(market, session="2024-07-01", definition=catalog)
    assert first.ok
    assert [s.status for s in first.sessions[0].steps] == ["succeeded"] * 3
    before = _contents(market)
    second = run_pipeline(market, session="2024-07-01", definition=catalog)
    assert second.sessions[0].did_nothing
    assert "nothing to do" in second.summary()
    after = _contents(market)
    for key in before:
        pd.testing.assert_frame_equal(before[key], after[key])
    forced = run_pipeline(market, session="2024-07-01", definition=catalog, force=["update"])
    ran = {s.step: s.status for s in forced.sessions[0].steps}
    # update again finds the session stored: no new bars, so what needs it skips.
    assert ran == {"update": "succeeded", "screen": "skipped", "paper": "skipped"}


def test_an_empty_session_skips_downstream_and_unchanged_inputs_are_skipped(
    tmp_path: Path,
) -> None:
    path = _market(tmp_path / "store.duckdb")
    steps = _standard(tmp_path)
    steps["update"]["params"]["simulated"] = False  # only the (empty) drop folder
    steps["count"] = {"run": "pipeline_test_steps:log_step",
                      "params": {"log": str(tmp_path / "log"), "name": "count"}}  # fmt: skip
    catalog = _catalog(tmp_path, steps)
    run = run_pipeline(path, session="2024-07-01", definition=catalog)
    assert run.ok
    got = {s.step: (s.status, s.note) for s in run.sessions[0].steps}
    assert got["update"] == ("succeeded", "no new bars")
    assert got["screen"] == got["paper"] == ("skipped", "no new data from update")
    assert got["count"][0] == "succeeded"
    nxt = run_pipeline(path, session="2024-07-02", definition=catalog)
    got = {s.step: (s.status, s.note) for s in nxt.sessions[0].steps}
    assert got["count"] == ("unchanged", "inputs unchanged since its last success")


def test_drop_folder_files_are_ingested_once_by_content_and_bad_rows_are_kept(
    market: Path, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    text = "symbol,ts,open,high,low,close,volume\nACME,2024-07-01,10,11,9,10.5,1000\n"
    (drop / "a.csv").write_text(text + "ACME,2024-07-02,10,9,11,10.5,1000\n")  # high < low
    steps = _standard(tmp_path)
    steps["update"]["params"]["simulated"] = False
    catalog = _catalog(tmp_path, steps)
    run = run_pipeline(market, session="2024-07-01", definition=catalog)
    update = run.sessions[0].steps[0]
    assert update.status == "succeeded"
    assert (update.counts["files"], update.counts["file_bars"], update.counts["rejected"]) == (
        1, 1, 1)  # fmt: skip
    # The same content under another name is known by its hash: not ingested again.
    (drop / "copy_of_a.csv").write_bytes((drop / "a.csv").read_bytes())
    nxt = run_pipeline(market, session="2024-07-02", definition=catalog)
    assert nxt.sessions[0].steps[0].counts["files"] == 0
    assert len(MarketStore(market).rejects()) == 1


# -- sessions: catch-up, holidays, backfill --------------------------------------------


def test_catch_up_runs_the_missed_sessions_in_order_skipping_the_holiday(
    market: Path, tmp_path: Path
) -> None:
    catalog = _catalog(tmp_path, _standard(tmp_path))
    _cli("run", "--session", "2024-07-01", "--store", str(market), "--catalog", str(catalog))
    # Tuesday 9 July, 12:00 New York: the 9th has not closed; 4 July is a holiday.
    out = _cli("run", "--now", "2024-07-09T12:00-04:00", "--store", str(market),
               "--catalog", str(catalog), "--json")  # fmt: skip
    done = [s["session"] for s in json.loads(out.stdout)["sessions"]]
    assert done == ["2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]
    days = MarketStore(market).bars("SIM000", start="2024-06-28")["ts"].dt.strftime("%m-%d")
    assert list(days) == ["06-28", "07-01", "07-02", "07-03", "07-05", "07-08"]
    status = _cli("status", "--now", "2024-07-09T12:00-04:00", "--store", str(market),
                  "--catalog", str(catalog), "--json")  # fmt: skip
    report = json.loads(status.stdout)
    assert report["last_session"] == "2024-07-08" and report["next_due"] is None
    refused = _cli("run", "--session", "2024-07-04", "--store", str(market),
                   "--catalog", str(catalog), check=False)  # fmt: skip
    assert refused.returncode == 1 and "not a XNYS session" in refused.stderr


def test_a_backfill_leaves_the_store_equal_to_single_runs(tmp_path: Path) -> None:
    one, many = _market(tmp_path / "one.duckdb"), _market(tmp_path / "many.duckdb")
    catalog = _catalog(tmp_path, _standard(tmp_path))
    _cli("backfill", "--from", "2024-07-01", "--to", "2024-07-09", "--store", str(one),
         "--catalog", str(catalog))  # fmt: skip
    sessions = ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08",
                "2024-07-09"]  # fmt: skip
    for day in sessions:
        assert run_pipeline(many, session=day, definition=catalog).ok
    a, b = _contents(one), _contents(many)
    assert len(a["alerts"]) > 0 and len(a["trades"]) > 0
    assert a["bars"]["ts"].dt.strftime("%Y-%m-%d").isin(sessions).sum() == 5 * len(sessions)
    for key in a:
        pd.testing.assert_frame_equal(a[key], b[key], obj=key)
    # A backfill over what is done does nothing.
    again = backfill(one, start="2024-07-01", end="2024-07-09", definition=catalog)
    assert all(s.did_nothing for s in again.sessions)


# -- one run at a time, kill and resume ------------------------------------------------


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def test_a_second_start_is_refused_and_a_killed_run_resumes_without_duplicates(
    tmp_path: Path,
) -> None:
    killed, clean = _market(tmp_path / "killed.duckdb"), _market(tmp_path / "clean.duckdb")
    block = tmp_path / "block"
    steps = {
        "update": {"params": {"simulated": True}},
        "work": {"run": "pipeline_test_steps:screen_paper_then_block", "needs": ["update"],
                 "params": {"rules": str(tmp_path / "rules.yaml"), "block_file": str(block)}},
    }  # fmt: skip
    catalog = _catalog(tmp_path, steps)
    args = ["run", "--session", "2024-07-01", "--catalog", str(catalog)]
    assert run_pipeline(clean, session="2024-07-01", definition=catalog).ok

    block.touch()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    first = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", "pipeline", *args, "--store", str(killed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        _wait_for(Path(str(block) + ".reached"), first)
        # The step has written its alerts and trades and holds the run.
        second = _cli(*args, "--store", str(killed), check=False)
        assert second.returncode == 3
        assert f"pid {first.pid}" in second.stderr and "holds" in second.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert _statuses(killed)[("2024-07-01", "work")] == "running"
    block.unlink()
    resumed = _cli("run", "--now", "2024-07-01T23:00-04:00", "--catalog", str(catalog),
                   "--store", str(killed))  # fmt: skip
    assert "resumed after an interrupted run: 2024-07-01" in resumed.stdout
    a, b = _contents(killed), _contents(clean)
    assert len(a["alerts"]) > 0 and len(a["trades"]) > 0
    for key in ("bars", "alerts", "trades"):
        pd.testing.assert_frame_equal(a[key], b[key], obj=key)
    statuses = a["steps"].query("step == 'work'")["status"].tolist()
    assert statuses == ["failed", "succeeded"]  # the interrupted attempt, then the resumed one


def test_the_forecasts_step_records_the_sessions_forecasts_once_and_scores_them(
    market: Path, tmp_path: Path
) -> None:
    from quantdesk.data.store.forecasts import ForecastStore

    registry = str(tmp_path / "models")
    catalog = _catalog(tmp_path, {
        "update": {},
        "forecasts": {"needs": ["update"], "params": {"registry": registry}},
        "after": {"run": "pipeline_test_steps:log_step", "needs": ["forecasts"],
                  "params": {"log": str(tmp_path / "log"), "name": "after"}},
    })  # fmt: skip
    run = run_pipeline(market, session="2024-07-01", definition=catalog)
    got = {s.step: s for s in run.sessions[0].steps}
    assert got["forecasts"].status == "succeeded", got["forecasts"].note
    assert got["after"].status == "succeeded"
    rows = ForecastStore(MarketStore(market)).forecasts()
    session = pd.Timestamp("2024-07-01", tz="UTC")
    assert set(rows["as_of"]) == {session}
    assert set(rows["origin"]) == {"live"}
    assert set(rows["symbol"]) == {f"SIM00{i}" for i in range(5)}
    # On 300 sessions the regime models cover no symbol (run_forecasts says so: missing).
    assert set(rows["target"]) == {"return_1d", "vol_1d", "vol_5d"}
    counts = got["forecasts"].counts
    assert counts["recorded"] == len(rows) and counts["missing"] >= 3
    assert counts["origin"] == "live" and counts["fitted"] > 0
    # every model saved by the fit made one forecast per symbol
    assert not rows.duplicated(["model", "version", "symbol", "target", "as_of"]).any()
    assert run_pipeline(market, session="2024-07-01", definition=catalog).sessions[0].did_nothing
    # the step itself, rerun for the session, fits and records nothing
    from quantdesk.forecast import pipeline_step

    again = pipeline_step(MarketStore(market), "2024-07-01", registry=registry)
    assert (again["fitted"], again["recorded"]) == (0, 0)
    assert again["already"] == len(rows)
    assert len(ForecastStore(MarketStore(market)).forecasts()) == len(rows)
    # the next session: forecasts as of it, and the 1-session outcomes of 07-01 now due
    nxt = run_pipeline(market, session="2024-07-02", definition=catalog)
    assert {s.step: s.status for s in nxt.sessions[0].steps}["forecasts"] == "succeeded"
    after = ForecastStore(MarketStore(market)).forecasts()
    nxt_ts = pd.Timestamp("2024-07-02", tz="UTC")
    assert set(after["as_of"]) == {session, nxt_ts}
    due = after.loc[(after["as_of"] == session) & after["target"].isin(["return_1d", "vol_1d"])]
    assert due["outcome"].notna().all()
    # a refit schedule of one session refits (a new version) and forecasts again under it
    refit = pipeline_step(MarketStore(market), "2024-07-02", registry=registry, refit_every=1)
    assert refit["fitted"] > 0 and refit["recorded"] > 0
    versions = ForecastStore(MarketStore(market)).forecasts().query("as_of == @nxt_ts")
    assert set(versions["version"]) == {"v1", "v2"}
    # A past session replayed (the store has later bars): its forecasts are backfill rows.
    past = pipeline_step(MarketStore(market), "2024-06-28", registry=registry)
    assert past["origin"] == "backfill" and past["recorded"] > 0 and past["fitted"] == 0
    replayed = ForecastStore(MarketStore(market)).forecasts().query("as_of < @session")
    assert set(replayed["origin"]) == {"backfill"} and len(replayed) == past["recorded"]


def test_a_notebook_step_makes_one_report_per_session_even_when_forced(
    market: Path, tmp_path: Path
) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}  # fmt: skip
    notebook.cells = [
        nbformat.v4.new_code_cell('session = "2000-01-01"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(session)"),
    ]
    path = tmp_path / "evening_note.ipynb"
    nbformat.write(notebook, path)
    catalog = _catalog(tmp_path, {"update": {}, "note": {"notebook": str(path),
                                                         "needs": ["update"]}})  # fmt: skip
    first = run_pipeline(market, session="2024-07-01", definition=catalog)
    assert first.sessions[0].steps[-1].counts == {"reports": 1, "already_done": 0}
    again = run_pipeline(market, session="2024-07-01", definition=catalog, force=["note"])
    assert again.sessions[0].steps[-1].counts == {"reports": 0, "already_done": 1}
    folders = list((tmp_path / "reports" / "evening_note").iterdir())
    assert [f.name for f in folders] == ["evening-20240701-evening_note"]
    meta = json.loads((folders[0] / "run.json").read_text())
    assert meta["parameters"]["session"] == "2024-07-01"
    # the notebook read the pipeline's store, not the one the settings name
    assert Path(meta["data_summary"]["store"]).resolve() == market.resolve()
    # Another store sharing the reports folder gets its own report of the session: the
    # one made from the first store is not taken for it.
    other = _market(tmp_path / "other.duckdb")
    theirs = run_pipeline(other, session="2024-07-01", definition=catalog)
    assert theirs.sessions[0].steps[-1].counts == {"reports": 1, "already_done": 0}
    meta = json.loads((folders[0] / "run.json").read_text())
    assert Path(meta["data_summary"]["store"]).resolve() == other.resolve()
