"""The store's tables (DDL) and the migrations that bring an older store file up to date.

:func:`create_schema` runs on every read-write open of a
:class:`~quantdesk.data.store.market.MarketStore`: it creates what is missing and migrates
what is older, and is a no-op on an up-to-date file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = ["TABLES_DDL", "create_schema", "has_column"]

TABLES_DDL = """
CREATE TABLE IF NOT EXISTS bars (
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    open DOUBLE,
    high DOUBLE,
    low DOUBLE,
    close DOUBLE NOT NULL,
    volume DOUBLE,
    ingest_id BIGINT,
    PRIMARY KEY (symbol, timeframe, ts)
);
CREATE TABLE IF NOT EXISTS ticks (
    symbol VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    seq INTEGER NOT NULL,
    price DOUBLE NOT NULL,
    size DOUBLE NOT NULL,
    PRIMARY KEY (symbol, ts, seq)
);
CREATE TABLE IF NOT EXISTS symbols (
    symbol VARCHAR PRIMARY KEY,
    name VARCHAR,
    asset_class VARCHAR,
    currency VARCHAR,
    timezone VARCHAR NOT NULL DEFAULT 'UTC',
    source VARCHAR,
    updated_at TIMESTAMPTZ
);
CREATE SEQUENCE IF NOT EXISTS ingest_id_seq START 1;
CREATE TABLE IF NOT EXISTS ingest_log (
    ingest_id BIGINT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    timeframe VARCHAR,
    rows_in BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    rejected BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    ingest_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    "row" BIGINT NOT NULL,
    field VARCHAR,
    reason VARCHAR NOT NULL,
    raw VARCHAR
);
"""


def create_schema(con: duckdb.DuckDBPyConnection, *extra_ddl: str) -> None:
    """Create the store's tables (and ``extra_ddl``) where missing, then migrate older files."""
    con.execute(TABLES_DDL)
    for ddl in extra_ddl:
        con.execute(ddl)
    _allow_close_only(con)
    _credit_bars_to_ingests(con)


def _allow_close_only(con: duckdb.DuckDBPyConnection) -> None:
    """Let open/high/low be NULL in a store file created before close-only series."""
    strict = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'bars' "
        "AND column_name IN ('open', 'high', 'low') AND is_nullable = 'NO'"
    ).fetchall()
    for (column,) in strict:
        # column names come from the fixed list above, never from input
        con.execute(f"ALTER TABLE bars ALTER COLUMN {column} DROP NOT NULL")


def _credit_bars_to_ingests(con: duckdb.DuckDBPyConnection) -> None:
    """Add ``bars.ingest_id`` (the ingest that last wrote each row) to an older store file.

    Rows written before it existed keep NULL: their ingest is unknown, and readers
    credit them to the symbol's first source instead.
    """
    if not has_column(con, "bars", "ingest_id"):
        con.execute("ALTER TABLE bars ADD COLUMN ingest_id BIGINT")


def has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """Return True when the store file's ``table`` has ``column`` (older files may lack it)."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = $table AND column_name = $column",
        {"table": table, "column": column},
    ).fetchall()
    return bool(rows[0][0])
