"""The monitor's panes as plain objects: real DuckDB stores in tmp dirs, no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

HOSTILE = [
    "ACME beats estimates <script>alert('x')</script>",
    'ACME warns <img src=x onerror="alert(1)"> on weak guidance',
]


def _ticks(symbol: str, start: str, seconds: list[int], prices: list[float]) -> pd.DataFrame:
    ts = pd.Timestamp(start, tz="UTC")
    return pd.DataFrame(
        {
            "symbol": [symbol] * len(seconds),
            "ts": [ts + pd.Timedelta(seconds=s) for s in seconds],
            "price": prices,
            "size": [100.0] * len(seconds),
        }
    )


def test_live_scan_alerts_stream_into_the_pane_newest_first_and_are_stored_once(
    tmp_path: Path,
) -> None:
    from quantdesk.dashboards.panes import AlertsPane
    from quantdesk.data.live import CandleRecorder
    from quantdesk.data.store.alerts import AlertStore
    from quantdesk.data.store.market import MarketStore
    from quantdesk.screener.live import LiveScanner
    from quantdesk.screener.rules import new_high

    store = MarketStore(tmp_path / "store.duckdb")
    recorder = CandleRecorder("5s")
    scanner = LiveScanner(recorder, [new_high(n=1)], timeframe="5s", store=store)
    pane = AlertsPane(scanner)
    assert pane.refresh() == 0 and pane.rows().empty
    # Candles of 5 s: 10.0, then 11.0 (a new high), then 12.0 (another); the tick at
    # 15 s closes the third candle.
    recorder.on_ticks(_ticks("AAA", "2024-01-02 14:30:00", [0, 5, 10, 15], [10, 11, 12, 12]))
    scanner.on_ticks(pd.DataFrame())
    assert pane.refresh() == 2
    rows = pane.rows()
    assert rows["rule"].tolist() == ["new_high", "new_high"]
    assert rows["trigger_price"].tolist() == [12.0, 11.0]  # newest first
    assert rows["time"].tolist() == ["2024-01-02 14:30:10", "2024-01-02 14:30:05"]
    assert scanner.poll() == 0 and pane.refresh() == 0  # nothing closed since
    # A second pane (another session) starts with the alerts kept so far.
    assert AlertsPane(scanner).rows()["trigger_price"].tolist() == [12.0, 11.0]
    scanner.close()
    stored = AlertStore(store).alerts()
    assert sorted(stored["trigger_price"]) == [11.0, 12.0]
    assert scanner.recorded == 2 and scanner.record_errors == 0
    # The same alerts recorded again (a restarted scan) are dropped by the store's key.
    again = LiveScanner(recorder, [new_high(n=1)], timeframe="5s", store=store)
    assert again.poll() == 2
    again.close()
    assert len(AlertStore(store).alerts()) == 2 and again.recorded == 0


def test_hub_runs_one_scan_per_feed_and_the_monitor_shows_it(tmp_path: Path) -> None:
    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.dashboards.monitor import MarketMonitor
    from quantdesk.dashboards.panes import (
        AlertsPane,
        ForecastsPane,
        PipelinePane,
        PositionsPane,
        SentimentPane,
    )

    hub = LiveHub(tmp_path / "store.duckdb", symbols=["AAA", "BBB"], rules=["new_high"])
    try:
        first, second = MarketMonitor(hub), MarketMonitor(hub)
        scanner = hub.scanner("simulator")
        assert hub.scanner("simulator") is scanner
        assert [r.name for r in scanner.scan.rules] == ["new_high"]
        kinds = [type(p) for p in first.panes]
        assert kinds == [AlertsPane, PositionsPane, SentimentPane, ForecastsPane, PipelinePane]
        assert first.panes[0].scanner is scanner and second.panes[0].scanner is scanner
        assert first.panes[1].prices is hub.source("simulator").cache
        assert first.panes[2].symbol == first.symbol == "AAA"
        first.symbol = "BBB"  # the sentiment pane and the trade follow the selection
        assert first.panes[2].symbol == first.panes[1].symbol == "BBB"
        assert second.panes[2].symbol == "AAA"  # another session keeps its own
        first.update()
        first.release()
        assert first.panes[0].scanner is None and first.panes[1].prices is None
    finally:
        hub.stop()
    assert hub.running() == []


def test_hub_refuses_a_scan_timeframe_the_simulator_lacks(tmp_path: Path) -> None:
    from quantdesk.dashboards.hub import LiveHub

    with pytest.raises(ValueError, match="scan_timeframe"):
        LiveHub(tmp_path / "store.duckdb", scan_timeframe="1d")


def _positions(tmp_path: Path) -> tuple[Any, Any, Any]:
    from quantdesk.dashboards.panes import PositionsPane
    from quantdesk.data.live.quotes import QuoteCache
    from quantdesk.portfolio.ledger import PaperLedger

    cache = QuoteCache()
    now = pd.Timestamp.now(tz="UTC")
    cache.update("AAA", now, 100.0)
    cache.update("BBB", now, 50.0)
    ledger = PaperLedger(tmp_path / "store.duckdb", initial_cash=10_000.0)
    return PositionsPane(ledger, cache), ledger, cache


def test_positions_pane_rejects_an_impossible_buy_and_writes_nothing(tmp_path: Path) -> None:
    pane, ledger, _ = _positions(tmp_path)
    pane.symbol, pane.qty = "AAA", 1e9
    assert pane.trade("buy") is False
    assert pane.rejected and "cash is 10,000.00" in pane.message
    assert "qd-trade-rejected" in pane.feedback.object
    assert ledger.trades().empty and ledger.cash == pytest.approx(10_000.0)
    assert pane.table.value.empty
    # The rejection names the symbol the user typed: it is escaped before display.
    pane.symbol, pane.qty = "<img src=x onerror=alert(1)>", 1
    assert pane.trade("buy") is False and "unknown symbol" in pane.message
    assert "<img" not in pane.feedback.object and "&lt;img" in pane.feedback.object
    pane.symbol = "AAA"
    assert pane.trade("sell") is False and "only 0 held" in pane.message
    assert ledger.trades().empty


def test_positions_pane_fills_a_buy_and_values_it_at_live_prices(tmp_path: Path) -> None:
    pane, ledger, cache = _positions(tmp_path)
    pane.symbol, pane.qty = "AAA", 10
    assert pane.trade("buy") is True and not pane.rejected
    assert "qd-trade-filled" in pane.feedback.object
    table = pane.table.value
    assert table["symbol"].tolist() == ["AAA"] and table["qty"].tolist() == [10.0]
    assert len(ledger.trades()) == 1
    cache.update("AAA", pd.Timestamp.now(tz="UTC"), 110.0)
    assert pane.refresh(force=True)
    snap = pane.snapshot
    assert pane.table.value["price"].tolist() == [110.0]
    assert snap.unrealized_pnl == pytest.approx(10 * (110.0 - snap.positions["avg_cost"][0]))
    assert f"equity {snap.equity:,.2f}" in pane.summary.object
    pane.qty = 4
    assert pane.trade("sell") is True
    assert pane.table.value["qty"].tolist() == [6.0]
    assert pane.snapshot.realized_pnl > 0
    assert not pane.refresh()  # throttled: at most one valuation per min_interval


def test_positions_pane_does_not_trade_on_replay_quotes(tmp_path: Path) -> None:
    from quantdesk.dashboards.hub import LiveSource
    from quantdesk.data.live import SimulatedFeed

    pane, ledger, _ = _positions(tmp_path)
    source = LiveSource("replay", SimulatedFeed(["AAA"]), ("1d",))
    pane.bind_source(source, hub=None)  # type: ignore[arg-type]
    assert not pane.tradable and pane.buy_button.disabled and "replay" in pane.message
    pane.symbol = "AAA"
    assert pane.trade("buy") is False and ledger.trades().empty


def _seed_news(path: Path) -> None:
    from quantdesk.data.store.news import NewsStore
    from quantdesk.sentiment.jobs import score_news

    news = NewsStore(path)
    items = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "ts": pd.to_datetime(
                ["2024-03-04 14:00", "2024-03-05 14:00", "2024-03-05 15:00"], utc=True
            ),
            "headline": [*HOSTILE, "BETA strong growth and record profit"],
            "source": ["wire <b>", "wire", "wire"],
            "symbols": ["ACME", "ACME", "BETA"],
        }
    )
    news.write_news(items, strict=True)
    score_news(news, "lexicon", progress=False)


def test_sentiment_pane_escapes_headlines_and_shows_the_daily_score(tmp_path: Path) -> None:
    from quantdesk.dashboards.panes import SentimentPane
    from quantdesk.data.store.news import NewsStore

    path = tmp_path / "store.duckdb"
    _seed_news(path)
    pane = SentimentPane(path)
    pane.show_symbol("ACME")
    text = pane.pane.object
    assert "<script>" not in text and "<img" not in text and "<b>" not in text.split("</b>", 1)[1]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert pane.headlines["headline"].tolist() == HOSTILE[::-1]  # newest first
    scored = NewsStore(path, read_only=True).scored_news(["ACME"])
    assert pane.daily_score == pytest.approx(float(scored["score"].iloc[-1]))
    assert "qd-daily-score" in text
    pane.show_symbol("ZZZ")
    assert pane.daily_score is None and "no news" in pane.pane.object
    assert not pane.refresh()  # throttled until min_interval has passed


def test_sentiment_pane_without_news_tables_says_no_news(tmp_path: Path) -> None:
    from quantdesk.dashboards.panes import SentimentPane
    from quantdesk.data.store.market import MarketStore

    store = MarketStore(tmp_path / "store.duckdb")
    pane = SentimentPane(store.path)
    pane.show_symbol("AAA")
    assert "no news" in pane.pane.object


def test_a_failing_pane_is_logged_and_the_others_still_update(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.dashboards.monitor import MarketMonitor

    class Pane:
        def __init__(self, fail: bool) -> None:
            self.fail, self.calls = fail, 0

        def refresh(self) -> None:
            self.calls += 1
            if self.fail:
                raise RuntimeError("store unreadable")

    hub = LiveHub(tmp_path / "store.duckdb", symbols=["AAA"])
    try:
        monitor = MarketMonitor(hub, panes=False)
        broken, fine = Pane(fail=True), Pane(fail=False)
        monitor.add_pane("alerts", broken)
        monitor.add_pane("sentiment", fine)
        monitor.update()
        monitor.update()
        assert broken.calls == fine.calls == 2
        assert "Pane.refresh failed; updates go on" in caplog.text
    finally:
        hub.stop()


def _seed_forecasts(path: Path) -> None:
    """Record vol_1d forecasts of ACME for three sessions (two scored) and one of BETA."""
    from quantdesk.data.store.forecasts import ForecastStore
    from quantdesk.data.store.market import MarketStore

    sessions = pd.to_datetime(["2024-03-04", "2024-03-05", "2024-03-06"], utc=True)
    rows = pd.DataFrame(
        {
            "model": ["ewma", "ewma", "ewma", HOSTILE[0]],
            "version": ["v1", "v1", "v1", "v1"],
            "symbol": ["ACME", "ACME", "ACME", "BETA"],
            "target": ["vol_1d"] * 4,
            "horizon": [1] * 4,
            "as_of": [*sessions, sessions[2]],
            "value": [0.01, 0.02, 0.015, 0.03],
            "data_fingerprint": ["d"] * 4,
            "code_fingerprint": ["c"] * 4,
            "origin": ["backfill"] * 4,
        }
    )
    record = ForecastStore(MarketStore(path))
    record.append(rows)
    outcomes = pd.DataFrame(
        {"symbol": "ACME", "target": "vol_1d", "as_of": sessions[:2], "value": [0.03, 0.01]}
    )
    record.record_outcomes(outcomes)


def test_forecasts_pane_shows_the_latest_forecasts_and_their_trailing_accuracy(
    tmp_path: Path,
) -> None:
    from quantdesk.dashboards.panes import ForecastsPane

    path = tmp_path / "store.duckdb"
    _seed_forecasts(path)
    pane = ForecastsPane(path)
    pane.show_symbol("ACME")
    assert pane.session == "2024-03-06"
    assert pane.predictions.to_dict(orient="records") == [
        {"target": "vol_1d", "model": "ewma", "version": "v1", "forecast": "0.015",
         "origin": "backfill"}
    ]  # fmt: skip
    # MSE on variance by hand: ((0.01^2 - 0.03^2)^2 + (0.02^2 - 0.01^2)^2) / 2
    mse = ((0.01**2 - 0.03**2) ** 2 + (0.02**2 - 0.01**2) ** 2) / 2
    (accuracy,) = pane.accuracy.to_dict(orient="records")
    assert (accuracy["model"], accuracy["origin"], accuracy["n"]) == ("ewma", "backfill", 2)
    assert f"mse {mse:.4g}" in accuracy["metrics"]
    pane.trailing = 1  # the last scored session only: (0.02^2 - 0.01^2)^2
    pane.refresh(force=True)
    assert pane.accuracy["n"].tolist() == [1]
    assert f"mse {(0.02**2 - 0.01**2) ** 2:.4g}" in pane.accuracy["metrics"].iloc[0]
    assert "qd-forecast-latest" in pane.pane.object and "Accuracy, last 1" in pane.pane.object
    assert not pane.refresh()  # throttled until min_interval has passed
    # Text from the record is escaped; a forecast not yet scored says so.
    pane.show_symbol("BETA")
    text = pane.pane.object
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "none scored yet" in text
    pane.show_symbol("ZZZ")
    assert pane.predictions.empty and "no forecasts yet" in pane.pane.object


def test_forecasts_pane_says_no_forecasts_yet_and_logs_an_unreadable_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from quantdesk.dashboards.panes import ForecastsPane
    from quantdesk.data.store.market import MarketStore

    pane = ForecastsPane(tmp_path / "none.duckdb")  # no store yet
    pane.show_symbol("AAA")
    assert "no forecasts yet" in pane.pane.object and not pane.error
    _seed_news(tmp_path / "store.duckdb")  # a store without forecast tables
    pane = ForecastsPane(MarketStore(tmp_path / "store.duckdb", read_only=True))
    pane.show_symbol("ACME")
    assert "no forecasts yet" in pane.pane.object and not pane.error
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(b"<b>not a database</b>" * 100)
    pane = ForecastsPane(broken)
    pane.show_symbol("AAA")  # caught and logged: the monitor's tick goes on
    assert pane.error and "record unavailable" in pane.pane.object
    assert "<b>not" not in pane.pane.object
    assert "the record of AAA is unreadable" in caplog.text
    _seed_forecasts(tmp_path / "fixed.duckdb")
    broken.unlink()
    (tmp_path / "fixed.duckdb").rename(broken)
    pane.refresh(force=True)  # the next read works again
    assert not pane.error and pane.predictions.empty  # AAA has none; ACME has
    pane.show_symbol("ACME")
    assert pane.session == "2024-03-06"
