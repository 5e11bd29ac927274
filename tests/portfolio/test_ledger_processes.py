"""The ledger under real processes: two buyers race for the cash; a kill mid-trade."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data.store.market import MarketStore
from quantdesk.portfolio.ledger import PaperLedger

SRC = str(Path(__file__).resolve().parents[2] / "src")
TIMEOUT = 120  # only bounds a hang


def child(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def make_store(path: Path) -> MarketStore:
    store = MarketStore(path)
    today = pd.Timestamp.now(tz="UTC").normalize()
    frame = pd.DataFrame({"symbol": ["AAA", "BBB"], "ts": [today, today]})
    frame[["open", "high", "low", "close"]] = [[100.0] * 4, [50.0] * 4]
    frame["volume"] = 1e6
    store.write_bars(frame, "1d")
    return store


def book(ledger: PaperLedger) -> tuple:
    positions = ledger.positions(include_closed=True)
    return (
        ledger.cash,
        ledger.trades().to_dict("list"),
        ledger.snapshots().to_dict("list"),
        positions[["symbol", "qty", "avg_cost", "realized_pnl"]].to_dict("list"),
    )


BUYER = """
    import json, sys
    from quantdesk.errors import TradeRejected
    from quantdesk.portfolio.ledger import PaperLedger

    ledger = PaperLedger(sys.argv[1], name="race")
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"  # the start line: both buy at once
    try:
        trade = ledger.buy("AAA", 600, price=100.0)
        print(json.dumps({"filled": trade.trade_id}), flush=True)
    except TradeRejected as exc:
        print(json.dumps({"rejected": exc.reason}), flush=True)
"""


def test_two_processes_buying_60_percent_each_fill_exactly_once(tmp_path):
    path = make_store(tmp_path / "store.duckdb").path
    PaperLedger(path, 100_000.0, "race")
    buyers = [child(BUYER, str(path)) for _ in range(2)]
    for proc in buyers:  # a barrier: both ledgers are open before either trades
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in buyers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outcomes = []
    for proc in buyers:
        out, _ = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(next(iter(o)) for o in outcomes) == ["filled", "rejected"]
    assert {"rejected": "insufficient_cash"} in outcomes
    ledger = PaperLedger(path, name="race")
    trades = ledger.trades()
    assert len(trades) == 1
    # the filled buy paid the backtest's default costs
    assert ledger.cash == pytest.approx(100_000.0 - trades["qty"].iloc[0] * trades["price"].iloc[0]
                                        - trades["commission"].iloc[0])  # fmt: skip
    assert ledger.cash > 0


KILLED = """
    import sys
    from quantdesk.portfolio.ledger import PaperLedger

    def pause():
        # inside the write transaction, after every row is written, before COMMIT
        print("in-transaction", flush=True)
        sys.stdin.readline()  # the test kills the process while it waits here

    ledger = PaperLedger(sys.argv[1], name="kill", before_commit=pause)
    if sys.argv[2] == "buy":
        ledger.buy("AAA", 10, price=100.0)
    else:
        ledger.rebalance({"AAA": 0.0, "BBB": 0.9}, {"AAA": 100.0, "BBB": 50.0})
    print("committed", flush=True)
"""


@pytest.mark.parametrize("action", ["buy", "rebalance"])
def test_a_process_killed_mid_trade_leaves_the_ledger_as_it_was(tmp_path, action):
    store = make_store(tmp_path / "store.duckdb")
    ledger = PaperLedger(store, 10_000.0, "kill")
    ledger.buy("AAA", 20, price=100.0)
    before = book(ledger)
    proc = child(KILLED, str(store.path), action)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "in-transaction"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    assert book(ledger) == before
    # the file is whole and writable again: the same trade now goes through
    after = PaperLedger(store, name="kill").buy("AAA", 1, price=100.0)
    assert after.trade_id == len(before[1]["trade_id"]) + 1


COMMITTED = """
    import sys
    from quantdesk.portfolio.ledger import PaperLedger

    ledger = PaperLedger(sys.argv[1], name="crash", commission_bps=0.0, slippage_bps=0.0)
    for qty, price in [(10, 100.0), (5, 110.0), (3, 120.0)]:
        print(ledger.buy("AAA", qty, price=price).trade_id, flush=True)
    print("done", flush=True)
    sys.stdin.readline()  # the test kills the process while it waits here
"""


def test_trades_committed_before_a_kill_survive_it(tmp_path):
    """A trade leaves its checkpoint to a later write: a crash after it loses nothing."""
    from quantdesk.data.store.locking import wal_bytes

    store = make_store(tmp_path / "store.duckdb")
    PaperLedger(store, 10_000.0, "crash").record_snapshot()
    proc = child(COMMITTED, str(store.path))
    assert proc.stdout is not None
    reported = [proc.stdout.readline().strip() for _ in range(4)]
    assert reported[-1] == "done"
    assert wal_bytes(store.path) > 0  # the trades are in the write-ahead log, not the file yet
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    # a read-only reader replays the log: every reported trade is there, and the cash
    reader = MarketStore(store.path, read_only=True)
    ids = reader.sql("SELECT trade_id FROM paper_trades WHERE ledger = 'crash' ORDER BY 1")
    assert [str(i) for i in ids["trade_id"]] == reported[:-1]
    cash = reader.sql("SELECT cash FROM paper_ledgers WHERE ledger = 'crash'")["cash"].iloc[0]
    assert cash == pytest.approx(10_000.0 - 1000.0 - 550.0 - 360.0)
    ledger = PaperLedger(store, name="crash", commission_bps=0.0, slippage_bps=0.0)
    held = ledger.positions().set_index("symbol").loc["AAA"]
    assert (held["qty"], held["avg_cost"]) == (18.0, pytest.approx(1910.0 / 18))
    assert ledger.buy("AAA", 1, price=100.0).trade_id == int(reported[-2]) + 1


WRITER = """
    import sys
    from quantdesk.portfolio.ledger import PaperLedger

    ledger = PaperLedger(sys.argv[1], name="busy")
    for i in range(int(sys.argv[2])):
        ledger.buy("AAA" if i % 2 else "BBB", 1 + i % 3)
    print("done", flush=True)
"""


def test_readers_see_whole_trades_while_another_process_writes(tmp_path):
    store = make_store(tmp_path / "store.duckdb")
    ledger = PaperLedger(store, 1_000_000.0, "busy")
    ledger.record_snapshot()  # a ledger is created by its first write, with this cash
    n_trades = 30
    writer = child(WRITER, str(store.path), str(n_trades))
    seen = set()
    while True:
        book = ledger.snapshot()
        # only buys: every unit of cash spent is in some position's cost (costs included)
        spent = float(book.positions["cost_basis"].sum()) if len(book.positions) else 0.0
        assert book.cash + spent == pytest.approx(1_000_000.0, rel=1e-12)
        seen.add(len(ledger.trades()))
        if writer.poll() is not None:
            break
    assert writer.returncode == 0
    final = ledger.snapshot()
    assert len(ledger.trades()) == n_trades
    assert final.positions["qty"].sum() == sum(1 + i % 3 for i in range(n_trades))
    assert len(seen) > 1, "the reader must have seen the book change"
