"""Results that display themselves: every ``_repr_html_`` shows its headline numbers
(computed here independently) and escapes text from outside (a hostile symbol name)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest import run
from quantdesk.backtest.sweeps import sweep, walk_forward
from quantdesk.core.html import format_value, summary_html, summary_text
from quantdesk.data.sources.ingest import ingest_file
from quantdesk.data.store.market import MarketStore
from quantdesk.portfolio.ledger import PaperLedger
from quantdesk.regimes.snapshot import regime_snapshot

from ..conftest import make_bars
from ..data.test_store_regimes import regimes

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def assert_safe(page: str) -> None:
    assert ESCAPED in page
    assert "<script" not in page


def close_panel(days: int = 400) -> pd.DataFrame:
    idx = pd.bdate_range("2018-01-01", periods=days, tz="UTC")
    rng = np.random.default_rng(3)
    steps = rng.normal(0.0003, 0.01, (days, 2))
    return pd.DataFrame(100 * np.exp(np.cumsum(steps, axis=0)), index=idx, columns=[EVIL, "B"])


def test_the_component_escapes_title_labels_values_and_frames() -> None:
    page = summary_html(EVIL, {EVIL: EVIL}, {EVIL: pd.DataFrame({EVIL: [EVIL]}), "t": EVIL})
    assert page.count(ESCAPED) == 7 and "<script" not in page
    assert page.index("qd-head") < page.index("<details>")  # headline first, details folded
    assert summary_text("T", {"a": 1.5, "bb": 2}) == "T\n  a   1.5000\n  bb  2"


def test_backtest_result(tmp_path) -> None:
    close = close_panel()
    weights = pd.DataFrame(0.4, index=close.index, columns=close.columns)
    result = run(close, weights, commission_bps=0, slippage_bps=0, init_cash=1_000.0)
    # Independent: a constant-weight book rebalanced every bar, no costs.
    returns = (close.pct_change().fillna(0.0) * weights.shift(1).fillna(0.0)).sum(axis=1)
    final = 1_000.0 * float((1 + returns).prod())
    assert float(result.equity.iloc[-1]) == pytest.approx(final, rel=1e-9)
    page = result._repr_html_()
    assert format_value(float(result.equity.iloc[-1])) in page
    assert format_value(final / 1_000.0 - 1) in page
    assert ">Sharpe<" in page and "<details>" in page
    assert_safe(page)
    assert repr(result) == result.summary()


def test_sweep_and_walk_forward() -> None:
    close = close_panel(600)
    result = sweep(close, lookbacks=[21, 63], target_vols=[0.1, 0.2])
    best = result.table.loc[result.table["Sharpe"].idxmax()]
    page = result._repr_html_()
    assert format_value(float(best["Sharpe"])) in page
    assert format_value(int(best["lookback"])) in page and format_value(4) in page
    assert "best Sharpe" in repr(result)
    wf = walk_forward(close, lookbacks=[21, 63], target_vols=[0.1], train=252, test=126)
    page = wf._repr_html_()
    assert format_value(float(wf.folds["in_sample"].mean())) in page
    assert format_value(float(wf.folds["out_of_sample"].mean())) in page
    assert format_value(len(wf.folds)) in page
    assert "out-of-sample" in repr(wf)


def test_regime_snapshot(store: MarketStore) -> None:
    frame = regimes(symbol=EVIL, days=30)
    store.write_bars(make_bars([EVIL], 30, start="2024-01-02"), "1d")
    store.write_regimes(frame)
    snap = regime_snapshot(store, EVIL)
    page = snap._repr_html_()
    last = frame.iloc[-1]
    cell = f"p_{last['vol_label']}_{last['trend_label']}"
    assert format_value(float(last[cell])) in page
    assert f"{last['vol_label']} volatility, {last['trend_label']} trend" in page
    assert_safe(page)
    assert repr(snap).startswith(f"RegimeSnapshot {EVIL}")


def test_ledger_and_its_snapshot(store: MarketStore) -> None:
    store.write_bars(make_bars([EVIL], 5), "1d")
    ledger = PaperLedger(store, initial_cash=10_000.0, name=EVIL, commission_bps=0, slippage_bps=0)
    ledger.buy(EVIL, 10, price=100.0)
    snap = ledger.snapshot(prices={EVIL: 110.0})
    page = snap._repr_html_()
    assert format_value(9_000.0 + 1_100.0) in page  # equity: cash + 10 x 110
    assert format_value(100.0) in page  # P&L: 10 x (110 - 100)
    assert_safe(page)
    page = ledger._repr_html_()
    assert format_value(9_000.0) in page and ">trades<" in page
    assert_safe(page)
    assert "P&L" in repr(snap)


def test_ingest_result_and_store(tmp_path) -> None:
    csv = tmp_path / "px.csv"
    csv.write_text(
        "Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n2020-01-03,1,2,0.5,3,10\n"
    )
    path = tmp_path / "s.duckdb"
    result = ingest_file(csv, path, symbol=EVIL)
    page = result._repr_html_()
    assert ">inserted</th><td>1<" in page and ">rejected</th><td>1<" in page
    assert "inserted" in repr(result)
    page = MarketStore(path)._repr_html_()
    assert str(path) in page and ">bars</th><td>1<" in page and "chosen by" in page
    assert_safe(page)
    missing = MarketStore(tmp_path / "none.duckdb")
    assert "not created yet" in missing._repr_html_()
    assert not missing.path.exists()


def test_fitted_regime_model() -> None:
    from quantdesk.data.sources.simulator import simulate
    from quantdesk.regimes.model import RegimeModel

    bars = simulate(1, 700, seed=1).bars
    model = RegimeModel(random_state=0, n_init=2).fit(bars)
    page = model._repr_html_()
    assert format_value(float(model.log_likelihood_)) in page
    assert 0 < model.n_obs_ <= len(bars) and format_value(int(model.n_obs_)) in page
    assert ">transition matrix<" in page
    # Independent: each row of the transition matrix sums to one.
    assert np.allclose(model.transition_matrix().sum(axis=1), 1.0)
    assert "<script" not in page


def test_scan_alerts() -> None:
    """A scan's alerts show their count, symbols, rules and span first; derived frames are plain."""
    from quantdesk.screener import scan

    bars = make_bars([EVIL, "B"], 300, seed=5)
    alerts = scan(bars, ["new_high", "new_low"], start="2020-06-01")
    assert len(alerts) > 0
    page = alerts._repr_html_()
    assert_safe(page)
    assert f"Scan alerts: {len(alerts):,}" in page and f"Scan alerts: {len(alerts):,}" in repr(
        alerts
    )
    counts = alerts["rule"].value_counts()
    for rule in ("new_high", "new_low"):
        assert f"{rule} {counts[rule]}" in page
    assert format_value(pd.Timestamp(alerts["ts"].min())) in page
    assert pd.Timestamp(alerts["ts"].min()) >= pd.Timestamp("2020-06-01", tz="UTC")
    assert page.index("qd-head") < page.index("<details>")
    assert type(alerts[alerts["rule"] == "new_high"]) is pd.DataFrame
    pd.testing.assert_frame_equal(pd.DataFrame(alerts), alerts, check_frame_type=False)
