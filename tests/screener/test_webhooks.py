"""Webhook delivery against real local HTTP servers: accepting, failing, slow, down, and a
client killed mid-delivery.  At least once, nothing lost, secrets never logged."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quantdesk.data import MarketStore
from quantdesk.data.store.alerts import AlertStore, idempotency_key
from quantdesk.screener import scan
from quantdesk.screener.webhooks import WebhookConfig, deliver, record_alerts

from ..conftest import free_port
from .receiver import Receiver
from .universe import random_bars

SRC = Path(__file__).resolve().parents[2] / "src"
SECRET_PATH = "/hook/s3cr3t-path"
TOKEN = "tok-very-secret-123"


@pytest.fixture
def alerts_store(tmp_path: Path) -> AlertStore:
    """A store holding a handful of alerts, each queued for the webhook."""
    market = MarketStore(tmp_path / "store.duckdb")
    market.write_bars(random_bars(10, 40, seed=9), "1d")
    alerts = scan(market, ["gap_up", "gap_down"], start="2023-02-01")
    assert 3 <= len(alerts) <= 40
    store = AlertStore(market)
    store.write_alerts(alerts, sinks=["webhook"])
    return store


def config(url: str, **kw: float) -> WebhookConfig:
    return WebhookConfig(url=url, token=TOKEN, **{"retries": 2, "backoff": 0.0, **kw})


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        assert SECRET_PATH not in text and "s3cr3t" not in text and TOKEN not in text


def test_an_accepting_receiver_gets_every_alert_once_with_its_key(
    alerts_store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pending = alerts_store.alerts(undelivered=True)
    with Receiver() as server:
        report = deliver(alerts_store, config(server.url(SECRET_PATH)))
    assert report.delivered == len(pending) and report.pending == 0
    assert alerts_store.alerts(undelivered=True).empty
    assert (alerts_store.alerts()["status"] == "delivered").all()
    headers, body = server.requests[0]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    first = pending.iloc[-1]  # the oldest bar goes first
    assert body["symbol"] == first["symbol"] and body["rule"] == first["rule"]
    assert body["conditions"] == first["conditions"]
    assert body["ts"] == first["ts"].isoformat()
    assert (
        headers["Idempotency-Key"]
        == body["idempotency_key"]
        == idempotency_key(first["symbol"], first["rule"], first["ts"])
    )
    assert len(set(server.keys())) == len(server.keys()) == len(pending)
    # a second run has nothing to send
    assert deliver(alerts_store, config(server.url(SECRET_PATH))).delivered == 0
    assert_no_secrets(caplog.text, report.summary(), repr(config(server.url(SECRET_PATH))))


def test_a_receiver_failing_with_500_is_retried_with_backoff(alerts_store: AlertStore) -> None:
    waits: list[float] = []
    n = len(alerts_store.alerts(undelivered=True))
    with Receiver(fail_first=2) as server:
        report = deliver(
            alerts_store, config(server.url(), retries=3, backoff=0.25), sleep=waits.append
        )
    assert report.delivered == n and report.attempts == n + 2
    assert waits == [0.25, 0.5]  # the back-off doubles
    assert server.keys()[0] == server.keys()[1] == server.keys()[2]  # same alert, same key
    first = alerts_store.alerts().sort_values("ts").iloc[0]
    assert first["attempts"] == 3 and first["status"] == "delivered"


def test_retry_waits_are_the_core_backoff_uncapped(alerts_store: AlertStore) -> None:
    """Issue 22: the webhook waited by its own formula; now by core.backoff.Backoff.

    The waits are the configured back-off doubling each retry (worked by hand), never
    capped or jittered, and are exactly what the one back-off formula gives.
    """
    from quantdesk.core.backoff import Backoff

    cfg = config("http://127.0.0.1:9/hook", retries=4, backoff=20.0)
    assert isinstance(cfg.retry_backoff, Backoff) and not cfg.retry_backoff.jitter
    waits: list[float] = []
    with Receiver(fail_first=100) as server:
        report = deliver(alerts_store, config(server.url(), retries=4, backoff=20.0),
                         limit=1, sleep=waits.append)  # fmt: skip
    assert report.attempts == 5
    assert waits == [20.0, 40.0, 80.0, 160.0]  # past Backoff's default 30 s cap: not capped
    assert waits == [cfg.retry_backoff.delay(n) for n in range(4)]


def test_failures_past_the_retries_stay_pending_for_the_next_run(
    alerts_store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    n = len(alerts_store.alerts(undelivered=True))
    with Receiver(fail_first=100) as server:
        report = deliver(alerts_store, config(server.url(SECRET_PATH), retries=2))
    assert (report.delivered, report.pending, report.attempts) == (0, n, 3)
    stuck = alerts_store.alerts(undelivered=True)
    assert len(stuck) == n  # nothing lost
    oldest = stuck.sort_values("ts").iloc[0]
    assert oldest["attempts"] == 3 and oldest["last_error"] == "HTTP 500"
    with Receiver() as healthy:
        again = deliver(alerts_store, config(healthy.url(SECRET_PATH)))
    assert again.delivered == n and alerts_store.alerts(undelivered=True).empty
    assert_no_secrets(caplog.text, report.summary(), *alerts_store.alerts()["last_error"].dropna())


def test_a_slow_receiver_times_out_and_the_alert_stays_pending(
    alerts_store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Receiver(hold=True) as server:
        report = deliver(alerts_store, config(server.url(SECRET_PATH), timeout=0.3, retries=1))
        # the first try and one retry reached it (the server may read the second late)
        deadline = time.monotonic() + 60  # bounds a hang only
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.requests) == 2
    assert report.delivered == 0 and report.attempts == 2
    oldest = alerts_store.alerts(undelivered=True).sort_values("ts").iloc[0]
    assert oldest["last_error"] == "timed out after 0.3 s"
    assert_no_secrets(caplog.text, report.summary())


def test_a_receiver_that_is_down(
    alerts_store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"  # nothing listens there
    report = deliver(alerts_store, config(url, retries=1))
    assert report.delivered == 0 and report.failed == 1 and report.attempts == 2
    oldest = alerts_store.alerts(undelivered=True).sort_values("ts").iloc[0]
    assert oldest["last_error"].startswith("connection failed: ConnectionRefusedError")
    assert_no_secrets(caplog.text, report.summary(), oldest["last_error"])


def test_a_refused_alert_is_rejected_and_the_rest_go_on(alerts_store: AlertStore) -> None:
    n = len(alerts_store.alerts(undelivered=True))
    with Receiver(status=422) as server:
        report = deliver(alerts_store, config(server.url()))
    assert report.rejected == n and report.attempts == n  # a 4xx is not retried
    assert (alerts_store.alerts()["status"] == "rejected").all()
    assert alerts_store.alerts(undelivered=True).empty


DELIVER = """
import sys
from quantdesk.screener.webhooks import deliver
deliver(sys.argv[1])
"""


def test_a_client_killed_mid_delivery_redelivers_with_the_same_key(
    alerts_store: AlertStore,
) -> None:
    n = len(alerts_store.alerts(undelivered=True))
    with Receiver(hold=True) as blocking:
        env = {
            **os.environ,
            "PYTHONPATH": str(SRC),
            "QUANTDESK_WEBHOOK_URL": blocking.url(),
            "QUANTDESK_WEBHOOK_TOKEN": TOKEN,
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", DELIVER, str(alerts_store.path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # the receiver has the first alert; the client waits for the answer
            assert blocking.received.wait(120), proc.communicate(timeout=5)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        (seen_key,) = blocking.keys()
    # the kill came after the POST and before the record: nothing was marked delivered
    assert len(alerts_store.alerts(undelivered=True)) == n
    with Receiver() as server:
        report = deliver(alerts_store, config(server.url()))
    assert report.delivered == n
    assert server.keys()[0] == seen_key  # the receiver can tell the duplicate
    assert alerts_store.alerts(undelivered=True).empty


BATCHED = """
import sys
from quantdesk.screener.webhooks import deliver
deliver(sys.argv[1], flush_every=50, flush_seconds=3600)
"""


def test_a_kill_before_a_batch_is_recorded_resends_it_with_the_same_keys(
    alerts_store: AlertStore,
) -> None:
    n = len(alerts_store.alerts(undelivered=True))
    assert n > 3
    with Receiver(hold_from=2) as receiver:  # two are accepted, the third hangs
        env = {**os.environ, "PYTHONPATH": str(SRC), "QUANTDESK_WEBHOOK_URL": receiver.url()}
        proc = subprocess.Popen(
            [sys.executable, "-c", BATCHED, str(alerts_store.path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert receiver.received.wait(120), proc.communicate(timeout=5)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        first_run = receiver.keys()
    assert len(first_run) == 3
    # two alerts reached the receiver but their batch was never recorded: still owed
    assert len(alerts_store.alerts(undelivered=True)) == n
    with Receiver() as server:
        assert deliver(alerts_store, config(server.url())).delivered == n
    assert server.keys()[:3] == first_run  # re-sent in order, each with its key
    assert len(set(server.keys())) == n and alerts_store.alerts(undelivered=True).empty


def test_configuration_from_the_environment_and_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path))
    for name in ("QUANTDESK_WEBHOOK_URL", "QUANTDESK_WEBHOOK_TOKEN", "QUANTDESK_WEBHOOK_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert WebhookConfig.from_env() is None
    path = tmp_path / "webhook.yaml"
    path.write_text(f"url: http://127.0.0.1:9{SECRET_PATH}\ntoken: {TOKEN}\ntimeout: 2\n")
    from_file = WebhookConfig.from_env()
    assert from_file is not None and from_file.timeout == 2 and from_file.token == TOKEN
    monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", "http://127.0.0.1:8/x")
    from_env = WebhookConfig.from_env()
    assert from_env is not None and from_env.url == "http://127.0.0.1:8/x" and not from_env.token
    assert_no_secrets(repr(from_file), str(from_file))
    path.write_text("url: http://x\nsecret_sauce: 1\n")
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL")
    with pytest.raises(ValueError, match="field 'secret_sauce': unknown webhook setting"):
        WebhookConfig.from_env()
    with pytest.raises(ValueError, match="must start with http"):
        WebhookConfig(url="ftp://x")
    with pytest.raises(ValueError, match="no webhook configured"):
        path.unlink()
        deliver(tmp_path / "store.duckdb")


def test_record_alerts_queues_only_when_a_webhook_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path))
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("QUANTDESK_WEBHOOK_CONFIG", raising=False)
    market = MarketStore(tmp_path / "store.duckdb")
    market.write_bars(random_bars(10, 40, seed=9), "1d")
    alerts = scan(market, ["gap_up"], start="2023-02-01")
    assert record_alerts(market, alerts.head(2), queue="all").queued == 0
    monkeypatch.setenv("QUANTDESK_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    # every alert asked for is queued, those stored before the webhook was set too
    assert record_alerts(market, alerts, queue="all").queued == len(alerts)
