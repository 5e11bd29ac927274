"""Webhook delivery of stored alerts: JSON POSTs, at least once, nothing lost.

An alert is stored, with a ``pending`` delivery row, before anything tries to send
it (:meth:`quantdesk.data.store.alerts.AlertStore.write_alerts`).  :func:`deliver`
POSTs the pending alerts one by one, each with an ``Idempotency-Key`` header derived
from the alert (so a receiver can drop the duplicate a crash may cause), a timeout,
and retries with exponential back-off; it records each outcome as soon as it is known.
What fails stays pending and is retried by the next run: a process killed between
the POST and the record re-sends that alert next time, with the same key.  Outcomes
are recorded in small batches (every ``flush_every`` alerts, at most ``flush_seconds``
apart, and at once on a failure), since each record is a write transaction on the
store; a crash re-sends at most one batch, each with its key.  Two delivery runs at
once may both send an alert still pending (the same key twice); run one at a time
(cron) or let the receiver drop repeated keys.

* 2xx: delivered.
* 5xx, 408, 429, a timeout or a refused connection: retried; after the last retry the
  alert stays pending and the run stops (the receiver is unwell; the rest waits).
* any other 4xx: the receiver refuses the alert: ``rejected``, not retried by the next
  run.  A rejection is an error (:attr:`DeliveryReport.ok` is false; the command exits
  1) that names the status and the URL without its secrets (:func:`safe_url`).  A
  4xx is often the configuration's fault (a wrong path, a stale token): once it is
  fixed, :func:`queue_alerts` with ``rejected=True`` (``quantdesk alerts queue
  --rejected``) makes the rejected alerts pending again.

What is queued: :func:`record_alerts` stores every alert it is given but, by default,
queues only the alerts of the latest session (a backfill from 2015 sends today's
alerts, not ten years of history); ``queue="all"`` opts in to every alert, a max age
(``queue="3d"``) queues those newer than that, ``queue="none"`` none.  Alerts stored
before a webhook was configured, or not queued by a backfill, are queued later with
:func:`queue_alerts` (``quantdesk alerts queue``); a delivery run says how many stored
alerts were never queued.

The URL and token come from the environment (``QUANTDESK_WEBHOOK_URL``,
``QUANTDESK_WEBHOOK_TOKEN``) or a config file (``QUANTDESK_WEBHOOK_CONFIG``, default
``$QUANTDESK_HOME/webhook.yaml``, keys ``url``, ``token``, ``timeout``, ``retries``,
``backoff``), never from notebook parameters.  The token appears nowhere; the URL
appears in errors and reports only as :func:`safe_url` gives it (scheme, host, port and
the first path segment: no user info, query, fragment or later segments), and never in
the store or a repr.
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd

from quantdesk.config import Settings, secret
from quantdesk.core.backoff import Backoff
from quantdesk.core.coerce import as_utc
from quantdesk.core.jsonable import jsonable
from quantdesk.data.store.alerts import AlertStore, QueueResult, WriteResult, idempotency_key

__all__ = [
    "QUEUE_CHOICES",
    "SINK",
    "DeliveryReport",
    "WebhookConfig",
    "alert_payload",
    "deliver",
    "notify",
    "queue_alerts",
    "queue_mask",
    "record_alerts",
    "safe_url",
]

logger = logging.getLogger(__name__)

#: The sink name of the webhook in the delivery outbox.
SINK = "webhook"
_RETRYABLE_STATUS = frozenset({408, 425, 429})
#: What :func:`record_alerts` queues (besides a max age such as ``"3d"``).
QUEUE_CHOICES: tuple[str, ...] = ("latest", "all", "none")


def safe_url(url: str) -> str:
    """Return ``url`` without what may be secret: user info, query, fragment, later path.

    Scheme, host, port and the first path segment are kept; each later segment is shown
    as ``…``, since webhook URLs often carry their token there (Slack's
    ``/services/T…/B…/XXXX``, Discord's ``/api/webhooks/ID/TOKEN``).

    Examples
    --------
    >>> safe_url("https://user:pw@hooks.example.com:8443/services/T0/B0/XYZ?token=s3c#x")
    'https://hooks.example.com:8443/services/…/…/…'
    >>> safe_url("http://127.0.0.1:8000/hook")
    'http://127.0.0.1:8000/hook'
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    first, *rest = parts.path.lstrip("/").split("/") if parts.path else [""]
    path = "/".join(["", first, *("…" for _ in rest)]) if parts.path else ""
    return urllib.parse.urlunsplit((parts.scheme, host, path, "", ""))


@dataclass(frozen=True)
class WebhookConfig:
    """Where and how to POST alerts; build with :meth:`from_env`.

    Its repr shows neither the URL nor the token.
    """

    url: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5

    @property
    def retry_backoff(self) -> Backoff:
        """Return the waits between retries: ``backoff``, doubling each retry, no jitter."""
        return Backoff(base=self.backoff, factor=2.0, cap=math.inf, jitter=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0:
            raise ValueError("webhook timeout must be positive, retries and backoff >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookConfig | None:
        """Return the configured webhook, or None when there is none.

        ``QUANTDESK_WEBHOOK_URL`` (and ``QUANTDESK_WEBHOOK_TOKEN``) win; otherwise the
        YAML file at ``QUANTDESK_WEBHOOK_CONFIG`` or ``$QUANTDESK_HOME/webhook.yaml``.
        """
        url = secret("QUANTDESK_WEBHOOK_URL", environ)
        if url:
            return cls(url=url, token=secret("QUANTDESK_WEBHOOK_TOKEN", environ))
        chosen = Settings.from_env(environ)
        if chosen.webhook_config is not None:
            return cls.from_file(chosen.webhook_config)
        default = chosen.webhook_file
        return cls.from_file(default) if default.exists() else None

    @classmethod
    def from_file(cls, path: str | Path) -> WebhookConfig:
        """Return the webhook configured in a YAML (or JSON) file; errors name the file."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(
                f"{path}: cannot read the webhook config ({type(exc).__name__})"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise ValueError(f"{path}: field 'url': the webhook config needs a url")
        unknown = sorted(set(data) - {"url", "token", "timeout", "retries", "backoff"})
        if unknown:
            raise ValueError(f"{path}: field {unknown[0]!r}: unknown webhook setting")
        return cls(**data)


@dataclass
class DeliveryReport:
    """What one delivery run did: alerts delivered, rejected, left pending, attempts made.

    ``unqueued`` counts the stored alerts never queued for the webhook (not sent by
    this run; :func:`queue_alerts` queues them); ``url`` is the webhook's
    :func:`safe_url`.
    """

    delivered: int = 0
    rejected: int = 0
    failed: int = 0
    pending: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    unqueued: int = 0
    url: str = ""

    @property
    def ok(self) -> bool:
        """Return whether every alert tried was delivered (nothing rejected or failed)."""
        return not (self.rejected or self.failed)

    def summary(self) -> str:
        """Return what the run did, and what to do about a rejection or unqueued alerts."""
        line = (
            f"webhook: {self.delivered} delivered, {self.rejected} rejected, "
            f"{self.pending} pending ({self.attempts} attempts)"
        )
        line += f"; last error: {self.errors[-1]}" if self.errors else ""
        if self.rejected:
            line += (
                f"\n{self.rejected} alert(s) rejected by {self.url or 'the webhook'}: fix the "
                "webhook configuration, then `quantdesk alerts queue --rejected` and "
                "`quantdesk alerts deliver`"
            )
        if self.unqueued:
            line += (
                f"\n{self.unqueued} stored alert(s) were never queued for the webhook; "
                "`quantdesk alerts queue [--since DATE]` queues them"
            )
        return line

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-able dict."""
        return {
            "delivered": self.delivered,
            "rejected": self.rejected,
            "failed": self.failed,
            "pending": self.pending,
            "attempts": self.attempts,
            "errors": list(self.errors),
            "unqueued": self.unqueued,
            "url": self.url,
            "ok": self.ok,
        }


def alert_payload(alert: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """Return the JSON body of one alert: its fields, ``ts`` in ISO 8601, and its key."""
    ts = pd.Timestamp(alert["ts"])
    payload: dict[str, Any] = jsonable(
        {
            "symbol": str(alert["symbol"]),
            "rule": str(alert["rule"]),
            "ts": ts.isoformat(),
            "trigger_price": alert["trigger_price"],
            "conditions": alert["conditions"],
            "metadata": alert["metadata"],
            "idempotency_key": idempotency_key(str(alert["symbol"]), str(alert["rule"]), ts),
        }
    )
    return payload


class _Failure(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


def _post(config: WebhookConfig, body: bytes, key: str) -> None:
    """POST once; raise :class:`_Failure` with a reason that holds no URL or token."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    request = urllib.request.Request(config.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        code = exc.code
        retryable = code >= 500 or code in _RETRYABLE_STATUS
        raise _Failure(f"HTTP {code}", retryable=retryable) from None
    except TimeoutError:
        raise _Failure(f"timed out after {config.timeout:g} s", retryable=True) from None
    except urllib.error.URLError as exc:
        # The reason of a URLError is an OSError (refused, reset, timed out); its text
        # can name the host, so only its class and errno are kept.
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise _Failure(f"timed out after {config.timeout:g} s", retryable=True) from None
        errno = getattr(reason, "errno", None)
        detail = type(reason).__name__ + (f" (errno {errno})" if errno else "")
        raise _Failure(f"connection failed: {detail}", retryable=True) from None
    except OSError as exc:  # a reset or broken connection mid-response
        raise _Failure(f"connection failed: {type(exc).__name__}", retryable=True) from None


def _send(config: WebhookConfig, body: bytes, key: str, sleep: Any) -> tuple[int, str, str | None]:
    """Return ``(tries, outcome, error)`` of POSTing ``body`` with the config's retries.

    ``outcome`` is ``delivered``, ``rejected`` (a status not worth retrying) or
    ``pending`` (every try failed); the back-off doubles each retry.
    """
    tries, error = 0, None
    for attempt in range(config.retries + 1):
        if attempt:
            sleep(config.retry_backoff.delay(attempt - 1))
        tries += 1
        try:
            _post(config, body, key)
        except _Failure as failure:
            error = str(failure)
            if not failure.retryable:
                return tries, "rejected", error
            continue
        return tries, "delivered", None
    return tries, "pending", error


def notify(
    payload: dict[str, Any],
    key: str,
    config: WebhookConfig | None = None,
    *,
    sleep: Any = time.sleep,
) -> str:
    """Return what became of one notification POSTed to the webhook sink.

    ``payload`` is sent as JSON with ``key`` as its ``Idempotency-Key``, with the
    config's retries.  Returns ``"delivered"``, ``"rejected"``, ``"pending"`` (the
    webhook is down; the reason is logged without URL or token) or ``"no webhook"``
    when none is configured (``config`` defaults to :meth:`WebhookConfig.from_env`).
    """
    config = config if config is not None else WebhookConfig.from_env()
    if config is None:
        return "no webhook"
    tries, outcome, error = _send(config, json.dumps(jsonable(payload)).encode(), key, sleep)
    if error:
        logger.warning("notification %s to %s: %s after %d tries: %s", key,
                       safe_url(config.url), outcome, tries, error)  # fmt: skip
    return outcome


def _latest_session(store: AlertStore, alerts: pd.DataFrame) -> pd.Timestamp:
    """Return the UTC day of the newest bar: of the alerts' symbols in the store, or alerts."""
    newest = pd.to_datetime(alerts["ts"], utc=True).max()
    stored = store.market.sql(
        "SELECT max(ts) AS ts FROM bars WHERE list_contains($syms, symbol)",
        {"syms": sorted({str(s) for s in alerts["symbol"]})},
    )["ts"].iloc[0]
    if stored is not None and not pd.isna(stored):
        newest = max(newest, cast(pd.Timestamp, as_utc(stored)))
    return pd.Timestamp(newest).normalize()


def queue_mask(
    store: AlertStore, alerts: pd.DataFrame, queue: str = "latest", now: Any = None
) -> list[bool]:
    """Return which of ``alerts`` go to the webhook under the policy ``queue``.

    ``"latest"``: the alerts of the latest session, the UTC day of the newest bar of
    their symbols in the store (or of the newest alert, for bars the store lacks);
    ``"all"``; ``"none"``; or a max age (``"3d"``, ``"12h"``: alerts whose bar is
    newer than ``now`` minus that).
    """
    if alerts.empty:
        return []
    ts = pd.to_datetime(alerts["ts"], utc=True)
    if queue == "all":
        return [True] * len(alerts)
    if queue == "none":
        return [False] * len(alerts)
    if queue == "latest":
        return list(ts >= _latest_session(store, alerts))
    age: pd.Timedelta | None
    try:
        with warnings.catch_warnings():  # "3d" means three days, deprecated spelling or not
            warnings.simplefilter("ignore", category=Warning)
            age = pd.Timedelta(queue)
    except ValueError:
        age = None
    if age is None or pd.isna(age) or age <= pd.Timedelta(0):
        raise ValueError(
            f"queue={queue!r}: choose {', '.join(QUEUE_CHOICES)} or a positive max age "
            "such as '3d' or '12h'"
        )
    cutoff = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return list(ts >= cutoff - age)


def record_alerts(
    store: Any,
    alerts: pd.DataFrame,
    config: WebhookConfig | None = None,
    *,
    queue: str = "latest",
) -> WriteResult:
    """Return what storing ``alerts`` did; those ``queue`` picks are queued for the webhook.

    ``config`` defaults to :meth:`WebhookConfig.from_env`; the alerts are stored either
    way (the store is always a sink), and queued, if a webhook is set, before any
    delivery is tried.  ``queue`` (see :func:`queue_mask`) defaults to the latest
    session's alerts, so a backfill stores history without sending it; ``"all"`` opts in.
    """
    target = AlertStore.of(store)
    webhook = config or WebhookConfig.from_env()
    if webhook is None:
        return target.write_alerts(alerts, sinks=[])
    mask = queue_mask(target, alerts, queue)
    return target.write_alerts(alerts, sinks=[SINK], queue=mask)


def queue_alerts(
    store: Any,
    *,
    since: Any = None,
    symbols: str | Sequence[str] | None = None,
    rejected: bool = False,
) -> QueueResult:
    """Return what queueing stored alerts for the webhook did.

    Alerts never queued (stored before a webhook was set, or by a backfill) whose bar
    is at or after ``since`` and whose symbol is in ``symbols`` become pending; with
    ``rejected``, so do the alerts the webhook rejected (after its configuration was
    fixed).  :func:`deliver` sends them.
    """
    target = AlertStore.of(store)
    result = target.queue(SINK, start=since, symbols=symbols, rejected=rejected)
    logger.info("%s", result.summary())
    return result


def deliver(
    store: Any,
    config: WebhookConfig | None = None,
    *,
    limit: int | None = None,
    sleep: Any = time.sleep,
    flush_every: int = 50,
    flush_seconds: float = 1.0,
) -> DeliveryReport:
    """Return the report of POSTing the pending alerts of ``store`` to the webhook.

    Parameters
    ----------
    store
        An :class:`~quantdesk.data.store.alerts.AlertStore`, a market store or its file.
    config
        The webhook (default :meth:`WebhookConfig.from_env`); raises ValueError if none.
    limit
        Deliver at most this many alerts in this run.
    sleep
        How to wait between retries (``time.sleep``); the back-off doubles each retry.
    flush_every, flush_seconds
        Record outcomes after this many alerts or this long, whichever comes first.
    """
    alerts = AlertStore.of(store)
    config = config or WebhookConfig.from_env()
    if config is None:
        raise ValueError(
            "no webhook configured: set QUANTDESK_WEBHOOK_URL (and QUANTDESK_WEBHOOK_TOKEN) "
            "or write $QUANTDESK_HOME/webhook.yaml"
        )
    report = DeliveryReport(url=safe_url(config.url))
    pending = alerts.pending(SINK, limit=limit)
    outcomes: list[dict[str, Any]] = []
    flushed = time.monotonic()
    for position, (_, alert) in enumerate(pending.iterrows()):
        payload = alert_payload(alert)
        body = json.dumps(payload).encode()
        key = payload["idempotency_key"]
        tries, outcome, error = _send(config, body, key, sleep)
        if error:
            logger.debug("webhook for %s/%s: %s", alert["symbol"], alert["rule"], error)
        report.attempts += tries
        outcomes.append(
            {
                "symbol": alert["symbol"],
                "rule": alert["rule"],
                "ts": alert["ts"],
                "status": outcome,
                "attempts": tries,
                "error": error,
            }
        )
        if outcome == "delivered":
            report.delivered += 1
            if len(outcomes) >= flush_every or time.monotonic() - flushed >= flush_seconds:
                alerts.record_attempts(outcomes, SINK)
                outcomes, flushed = [], time.monotonic()
            continue
        alerts.record_attempts(outcomes, SINK)  # failures are recorded at once
        outcomes, flushed = [], time.monotonic()
        assert error is not None
        report.errors.append(f"{alert['symbol']}/{alert['rule']}: {error} from {report.url}")
        if outcome == "rejected":
            report.rejected += 1
            logger.warning(
                "webhook %s rejected alert %s/%s: %s",
                report.url,
                alert["symbol"],
                alert["rule"],
                error,
            )
            continue
        report.failed += 1
        report.pending = len(pending) - position
        logger.warning(
            "webhook delivery failed after %d attempts (%s); %d alerts stay pending",
            tries,
            error,
            report.pending,
        )
        break
    alerts.record_attempts(outcomes, SINK)
    counts = alerts.counts(SINK)
    report.unqueued = (
        counts["alerts"] - counts["pending"] - counts["delivered"] - counts["rejected"]
    )
    logger.info("%s", report.summary())
    return report
