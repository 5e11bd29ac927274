"""The ``quantdesk screen`` and ``quantdesk alerts`` commands: scan, store and send alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from quantdesk.cli.options import (
    JsonOption,
    SchedulerOption,
    SnapshotOption,
    StoreOption,
    echo_result,
    fail,
    open_store,
)
from quantdesk.core.coerce import as_symbols

__all__ = ["alerts_app", "screen_app"]

screen_app = typer.Typer(
    help="Scan the whole universe with a rule set and store its alerts.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
alerts_app = typer.Typer(
    help="List stored alerts, queue them for the webhook and deliver them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _alert_records(frame: Any) -> list[dict[str, Any]]:
    """Return alert rows as JSON-able dicts (timestamps in ISO 8601, NaN as null)."""
    from quantdesk.core.jsonable import jsonable

    records: list[dict[str, Any]] = jsonable(frame.to_dict("records"))
    return records


def _alert_table(frame: Any) -> str:
    """Return alerts as an aligned text table, one line per alert, times in UTC.

    With a delivery state, ``delivery`` says ``never queued``, ``pending``, ``delivered``
    or ``rejected``.
    """
    columns = [c for c in ("ts", "symbol", "rule", "trigger_price", "status", "attempts",
                           "last_error") if c in frame.columns]  # fmt: skip
    shown = frame[columns].copy()
    shown["ts"] = shown["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M")
    shown["trigger_price"] = shown["trigger_price"].round(4)
    if "status" in shown.columns:
        shown["status"] = shown["status"].fillna("never queued")
    shown = shown.rename(columns={"ts": "ts (UTC)", "status": "delivery"})
    return str(shown.to_string(index=False))


def _delivery_failed(report: Any, as_json: bool) -> None:
    """Exit 1, saying why on stderr (unless --json), when a delivery was not complete."""
    if report is None or report.ok:
        return
    if not as_json:
        typer.echo(f"error: webhook delivery incomplete: {report.errors[-1]}", err=True)
    raise typer.Exit(1)


QueueOption = Annotated[
    str,
    typer.Option(
        "--queue",
        help="Which new alerts go to the webhook: latest (the latest session's, the "
        "default: a backfill sends no history), all, none, or a max age such as 3d.",
    ),
]


@screen_app.command("run")
def screen_run(
    rules: Annotated[
        Path, typer.Option("--rules", help="YAML rule set (see quantdesk.screener.rulesets).")
    ],
    date: Annotated[str | None, typer.Option("--date", help="Alert on this day's bars.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Backfill from this date.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Backfill to this date.")] = None,
    new_only: Annotated[
        bool, typer.Option("--new-only", help="Alert only when a symbol newly enters a scan.")
    ] = False,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Bar length.")] = "1d",
    deliver_now: Annotated[
        bool,
        typer.Option(
            "--deliver/--no-deliver",
            help="POST the new alerts to the configured webhook (if any) after storing them.",
        ),
    ] = True,
    queue: QueueOption = "latest",
    snapshot: SnapshotOption = None,
    scheduler: SchedulerOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Scan the store with a rule set (default: the latest bar) and store the alerts.

    Alert times are UTC.  Only the latest session's alerts are queued for the webhook
    unless --queue says otherwise; `quantdesk alerts queue` queues stored ones later.
    With --snapshot URL the bars are read from that snapshot instead, in batches of
    symbols, on the Dask cluster at --scheduler tcp://HOST:PORT if given (a backfill);
    the alerts are stored here either way.
    """
    from quantdesk.screener import scan
    from quantdesk.screener.rulesets import RuleSetError, load_rules
    from quantdesk.screener.webhooks import WebhookConfig, deliver, record_alerts

    if date is not None and (start is not None or end is not None):
        fail("give either --date or --start/--end, not both")
    try:
        rule_set = load_rules(rules)
        webhook = WebhookConfig.from_env()
    except (RuleSetError, ValueError) as exc:
        fail(str(exc))
    market = open_store(store)
    if snapshot is not None:
        from quantdesk.data.snapshot import SnapshotError
        from quantdesk.screener.backfill import backfill_scan

        try:
            alerts = backfill_scan(
                rule_set,
                start=date or start,
                end=date or end,
                snapshot=snapshot,
                scheduler=scheduler,
                new_only=new_only,
                timeframe=timeframe,
                progress=not as_json,
            )
        except (ValueError, OSError, RuntimeError, SnapshotError) as exc:
            fail(str(exc))
    else:
        if scheduler is not None:
            fail("--scheduler needs --snapshot: workers read the snapshot, not the store")
        alerts = scan(
            market, rule_set, date=date, start=start, end=end, timeframe=timeframe,
            new_only=new_only,
        )  # fmt: skip
    try:
        written = record_alerts(market, alerts, webhook, queue=queue)
    except ValueError as exc:
        fail(str(exc))
    delivery = deliver(market, webhook) if webhook is not None and deliver_now else None
    if as_json:
        payload = {
            "rules": [r.name for r in rule_set],
            "found": written.found,
            "stored": written.stored,
            "queued": written.queued,
            "delivery": delivery.to_dict() if delivery else None,
            "alerts": _alert_records(alerts),
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(f"{len(rule_set)} rules: {written.summary()}")
        if len(alerts):
            typer.echo(_alert_table(alerts))
        if delivery is not None:
            typer.echo(delivery.summary())
    _delivery_failed(delivery, as_json)


@alerts_app.command("list")
def alerts_list(
    today: Annotated[bool, typer.Option("--today", help="Only alerts on today's bars.")] = False,
    start: Annotated[
        str | None, typer.Option("--start", help="Only alerts on bars from this date on.")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Only alerts on bars up to this date (the whole day)."),
    ] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol.")] = None,
    undelivered: Annotated[
        bool, typer.Option("--undelivered", help="Only alerts the webhook still owes.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="Newest alerts shown.")] = 50,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List stored alerts, newest first (times in UTC), with their webhook delivery state:
    never queued, pending, delivered or rejected."""
    import pandas as pd

    from quantdesk.data.store.alerts import AlertStore

    since = pd.Timestamp.now(tz="UTC").normalize() if today else start
    frame = AlertStore(open_store(store, read_only=True)).alerts(
        symbol, start=since, end=end, undelivered=undelivered, limit=limit
    )
    if as_json:
        typer.echo(json.dumps(_alert_records(frame), indent=2))
        return
    if frame.empty:
        typer.echo("no alerts")
        return
    typer.echo(_alert_table(frame))


@alerts_app.command("queue")
def alerts_queue(
    since: Annotated[
        str | None, typer.Option("--since", help="Only alerts on bars from this day on.")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Only these symbols (comma-separated).")
    ] = None,
    rejected: Annotated[
        bool,
        typer.Option(
            "--rejected", help="Also queue again the alerts the webhook rejected (once fixed)."
        ),
    ] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue stored alerts for the webhook: those never queued (stored before a webhook
    was configured, or by a backfill), and with --rejected those it rejected."""
    from quantdesk.screener.webhooks import queue_alerts

    market = open_store(store)
    try:
        result = queue_alerts(
            market, since=since, symbols=(as_symbols(symbols) or None), rejected=rejected
        )
    except ValueError as exc:
        fail(f"--since {since!r}: {exc}")
    echo_result(result, as_json)


@alerts_app.command("deliver")
def alerts_deliver(
    limit: Annotated[int | None, typer.Option("--limit", help="Deliver at most this many.")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """POST the pending alerts to the webhook (QUANTDESK_WEBHOOK_URL or webhook.yaml).

    Exits 1 when the webhook rejected an alert (the status and URL are shown; fix the
    configuration, then `alerts queue --rejected`) or some stay pending (the receiver
    failed; the next run retries them).  Alerts never queued are not sent: see
    `alerts queue`.
    """
    from quantdesk.screener.webhooks import deliver

    try:
        report = deliver(open_store(store), limit=limit)
    except ValueError as exc:
        fail(str(exc))
    echo_result(report, as_json)
    _delivery_failed(report, as_json)
