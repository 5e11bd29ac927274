"""The paper ledger on a real DuckDB file: accounting, validation, prices, named ledgers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.live.quotes import QuoteCache
from quantdesk.data.store.market import MarketStore
from quantdesk.errors import TradeRejected
from quantdesk.portfolio.ledger import MAX_BAR_AGE, SHORT_MARGIN, PaperLedger

FREE = {"commission_bps": 0.0, "slippage_bps": 0.0}


def now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def bars(symbol: str, ts: pd.Timestamp, close: float, volume: float = 1e6) -> pd.DataFrame:
    return pd.DataFrame(
        {"symbol": [symbol], "ts": [ts], "open": [close], "high": [close], "low": [close],
         "close": [close], "volume": [volume]}
    )  # fmt: skip


@pytest.fixture
def store(tmp_path):
    market = MarketStore(tmp_path / "store.duckdb")
    today = now().normalize()
    market.write_bars(pd.concat([bars("AAA", today, 100.0), bars("BBB", today, 50.0)]), "1d")
    market.write_bars(bars("OLD", today - MAX_BAR_AGE - pd.Timedelta(days=1), 10.0), "1d")
    ticks = pd.DataFrame({"symbol": ["TIK"], "ts": [today], "price": [5.0], "size": [1.0]})
    market.write_ticks(ticks)
    return market


def state(ledger: PaperLedger) -> tuple:
    """Everything a rejected trade must leave alone."""
    positions = ledger.positions(include_closed=True)
    return (
        ledger.cash,
        len(ledger.trades()),
        len(ledger.snapshots()),
        positions[["symbol", "qty", "avg_cost", "realized_pnl"]].to_dict("list"),
    )


def test_average_cost_and_fifo_worked_by_hand(store):
    """Buy 10 @ 100, 10 @ 110, sell 15 @ 120 (no costs): average cost 105, FIFO 100 then 110."""
    average = PaperLedger(store, 10_000.0, "avg", **FREE)
    fifo = PaperLedger(store, 10_000.0, "fifo", cost_method="fifo", **FREE)
    for ledger in (average, fifo):
        ledger.buy("AAA", 10, price=100.0)
        ledger.buy("AAA", 10, price=110.0)
    sold_avg = average.sell("AAA", 15, price=120.0)
    sold_fifo = fifo.sell("AAA", 15, price=120.0)
    assert sold_avg.realized_pnl == pytest.approx(15 * (120 - 105))  # 225
    assert sold_fifo.realized_pnl == pytest.approx(10 * (120 - 100) + 5 * (120 - 110))  # 250
    avg_pos = average.positions({"AAA": 130.0}).set_index("symbol").loc["AAA"]
    fifo_pos = fifo.positions({"AAA": 130.0}).set_index("symbol").loc["AAA"]
    assert (avg_pos["qty"], avg_pos["avg_cost"]) == (5.0, pytest.approx(105.0))
    assert (fifo_pos["qty"], fifo_pos["avg_cost"]) == (5.0, pytest.approx(110.0))
    assert avg_pos["unrealized_pnl"] == pytest.approx(5 * 25)
    assert fifo_pos["unrealized_pnl"] == pytest.approx(5 * 20)
    # either way the P&L adds up to the change in equity
    for ledger in (average, fifo):
        book = ledger.snapshot({"AAA": 130.0})
        assert book.cash == pytest.approx(10_000 - 1000 - 1100 + 1800)
        assert book.realized_pnl + book.unrealized_pnl == pytest.approx(book.total_pnl)
        assert book.total_pnl == pytest.approx(350.0)


def fifo_twin(trades: list[tuple[float, float]]) -> tuple[list[float], list[list[float]]]:
    """Plain FIFO over signed (units, price): realised P&L per trade and the lots left."""
    lots: list[list[float]] = []  # [units (signed), price], oldest first
    realized = []
    for units, price in trades:
        pnl = 0.0
        while units and lots and (lots[0][0] > 0) != (units > 0):
            take = min(abs(units), abs(lots[0][0]))
            side = 1.0 if lots[0][0] > 0 else -1.0
            pnl += take * (price - lots[0][1]) * side
            lots[0][0] -= take * side
            units += take * side
            if lots[0][0] == 0:
                lots.pop(0)
        if units:
            lots.append([units, price])
        realized.append(pnl)
    return realized, lots


def test_fifo_lots_across_trades_match_a_plain_twin(store):
    """Each trade reads only the lots it closes and writes only the ones it changes."""
    trades = [(10, 100.0), (5, 110.0), (-12, 120.0), (4, 115.0), (-10, 105.0), (5, 100.0)]
    ledger = PaperLedger(store, 10_000.0, "lots", allow_short=True, cost_method="fifo", **FREE)
    done = []
    for units, price in trades:
        call = ledger.buy if units > 0 else ledger.sell
        done.append(call("AAA", abs(units), price=price))
    realized, lots = fifo_twin(trades)
    assert [t.realized_pnl for t in done] == pytest.approx(realized)
    assert realized == pytest.approx([0, 0, 220, 0, -55, 15])  # by hand, as a check on the twin
    stored = store.sql(
        "SELECT trade_id, qty, cost FROM paper_lots WHERE ledger = 'lots' ORDER BY trade_id"
    )
    assert stored[["qty", "cost"]].values.tolist() == lots == [[2.0, 100.0]]
    assert stored["trade_id"].tolist() == [done[-1].trade_id]  # the flip opened it
    held = PaperLedger(store, name="lots", cost_method="fifo").positions().set_index("symbol")
    assert (held.loc["AAA", "qty"], held.loc["AAA", "avg_cost"]) == (2.0, 100.0)
    assert held.loc["AAA", "realized_pnl"] == pytest.approx(sum(realized))


def test_costs_come_from_the_backtest_and_enter_the_cost_basis(store):
    ledger = PaperLedger(store, 10_000.0, "costs", commission_bps=10.0, slippage_bps=20.0)
    trade = ledger.buy("AAA", 10, price=100.0)
    assert trade.price == pytest.approx(100.0 * 1.002)
    assert trade.commission == pytest.approx(10 * 100.2 * 0.001)
    assert trade.slippage == pytest.approx(10 * 0.2)
    assert ledger.cash == pytest.approx(10_000 - 10 * 100.2 - 1.002)
    held = ledger.positions({"AAA": 100.0}).set_index("symbol").loc["AAA"]
    assert held["avg_cost"] == pytest.approx((10 * 100.2 + 1.002) / 10)
    sold = ledger.sell("AAA", 10, price=100.0)
    # a round trip at an unchanged price loses exactly its costs
    assert sold.realized_pnl == pytest.approx(-(trade.commission + trade.slippage)
                                              - (sold.commission + sold.slippage))  # fmt: skip
    assert ledger.cash == pytest.approx(10_000 + sold.realized_pnl)
    assert ledger.positions().empty  # closed positions are left out by default
    assert ledger.positions(include_closed=True)["qty"].tolist() == [0.0]


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda lg: lg.buy("AAA", 0), "bad_quantity"),
        (lambda lg: lg.buy("AAA", -3), "bad_quantity"),
        (lambda lg: lg.buy("AAA", float("nan")), "bad_quantity"),
        (lambda lg: lg.buy("AAA", math.inf), "bad_quantity"),
        (lambda lg: lg.buy("AAA", "ten"), "bad_quantity"),
        (lambda lg: lg.buy("AAA", 1, price=-5.0), "bad_price"),
        (lambda lg: lg.buy("NOPE", 1, price=10.0), "unknown_symbol"),
        (lambda lg: lg.buy("TIK", 1), "no_price"),
        (lambda lg: lg.buy("OLD", 1), "stale_price"),
        (lambda lg: lg.buy("AAA", 100), "insufficient_cash"),  # 10,000 + costs > cash
        (lambda lg: lg.buy("AAA", 99.99, price=100.0), "insufficient_cash"),  # costs tip it
        (lambda lg: lg.sell("BBB", 10.5), "insufficient_position"),
        (lambda lg: lg.sell("AAA", 1), "insufficient_position"),
        (lambda lg: lg.rebalance({"AAA": -0.5}, {"AAA": 100.0}), "bad_weights"),
        (lambda lg: lg.rebalance({"AAA": math.inf}, {"AAA": 100.0}), "bad_weights"),
        (lambda lg: lg.rebalance({"AAA": 0.5, "NOPE": 0.1}), "unknown_symbol"),
        (lambda lg: lg.rebalance({"AAA": 0.5, "OLD": 0.1}), "stale_price"),
        (lambda lg: lg.watch_add("NOPE"), "unknown_symbol"),
    ],
)
def test_a_rejected_trade_says_why_and_changes_nothing(store, call, reason):
    ledger = PaperLedger(store, 10_000.0, "strict")
    ledger.buy("BBB", 10, price=50.0)
    before = state(ledger)
    with pytest.raises(TradeRejected) as info:
        call(ledger)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)
    assert state(ledger) == before
    assert ledger.watchlist() == []


def test_prices_come_from_the_store_a_quote_cache_or_the_caller_and_are_recorded(store):
    quotes = QuoteCache()
    ledger = PaperLedger(store, 10_000.0, "sources", price_source=quotes, **FREE)
    from_bar = ledger.buy("AAA", 1)
    assert (from_bar.price_source, from_bar.ref_price) == ("store_bar", 100.0)
    assert from_bar.price_ts == now().normalize()
    stamp = now()
    quotes.update("AAA", stamp, 101.5)
    from_quote = ledger.buy("AAA", 1)
    assert (from_quote.price_source, from_quote.ref_price) == ("live_quote", 101.5)
    assert from_quote.price_ts == stamp
    given_at = pd.Timestamp("2024-05-01 15:30", tz="UTC")
    explicit = ledger.buy("AAA", 1, price=99.0, ts=given_at)
    assert (explicit.price_source, explicit.price_ts) == ("explicit", given_at)
    # a quote alone makes a symbol known; a stale quote is refused
    quotes.update("LIVE", stamp, 20.0)
    assert ledger.buy("LIVE", 2).price_source == "live_quote"
    quotes.update("SLOW", stamp - pd.Timedelta(minutes=30), 20.0)
    with pytest.raises(TradeRejected, match=r"stale|old") as info:
        ledger.buy("SLOW", 1)
    assert info.value.reason == "stale_price"
    log = ledger.trades()
    assert log["price_source"].tolist() == ["store_bar", "live_quote", "explicit", "live_quote"]
    assert log["price_ts"].iloc[2] == given_at
    # positions are valued at whatever prices the caller has (the monitor: live quotes)
    quotes.update("AAA", stamp, 110.0)
    valued = ledger.positions(quotes).set_index("symbol")
    assert valued.loc["AAA", "price"] == 110.0
    assert valued.loc["AAA", "price_source"] == "live_quote"
    assert valued.loc["AAA", "market_value"] == pytest.approx(3 * 110.0)


def test_named_ledgers_share_a_store_and_keep_their_own_books(store):
    first = PaperLedger(store, 10_000.0, "first", **FREE)
    second = PaperLedger(store.path, 5_000.0, "second", **FREE)
    first.buy("AAA", 10, price=100.0)
    second.buy("BBB", 10, price=50.0)
    assert (first.cash, second.cash) == (9_000.0, 4_500.0)
    assert first.positions()["symbol"].tolist() == ["AAA"]
    assert second.positions()["symbol"].tolist() == ["BBB"]
    again = PaperLedger(store, 1.0, "first")  # an existing ledger keeps its cash
    assert again.cash == 9_000.0 and again.initial_cash == 10_000.0
    assert PaperLedger.ledgers(store) == ["first", "second"]


def test_shorts_follow_the_buying_power_rule(store):
    ledger = PaperLedger(store, 1_000.0, "short", allow_short=True, **FREE)
    ledger.sell("AAA", 10, price=100.0)  # cash 2,000 >= 1.5 x 1,000 of shorts
    assert ledger.cash == 2_000.0
    assert ledger.positions().set_index("symbol").loc["AAA", "qty"] == -10.0
    with pytest.raises(TradeRejected) as info:
        ledger.sell("BBB", 30, price=50.0)  # cash 3,500 < 1.5 x 2,500 of shorts
    assert info.value.reason == "buying_power"
    assert SHORT_MARGIN == 1.5
    ledger.sell("BBB", 20, price=50.0)  # cash 3,000 = 1.5 x 2,000: just allowed
    ledger.buy("BBB", 20, price=50.0)
    covered = ledger.buy("AAA", 10, price=90.0)
    assert covered.realized_pnl == pytest.approx(100.0)
    assert ledger.cash == 1_100.0


def test_rebalance_sells_first_and_snapshots_the_book(store):
    ledger = PaperLedger(store, 10_000.0, "rb", **FREE)
    ledger.buy("AAA", 50, price=100.0)
    result = ledger.rebalance({"AAA": 0.0, "BBB": 1.0}, {"AAA": 100.0, "BBB": 50.0})
    assert result.fills[["symbol", "side"]].values.tolist() == [["AAA", "sell"], ["BBB", "buy"]]
    assert ledger.cash == pytest.approx(0.0)
    assert ledger.positions().set_index("symbol")["qty"].to_dict() == {"BBB": 200.0}
    last = ledger.snapshots().iloc[-1]
    assert last["equity"] == pytest.approx(10_000.0)
    assert (ledger.trades()["batch_id"].iloc[-2:] == last["batch_id"]).all()
    assert "rebalanced" in result.summary() and result.to_dict()["fills"][0]["symbol"] == "AAA"


def test_watchlist_add_remove_list(store):
    ledger = PaperLedger(store, 1_000.0, "watch")
    assert ledger.watch_add("BBB") == ["BBB"]
    assert ledger.watch_add("AAA") == ["BBB", "AAA"]
    assert ledger.watch_add("AAA") == ["BBB", "AAA"]
    assert ledger.watch_remove("BBB") == ["AAA"]
    assert PaperLedger(store, name="other").watchlist() == []


def test_snapshot_summary_and_dict_are_readable(store):
    ledger = PaperLedger(store, 1_000.0, "show", **FREE)
    ledger.buy("AAA", 2, price=100.0)
    book = ledger.snapshot({"AAA": 105.0})
    text = book.summary()
    assert "equity 1,010.00" in text and "AAA" in text
    data = book.to_dict()
    assert data["positions"][0]["symbol"] == "AAA" and data["equity"] == pytest.approx(1_010.0)
    assert np.isfinite(data["total_pnl"])


def test_two_threads_buying_60_percent_each_fill_exactly_once(store):
    """The monitor's sessions share one process: its threads queue like processes do."""
    import threading

    ledger = PaperLedger(store, 100_000.0, "threads", **FREE)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def buyer() -> None:
        start.wait(timeout=60)
        try:
            ledger.buy("AAA", 600, price=100.0)
            outcomes.append("filled")
        except TradeRejected as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=buyer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["filled", "insufficient_cash"]
    assert ledger.cash == 40_000.0 and len(ledger.trades()) == 1
