"""What reaches the webhook: alerts stored before it was set, rejected ones after a fix,
and a multi-year backfill (only its latest session goes out unless asked).  Real DuckDB
stores in tmp dirs, a real HTTP receiver on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore
from quantdesk.data.store.alerts import AlertStore, idempotency_key
from quantdesk.screener import scan
from quantdesk.screener.webhooks import WebhookConfig, record_alerts

from .receiver import Receiver
from .universe import random_bars

runner = CliRunner()
TOKEN = "tok-queue-secret"
RULES = ["gap_up", "gap_down"]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def keys(frame: pd.DataFrame) -> set[str]:
    return {
        idempotency_key(s, r, t)
        for s, r, t in zip(frame["symbol"], frame["rule"], frame["ts"], strict=True)
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path))
    for name in ("QUANTDESK_WEBHOOK_URL", "QUANTDESK_WEBHOOK_TOKEN", "QUANTDESK_WEBHOOK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_alerts_stored_before_the_webhook_are_listed_and_can_be_queued(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = home / "store.duckdb"
    MarketStore(store).write_bars(random_bars(20, 60, seed=4), "1d")
    expected = scan(store, RULES, start="2023-02-01")
    # stored with no webhook configured: nothing queued
    record_alerts(store, expected)
    code, out = run("alerts", "list", "--store", str(store), "--limit", "500")
    assert code == 0, out
    header = out.splitlines()[0]
    assert "ts (UTC)" in header and "delivery" in header
    assert out.count("never queued") == len(expected) > 3
    with Receiver() as server:
        monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", server.url("/hook"))
        monkeypatch.setenv("QUANTDESK_WEBHOOK_TOKEN", TOKEN)
        code, out = run("alerts", "deliver", "--store", str(store))
        assert code == 0, out
        assert "0 delivered" in out and f"{len(expected)} stored alert(s) were never queued" in out
        # queue part of what is stored: one symbol, from a date on
        symbol = expected["symbol"].value_counts().index[0]
        since = expected["ts"].sort_values().iloc[len(expected) // 3]
        chosen = expected[(expected["symbol"] == symbol) & (expected["ts"] >= since)]
        assert len(chosen) >= 1
        code, out = run("alerts", "queue", "--since", since.date().isoformat(), "--symbols",
                        symbol, "--store", str(store), "--json")  # fmt: skip
        assert code == 0, out
        assert json.loads(out) == {"sink": "webhook", "queued": len(chosen), "requeued": 0}
        code, out = run("alerts", "list", "--store", str(store), "--json", "--limit", "500")
        states = {(r["symbol"], r["rule"], r["ts"]): r["status"] for r in json.loads(out)}
        assert sum(s == "pending" for s in states.values()) == len(chosen)
        assert sum(s is None for s in states.values()) == len(expected) - len(chosen)
        code, out = run("alerts", "deliver", "--store", str(store))
        assert code == 0 and f"{len(chosen)} delivered" in out, out
        assert set(server.keys()) == keys(chosen)
        # the rest, queued without bounds, go on the next run; a second queue does nothing
        code, out = run("alerts", "queue", "--store", str(store))
        assert code == 0 and f"{len(expected) - len(chosen)} never-queued alerts queued" in out
        code, out = run("alerts", "queue", "--store", str(store))
        assert "0 never-queued alerts queued" in out
        code, out = run("alerts", "deliver", "--store", str(store))
        assert code == 0, out
    assert set(server.keys()) == keys(expected) and len(server.keys()) == len(expected)
    code, out = run("alerts", "queue", "--since", "not a date", "--store", str(store))
    assert code == 1 and "--since 'not a date'" in out


def test_a_rejected_delivery_is_an_error_and_can_be_queued_again_once_fixed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = home / "store.duckdb"
    MarketStore(store).write_bars(random_bars(20, 60, seed=4), "1d")
    alerts = scan(store, RULES, start="2023-03-01")
    with Receiver(only_path="/hook") as server:
        # a wrong path, a token in the query string: the receiver answers 404
        wrong = server.url("/wrong-path?token=qs-s3cret")
        monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", wrong)
        monkeypatch.setenv("QUANTDESK_WEBHOOK_TOKEN", TOKEN)
        assert AlertStore(store).write_alerts(alerts, ["webhook"]).queued == len(alerts) > 1
        code, out = run("alerts", "deliver", "--store", str(store))
        assert code == 1, out
        assert "HTTP 404" in out and f"http://127.0.0.1:{server.port}/wrong-path" in out
        assert "qs-s3cret" not in out and TOKEN not in out
        assert f"{len(alerts)} rejected" in out and "alerts queue --rejected" in out
        code, out = run("alerts", "list", "--store", str(store), "--json", "--limit", "500")
        assert {r["status"] for r in json.loads(out)} == {"rejected"}
        rejected_keys = set(server.keys())
        assert rejected_keys == keys(alerts)
        # the configuration is fixed; the rejected alerts are queued again and delivered
        monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", server.url("/hook"))
        code, out = run("alerts", "deliver", "--store", str(store))
        assert code == 0 and "0 delivered" in out, out  # rejected ones wait to be re-queued
        code, out = run("alerts", "queue", "--rejected", "--store", str(store))
        assert code == 0 and f"{len(alerts)} rejected alerts queued again" in out, out
        code, out = run("alerts", "deliver", "--store", str(store))
        assert code == 0 and f"{len(alerts)} delivered" in out, out
    delivered = [k for k, p in zip(server.keys(), server.paths, strict=True) if p == "/hook"]
    assert sorted(delivered) == sorted(rejected_keys)  # each once, with the same key
    states = AlertStore(store).alerts()
    assert (states["status"] == "delivered").all() and (states["attempts"] == 2).all()


def test_screen_run_exits_1_when_the_webhook_rejects(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = home / "store.duckdb"
    MarketStore(store).write_bars(random_bars(20, 60, seed=4), "1d")
    rules = home / "rules.yaml"
    rules.write_text("rules:\n  - name: gap2\n    rule: gap_up\n    pct: 2\n")
    with Receiver(status=404) as server:
        monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", server.url("/hook"))
        code, out = run("screen", "run", "--rules", str(rules), "--start", "2023-03-01",
                        "--queue", "all", "--store", str(store))  # fmt: skip
    assert code == 1 and "HTTP 404" in out and "rejected" in out
    assert "ts (UTC)" in out


def test_a_multi_year_backfill_queues_only_its_latest_session(home: Path) -> None:
    market = MarketStore(home / "store.duckdb")
    bars = random_bars(40, 600, seed=11)
    market.write_bars(bars, "1d")
    history = scan(market, RULES, start=bars["ts"].min())
    years = history["ts"].dt.year
    assert years.nunique() >= 2
    last_day = bars["ts"].max()  # daily bars: the session's date at 00:00 UTC
    latest = history[history["ts"] == last_day]
    assert 0 < len(latest) < len(history) // 20
    webhook = WebhookConfig(url="http://127.0.0.1:9/hook")
    written = record_alerts(market, history, webhook)
    assert written.stored == len(history) and written.queued == len(latest)
    pending = AlertStore(market).pending()
    assert keys(pending) == keys(latest)
    # an explicit opt-in queues the history too (a fresh store)
    other = MarketStore(home / "other.duckdb")
    other.write_bars(bars, "1d")
    assert record_alerts(other, history, webhook, queue="all").queued == len(history)
    assert record_alerts(other, history, webhook, queue="none").queued == 0


def test_the_latest_session_is_the_stores_not_the_newest_alert(home: Path) -> None:
    """A backfill whose last session raised no alert queues nothing: the newest alert is
    history, not news."""
    from quantdesk.screener.webhooks import queue_mask

    market = MarketStore(home / "store.duckdb")
    bars = random_bars(40, 600, seed=11)
    market.write_bars(bars, "1d")
    history = scan(market, RULES, start=bars["ts"].min())
    older = history[history["ts"] < bars["ts"].max()]
    webhook = WebhookConfig(url="http://127.0.0.1:9/hook")
    assert record_alerts(market, older, webhook).queued == 0
    # a max age counts back from now
    now = bars["ts"].max() + pd.Timedelta(days=1)
    mask = queue_mask(AlertStore(market), history, "10d", now=now)
    assert sum(mask) == int((history["ts"] >= now - pd.Timedelta(days=10)).sum()) > 0
    with pytest.raises(ValueError, match="queue='soon'"):
        queue_mask(AlertStore(market), history, "soon")
