"""follow_strategy runs the strategy it is given by name, through the strategy registry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data.store.market import MarketStore
from quantdesk.portfolio.follow import follow_strategy
from quantdesk.portfolio.ledger import PaperLedger
from quantdesk.strategies import STRATEGIES, UnknownStrategyError, register, unregister

FREE = {"commission_bps": 0.0, "slippage_bps": 0.0}


@pytest.fixture
def store(tmp_path: Path) -> MarketStore:
    today = pd.Timestamp.now(tz="UTC").normalize()
    days = pd.bdate_range(end=today, periods=30, tz="UTC")
    frames = [
        pd.DataFrame({"symbol": s, "ts": days, "open": c, "high": c, "low": c, "close": c,
                      "volume": 1e6})
        for s, c in (("AAA", 100.0), ("BBB", 50.0))
    ]  # fmt: skip
    market = MarketStore(tmp_path / "store.duckdb")
    market.write_bars(pd.concat(frames, ignore_index=True), "1d")
    return market


@pytest.fixture
def all_in_bbb():
    """A second registered strategy: everything in BBB, nothing in AAA, on every bar."""
    seen: list[dict] = []

    def strategy(close: pd.DataFrame, **params) -> pd.DataFrame:
        seen.append(params)
        weights = close * 0.0
        weights["BBB"] = params.get("weight", 1.0)
        return weights

    register("all_in_bbb", strategy)
    yield seen
    unregister("all_in_bbb")


def test_the_strategy_named_is_the_one_that_runs(store, all_in_bbb):
    ledger = PaperLedger(store, 10_000.0, "follow", **FREE)
    result = follow_strategy(ledger, "all_in_bbb", ["AAA", "BBB"], weight=0.5)
    assert all_in_bbb == [{"weight": 0.5}], "the registered function ran with the params"
    # vol_target_trend would have no weights at all on 30 flat bars (its warm-up)
    assert result.fills[["symbol", "side", "qty"]].to_dict("list") == {
        "symbol": ["BBB"],
        "side": ["buy"],
        "qty": [100.0],
    }
    assert ledger.cash == 5_000.0


def test_an_unknown_strategy_names_the_known_ones(store):
    ledger = PaperLedger(store, 10_000.0, "follow", **FREE)
    with pytest.raises(UnknownStrategyError, match="vol_target_trend") as info:
        follow_strategy(ledger, "no_such_strategy")
    assert isinstance(info.value, ValueError) and "no_such_strategy" in str(info.value)
    assert "vol_target_trend" in STRATEGIES


def test_a_registered_name_is_not_silently_replaced(all_in_bbb):
    with pytest.raises(ValueError, match="already registered"):
        register("all_in_bbb", lambda close, **params: close)
