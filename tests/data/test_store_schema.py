"""The store's tables on a real DuckDB file: created once, and older files migrated."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from quantdesk.data.store.inventory import store_contents
from quantdesk.data.store.market import MarketStore
from quantdesk.data.store.schema import create_schema

# The market's own tables, regimes among them (declared in schema.py beside the others).
TABLES = {"bars", "ticks", "symbols", "ingest_log", "rejects", "regimes"}


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {name for (name,) in rows}


def test_create_schema_creates_the_tables_and_is_idempotent(tmp_path: Path) -> None:
    extra = "CREATE TABLE IF NOT EXISTS extra_table (x INTEGER)"
    with duckdb.connect(str(tmp_path / "s.duckdb")) as con:
        create_schema(con, extra)
        assert tables(con) == TABLES | {"extra_table"}
        con.execute(
            "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume) "
            "VALUES ('A', '1d', TIMESTAMPTZ '2024-01-02 00:00:00+00', 1, 2, 0.5, 1.5, 10)"
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


def _store_of_the_old_schema(path: Path) -> None:
    """Write a store file as the schema before ``bars.ingest_id`` made it: one ingest of A."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE bars (symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, "
            "ts TIMESTAMPTZ NOT NULL, open DOUBLE, high DOUBLE, low DOUBLE, "
            "close DOUBLE NOT NULL, volume DOUBLE, PRIMARY KEY (symbol, timeframe, ts))"
        )
        con.execute(
            "CREATE TABLE symbols (symbol VARCHAR PRIMARY KEY, name VARCHAR, "
            "asset_class VARCHAR, currency VARCHAR, timezone VARCHAR NOT NULL DEFAULT 'UTC', "
            "source VARCHAR, updated_at TIMESTAMPTZ)"
        )
        con.execute(
            "CREATE TABLE ticks (symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, "
            "seq INTEGER NOT NULL, price DOUBLE NOT NULL, size DOUBLE NOT NULL, "
            "PRIMARY KEY (symbol, ts, seq))"
        )
        con.execute(
            'CREATE TABLE rejects (ingest_id BIGINT NOT NULL, source VARCHAR NOT NULL, "row" '
            "BIGINT NOT NULL, field VARCHAR, reason VARCHAR NOT NULL, raw VARCHAR)"
        )
        con.execute("CREATE SEQUENCE ingest_id_seq START 1")
        con.execute(
            "CREATE TABLE ingest_log (ingest_id BIGINT PRIMARY KEY, started_at TIMESTAMPTZ "
            "NOT NULL, finished_at TIMESTAMPTZ NOT NULL, source VARCHAR NOT NULL, kind VARCHAR "
            "NOT NULL, timeframe VARCHAR, rows_in BIGINT NOT NULL, inserted BIGINT NOT NULL, "
            "updated BIGINT NOT NULL, unchanged BIGINT NOT NULL, duplicates BIGINT NOT NULL, "
            "rejected BIGINT NOT NULL)"
        )
        con.execute(
            "INSERT INTO bars VALUES "
            "('A', '1d', TIMESTAMPTZ '2024-01-02 00:00:00+00', 1, 1, 1, 1, 10), "
            "('A', '1d', TIMESTAMPTZ '2024-01-03 00:00:00+00', 2, 2, 2, 2, 10)"
        )
        con.execute("INSERT INTO symbols (symbol, source) VALUES ('A', 'old.csv')")
        con.execute(
            "INSERT INTO ingest_log VALUES (nextval('ingest_id_seq'), now(), now(), "
            "'old.csv', 'bars', '1d', 2, 2, 0, 0, 0, 0)"
        )


def test_an_older_file_gains_bars_ingest_id_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _store_of_the_old_schema(path)
    # read-only, the file cannot be migrated: its inventory still reads
    (old,) = store_contents(MarketStore(path, read_only=True)).to_dict()["series"]
    assert (old["symbol"], old["rows"], old["source"]) == ("A", 2, "old.csv")
    store = MarketStore(path)  # a read-write open migrates
    columns = store.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'bars'"
    )["column_name"].tolist()
    assert columns[-1] == "ingest_id"
    assert store.sql("SELECT count(*) AS n FROM bars WHERE ingest_id IS NULL")["n"].iloc[0] == 2
    # a new ingest after the migration is credited to itself, the old rows to their source
    new = pd.DataFrame(
        {"symbol": "A", "ts": pd.to_datetime(["2024-01-04"], utc=True), "close": [3.0]}
    ).assign(open=3.0, high=3.0, low=3.0, volume=10.0)
    report = store.write_bars(new, "1d", source="new.csv")
    assert report.ingest_id == 2 and report.inserted == 1
    series = store.info()["series"]
    assert [(s["source"], s["rows"]) for s in series] == [("old.csv", 2), ("new.csv", 1)]
    assert MarketStore(path).bars("A")["close"].tolist() == [1.0, 2.0, 3.0]


# ------------------------------------------------------------- one home for the store file

_SRC = Path(__file__).resolve().parents[2] / "src" / "quantdesk"
_STORE = _SRC / "data" / "store"


def _modules_outside_the_store() -> list[tuple[str, str]]:
    return [
        (str(path.relative_to(_SRC)), path.read_text())
        for path in sorted(_SRC.rglob("*.py"))
        if _STORE not in path.parents
    ]


def test_every_table_of_the_store_file_is_declared_in_the_store_package() -> None:
    """No module outside data/store creates a table: each family's DDL lives there."""
    import re

    create = re.compile(r"CREATE\s+(TABLE|SEQUENCE)\b(?!\s+\w*\s*AS\s)", re.IGNORECASE)
    outside = [name for name, text in _modules_outside_the_store() if create.search(text)]
    assert outside == []


def test_no_module_outside_the_store_opens_duckdb_on_a_file() -> None:
    """Connections to the store file come only from data/store/locking.py."""
    import re

    opens = re.compile(r"duckdb\.connect\((?!\s*[\"']:memory:[\"'])")
    outside = [name for name, text in _modules_outside_the_store() if opens.search(text)]
    assert outside == []


def test_every_family_applies_its_tables_through_create_tables(tmp_path: Path) -> None:
    """Each StoreTables family declares DDL that create_tables knows, and a write makes it."""
    from quantdesk.data.store.alerts import AlertStore
    from quantdesk.data.store.forecasts import ForecastStore
    from quantdesk.data.store.news import NewsStore
    from quantdesk.data.store.pipeline import PipelineRecord
    from quantdesk.data.store.schema import declared_tables

    for family in (AlertStore, ForecastStore, NewsStore, PipelineRecord):
        assert family.MARKER_TABLE in declared_tables(family.DDL), family.__name__
    record = PipelineRecord(tmp_path / "fresh.duckdb")
    assert not record.market.exists()
    record.begin("evening", "update", "2024-07-03", fingerprint=None)
    with duckdb.connect(str(record.path), read_only=True) as con:
        # The first write of a family makes the market's tables too: one schema, one way.
        assert TABLES | {"pipeline_steps", "pipeline_files"} <= tables(con)


def test_the_store_imports_no_source_feed_or_candle_module() -> None:
    """The store is below what fills it: sources, live feeds and candles call the store."""
    from tests.test_layers import imports_of

    upward = [
        f"{imp.module} (line {imp.line}) imports {imp.target}"
        for path in sorted(_STORE.rglob("*.py"))
        for imp in imports_of(path)
        if imp.target.startswith(
            ("quantdesk.data.sources", "quantdesk.data.live", "quantdesk.data.candles")
        )
    ]
    assert upward == []
