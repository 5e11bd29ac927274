"""The alerts table: one row per symbol, rule and bar, enforced by the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from quantdesk.data import MarketStore
from quantdesk.data.store.alerts import AlertStore, idempotency_key
from quantdesk.screener import StreamingScan, recent_alerts, scan

from .universe import alerts_of_day, day_alerts_store, random_bars

SRC = Path(__file__).resolve().parents[2] / "src"
RULES = ["gap_up", "gap_down", "volume_spike"]


@pytest.fixture
def store(tmp_path: Path) -> MarketStore:
    market = MarketStore(tmp_path / "store.duckdb")
    market.write_bars(random_bars(30, 80, seed=5), "1d")
    return market


def test_the_same_alert_is_stored_once(store: MarketStore) -> None:
    alerts = scan(store, RULES, start="2023-01-01")
    target = AlertStore(store)
    first = target.write_alerts(alerts, sinks=["webhook"])
    again = target.write_alerts(alerts, sinks=["webhook"])
    doubled = target.write_alerts(pd.concat([alerts, alerts]), sinks=["webhook"])
    assert (first.stored, first.queued) == (len(alerts), len(alerts)) and len(alerts) > 20
    assert (again.stored, again.queued, again.duplicates) == (0, 0, len(alerts))
    assert doubled.stored == 0
    stored = target.alerts()
    assert len(stored) == len(alerts)
    assert target.counts() == {
        "alerts": len(alerts), "pending": len(alerts), "delivered": 0, "rejected": 0,
    }  # fmt: skip
    # what was stored reads back as it was found
    back = stored.sort_values(["ts", "rule", "symbol"], ignore_index=True)
    assert back["conditions"].tolist() == alerts["conditions"].tolist()
    assert back["metadata"].tolist() == alerts["metadata"].tolist()
    assert (back["trigger_price"] == alerts["trigger_price"]).all()
    assert (back["ts"] == alerts["ts"]).all()
    assert back["idempotency_key"].iloc[0] == idempotency_key(
        back["symbol"].iloc[0], back["rule"].iloc[0], back["ts"].iloc[0]
    )


def test_the_key_is_the_databases_not_a_check(store: MarketStore) -> None:
    alerts = scan(store, RULES, start="2023-01-01")
    AlertStore(store).write_alerts(alerts.head(1))
    row = alerts.iloc[0]
    con = duckdb.connect(str(store.path))
    try:
        with pytest.raises(duckdb.ConstraintException):
            con.execute(
                "INSERT INTO alerts VALUES (?, ?, ?, 1.0, '{}', '{}', now())",
                [row["symbol"], row["rule"], row["ts"].to_pydatetime()],
            )
    finally:
        con.close()


RACER = """
import json, sys, time
from pathlib import Path
from quantdesk.data.store.alerts import AlertStore
from quantdesk.screener import scan

path, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
alerts = scan(path, ["gap_up", "gap_down", "volume_spike"], start="2023-01-01")
ready.write_text("ready")
deadline = time.monotonic() + 60  # bounds a hang only
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
results = [AlertStore(path).write_alerts(alerts.iloc[i::4], sinks=["webhook"]) for i in range(4)]
print(json.dumps({"found": sum(r.found for r in results),
                  "stored": sum(r.stored for r in results),
                  "queued": sum(r.queued for r in results)}))
"""


def test_two_processes_racing_store_each_alert_once(store: MarketStore, tmp_path: Path) -> None:
    AlertStore(store)  # the tables exist before the race
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs, readies = [], []
    for i in range(2):
        ready = tmp_path / f"ready{i}"
        readies.append(ready)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(store.path), str(ready), str(go)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 120  # bounds a hang only
    while not all(r.exists() for r in readies):
        assert time.monotonic() < deadline, "racers never got ready"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.write_text("go")
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    expected = len(scan(store, RULES, start="2023-01-01"))
    assert [r["found"] for r in results] == [expected, expected]
    # between them the racers stored every alert exactly once
    assert sum(r["stored"] for r in results) == expected
    assert sum(r["queued"] for r in results) == expected
    counts = AlertStore(store).counts()
    assert counts["alerts"] == expected and counts["pending"] == expected


def test_listing_filters_and_delivery_state(store: MarketStore) -> None:
    alerts = scan(store, RULES, start="2023-01-01")
    target = AlertStore(store)
    target.write_alerts(alerts, sinks=["webhook"])
    symbol = alerts["symbol"].iloc[0]
    mine = target.alerts(symbol)
    assert set(mine["symbol"]) == {symbol} and len(mine) == (alerts["symbol"] == symbol).sum()
    newest = target.alerts(limit=3)
    assert len(newest) == 3 and newest["ts"].is_monotonic_decreasing
    row = mine.iloc[0]
    target.record_attempt(row["symbol"], row["rule"], row["ts"], "webhook",
                          status="delivered", attempts=2)  # fmt: skip
    assert len(target.alerts(undelivered=True)) == len(alerts) - 1
    done = target.alerts(symbol, rules=[row["rule"]])
    done = done[done["ts"] == row["ts"]].iloc[0]
    assert done["status"] == "delivered" and done["attempts"] == 2
    assert done["delivered_at"] is not pd.NaT and done["last_error"] is None
    with pytest.raises(ValueError, match="unknown delivery status"):
        target.record_attempt(row["symbol"], row["rule"], row["ts"], "webhook",
                              status="lost", attempts=1)  # fmt: skip
    assert recent_alerts(store.path, n=5)["ts"].is_monotonic_decreasing
    assert len(recent_alerts(store, n=5, symbols=[symbol])) <= 5


def test_alerts_written_without_a_sink_are_not_owed(store: MarketStore) -> None:
    alerts = scan(store, RULES, start="2023-01-01")
    target = AlertStore(store)
    target.write_alerts(alerts)
    assert target.alerts(undelivered=True).empty
    assert target.alerts()["status"].isna().all()
    assert target.queue_all("webhook") == len(alerts)
    assert target.queue_all("webhook") == 0
    assert len(target.alerts(undelivered=True)) == len(alerts)


def test_streaming_alerts_are_stored_like_batch_ones(store: MarketStore) -> None:
    bars = store.bars()
    stream = StreamingScan(RULES)
    days = sorted(bars["ts"].unique())
    stream.warm(bars[bars["ts"] < days[-1]])
    live = stream.update(bars[bars["ts"] == days[-1]])
    target = AlertStore(store)
    assert target.write_alerts(live).stored == len(live)
    # a later backfill over the same bars finds the streamed alerts already stored
    result = target.write_alerts(scan(store, RULES, start=days[-5]))
    assert result.duplicates == len(live)


def test_a_read_only_store_has_no_alerts_yet(tmp_path: Path) -> None:
    MarketStore(tmp_path / "fresh.duckdb").create()  # a store with no alert tables yet
    reader = AlertStore(MarketStore(tmp_path / "fresh.duckdb", read_only=True))
    assert reader.alerts().empty
    assert reader.counts()["alerts"] == 0


def _keys(frame: pd.DataFrame) -> set[tuple[str, pd.Timestamp]]:
    return set(zip(frame["symbol"], frame["ts"], strict=True))


def test_a_day_bound_is_the_whole_day_of_each_alert(tmp_path: Path) -> None:
    target = AlertStore(day_alerts_store(tmp_path / "store.duckdb"))
    day, next_day = alerts_of_day("2024-03-12"), alerts_of_day("2024-03-13")
    assert len(day) == 4 and len(next_day) == 2
    assert _keys(target.alerts(start="2024-03-12", end="2024-03-12")) == day
    assert _keys(target.alerts(end="2024-03-12")) == day  # the end day is included whole
    assert _keys(target.alerts(start="2024-03-13")) == next_day
    assert _keys(target.alerts("NYC", end=pd.Timestamp("2024-03-12").date())) == {
        key for key in day if key[0] == "NYC"
    }
    # a bound with a time part is an instant, included
    instant = target.alerts(end="2024-03-12 13:30")
    assert _keys(instant) == {
        ("NYC", pd.Timestamp("2024-03-12 00:00", tz="UTC")),
        ("NYC", pd.Timestamp("2024-03-12 13:30", tz="UTC")),
    }
    # queueing by day follows the same rule
    assert target.queue("webhook", start="2024-03-13").queued == len(next_day)
    assert _keys(target.alerts(undelivered=True)) == next_day
