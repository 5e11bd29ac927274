"""`make demo`'s closing pipeline run: one session more on the simulated market, then nothing.

The demo's commands on a real store: the simulated history starts at ``demo_start`` so
that it ends just before the latest closed session; the run adds exactly that session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from quantdesk.data.sessions import SessionCalendar
from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.data.store.market import MarketStore
from quantdesk.pipeline import run_pipeline
from quantdesk.pipeline.steps import demo_start

NOW = pd.Timestamp("2024-07-09T18:00-04:00")  # after Tuesday 9 July's close (+75 min)


def test_the_demo_history_ends_before_the_latest_closed_session_and_a_run_adds_it(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store.duckdb"
    start = demo_start(300, now=NOW, store=store)
    ingest_simulated(store, symbols=3, days=300, seed=7, start=str(start.date()), progress=False)
    bars = MarketStore(store).bars("SIM000")["ts"].dt.tz_convert(None)
    assert len(bars) == 300 and bars.iloc[0] == start
    # Monday 8 July, the session before the latest closed one (the 9th).
    assert bars.iloc[-1] == SessionCalendar("XNYS").previous_session("2024-07-09")
    # A second `make demo` finds the stored market and keeps its days.
    assert demo_start(300, now=NOW + pd.Timedelta(days=30), store=store) == start

    catalog = tmp_path / "p.yaml"
    steps = {
        "update": {"params": {"simulated": True, "drop_folder": str(tmp_path / "drop")}},
        "paper": {"needs": ["update"], "params": {"ledgers": ["paper"]}},
    }
    catalog.write_text(json.dumps({"pipeline": {"name": "evening", "steps": steps}}), "utf-8")
    run = run_pipeline(store, definition=catalog, now=NOW)
    assert run.ok and [s.session for s in run.sessions] == [pd.Timestamp("2024-07-09")]
    after = MarketStore(store).bars("SIM000")["ts"].dt.tz_convert(None)
    assert list(after.iloc[-2:]) == [pd.Timestamp("2024-07-08"), pd.Timestamp("2024-07-09")]
    assert len(after) == 301
    # The second run does nothing.
    again = run_pipeline(store, definition=catalog, now=NOW)
    assert again.sessions == () and "no session due" in again.summary()
    assert len(MarketStore(store).bars("SIM000")) == 301


def test_the_paper_step_skips_with_its_reason_when_no_ledger_is_named(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    ingest_simulated(store, symbols=2, days=300, seed=3, start="2023-05-08", progress=False)
    catalog = tmp_path / "p.yaml"
    steps = {
        "update": {"params": {"simulated": True, "drop_folder": str(tmp_path / "drop")}},
        "paper": {"needs": ["update"], "params": {"ledgers": None}},
    }
    catalog.write_text(json.dumps({"pipeline": {"name": "evening", "steps": steps}}), "utf-8")
    run = run_pipeline(store, session="2024-07-01", definition=catalog)
    paper = {s.step: s for s in run.sessions[0].steps}["paper"]
    assert run.ok and paper.status == "skipped" and "no ledger named" in paper.note
    tables = MarketStore(store).sql("SELECT table_name FROM information_schema.tables")
    assert "paper_trades" not in set(tables["table_name"])


def test_demo_start_treats_a_store_not_created_yet_as_empty(tmp_path: Path) -> None:
    """A path to no file and a store object of no file read the same: nothing, no file made."""
    path = tmp_path / "none.duckdb"
    by_path = demo_start(300, now=NOW, store=path)
    by_store = demo_start(300, now=NOW, store=MarketStore(path))
    assert by_path == by_store
    assert not path.exists()
