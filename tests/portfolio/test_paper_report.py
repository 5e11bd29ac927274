"""paper_report: the strategy's weights computed once, traded and measured against the backtest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data import MarketStore, simulate
from quantdesk.errors import TradeRejected
from quantdesk.portfolio.follow import follow_strategy, follow_weights, strategy_weights
from quantdesk.portfolio.ledger import PaperLedger
from quantdesk.portfolio.paper_report import paper_report

PARAMS = {"lookbacks": [21, 63], "target_vol": 0.2, "long_only": True}
FILL_COLUMNS = ["symbol", "side", "qty", "price", "commission", "slippage"]


def fresh_store(path: Path, n_days: int = 300) -> MarketStore:
    """A store whose latest daily bars are today's session (or Friday's on a weekend)."""
    sessions = pd.bdate_range(end=pd.Timestamp.now(tz="UTC").normalize(), periods=n_days)
    market = simulate(n_symbols=3, n_days=n_days, seed=4, start=f"{sessions[0]:%Y-%m-%d}")
    store = MarketStore(path)
    store.write_bars(market.bars, "1d")
    return store


def test_the_report_trades_what_follow_strategy_trades(tmp_path: Path) -> None:
    """One rule: the report's rebalance and the CLI's/job's follow_strategy agree fill for fill."""
    store = fresh_store(tmp_path / "a.duckdb")
    twin = MarketStore(shutil.copy(store.path, tmp_path / "b.duckdb"))
    report = paper_report(PaperLedger(store, 100_000.0, "paper"), **PARAMS)
    followed = follow_strategy(PaperLedger(twin, 100_000.0, "paper"), **PARAMS)
    assert report.rebalance is not None and len(report.rebalance.fills) > 0
    pd.testing.assert_frame_equal(
        report.rebalance.fills[FILL_COLUMNS].reset_index(drop=True),
        followed.fills[FILL_COLUMNS].reset_index(drop=True),
    )
    assert report.rebalance.equity == pytest.approx(followed.equity)


def test_the_drift_backtests_the_weights_the_ledger_traded(tmp_path: Path) -> None:
    """Rebalanced at the latest close to the report's own weights, the ledger has no drift.

    The notebook used to backtest weights computed on the last ``history_days`` closes
    while the ledger traded weights computed on all of them.
    """
    store = fresh_store(tmp_path / "store.duckdb")
    ledger = PaperLedger(store, 100_000.0, "paper")
    report = paper_report(ledger, history_days=100, **PARAMS)
    assert len(report.drift) == 1
    assert report.drift["drift"].abs().max() < 1e-9, report.drift
    # the weights are those of every stored close, and the rebalance traded their last row
    close = store.panel("close")
    pd.testing.assert_frame_equal(report.weights, strategy_weights(close, **PARAMS))
    assert report.rebalance is not None
    latest = report.weights.iloc[-1]
    assert set(report.rebalance.fills["symbol"]) == set(latest[latest > 0].index)


def test_no_rebalance_when_not_asked(tmp_path: Path) -> None:
    ledger = PaperLedger(fresh_store(tmp_path / "store.duckdb"), 100_000.0, "paper")
    report = paper_report(ledger, rebalance_now=False, **PARAMS)
    assert report.rebalance is None and ledger.trades().empty and report.drift.empty
    assert "rebalance_now=False" in report.summary()


def test_too_little_history_is_refused_as_follow_strategy_refuses_it(tmp_path: Path) -> None:
    store = fresh_store(tmp_path / "store.duckdb", n_days=30)
    ledger = PaperLedger(store, 100_000.0, "paper")
    with pytest.raises(TradeRejected) as ours:
        follow_weights(ledger, strategy_weights(store.panel("close"), **PARAMS))
    with pytest.raises(TradeRejected) as theirs:
        follow_strategy(ledger, **PARAMS)
    assert str(ours.value) == str(theirs.value)
    assert "too little history for its lookbacks: 30 bars" in str(ours.value)
    assert ours.value.reason == theirs.value.reason == "bad_weights"
    assert ledger.trades().empty


def test_an_unknown_strategy_is_refused(tmp_path: Path) -> None:
    ledger = PaperLedger(fresh_store(tmp_path / "store.duckdb"), 100_000.0, "paper")
    with pytest.raises(ValueError, match="unknown strategy 'momo'") as ours:
        paper_report(ledger, strategy="momo")
    with pytest.raises(ValueError) as theirs:
        follow_strategy(ledger, "momo")
    assert str(ours.value) == str(theirs.value)
