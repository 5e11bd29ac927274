"""The ingest log and rejects: what every write of bars or ticks did, row by row.

Each write of bars or ticks gets an ingest id (``ingest_id_seq``) and one row of
``ingest_log``; the rows it refused go to ``rejects`` with their source, row number,
field and reason.  :class:`IngestReport` is the account a write returns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.data.store.file import StoreFile

if TYPE_CHECKING:
    import duckdb

    from quantdesk.data.validation import ValidationResult

__all__ = ["IngestLog", "IngestReport"]


@dataclass(frozen=True)
class IngestReport:
    """Return value of a write: what happened to every input row."""

    ingest_id: int
    source: str
    kind: str
    timeframe: str | None
    rows_in: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    rejected: int
    weekend_rows: int = 0
    notes: tuple[str, ...] = ()

    @property
    def stored(self) -> int:
        """Return the number of input rows now in the store (inserted, updated or unchanged)."""
        return self.inserted + self.updated + self.unchanged

    def summary(self) -> str:
        """Return an account of the write: one line, then one line per note."""
        tf = f" {self.timeframe}" if self.timeframe else ""
        line = (
            f"{self.source}: {self.rows_in} {self.kind}{tf} rows in -> {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.duplicates} duplicates, "
            f"{self.rejected} rejected"
        )
        return "\n".join([line, *(f"  note: {note}" for note in self.notes)])

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a plain dict (for JSON output)."""
        return asdict(self)


class IngestLog(StoreFile):
    """The store's ingest log and rejects: written with every ingest, read by the CLI."""

    @staticmethod
    def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
        # `table` is one of the store's own table names, never user input.
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])

    @staticmethod
    def _next_ingest_id(con: duckdb.DuckDBPyConnection) -> int:
        return int(con.execute("SELECT nextval('ingest_id_seq')").fetchall()[0][0])

    def _log_ingest(
        self,
        con: duckdb.DuckDBPyConnection,
        report: IngestReport,
        result: ValidationResult,
        started: datetime,
    ) -> None:
        con.execute(
            "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                report.ingest_id,
                started,
                datetime.now(UTC),
                report.source,
                report.kind,
                report.timeframe,
                report.rows_in,
                report.inserted,
                report.updated,
                report.unchanged,
                report.duplicates,
                report.rejected,
            ],
        )
        if len(result.rejects):
            rejects = result.rejects.assign(ingest_id=report.ingest_id)[
                ["ingest_id", "source", "row", "field", "reason", "raw"]
            ]
            con.register("rej", rejects)
            con.execute("INSERT INTO rejects SELECT * FROM rej")
            con.unregister("rej")

    def ingest_log(self) -> pd.DataFrame:
        """Return the ingest log, newest first."""
        return self.sql("SELECT * FROM ingest_log ORDER BY ingest_id DESC")

    def rejects(self, ingest_id: int | None = None) -> pd.DataFrame:
        """Return stored rejects (all, or of one ingest) with source, row, field, reason."""
        return self.sql(
            'SELECT * FROM rejects WHERE $id IS NULL OR ingest_id = $id ORDER BY ingest_id, "row"',
            {"id": ingest_id},
        )
