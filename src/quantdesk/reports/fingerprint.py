"""The data fingerprint of a report: which market store contents a run saw."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from quantdesk.config import settings
from quantdesk.core.jsonable import jsonable

__all__ = ["store_fingerprint"]

logger = logging.getLogger(__name__)


def store_fingerprint(path: str | Path | None = None) -> tuple[str, dict[str, Any]]:
    """Return ``(fingerprint, summary)`` of the market store a report reads.

    The fingerprint is a 16-hex hash of the ingest log (count, last id, last time),
    the bar and tick counts, the last bar time and the regime rows: it changes with
    every ingest or regime write, and two runs with the same fingerprint saw the same
    data.  It is ``"no store"`` when the store file does not exist and
    ``"unavailable"`` when it cannot be read (the summary then says why); neither
    stops a report.

    Parameters
    ----------
    path
        The store file (default ``settings().store_path``, as the kernel resolves it).
    """
    from quantdesk.data import MarketStore

    path = Path(path) if path is not None else settings().store_path
    try:
        # A short lock timeout: a fingerprint is not worth holding up a report.
        store = MarketStore(path, read_only=True, lock_timeout=5)
    except FileNotFoundError:
        return "no store", {"store": str(path)}
    try:
        row = store.sql(
            "SELECT (SELECT count(*) FROM ingest_log) AS ingests, "
            "(SELECT max(ingest_id) FROM ingest_log) AS last_ingest_id, "
            "(SELECT max(finished_at) FROM ingest_log) AS last_ingest_at, "
            "(SELECT count(*) FROM bars) AS bars, "
            "(SELECT max(ts) FROM bars) AS last_bar, "
            "(SELECT count(*) FROM ticks) AS ticks"
        ).iloc[0]
        summary: dict[str, Any] = {"store": str(path)}
        for name, value in row.items():
            summary[str(name)] = _plain(value)
        try:
            # Regime writes do not go through the ingest log; stores older than the
            # regimes table simply have none.
            regimes = store.sql("SELECT count(*) AS n, max(written_at) AS last FROM regimes").iloc[
                0
            ]
            summary["regimes"] = _plain(regimes["n"])
            summary["last_regime_write"] = _plain(regimes["last"])
        except Exception:
            summary["regimes"] = None
    except Exception as exc:  # a locked or damaged store must not stop a report
        logger.warning("could not fingerprint the market store %s: %s", path, exc)
        return "unavailable", {"store": str(path), "error": f"{type(exc).__name__}: {exc}"}
    payload = json.dumps({k: v for k, v in summary.items() if k != "store"}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16], summary


def _plain(value: Any) -> Any:
    """Return a JSON-ready scalar: missing values (None, NaN, NaT) as None."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return jsonable(value)
