"""`quantdesk screen run`, `alerts list` and `alerts deliver` on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore
from quantdesk.screener import scan

from ..conftest import free_port
from .receiver import Receiver
from .universe import alerts_of_day, day_alerts_store, random_bars

runner = CliRunner()
TOKEN = "tok-cli-secret"


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, pd.DataFrame]:
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path))
    for name in ("QUANTDESK_WEBHOOK_URL", "QUANTDESK_WEBHOOK_TOKEN", "QUANTDESK_WEBHOOK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    bars = random_bars(20, 60, seed=4)
    store = tmp_path / "store.duckdb"
    MarketStore(store).write_bars(bars, "1d")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: gap2\n    rule: gap_up\n    pct: 2\n"
        "  - name: drop2\n    rule: gap_down\n    pct: 2\n"
    )
    return str(store), rules, bars


def test_screen_run_backfill_then_list(setup: tuple[str, Path, pd.DataFrame]) -> None:
    store, rules, bars = setup
    expected = scan(bars, str(rules), start="2023-02-01", end="2023-03-24")
    code, out = run("screen", "run", "--rules", str(rules), "--start", "2023-02-01",
                    "--end", "2023-03-24", "--store", store, "--json")  # fmt: skip
    assert code == 0, out
    payload = json.loads(out)
    assert payload["rules"] == ["gap2", "drop2"]
    assert payload["found"] == payload["stored"] == len(expected) > 3
    assert payload["queued"] == 0 and payload["delivery"] is None  # no webhook configured
    assert payload["alerts"][0]["symbol"] == expected["symbol"].iloc[0]
    assert payload["alerts"][0]["conditions"]["gap_pct"] == pytest.approx(
        expected["conditions"].iloc[0]["gap_pct"]
    )
    # the same backfill again stores nothing new
    code, out = run("screen", "run", "--rules", str(rules), "--start", "2023-02-01",
                    "--end", "2023-03-24", "--store", store)  # fmt: skip
    assert code == 0, out
    assert f"{len(expected)} alerts: 0 new, {len(expected)} already stored" in out
    symbol = expected["symbol"].iloc[0]
    code, out = run("alerts", "list", "--symbol", symbol, "--store", store, "--json")
    assert code == 0, out
    listed = json.loads(out)
    assert {r["symbol"] for r in listed} == {symbol}
    assert len(listed) == (expected["symbol"] == symbol).sum()
    code, out = run("alerts", "list", "--store", store)
    assert code == 0 and "gap2" in out and symbol in out
    code, out = run("alerts", "list", "--today", "--store", store)
    assert code == 0 and "no alerts" in out  # the bars are from 2023


def test_screen_run_on_one_date_and_bad_rules(setup: tuple[str, Path, pd.DataFrame]) -> None:
    store, rules, bars = setup
    day = scan(bars, str(rules), start=bars["ts"].min())["ts"].iloc[-1]
    code, out = run("screen", "run", "--rules", str(rules), "--date", day.date().isoformat(),
                    "--store", store, "--json")  # fmt: skip
    assert code == 0, out
    assert {a["ts"][:10] for a in json.loads(out)["alerts"]} == {day.date().isoformat()}
    bad = rules.parent / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    rule: gap_up\n    pct: -1\n")
    code, out = run("screen", "run", "--rules", str(bad), "--store", store)
    assert code == 1
    assert f"{bad}: rule 'x' (#1): field 'pct': must be positive" in out
    code, out = run("screen", "run", "--rules", str(rules), "--date", "2023-02-01",
                    "--start", "2023-01-01", "--store", store)  # fmt: skip
    assert code == 1 and "either --date or --start/--end" in out


def test_alerts_deliver_retries_what_failed(
    setup: tuple[str, Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, rules, _ = setup
    code, out = run("alerts", "deliver", "--store", store)
    assert code == 1 and "no webhook configured" in out
    down = f"http://127.0.0.1:{free_port()}/hook/cli-secret"
    monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", down)
    monkeypatch.setenv("QUANTDESK_WEBHOOK_TOKEN", TOKEN)
    (rules.parent / "webhook.yaml").unlink(missing_ok=True)
    code, out = run("screen", "run", "--rules", str(rules), "--start", "2023-02-01",
                    "--queue", "all", "--store", store, "--json")  # fmt: skip
    payload = json.loads(out)
    assert code == 1  # stored and queued, but the receiver is down
    n = payload["stored"]
    assert payload["queued"] == n > 0 and payload["delivery"]["delivered"] == 0
    code, out = run("alerts", "list", "--undelivered", "--store", store, "--json", "--limit", "500")
    owed = json.loads(out)
    assert len(owed) == n and owed[-1]["last_error"].startswith("connection failed")
    with Receiver() as server:
        monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", server.url("/hook/cli-secret"))
        code, out = run("alerts", "deliver", "--store", store)
    assert code == 0, out
    assert f"{n} delivered" in out and "cli-secret" not in out and TOKEN not in out
    assert len(server.requests) == n
    code, out = run("alerts", "list", "--undelivered", "--store", store)
    assert "no alerts" in out


def test_alerts_list_end_includes_the_whole_end_day(tmp_path: Path) -> None:
    store = str(day_alerts_store(tmp_path / "store.duckdb").path)
    code, out = run("alerts", "list", "--end", "2024-03-12", "--store", store, "--json")
    assert code == 0, out
    listed = {(r["symbol"], pd.Timestamp(r["ts"])) for r in json.loads(out)}
    assert listed == alerts_of_day("2024-03-12")
    code, out = run("alerts", "list", "--start", "2024-03-13", "--store", store)
    assert code == 0, out
    assert len(out.strip().splitlines()) == 1 + len(alerts_of_day("2024-03-13"))
