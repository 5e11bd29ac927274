"""The paper ledger: trades per second (validated, one transaction each) and a 500-asset rebalance.

A trade opens a short-lived read-write connection, validates against the cash and
positions it reads inside the transaction, writes the trade row, the position, the
cash and a snapshot, and commits.  Peer for trades/s: a bare DuckDB insert of one row
per transaction over the same kind of short-lived connection (what the connection and
commit alone cost).  Peer for the rebalance: the same 500-asset bar through the
backtest's order simulation alone (``rebalance_fills``, no reads or writes).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._timing import best_of, row

N_TRADES = 200
N_ASSETS = 500


def run() -> list[dict[str, Any]]:
    """Return the benchmark rows for ledger trades and a 500-asset rebalance."""
    from quantdesk.backtest.engine import rebalance_fills
    from quantdesk.data.store.locking import transaction
    from quantdesk.data.store.market import MarketStore
    from quantdesk.portfolio.ledger import PaperLedger

    rng = np.random.default_rng(5)
    symbols = [f"S{i:03d}" for i in range(N_ASSETS)]
    today = pd.Timestamp.now(tz="UTC").normalize()
    closes = rng.uniform(10, 200, N_ASSETS)
    bars = pd.DataFrame({"symbol": symbols, "ts": today, "close": closes, "volume": 1e7})
    bars["open"] = bars["high"] = bars["low"] = bars["close"]
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(Path(tmp) / "bench.duckdb")
        store.write_bars(bars, "1d", source="bench")
        ledger = PaperLedger(store, 1e9, "bench")
        ledger.buy("S000", 1, price=100.0)  # warm: the schema exists, the modules are loaded

        t0 = time.perf_counter()
        for i in range(N_TRADES):
            ledger.buy(symbols[i % 50], 1, price=float(closes[i % 50]))
        ours = N_TRADES / (time.perf_counter() - t0)

        with transaction(store.path, lock_timeout=60) as con:
            con.execute("CREATE TABLE bare (i BIGINT, symbol VARCHAR, qty DOUBLE, price DOUBLE)")
        t0 = time.perf_counter()
        for i in range(N_TRADES):
            with transaction(store.path, lock_timeout=60) as con:
                con.execute("INSERT INTO bare VALUES (?, ?, ?, ?)", [i, symbols[i % 50], 1.0, 1.0])
        bare = N_TRADES / (time.perf_counter() - t0)

        book = PaperLedger(store, 1e8, "rebalance")
        prices = pd.Series(closes, index=symbols)
        book.rebalance(pd.Series(1.0 / N_ASSETS, index=symbols), prices)  # from flat
        targets = [pd.Series(w / w.sum(), index=symbols) for w in rng.uniform(0, 1, (3, N_ASSETS))]
        it = iter(targets)
        seconds, result = best_of(lambda: book.rebalance(next(it), prices), repeat=3)
        held = book.positions()
        units = held.set_index("symbol")["qty"]
        peer, _ = best_of(
            lambda: rebalance_fills(prices, targets[0], cash=book.cash, units=units), repeat=3
        )
    return [
        row(
            "paper ledger: trades/s (validated, 1 transaction each)",
            ours, bare, "trades/s", "-", higher_is_better=True,
            note=f"{N_TRADES} buys; peer: bare DuckDB insert per transaction",
        ),
        row(
            f"paper ledger: rebalance of {N_ASSETS} assets", seconds, peer, "s", "< 1 s",
            met=seconds < 1.0,
            note=f"{len(result.fills)} fills in one transaction; peer: the order simulation alone",
        ),
    ]  # fmt: skip
