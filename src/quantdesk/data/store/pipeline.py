"""The pipeline's record: one row per attempt of a step on a session, in the store's file.

Two tables, declared here like every family of the store file
(:class:`~quantdesk.data.store.tables.StoreTables`, short-lived connections), and read
and written by :mod:`quantdesk.pipeline`:

* ``pipeline_steps``: ``(pipeline, step, session, attempt)`` is the key; ``status`` is
  ``running`` (written before the step starts: a row still ``running`` after its run
  ended means the run was killed), ``succeeded``, ``failed``, ``skipped`` (a need failed
  or the session brought no new bars) or ``unchanged`` (its inputs fingerprint equals
  the one of its last success).  The latest attempt says where a step stands.
* ``pipeline_files``: the drop-folder files already ingested, by content hash, so each
  file is ingested once whatever its name or how often the folder is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.jsonable import jsonable
from quantdesk.data.store.tables import StoreTables

if TYPE_CHECKING:
    import duckdb

__all__ = ["DONE_STATES", "STATES", "PipelineRecord", "StepState"]

_DDL = """
CREATE TABLE IF NOT EXISTS pipeline_steps (
    pipeline VARCHAR NOT NULL,
    step VARCHAR NOT NULL,
    session DATE NOT NULL,
    attempt INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    inputs_fingerprint VARCHAR,
    outputs VARCHAR NOT NULL,
    error VARCHAR,
    host VARCHAR,
    pid INTEGER,
    PRIMARY KEY (pipeline, step, session, attempt)
);
CREATE TABLE IF NOT EXISTS pipeline_files (
    content_hash VARCHAR PRIMARY KEY,
    path VARCHAR NOT NULL,
    session DATE NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    outputs VARCHAR NOT NULL
);
"""

#: Every status a step attempt can have.
STATES = ("running", "succeeded", "failed", "skipped", "unchanged")
#: The statuses after which a step needs nothing more for its session.
DONE_STATES = ("succeeded", "skipped", "unchanged")


def _check_end_state(status: str) -> None:
    if status not in STATES or status == "running":
        raise ValueError(f"status must be one of {STATES[1:]}, not {status!r}")


@dataclass(frozen=True)
class StepState:
    """The latest attempt of one step on one session."""

    step: str
    session: pd.Timestamp
    attempt: int
    status: str
    inputs_fingerprint: str | None
    error: str | None


class PipelineRecord(StoreTables):
    """The pipeline's attempts and ingested files, in the market store's file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> record = PipelineRecord(pathlib.Path(tempfile.mkdtemp()) / "demo.duckdb")
    >>> record.begin("evening", "update", "2024-07-03", fingerprint="abc")
    1
    >>> record.finish("evening", "update", "2024-07-03", 1, "succeeded", outputs={"bars": 5})
    >>> record.state("evening", "2024-07-03")["update"].status
    'succeeded'
    """

    DDL = _DDL
    MARKER_TABLE = "pipeline_steps"

    def begin(self, pipeline: str, step: str, session: Any, *, fingerprint: str | None) -> int:
        """Return the attempt number of a new ``running`` row for the step (one transaction)."""
        with self._transaction() as con:
            return self._begin(con, pipeline, step, session, fingerprint)

    @staticmethod
    def _begin(
        con: duckdb.DuckDBPyConnection,
        pipeline: str,
        step: str,
        session: Any,
        fingerprint: str | None,
    ) -> int:
        import os
        import socket

        day = pd.Timestamp(session).date()
        row = con.execute(
            "SELECT coalesce(max(attempt), 0) FROM pipeline_steps "
            "WHERE pipeline = ? AND step = ? AND session = ?",
            [pipeline, step, day],
        ).fetchall()
        attempt = int(row[0][0]) + 1
        con.execute(
            "INSERT INTO pipeline_steps "
            "VALUES (?, ?, ?, ?, 'running', ?, NULL, ?, '{}', NULL, ?, ?)",
            [
                pipeline, step, day, attempt, datetime.now(UTC), fingerprint,
                socket.gethostname(), os.getpid(),
            ],
        )  # fmt: skip
        return attempt

    def finish(
        self,
        pipeline: str,
        step: str,
        session: Any,
        attempt: int,
        status: str,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record the end of an attempt: its status, output counts and error text."""
        _check_end_state(status)
        with self._transaction() as con:
            self._finish(con, pipeline, step, session, attempt, status, outputs, error)

    @staticmethod
    def _finish(
        con: duckdb.DuckDBPyConnection,
        pipeline: str,
        step: str,
        session: Any,
        attempt: int,
        status: str,
        outputs: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        con.execute(
            "UPDATE pipeline_steps SET status = ?, ended_at = ?, outputs = ?, error = ? "
            "WHERE pipeline = ? AND step = ? AND session = ? AND attempt = ?",
            [
                status, datetime.now(UTC), json.dumps(jsonable(outputs or {}), sort_keys=True),
                error, pipeline, step, pd.Timestamp(session).date(), attempt,
            ],
        )  # fmt: skip

    def mark(
        self,
        pipeline: str,
        step: str,
        session: Any,
        status: str,
        *,
        fingerprint: str | None = None,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record an attempt that ran nothing (``skipped`` or ``unchanged``), with its reason.

        One transaction: its begin and its end are written together.
        """
        _check_end_state(status)
        with self._transaction() as con:
            attempt = self._begin(con, pipeline, step, session, fingerprint)
            self._finish(con, pipeline, step, session, attempt, status, outputs, error)

    # -- reads -------------------------------------------------------------------------

    def attempts(self, pipeline: str | None = None, session: Any = None) -> pd.DataFrame:
        """Return every attempt (oldest first), optionally of one pipeline and session."""
        if not self._has_tables():
            return pd.DataFrame(columns=_COLUMNS)
        where: list[str] = []
        params: list[Any] = []
        if pipeline is not None:
            where.append("pipeline = ?")
            params.append(pipeline)
        if session is not None:
            where.append("session = ?")
            params.append(pd.Timestamp(session).date())
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        frame = self.market.sql(
            f"SELECT * FROM pipeline_steps {clause} ORDER BY session, started_at, step, attempt",
            params,
        )
        frame["session"] = pd.to_datetime(frame["session"])
        return frame

    def state(
        self, pipeline: str, session: Any, attempts: pd.DataFrame | None = None
    ) -> dict[str, StepState]:
        """Return the latest attempt of each step of ``pipeline`` on ``session``.

        ``attempts`` (that session's :meth:`attempts`, read already) saves a read.
        """
        frame = self.attempts(pipeline, session) if attempts is None else attempts
        latest = frame.sort_values("attempt").groupby("step").tail(1)
        return {
            str(r["step"]): StepState(
                str(r["step"]),
                pd.Timestamp(r["session"]),
                int(r["attempt"]),
                str(r["status"]),
                None if pd.isna(r["inputs_fingerprint"]) else str(r["inputs_fingerprint"]),
                None if pd.isna(r["error"]) else str(r["error"]),
            )
            for r in latest.to_dict("records")
        }

    def last_success_fingerprints(self, pipeline: str) -> dict[str, str]:
        """Return each step's inputs fingerprint of its latest success on any session (one read)."""
        if not self._has_tables():
            return {}
        frame = self.market.sql(
            "SELECT step, arg_max(inputs_fingerprint, ended_at) AS fingerprint "
            "FROM pipeline_steps WHERE pipeline = ? AND status = 'succeeded' GROUP BY step",
            [pipeline],
        )
        return {
            str(r["step"]): str(r["fingerprint"])
            for r in frame.to_dict("records")
            if not pd.isna(r["fingerprint"])
        }

    def sessions(self, pipeline: str) -> list[pd.Timestamp]:
        """Return the sessions with any attempt of ``pipeline``, in order."""
        if not self._has_tables():
            return []
        frame = self.market.sql(
            "SELECT DISTINCT session FROM pipeline_steps WHERE pipeline = ? ORDER BY session",
            [pipeline],
        )
        return [pd.Timestamp(s) for s in frame["session"]]

    # -- drop-folder files -------------------------------------------------------------

    def known_files(self) -> set[str]:
        """Return the content hashes of the drop-folder files already ingested."""
        if not self._has_tables():
            return set()
        return set(self.market.sql("SELECT content_hash FROM pipeline_files")["content_hash"])

    def add_file(self, content_hash: str, path: str, session: Any, outputs: dict[str, Any]) -> None:
        """Record one ingested drop-folder file (a second record of the same content is a no-op)."""
        with self._transaction() as con:
            con.execute(
                "INSERT INTO pipeline_files VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    content_hash, path, pd.Timestamp(session).date(), datetime.now(UTC),
                    json.dumps(jsonable(outputs), sort_keys=True),
                ],
            )  # fmt: skip


_COLUMNS = [
    "pipeline", "step", "session", "attempt", "status", "started_at", "ended_at",
    "inputs_fingerprint", "outputs", "error", "host", "pid",
]  # fmt: skip
