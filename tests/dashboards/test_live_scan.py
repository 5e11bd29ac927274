"""The live scan's alert writer against a real DuckDB file that another connection holds."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import duckdb

from .test_panes import _ticks


class _Seen(logging.Handler):
    """Sets an event when a log line holding ``text`` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__(level=logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_a_live_alert_the_busy_store_refuses_stays_in_memory_and_is_recorded_later(
    tmp_path: Path,
) -> None:
    """The monitor's case: the store file attached by another connection of the same
    server process (DuckDB's ResourceInUseException).  The alert is not dropped: the
    writer keeps it and records it once the file is free."""
    from quantdesk.data.live import CandleRecorder
    from quantdesk.data.store.alerts import AlertStore
    from quantdesk.data.store.market import MarketStore
    from quantdesk.screener.live import LiveScanner
    from quantdesk.screener.rules import new_high

    path = tmp_path / "store.duckdb"
    store = MarketStore(path, lock_timeout=0.05)
    recorder = CandleRecorder("5s")
    scanner = LiveScanner(recorder, [new_high(n=1)], timeframe="5s", store=store)
    seen = _Seen("could not record")
    log = logging.getLogger("quantdesk.screener.live")
    log.addHandler(seen)
    holder = duckdb.connect(":memory:")
    try:
        holder.execute(f"ATTACH '{path}' AS held")  # another connection holds the file
        recorder.on_ticks(_ticks("AAA", "2024-01-02 14:30:00", [0, 5, 10, 15], [10, 11, 12, 12]))
        assert scanner.poll() == 2
        assert seen.event.wait(60)  # the writer tried and could not record
        assert scanner.record_errors >= 1 and scanner.recorded == 0
        holder.execute("DETACH held")  # the file is free again
        scanner.close()
    finally:
        log.removeHandler(seen)
        holder.close()
    stored = AlertStore(store).alerts()
    assert sorted(stored["trigger_price"]) == [11.0, 12.0]
    assert scanner.recorded == 2 and scanner.unrecorded == 0
