"""The live streaming scan: one per feed per process, on the hub's closed candles.

A :class:`LiveScanner` listens to a feed (after the candle recorder: listeners run in
the order they were added), reads the candles closed since it last looked
(``closed_since``) and runs them through a
:class:`~quantdesk.screener.streaming.StreamingScan`, so an alert exists as soon as the
tick that closed its candle has been published.  The recent alerts are kept in memory,
numbered, for the monitor's panes to stream (:meth:`LiveScanner.alerts_since`); when a
store is given they are also recorded through
:func:`~quantdesk.screener.webhooks.record_alerts` (the store's key drops duplicates)
by a writer thread, so a slow or locked store never holds up the feed.  Alerts the
writer cannot record yet (the store busy past its lock timeout, or any other error)
stay in memory and are recorded on the writer's next attempt: with the next batch, every
``retry_seconds`` meanwhile, and once more on :meth:`LiveScanner.close`.  Live alerts are
queued for the webhook (``queue="all"``): each is of the session being streamed.

The default rules (:func:`default_live_rules`) fire on the simulator's 5 s and 1 min
candles: short breakouts and volume spikes.  Another rule set comes from a YAML file
(``LiveHub(rules=...)``, ``quantdesk dashboard --rules``, or
``$QUANTDESK_MONITOR_RULES``, read as :attr:`quantdesk.config.Settings.monitor_rules`).

This is the scan's logic, no user interface: the monitor's alerts pane
(:class:`~quantdesk.dashboards.panes.AlertsPane`) shows what it keeps.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from quantdesk.data.live.recorder import CandleSource
    from quantdesk.data.store.market import MarketStore
    from quantdesk.screener.rules import Rule
    from quantdesk.screener.rulesets import RulesLike

__all__ = ["ALERT_FIELDS", "LiveScanner", "default_live_rules"]

logger = logging.getLogger(__name__)

#: The fields of each in-memory alert (besides its sequence number ``seq``).
ALERT_FIELDS: tuple[str, ...] = ("symbol", "rule", "ts", "trigger_price")


def default_live_rules() -> list[Rule]:
    """Return the live scan's default rules: 6-candle breakouts and a 2.5x volume spike.

    Short windows, so that they fire on the simulator's 5 s and 1 min candles within
    a minute or two of the feed starting.

    Examples
    --------
    >>> [r.name for r in default_live_rules()]
    ['new_high', 'new_low', 'volume_spike']
    """
    from quantdesk.screener.rules import new_high, new_low, volume_spike

    return [new_high(n=6), new_low(n=6), volume_spike(k=2.5, n=6)]


class LiveScanner:
    """A streaming scan over one candle recorder, its recent alerts and their recording.

    Parameters
    ----------
    candles
        The recorder whose closed candles are scanned.
    rules
        The rule set (default :func:`default_live_rules`).
    timeframe
        The candles' timeframe (recorded in each alert's metadata).
    store
        Where alerts are recorded (``None``: memory only).
    keep
        Alerts kept in memory.
    retry_seconds
        How often the writer retries alerts it could not record yet.
    """

    def __init__(
        self,
        candles: CandleSource,
        rules: RulesLike | None = None,
        *,
        timeframe: str = "5s",
        store: MarketStore | None = None,
        keep: int = 200,
        retry_seconds: float = 5.0,
    ) -> None:
        from quantdesk.screener.streaming import StreamingScan

        self.candles = candles
        self.scan = StreamingScan(
            rules if rules is not None else default_live_rules(), timeframe=timeframe
        )
        self.timeframe = timeframe
        self.store = store
        self._lock = threading.Lock()
        self._version = 0
        self._seq = 0
        self._recent: deque[dict[str, Any]] = deque(maxlen=int(keep))
        self._detach: Any = None
        self.recorded = 0
        self.record_errors = 0
        self.retry_seconds = float(retry_seconds)
        # Alerts not recorded yet (touched by the writer thread only).
        self._unrecorded: list[pd.DataFrame] = []
        self._unrecorded_count = 0
        self._queue: queue.Queue[pd.DataFrame | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        if store is not None:
            self._writer = threading.Thread(
                target=self._write_loop, name="quantdesk-alert-writer", daemon=True
            )
            self._writer.start()

    def __repr__(self) -> str:
        return f"LiveScanner({self.scan!r}, {self._seq} alerts)"

    def attach(self, feed: Any) -> LiveScanner:
        """Return the scanner after subscribing it to ``feed`` (scans on every tick batch)."""
        self._detach = feed.add_listener(self.on_ticks)
        return self

    def on_ticks(self, ticks: pd.DataFrame) -> None:
        """Scan what closed (a feed listener; the ticks themselves are the recorder's)."""
        self.poll()

    def poll(self) -> int:
        """Return the number of alerts raised by the candles closed since the last poll."""
        with self._lock:
            self._version, closed = self.candles.closed_since(self._version)
            if closed.empty:
                return 0
            alerts = self.scan.update(closed)
            if alerts.empty:
                return 0
            stamps = pd.to_datetime(alerts["ts"], utc=True)
            prices = alerts["trigger_price"].to_numpy(dtype=float)
            for symbol, rule, ts, price in zip(
                alerts["symbol"], alerts["rule"], stamps, prices, strict=True
            ):
                self._seq += 1
                self._recent.append(
                    {
                        "seq": self._seq,
                        "symbol": str(symbol),
                        "rule": str(rule),
                        "ts": ts,
                        "trigger_price": float(price),
                    }
                )
        if self._writer is not None:
            self._queue.put(alerts)
        return len(alerts)

    @property
    def seq(self) -> int:
        """Return the number of alerts raised so far (the newest alert's ``seq``)."""
        return self._seq

    def alerts_since(self, seq: int) -> tuple[int, list[dict[str, Any]]]:
        """Return the newest ``seq`` and the kept alerts after ``seq``, oldest first."""
        with self._lock:
            return self._seq, [a for a in self._recent if a["seq"] > seq]

    @property
    def unrecorded(self) -> int:
        """Return the number of alerts raised but not recorded in the store yet."""
        return self._unrecorded_count

    def _write_loop(self) -> None:
        while True:
            try:
                wait = self.retry_seconds if self._unrecorded else None
                alerts = self._queue.get(timeout=wait)
            except queue.Empty:  # time to retry what is kept
                alerts = pd.DataFrame()
            if alerts is not None and not alerts.empty:
                self._unrecorded.append(alerts)
                self._unrecorded_count += len(alerts)
            if self._unrecorded:
                self._record_kept()
            if alerts is None:
                if self._unrecorded:
                    logger.error(
                        "the live scan closed with %d alert(s) not recorded", self.unrecorded
                    )
                return

    def _record_kept(self) -> None:
        """Record the alerts kept in memory; on failure keep them for the next attempt."""
        from quantdesk.screener.webhooks import record_alerts

        batch = pd.concat(self._unrecorded, ignore_index=True)
        try:
            result = record_alerts(self.store, batch, queue="all")
        except Exception as exc:  # the scan goes on; the alerts wait for the next attempt
            self.record_errors += 1
            logger.warning(
                "could not record %d live alert(s) yet (%s: %s); kept in memory, retrying",
                len(batch),
                type(exc).__name__,
                exc,
            )
            return
        self.recorded += result.stored
        self._unrecorded, self._unrecorded_count = [], 0

    def close(self, timeout: float = 30.0) -> None:
        """Stop listening and let the writer record what is queued (one last attempt)."""
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout)
            self._writer = None
