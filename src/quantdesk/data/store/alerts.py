"""AlertStore: screener alerts and their delivery outbox, in the market store's DuckDB file.

Two tables, written through the store's short-lived connections
(:mod:`quantdesk.data.store.locking`) so a scan, a delivery run, a notebook and the
monitor work on the file at once:

* ``alerts``: one row per ``(symbol, rule, ts)``, a PRIMARY KEY.  Alerts are written
  with ``INSERT ... ON CONFLICT DO NOTHING``: the database, not a check-then-insert,
  keeps the same symbol/rule/bar from being stored twice, even when two processes
  scan the same bars at once.
* ``alert_deliveries``: the outbox, one row per alert and sink (``"webhook"``).  A
  delivery row is written in the same transaction as its alert, so an alert is
  recorded before anything tries to deliver it; a delivery stays ``pending`` until a
  sink confirms it (``delivered``) or refuses it for good (``rejected``), and every
  attempt's count, time and error (never the sink's URL) is kept, so
  ``quantdesk alerts list --undelivered`` shows what is owed.  An alert with no
  delivery row for a sink was never queued for it (stored before the sink was set up,
  or a backfill not asked to queue); :meth:`AlertStore.queue` queues such alerts, and
  re-queues rejected ones once the sink's configuration is fixed.

``conditions`` and ``metadata`` are stored as JSON text and read back as dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from quantdesk.core.coerce import as_symbols, as_utc
from quantdesk.core.jsonable import jsonable
from quantdesk.data.schemas import ALERT_COLUMNS, parse_timeframe
from quantdesk.data.store.file import fetch_frame
from quantdesk.data.store.market import MarketStore
from quantdesk.data.store.tables import StoreTables
from quantdesk.data.timestamps import bound_window, utc_ns_column

__all__ = [
    "DELIVERY_COLUMNS",
    "DELIVERY_STATES",
    "AlertStore",
    "QueueResult",
    "WriteResult",
    "idempotency_key",
]

#: What :meth:`AlertStore.alerts` adds to :data:`ALERT_COLUMNS` for a sink.
DELIVERY_COLUMNS: tuple[str, ...] = (
    "idempotency_key",
    "status",
    "attempts",
    "last_error",
    "last_attempt_at",
    "delivered_at",
)

_ALERTS_DDL = """
CREATE TABLE IF NOT EXISTS alerts (
    symbol VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    trigger_price DOUBLE,
    conditions VARCHAR NOT NULL,
    metadata VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, rule, ts)
);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    symbol VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    sink VARCHAR NOT NULL,
    idempotency_key VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    last_error VARCHAR,
    last_attempt_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    PRIMARY KEY (symbol, rule, ts, sink)
);
"""

_STATUSES = ("pending", "delivered", "rejected")
#: The delivery state of an alert for a sink, as :meth:`AlertStore.alerts` names it in
#: ``status``: never queued (None), or one of the outbox's statuses.
DELIVERY_STATES: tuple[str | None, ...] = (None, *_STATUSES)


def idempotency_key(symbol: str, rule: str, ts: Any) -> str:
    """Return the idempotency key of one alert: a hash of its symbol, rule and bar time.

    The same alert always gets the same key, so a receiver that sees a key twice (a
    delivery retried after a crash) knows it is a duplicate.

    Examples
    --------
    >>> len(idempotency_key("ACME", "gap_up", "2024-01-02"))
    32
    >>> idempotency_key("ACME", "gap_up", "2024-01-02") == idempotency_key(
    ...     "ACME", "gap_up", pd.Timestamp("2024-01-02", tz="UTC"))
    True
    """
    stamp = as_utc(ts)
    text = f"{symbol}\x1f{rule}\x1f{stamp.isoformat() if stamp is not None else ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class WriteResult:
    """What storing alerts did: ``found`` given, ``stored`` new, ``queued`` deliveries."""

    found: int
    stored: int
    queued: int

    @property
    def duplicates(self) -> int:
        """Return how many of the alerts were already stored (or repeated in the batch)."""
        return self.found - self.stored

    def summary(self) -> str:
        """Return one line: alerts found, newly stored, already stored, deliveries queued."""
        return (
            f"{self.found} alerts: {self.stored} new, {self.duplicates} already stored, "
            f"{self.queued} deliveries queued"
        )


@dataclass(frozen=True)
class QueueResult:
    """What queueing stored alerts did: ``queued`` never-queued, ``requeued`` rejected ones."""

    sink: str
    queued: int
    requeued: int

    def summary(self) -> str:
        """Return one line: alerts newly queued and rejected alerts queued again."""
        return (
            f"{self.sink}: {self.queued} never-queued alerts queued, "
            f"{self.requeued} rejected alerts queued again"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-able dict."""
        return {"sink": self.sink, "queued": self.queued, "requeued": self.requeued}


_QUEUE_SQL = """
INSERT INTO alert_deliveries
SELECT DISTINCT symbol, rule, ts, $sink, '', 'pending', 0, NULL, NULL, NULL
FROM {source}
ON CONFLICT (symbol, rule, ts, sink) DO NOTHING
"""


def _queue_rows(con: Any, source: str, sink: str) -> int:
    """Return how many of ``source``'s ``(symbol, rule, ts)`` got a pending delivery row.

    Rows already queued for ``sink`` (in any state) are left alone; the idempotency
    keys of the new rows are filled in by the same transaction.
    """
    count = "SELECT count(*) FROM alert_deliveries WHERE sink = $sink"
    before = int(con.execute(count, {"sink": sink}).fetchall()[0][0])
    con.execute(_QUEUE_SQL.format(source=source), {"sink": sink})
    fresh = con.execute(
        "SELECT symbol, rule, ts FROM alert_deliveries WHERE sink = $sink AND idempotency_key = ''",
        {"sink": sink},
    ).df()
    if not fresh.empty:
        fresh["idempotency_key"] = [
            idempotency_key(s, r, t)
            for s, r, t in zip(fresh["symbol"], fresh["rule"], fresh["ts"], strict=True)
        ]
        con.register("fresh_keys", fresh)
        con.execute(
            """
            UPDATE alert_deliveries AS d SET idempotency_key = f.idempotency_key
            FROM fresh_keys AS f
            WHERE d.symbol = f.symbol AND d.rule = f.rule AND d.ts = f.ts AND d.sink = $sink
            """,
            {"sink": sink},
        )
        con.unregister("fresh_keys")
    return int(con.execute(count, {"sink": sink}).fetchall()[0][0]) - before


# Keeps an alert ``a`` whose bar lies in its own window of ``alert_windows``.
_WINDOW_JOIN = """
    JOIN alert_windows w ON w.symbol = a.symbol
     AND w.timeframe IS NOT DISTINCT FROM json_extract_string(a.metadata, '$.timeframe')
     AND (w.lo IS NULL OR a.ts >= w.lo) AND (w.hi IS NULL OR a.ts < w.hi)
"""


def _is_daily(timeframe: str | None) -> bool:
    """Return True when an alert's recorded timeframe is a day or longer."""
    try:
        return timeframe is not None and parse_timeframe(timeframe).is_daily
    except ValueError:
        return False


def _window_join(con: Any, start: Any, end: Any) -> str:
    """Return the join that keeps the alerts on bars within ``start..end`` ('' if unbounded).

    The bounds follow the one rule of reads (:func:`~quantdesk.data.timestamps.bound_window`),
    as :meth:`MarketStore.bars` applies it: a day is the whole day in the symbol's time
    zone (UTC when the store does not know it) for intraday alerts, and the UTC session
    date for alerts on bars of a day or longer (their ``ts`` is the date at 00:00 UTC).
    An alert's timeframe is the one its metadata records; without one it is intraday.
    The windows are registered on ``con`` as ``alert_windows``, one per symbol and
    timeframe.
    """
    if start is None and end is None:
        return ""
    pairs = con.execute(
        "SELECT DISTINCT symbol, json_extract_string(metadata, '$.timeframe') FROM alerts"
    ).fetchall()
    zones = MarketStore._zones(con, sorted({str(symbol) for symbol, _ in pairs}))
    windows: dict[tuple[str, bool], tuple[Any, Any]] = {}
    rows = []
    for symbol, timeframe in pairs:
        key = (zones.get(symbol, "UTC"), _is_daily(timeframe))
        if key not in windows:
            windows[key] = bound_window(start, end, key[0], daily=key[1])
        rows.append((symbol, timeframe, *windows[key]))
    frame = pd.DataFrame(
        {
            "symbol": pd.Series([r[0] for r in rows], dtype=object),
            "timeframe": pd.Series([r[1] for r in rows], dtype=object),
            "lo": pd.to_datetime(pd.Series([r[2] for r in rows], dtype=object), utc=True),
            "hi": pd.to_datetime(pd.Series([r[3] for r in rows], dtype=object), utc=True),
        }
    )
    con.register("alert_windows", frame)
    return _WINDOW_JOIN


def _json_text(value: Any) -> str:
    return json.dumps(jsonable(value if value is not None else {}), sort_keys=True)


def _from_json(text: Any) -> dict[str, Any]:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return {}
    loaded = json.loads(str(text))
    return loaded if isinstance(loaded, dict) else {"value": loaded}


class AlertStore(StoreTables):
    """Screener alerts and their delivery outbox, in the market store's file.

    Parameters
    ----------
    store
        A :class:`~quantdesk.data.store.market.MarketStore`, its file, or None for the default.
    read_only
        Refuse writes.

    Examples
    --------
    >>> alerts = AlertStore(tmp_path / "demo.duckdb")  # doctest: +SKIP
    >>> alerts.write_alerts(frame, sinks=["webhook"]).summary()  # doctest: +SKIP
    >>> alerts.alerts(undelivered=True)  # doctest: +SKIP
    """

    DDL = _ALERTS_DDL
    MARKER_TABLE = "alert_deliveries"

    # -- writes ------------------------------------------------------------------------

    def write_alerts(
        self,
        alerts: pd.DataFrame,
        sinks: Sequence[str] = (),
        *,
        queue: Sequence[bool] | None = None,
    ) -> WriteResult:
        """Return what storing ``alerts`` did; the alerts asked for are queued per sink.

        ``alerts`` has :data:`~quantdesk.data.schemas.ALERT_COLUMNS`.  An alert whose
        ``(symbol, rule, ts)`` is stored already is left as it is (the first copy wins);
        the key is the table's PRIMARY KEY, so two processes writing the same alert at
        once still store it once.  ``queue`` (one flag per row, default all) says which
        alerts get a pending delivery for each of ``sinks``: those not queued for the
        sink yet, new or stored before.  One transaction: a failed write changes nothing.
        """
        missing = [c for c in ALERT_COLUMNS if c not in alerts.columns]
        if missing:
            raise ValueError(f"alerts lack column(s) {missing}; expected {ALERT_COLUMNS}")
        flags = [True] * len(alerts) if queue is None else [bool(q) for q in queue]
        if len(flags) != len(alerts):
            raise ValueError(f"queue has {len(flags)} flags for {len(alerts)} alerts")
        now = datetime.now(UTC)
        frame = pd.DataFrame(
            {
                "symbol": alerts["symbol"].astype(str).to_numpy(),
                "rule": alerts["rule"].astype(str).to_numpy(),
                "ts": pd.to_datetime(alerts["ts"], utc=True).array,
                "trigger_price": pd.to_numeric(alerts["trigger_price"]).to_numpy(dtype=float),
                "conditions": [_json_text(c) for c in alerts["conditions"]],
                "metadata": [_json_text(m) for m in alerts["metadata"]],
                "created_at": now,
                "queue": flags,
            }
        )
        with self._transaction() as con:
            before = int(con.execute("SELECT count(*) FROM alerts").fetchall()[0][0])
            con.register("incoming", frame)
            # The key, not this statement, decides what is new: a duplicate inside the
            # batch or one another process committed first is skipped by the database.
            con.execute(
                """
                INSERT INTO alerts
                SELECT symbol, rule, ts, trigger_price, conditions, metadata, created_at
                FROM incoming
                ON CONFLICT (symbol, rule, ts) DO NOTHING
                """
            )
            stored = int(con.execute("SELECT count(*) FROM alerts").fetchall()[0][0]) - before
            queued = 0
            con.unregister("incoming")
            if any(flags):
                con.register("to_queue", frame.loc[frame["queue"], ["symbol", "rule", "ts"]])
                for sink in sinks:
                    queued += _queue_rows(con, "to_queue", sink)
                con.unregister("to_queue")
        return WriteResult(found=len(alerts), stored=stored, queued=queued)

    def record_attempt(
        self,
        symbol: str,
        rule: str,
        ts: Any,
        sink: str,
        *,
        status: str,
        attempts: int,
        error: str | None = None,
    ) -> None:
        """Record the outcome of delivering one alert to ``sink`` (one short transaction).

        ``status`` is ``"delivered"``, ``"pending"`` (failed, to be retried by the next
        run) or ``"rejected"`` (refused for good); ``attempts`` are added to the count.
        """
        self.record_attempts(
            [
                {
                    "symbol": symbol,
                    "rule": rule,
                    "ts": ts,
                    "status": status,
                    "attempts": attempts,
                    "error": error,
                }
            ],
            sink,
        )

    def record_attempts(self, outcomes: Sequence[dict[str, Any]], sink: str) -> None:
        """Record the outcomes of several deliveries to ``sink`` in one transaction.

        Each outcome has ``symbol, rule, ts, status, attempts, error`` as for
        :meth:`record_attempt`.
        """
        if not outcomes:
            return
        bad = sorted({str(o["status"]) for o in outcomes} - set(_STATUSES))
        if bad:
            raise ValueError(f"unknown delivery status {bad[0]!r}; choose from {_STATUSES}")
        now = datetime.now(UTC)
        frame = pd.DataFrame(
            {
                "symbol": [str(o["symbol"]) for o in outcomes],
                "rule": [str(o["rule"]) for o in outcomes],
                "ts": pd.to_datetime([o["ts"] for o in outcomes], utc=True),
                "status": [str(o["status"]) for o in outcomes],
                "attempts": [int(o["attempts"]) for o in outcomes],
                "error": pd.Series([o.get("error") for o in outcomes], dtype=object),
            }
        )
        with self._transaction() as con:
            con.register("outcomes", frame)
            con.execute(
                """
                UPDATE alert_deliveries AS d
                SET status = o.status, attempts = d.attempts + o.attempts,
                    last_error = o.error, last_attempt_at = $now,
                    delivered_at = CASE WHEN o.status = 'delivered' THEN $now END
                FROM outcomes AS o
                WHERE d.symbol = o.symbol AND d.rule = o.rule AND d.ts = o.ts
                  AND d.sink = $sink
                """,
                {"now": now, "sink": sink},
            )
            con.unregister("outcomes")

    def queue(
        self,
        sink: str,
        *,
        start: Any = None,
        end: Any = None,
        symbols: str | Sequence[str] | None = None,
        rejected: bool = False,
    ) -> QueueResult:
        """Return what queueing the stored alerts for ``sink`` did (one transaction).

        Alerts never queued for ``sink`` get a pending delivery; with ``rejected``, the
        alerts ``sink`` rejected are made pending again too (their attempts and last
        error are kept).  ``start``/``end`` bound the alerts' bars (inclusive; a day is
        the whole day, as in :meth:`alerts`) and ``symbols`` picks symbols; a delivered
        or pending alert is left alone.
        """
        with self._transaction() as con:
            chosen = con.execute(
                f"""
                SELECT a.symbol, a.rule, a.ts FROM alerts a {_window_join(con, start, end)}
                WHERE $syms IS NULL OR list_contains($syms, a.symbol)
                """,
                {"syms": as_symbols(symbols)},
            ).df()
            con.register("chosen", chosen)
            queued = _queue_rows(con, "chosen", sink)
            requeued = 0
            if rejected:
                requeued = int(
                    con.execute(
                        """
                        UPDATE alert_deliveries d SET status = 'pending'
                        FROM chosen c
                        WHERE d.sink = $sink AND d.status = 'rejected'
                          AND d.symbol = c.symbol AND d.rule = c.rule AND d.ts = c.ts
                        RETURNING 1
                        """,
                        {"sink": sink},
                    )
                    .df()
                    .shape[0]
                )
            con.unregister("chosen")
        return QueueResult(sink=sink, queued=queued, requeued=requeued)

    def queue_all(self, sink: str) -> int:
        """Return how many stored alerts were newly queued for ``sink`` (those not yet queued)."""
        return self.queue(sink).queued

    # -- reads -------------------------------------------------------------------------

    def alerts(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        *,
        rules: str | Sequence[str] | None = None,
        sink: str = "webhook",
        undelivered: bool = False,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Return stored alerts, newest bar first, with their delivery state for ``sink``.

        Columns: :data:`~quantdesk.data.schemas.ALERT_COLUMNS`, ``created_at`` and
        :data:`DELIVERY_COLUMNS` (``status`` is None for an alert never queued for the
        sink).  ``start``/``end`` bound the alerts' bars, inclusive, by the one rule of
        reads (:func:`~quantdesk.data.timestamps.bound_window`): a day means the whole
        day, in the symbol's time zone for intraday alerts (UTC where the store does not
        know it) and the session date for daily ones; a bound with a time part is an
        instant.  ``undelivered`` keeps the alerts whose delivery is ``pending``;
        ``limit`` keeps the newest rows.
        """
        columns = [*ALERT_COLUMNS, "created_at", *DELIVERY_COLUMNS]
        if not self._has_tables():
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
            return utc_ns_column(empty)
        params = {
            "sink": sink,
            "syms": as_symbols(symbols),
            "rules": as_symbols(rules),
            "undelivered": undelivered,
            "limit": limit if limit is not None else 2**62,
        }
        with self.market._connect() as con:
            query = f"""
                SELECT a.symbol, a.rule, a.ts, a.trigger_price, a.conditions, a.metadata,
                       a.created_at, {", ".join("d." + c for c in DELIVERY_COLUMNS)}
                FROM alerts a
                LEFT JOIN alert_deliveries d
                  ON d.symbol = a.symbol AND d.rule = a.rule AND d.ts = a.ts AND d.sink = $sink
                {_window_join(con, start, end)}
                WHERE ($syms IS NULL OR list_contains($syms, a.symbol))
                  AND ($rules IS NULL OR list_contains($rules, a.rule))
                  AND (NOT $undelivered OR d.status = 'pending')
                ORDER BY a.ts DESC, a.rule, a.symbol
                LIMIT $limit
            """
            frame = fetch_frame(con, query, params)
        frame["conditions"] = pd.Series(
            [_from_json(c) for c in frame["conditions"]], index=frame.index, dtype=object
        )
        frame["metadata"] = pd.Series(
            [_from_json(m) for m in frame["metadata"]], index=frame.index, dtype=object
        )
        frame["attempts"] = frame["attempts"].astype("Int64")
        for column in ("idempotency_key", "status", "last_error"):  # NULL reads as None
            frame[column] = pd.Series(
                [None if pd.isna(v) else str(v) for v in frame[column]],
                index=frame.index,
                dtype=object,
            )
        for column in ("ts", "created_at", "last_attempt_at", "delivered_at"):
            frame = utc_ns_column(frame, column)
        return frame[columns]

    def pending(self, sink: str = "webhook", limit: int | None = None) -> pd.DataFrame:
        """Return the alerts whose delivery to ``sink`` is pending, oldest bar first."""
        frame = self.alerts(sink=sink, undelivered=True)
        frame = frame.iloc[::-1].reset_index(drop=True)
        return frame if limit is None else frame.head(limit)

    def counts(self, sink: str = "webhook") -> dict[str, int]:
        """Return the number of stored alerts and of deliveries to ``sink`` by status."""
        if not self._has_tables():
            return {"alerts": 0, **dict.fromkeys(_STATUSES, 0)}
        total = self.market.sql("SELECT count(*) AS n FROM alerts")["n"].iloc[0]
        by_status = self.market.sql(
            "SELECT status, count(*) AS n FROM alert_deliveries WHERE sink = $sink GROUP BY ALL",
            {"sink": sink},
        )
        out = {"alerts": int(total), **dict.fromkeys(_STATUSES, 0)}
        out.update(
            {str(s): int(n) for s, n in zip(by_status["status"], by_status["n"], strict=True)}
        )
        return out
