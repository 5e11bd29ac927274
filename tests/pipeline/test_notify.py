"""A failed or late pipeline run sends one notification through the webhook sink.

The receiver is a real HTTP server on 127.0.0.1; the store a real DuckDB file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.pipeline import run_pipeline

from ..screener.receiver import Receiver

HERE = Path(__file__).resolve().parent
SECRET = "s3cr3t-token-value-123456"


@pytest.fixture
def market(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    ingest_simulated(path, symbols=3, days=300, seed=3, start="2023-05-08", progress=False)
    return path


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("QUANTDESK_WEBHOOK_TOKEN", SECRET)


def _catalog(tmp_path: Path, fail_while: Path) -> Path:
    log = str(tmp_path / "order.log")
    steps: dict[str, Any] = {
        "update": {"params": {"simulated": True, "drop_folder": str(tmp_path / "drop")}},
        "a": {"run": "pipeline_test_steps:log_step", "needs": ["update"],
              "params": {"log": log, "name": "a"}},
        "b": {"run": "pipeline_test_steps:log_step", "needs": ["a"], "retries": 2, "backoff": 0,
              "params": {"log": log, "name": "b", "fail_while": str(fail_while)}},
    }  # fmt: skip
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps({"pipeline": {"name": "evening", "steps": steps}}), "utf-8")
    return path


def test_a_failed_run_sends_one_notification_not_one_per_retry(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    catalog = _catalog(tmp_path, flag)
    with Receiver() as receiver:
        monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", receiver.url())
        monkeypatch.setenv("QUANTDESK_STEP_PASSWORD", SECRET)
        run = run_pipeline(market, session="2024-07-01", definition=catalog)
        assert not run.ok and run.notified == "delivered"
        ((headers, body),) = receiver.requests  # three attempts of b, one notification
        assert body["event"] == "pipeline failed" and body["pipeline"] == "evening"
        assert body["sessions"] == ["2024-07-01"]
        (failed,) = body["failed_steps"]
        assert failed["step"] == "b" and failed["attempts"] == 3
        assert "b told to fail" in failed["error"]
        assert headers["Authorization"] == f"Bearer {SECRET}"
        assert SECRET not in json.dumps(body)
        # A run that succeeds on time sends nothing more; the retry that fixes it neither.
        flag.unlink()
        fixed = run_pipeline(market, session="2024-07-01", definition=catalog, force=["b"])
        assert fixed.ok and fixed.notified is None
        assert len(receiver.requests) == 1


def test_a_late_run_that_caught_up_missed_sessions_notifies_once(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = _catalog(tmp_path, tmp_path / "never")
    with Receiver() as receiver:
        monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", receiver.url())
        run_pipeline(market, session="2024-07-01", definition=catalog)
        assert receiver.requests == []
        # Monday 8 July after the close: 2, 3 and 5 July were missed (4th a holiday).
        late = run_pipeline(market, definition=catalog, now="2024-07-08T18:00-04:00")
        assert late.ok and late.notified == "delivered"
        ((_, body),) = receiver.requests
        assert body["event"] == "pipeline late"
        assert body["missed_sessions"] == ["2024-07-02", "2024-07-03", "2024-07-05"]
        assert body["sessions"][-1] == "2024-07-08" and body["failed_steps"] == []
        # The next evening on time: nothing.
        on_time = run_pipeline(market, definition=catalog, now="2024-07-09T18:00-04:00")
        assert on_time.ok and not on_time.late and len(receiver.requests) == 1


def test_a_webhook_that_is_down_does_not_fail_the_run_beyond_its_steps(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    with Receiver() as receiver:
        url = receiver.url()  # a port that was just free, now closed
    monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", url)
    monkeypatch.setenv("QUANTDESK_WEBHOOK_CONFIG", "")
    run = run_pipeline(market, session="2024-07-01", definition=_catalog(tmp_path, flag))
    assert not run.ok and run.notified == "pending"
    assert "notification: pending" in run.summary()
