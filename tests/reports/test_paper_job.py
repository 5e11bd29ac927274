"""The catalog's ``paper`` job rebalances the named ledger after the close and publishes it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quantdesk.data import MarketStore, simulate
from quantdesk.portfolio.ledger import PaperLedger
from quantdesk.reports.batch import run_batch
from quantdesk.reports.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]


def test_paper_job_rebalances_the_ledger_at_the_latest_close_and_publishes(
    _isolated_home: Path, tmp_path: Path
) -> None:
    # a store whose latest daily bars are today's session (or Friday's on a weekend)
    sessions = pd.bdate_range(end=pd.Timestamp.now(tz="UTC").normalize(), periods=300)
    market = simulate(n_symbols=3, n_days=300, seed=4, start=f"{sessions[0]:%Y-%m-%d}")
    store = MarketStore()
    store.write_bars(market.bars, "1d")
    latest = market.bars["ts"].max()

    job = Catalog.load(ROOT / "research" / "reports.yaml").job("paper")
    assert (job.schedule, job.timezone) == ("30 17 * * 1-5", "America/New_York")
    result = run_batch(job, executor="serial", reports_dir=tmp_path / "reports", progress=False)
    assert result.ok, result.summary()

    ledger = PaperLedger(store, name="paper")
    trades = ledger.trades()
    assert len(trades) > 0
    assert set(trades["price_source"]) == {"store_bar"}
    assert (trades["price_ts"] == latest).all()
    assert ledger.cash < ledger.initial_cash
    html = next((tmp_path / "reports").rglob("paper_portfolio.html")).read_text()
    for section in ("Positions", "Drift from the backtest", "Turnover and costs"):
        assert section in html
