"""A paper ledger that follows a strategy day by day ends where the backtest says.

Each day the weights come from ``vol_target_trend`` on the data up to that day only, and
the ledger rebalances at that day's close, the bar ``quantdesk.backtest.run`` fills the
same day's weights at (its weights at bar t trade at close t).  Equity, positions and
cash then agree with the backtest on the same prices and costs to rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import run
from quantdesk.backtest.engine import rebalance_fills
from quantdesk.data import simulate
from quantdesk.data.store.market import MarketStore
from quantdesk.portfolio.drift import drift_from_backtest
from quantdesk.portfolio.ledger import PaperLedger
from quantdesk.strategies import vol_target_trend

STRATEGY = {"lookbacks": (10, 20, 40), "vol_halflife": 10, "target_vol": 0.4, "max_gross": 1.0}
DAYS = 60
SHARE = 0.0002  # of a bar's volume: small enough that the cap binds on the first buys


@pytest.fixture(scope="module")
def market():
    return simulate(n_symbols=5, n_days=110, seed=11)


def wide(market, field: str) -> pd.DataFrame:
    frame = market.bars.pivot(index="ts", columns="symbol", values=field)
    frame.columns.name = None
    return frame


@pytest.mark.parametrize(
    ("long_only", "limits"),
    [(False, {}), (True, {"lot_size": 1.0, "max_volume_share": SHARE})],
    ids=["long-short-fractional", "long-only-lots-and-volume-cap"],
)
def test_ledger_following_the_strategy_ends_where_the_backtest_does(
    market, tmp_path, long_only, limits
):
    close, volume = wide(market, "close"), wide(market, "volume")
    days = close.index[-DAYS:]
    costs = {"commission_bps": 3.0, "slippage_bps": 5.0}
    strategy = {**STRATEGY, "long_only": long_only}
    full = vol_target_trend(close, **strategy)
    backtest = run(
        close.loc[days], full.loc[days], init_cash=250_000.0,
        volume=volume.loc[days] if limits else None, **costs, **limits,
    )  # fmt: skip
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(market.bars, "1d")
    ledger = PaperLedger(
        store, initial_cash=250_000.0, name="follow", allow_short=not long_only, **costs, **limits
    )

    equity, cash, units = [], [], []
    for t in days:
        # the strategy sees nothing after t: its latest row is the decision for close t
        weights = vol_target_trend(close.loc[:t], **strategy).iloc[-1]
        ledger.rebalance(weights, prices=close.loc[t], volume=volume.loc[t], ts=t)
        book = ledger.snapshot(prices=close.loc[t])
        equity.append(book.equity)
        cash.append(book.cash)
        held = book.positions.set_index("symbol")["qty"]
        units.append(held.reindex(close.columns, fill_value=0.0))

    assert full.loc[days].notna().any(axis=1).all(), "every day must place orders"
    assert len(backtest.trades) > DAYS, "the comparison needs a strategy that trades"
    np.testing.assert_allclose(equity, backtest.equity.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(cash, backtest.cash.to_numpy(), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(
        pd.DataFrame(units).to_numpy(), backtest.positions.to_numpy(), rtol=1e-9, atol=1e-9
    )
    trades = ledger.trades()
    assert len(trades) == len(backtest.trades)
    np.testing.assert_allclose(
        trades["commission"].sum(), backtest.trades["commission"].sum(), rtol=1e-9
    )
    assert set(trades["price_source"]) == {"explicit"}
    assert (trades["price_ts"] == trades["ts"]).all()
    if not limits:  # the report's drift: none for a ledger that followed every session
        drift = drift_from_backtest(ledger, close.loc[days], full.loc[days])
        assert len(drift) == DAYS
        np.testing.assert_allclose(drift["drift"], 0.0, atol=1e-9)
        activity = ledger.activity()
        np.testing.assert_allclose(activity["commission"], backtest.costs["commission"]
                                   .loc[activity.index], rtol=1e-9)  # fmt: skip
    if not long_only:
        assert (backtest.positions < 0).any().any(), "the long-short case must hold shorts"
    if limits:  # the limits bind, so the comparison covers them
        assert np.allclose(trades["qty"], trades["qty"].round())
        cap = np.floor(
            SHARE * volume.stack().reindex(pd.MultiIndex.from_frame(trades[["ts", "symbol"]]))
        )
        assert (trades["qty"].to_numpy() <= cap.to_numpy()).all()
        assert (trades["qty"].to_numpy() == cap.to_numpy()).any(), "the volume cap must bind"


def test_rebalance_fills_from_a_running_book_equal_the_backtests_next_bar():
    """One bar from the book the backtest holds after bar 0 fills like the backtest's bar 1."""
    ts = pd.date_range("2024-01-01", periods=2, freq="D", tz="UTC", name="ts")
    close = pd.DataFrame({"A": [10.0, 12.0], "B": [20.0, 19.0], "C": [5.0, 5.5]}, index=ts)
    weights = pd.DataFrame({"A": [0.5, 0.1], "B": [0.3, 0.6], "C": [0.2, 0.3]}, index=ts)
    costs = {"commission_bps": 10.0, "slippage_bps": 20.0}
    result = run(close, weights, init_cash=1_000.0, lot_size=0.5, **costs)
    after_first = result.positions.iloc[0]
    fills = rebalance_fills(
        close.iloc[1], weights.iloc[1], cash=float(result.cash.iloc[0]), units=after_first,
        lot_size=0.5, **costs,
    )  # fmt: skip
    expected = result.trades[result.trades["ts"] == ts[1]].set_index("symbol")
    got = fills.set_index("symbol").loc[expected.index]
    signed = np.where(expected["side"] == "buy", expected["units"], -expected["units"])
    np.testing.assert_allclose(got["units"], signed, rtol=1e-12)
    np.testing.assert_allclose(got["price"], expected["price"], rtol=1e-12)
    np.testing.assert_allclose(got["commission"], expected["commission"], rtol=1e-12)
    assert fills["units"].iloc[0] < 0, "sells go first"
