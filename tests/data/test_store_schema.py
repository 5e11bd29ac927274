"""The store's tables on a real DuckDB file: created once, and older files migrated."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from quantdesk.data.store import MarketStore
from quantdesk.data.store_schema import create_schema

TABLES = {"bars", "ticks", "symbols", "ingest_log", "rejects"}


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {name for (name,) in rows}


def test_create_schema_creates_the_tables_and_is_idempotent(tmp_path: Path) -> None:
    extra = "CREATE TABLE IF NOT EXISTS extra_table (x INTEGER)"
    with duckdb.connect(str(tmp_path / "s.duckdb")) as con:
        create_schema(con, extra)
        assert tables(con) == TABLES | {"extra_table"}
        con.execute(
            "INSERT INTO bars VALUES ('A', '1d', TIMESTAMPTZ '2024-01-02 00:00:00+00', "
            "1, 2, 0.5, 1.5, 10)"
        )
        create_schema(con, extra)  # a second open changes nothing
        assert con.execute("SELECT count(*) FROM bars").fetchone() == (1,)
        first = con.execute("SELECT nextval('ingest_id_seq')").fetchone()
        assert first == (1,)


def test_an_older_file_is_migrated_to_close_only_bars(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        # bars as stored before close-only series: open/high/low NOT NULL
        con.execute(
            "CREATE TABLE bars (symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, "
            "ts TIMESTAMPTZ NOT NULL, open DOUBLE NOT NULL, high DOUBLE NOT NULL, "
            "low DOUBLE NOT NULL, close DOUBLE NOT NULL, volume DOUBLE, "
            "PRIMARY KEY (symbol, timeframe, ts))"
        )
        with pytest.raises(duckdb.ConstraintException):
            con.execute(
                "INSERT INTO bars (symbol, timeframe, ts, close) VALUES ('X', '1d', now(), 1)"
            )
        create_schema(con)
        con.execute("INSERT INTO bars (symbol, timeframe, ts, close) VALUES ('X', '1d', now(), 1)")
        nullable = con.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'bars' AND column_name IN ('open', 'high', 'low', 'close')"
        ).fetchall()
    assert dict(nullable) == {"open": "YES", "high": "YES", "low": "YES", "close": "NO"}
    # and the store opens it and keeps the row
    assert MarketStore(path).sql("SELECT count(*) AS n FROM bars")["n"].iloc[0] == 1
