"""One order rule: manual trades and rebalances are priced by the kernel's own function.

``quantdesk.backtest.order_rules.fill_order`` is what the compiled order simulation
fills by; the ledger's buys, sells and rebalance fills must go through it too (a second
copy of the cost arithmetic once drifted from the kernel and lost its NaN guard).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import order_rules
from quantdesk.data.live.quotes import QuoteCache
from quantdesk.data.store.market import MarketStore
from quantdesk.errors import TradeRejected
from quantdesk.portfolio.ledger import PaperLedger

COSTS = {"commission_bps": 7.0, "slippage_bps": 13.0}


@pytest.fixture
def store(tmp_path):
    market = MarketStore(tmp_path / "store.duckdb")
    today = pd.Timestamp.now(tz="UTC").normalize()
    frame = pd.DataFrame({"symbol": ["AAA", "BBB"], "ts": [today, today]})
    frame[["open", "high", "low", "close"]] = [[100.0] * 4, [50.0] * 4]
    frame["volume"] = 1e6
    market.write_bars(frame, "1d")
    return market


def test_fill_order_by_hand():
    """A buy and a sell worked by hand: 10 bps commission, 50 bps slippage."""
    price, fee, change = order_rules.fill_order(10.0, 100.0, 0.001, 0.005)
    assert price == pytest.approx(100.5) and fee == pytest.approx(1.005)
    assert change == pytest.approx(-(1005.0 + 1.005))
    price, fee, change = order_rules.fill_order(-10.0, 100.0, 0.001, 0.005)
    assert price == pytest.approx(99.5) and fee == pytest.approx(0.995)
    assert change == pytest.approx(995.0 - 0.995)


def test_manual_trades_and_rebalance_fills_are_priced_by_the_one_rule(store, monkeypatch):
    from quantdesk.backtest.engine import rebalance_fills

    # load the compiled kernel first: it binds the rule when it is imported, and the spy
    # below watches the ledger's calls from Python, not the kernel's compiled ones
    rebalance_fills(pd.Series({"A": 1.0}), pd.Series({"A": 1.0}), cash=1.0, units=pd.Series())
    calls: list[tuple[tuple[float, float, float, float], tuple[float, float, float]]] = []
    kernel_rule = order_rules.fill_order

    def spy(units: float, price: float, fees: float, slippage: float):
        out = kernel_rule(units, price, fees, slippage)
        calls.append(((units, price, fees, slippage), out))
        return out

    monkeypatch.setattr(order_rules, "fill_order", spy)
    ledger = PaperLedger(store, 100_000.0, "one-rule", **COSTS)
    ledger.buy("AAA", 30, price=101.25)
    ledger.sell("AAA", 12.5, price=99.75)
    rebalance = ledger.rebalance({"AAA": 0.1, "BBB": 0.3}, prices={"AAA": 100.0, "BBB": 50.0})

    trades = ledger.trades()
    assert len(trades) == 2 + len(rebalance.fills) == len(calls) == 4
    for row, ((units, ref, fees, slippage), (price, commission, _)) in zip(
        trades.itertuples(), calls, strict=True
    ):
        assert (fees, slippage) == (7.0 * 1e-4, 13.0 * 1e-4)
        assert row.ref_price == ref and abs(units) == row.qty
        assert (row.side == "buy") == (units > 0)
        # the recorded fill is exactly what the rule returned, not a recomputation
        assert row.price == price and row.commission == commission
    # the cash moved by the rule's cash changes, nothing else
    cash = 100_000.0
    for _, (_, _, change) in calls:
        cash = order_rules.settle(cash, change)
    assert ledger.cash == cash


def test_rebalance_fills_price_like_the_kernel(store):
    """The ledger's rebalance fill prices are the kernel's (both from the one rule)."""
    from quantdesk.backtest.engine import rebalance_fills

    ledger = PaperLedger(store, 50_000.0, "kernel", **COSTS)
    prices = pd.Series({"AAA": 100.0, "BBB": 50.0})
    weights = pd.Series({"AAA": 0.45, "BBB": 0.5})
    expected = rebalance_fills(prices, weights, cash=50_000.0, units=pd.Series(dtype=float),
                               **COSTS)  # fmt: skip
    result = ledger.rebalance(weights, prices=prices)
    got = result.fills.set_index("symbol").loc[expected["symbol"]]
    np.testing.assert_array_equal(got["price"], expected["price"])
    np.testing.assert_allclose(got["commission"], expected["commission"], rtol=1e-12)


def state(ledger: PaperLedger) -> tuple:
    return ledger.cash, len(ledger.trades()), len(ledger.snapshots())


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_nan_or_infinite_quote_is_refused_for_a_manual_trade(store, bad, side):
    """A live quote that is not a number never fills (and never turns the cash into NaN)."""
    ledger = PaperLedger(store, 100_000.0, "guard", **COSTS)
    ledger.buy("AAA", 10, price=100.0)
    before = state(ledger)
    quotes = QuoteCache()
    quotes.update("AAA", pd.Timestamp.now(tz="UTC"), bad)
    with pytest.raises(TradeRejected) as caught:
        getattr(ledger, side)("AAA", 5, prices=quotes)
    assert caught.value.reason == "bad_price"
    assert state(ledger) == before and math.isfinite(ledger.cash)


@pytest.mark.parametrize("units", [math.nan, math.inf, 0.0])
def test_the_rule_refuses_sizes_and_prices_that_are_not_finite(units):
    with pytest.raises(ValueError, match="finite"):
        order_rules.fill_order(units, 100.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        order_rules.fill_order(1.0, math.nan if units else -1.0, 0.0, 0.0)
