"""Issue 20, paper trading: no opinion keeps a position, one P&L on every surface, no
ledger from a rejected first trade, and the rebalance command says it is long only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data.store.market import MarketStore
from quantdesk.errors import TradeRejected
from quantdesk.portfolio.follow import follow_strategy
from quantdesk.portfolio.ledger import PaperLedger

FREE = {"commission_bps": 0.0, "slippage_bps": 0.0}
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def daily_bars(closes: dict[str, list[float]]) -> pd.DataFrame:
    """Daily bars of each symbol, ending today (so their prices are not stale)."""
    today = pd.Timestamp.now(tz="UTC").normalize()
    frames = []
    for symbol, close in closes.items():
        days = pd.bdate_range(end=today, periods=len(close), tz="UTC")
        frames.append(
            pd.DataFrame({"symbol": symbol, "ts": days, "open": close, "high": close,
                          "low": close, "close": close, "volume": 1e6})
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def held(ledger: PaperLedger) -> dict[str, float]:
    positions = ledger.positions()
    return dict(zip(positions["symbol"], positions["qty"], strict=True))


# -- item 9: warm-up is no opinion, and no opinion keeps a position -----------------------


def test_rebalance_on_six_bars_refuses_and_sells_nothing(tmp_path: Path) -> None:
    """Six daily bars are too few for any lookback: the rebalance refuses, both positions stay."""
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(daily_bars({"AAA": [100.0, 101, 99, 102, 103, 104],
                                 "BBB": [50.0, 49, 51, 50, 52, 53]}), "1d")  # fmt: skip
    ledger = PaperLedger(store, 10_000.0, "six", **FREE)
    ledger.buy("AAA", 10, price=100.0)
    ledger.buy("BBB", 20, price=50.0)
    before = (ledger.cash, len(ledger.trades()), held(ledger))
    with pytest.raises(TradeRejected, match="too little history") as info:
        follow_strategy(ledger, symbols=["AAA", "BBB"], long_only=True)
    assert info.value.reason == "bad_weights"
    assert (ledger.cash, len(ledger.trades()), held(ledger)) == before
    code, out = cli("paper", "rebalance", "--store", str(store.path), "--ledger", "six",
                    "--symbols", "AAA,BBB")  # fmt: skip
    assert code == 1 and "too little history" in out
    assert (ledger.cash, len(ledger.trades()), held(ledger)) == before


def test_rebalance_keeps_a_held_symbol_still_in_warm_up_and_says_so(tmp_path: Path) -> None:
    """AAA has 80 bars of a steady rise, NEW only 6: AAA is bought, NEW is held as it was."""
    store = MarketStore(tmp_path / "store.duckdb")
    rise = (100.0 * np.exp(0.002 * np.arange(80) + 0.01 * np.sin(np.arange(80)))).tolist()
    store.write_bars(daily_bars({"AAA": rise, "NEW": [20.0, 21, 20, 22, 21, 22]}), "1d")
    ledger = PaperLedger(store, 10_000.0, "new", **FREE)
    ledger.buy("NEW", 50, price=20.0)
    result = follow_strategy(
        ledger, symbols=["AAA", "NEW"], lookbacks=(5, 20), target_vol=0.5, long_only=True
    )
    assert held(ledger)["NEW"] == 50.0
    assert result.fills["symbol"].tolist() == ["AAA"] and result.fills["side"].tolist() == ["buy"]
    assert result.kept == ("NEW",)
    assert "kept 1 held symbol(s) with no target weight" in result.summary()
    assert "NEW" in result.summary().splitlines()[-1]
    assert result.to_dict()["kept"] == ["NEW"]


# -- item 10: realised + unrealised = equity - starting cash, on every surface -------------


def test_pnl_split_is_the_same_on_the_pane_the_cli_and_the_report(tmp_path: Path) -> None:
    """A closed round trip (AAA: 10 @ 100, sold @ 84) and an open position (BBB: 5 @ 50).

    By hand, without costs: realised 10 * (84 - 100) = -160; BBB valued at its stored
    close 56: unrealised 5 * (56 - 50) = 30; equity 10_000 - 1_000 + 840 - 250 + 280
    = 9_870, so equity minus the starting cash is -130 = -160 + 30.
    """
    from quantdesk.dashboards.panes import PositionsPane

    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(daily_bars({"AAA": [90.0, 84.0], "BBB": [52.0, 56.0]}), "1d")
    ledger = PaperLedger(store, 10_000.0, "pnl", **FREE)
    ledger.buy("AAA", 10, price=100.0)
    ledger.sell("AAA", 10, price=84.0)
    ledger.buy("BBB", 5, price=50.0)
    expected = {"realized": -160.0, "unrealized": 30.0, "equity": 9_870.0}

    # the report: the paper_portfolio notebook prints ledger.snapshot()
    report = ledger.snapshot()
    # the monitor's positions pane, as a plain object, valued at the stored bars
    pane = PositionsPane(ledger, None)
    shown = pane.snapshot
    assert pane.table.value["symbol"].tolist() == ["BBB"]  # it lists open positions only
    # the command line
    code, out = cli("paper", "show", "--json", "--store", str(store.path), "--ledger", "pnl")
    assert code == 0, out
    printed = json.loads(out)
    surfaces = {
        "report": (report.realized_pnl, report.unrealized_pnl, report.equity),
        "pane": (shown.realized_pnl, shown.unrealized_pnl, shown.equity),
        "cli": (printed["realized_pnl"], printed["unrealized_pnl"], printed["equity"]),
    }
    for surface, (realized, unrealized, equity) in surfaces.items():
        assert (realized, unrealized, equity) == pytest.approx(
            (expected["realized"], expected["unrealized"], expected["equity"])
        ), surface
        assert realized + unrealized == pytest.approx(equity - 10_000.0), surface
    assert "realised P&amp;L -160.00" in pane.summary.object
    assert "P&amp;L -130.00" in pane.summary.object
    assert "P&L -130.00 (realised -160.00, unrealised 30.00)" in report.summary()


# -- item 11: a rejected first trade leaves no ledger; the help says long only -------------


def test_a_rejected_first_trade_leaves_no_ledger_behind(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(daily_bars({"AAA": [100.0, 101.0]}), "1d")
    fresh = PaperLedger(store, 1_000.0, "fresh", **FREE)
    with pytest.raises(TradeRejected, match=r"cash is 1,000\.00"):
        fresh.buy("AAA", 1_000)
    assert PaperLedger.ledgers(store) == []
    assert fresh.snapshots().empty and fresh.trades().empty and fresh.cash == 1_000.0
    code, out = cli("paper", "buy", "AAA", "1000", "--cash", "1000", "--store", str(store.path),
                    "--ledger", "cli")  # fmt: skip
    assert code == 1 and "insufficient_cash" in out
    code, out = cli("paper", "sell", "AAA", "1", "--store", str(store.path), "--ledger", "cli")
    assert code == 1 and "insufficient_position" in out
    assert PaperLedger.ledgers(store) == []
    # the first trade that fills creates the ledger, with its cash and its opening snapshot
    fresh.buy("AAA", 5, price=100.0)
    assert PaperLedger.ledgers(store) == ["fresh"]
    assert fresh.initial_cash == 1_000.0 and fresh.cash == 500.0
    assert fresh.snapshots()["equity"].tolist() == [1_000.0, 1_000.0]


def test_paper_rebalance_help_says_it_is_long_only() -> None:
    code, out = cli("paper", "rebalance", "--help")
    assert code == 0
    text = " ".join(out.split()).lower()
    assert "long only" in text and "never a short sale" in text
