"""The store's tables (DDL) and the migrations that bring an older store file up to date.

Every table of the store file is created and migrated one way, :func:`create_tables`:
it runs a family's ``CREATE ... IF NOT EXISTS`` statements, then every migration
(:data:`MIGRATIONS`) of each table it declares, so it is a no-op on an up-to-date file.
The market's own tables (bars, ticks, symbols, the ingest log and rejects, regimes) are
declared here and created by :func:`create_schema` on every read-write open of a
:class:`~quantdesk.data.store.market.MarketStore`; every other family (news and scores,
alerts and their outbox, forecasts, the pipeline's record, paper ledgers) declares its
DDL on its :class:`~quantdesk.data.store.tables.StoreTables` class in this package, and
that class applies it through :func:`create_tables`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "MIGRATIONS",
    "REGIMES_DDL",
    "SCHEMA_VERSION",
    "TABLES_DDL",
    "create_schema",
    "create_tables",
    "declared_tables",
    "has_column",
]

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


_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)
_PROBABILITY_DDL = "\n".join(f"    {name} DOUBLE NOT NULL," for name in REGIME_PROBABILITY_COLUMNS)

REGIMES_DDL = f"""
CREATE TABLE IF NOT EXISTS regimes (
    symbol VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    model_version VARCHAR NOT NULL,
    state TINYINT NOT NULL,
    vol_label VARCHAR NOT NULL,
    trend_label VARCHAR NOT NULL,
{_PROBABILITY_DDL}
    written_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, ts, model_version)
);
"""


def create_schema(con: duckdb.DuckDBPyConnection, *extra_ddl: str) -> None:
    """Create the market's tables (and ``extra_ddl``) where missing, then migrate older files."""
    create_tables(con, TABLES_DDL, REGIMES_DDL, *extra_ddl)


def create_tables(con: duckdb.DuckDBPyConnection, *ddl: str) -> None:
    """Run each family's ``ddl`` (idempotent), then the migrations of the tables it declares.

    The one way any table of the store file comes to exist or is brought up to date:
    the market's tables on opening a store, every other family's on its writes.
    """
    for statement in ddl:
        con.execute(statement)
    for table in declared_tables(*ddl):
        for migrate in MIGRATIONS.get(table, ()):
            migrate(con)


def declared_tables(*ddl: str) -> list[str]:
    """Return the tables that ``ddl`` creates, in order.

    Examples
    --------
    >>> declared_tables("CREATE TABLE IF NOT EXISTS a (x INT); CREATE TABLE b (y INT);")
    ['a', 'b']
    """
    return [m.group(1) for text in ddl for m in _CREATE_TABLE.finditer(text)]


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


#: Migrations of an older store file, by table: each is idempotent and runs (through
#: :func:`create_tables`) whenever its table exists.  A change to a table's columns is
#: added here, beside its DDL, never in the module that reads the table.
MIGRATIONS: dict[str, tuple[Callable[[duckdb.DuckDBPyConnection], None], ...]] = {
    "bars": (_allow_close_only, _credit_bars_to_ingests),
}

#: The version of the store file's layout: 1 for the first, and one more for each
#: migration since (so adding a migration above raises it).  Snapshots record it.
SCHEMA_VERSION = 1 + sum(len(steps) for steps in MIGRATIONS.values())
