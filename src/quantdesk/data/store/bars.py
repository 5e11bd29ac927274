"""Bars, ticks and symbol metadata: their writes (validated upserts) and reads.

A write validates every row first, keeps the bad ones in ``rejects`` with their reasons
and upserts the rest in one transaction (:class:`~quantdesk.data.store.ingest_log.IngestLog`
records it).  Reads take a window whose day bounds follow each symbol's time zone,
aggregate a finer stored timeframe into the one asked for, and assemble wide panels
(:mod:`quantdesk.data.wide`).  All SQL uses bound parameters for user values; the field
name of a panel is checked against a fixed set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.data.schemas import BAR_COLUMNS, SYMBOL_COLUMNS, Timeframe, parse_timeframe
from quantdesk.data.store.file import fetch_frame
from quantdesk.data.store.ingest_log import IngestLog, IngestReport
from quantdesk.data.timestamps import bound_window, utc_ns_column
from quantdesk.data.validation import ValidationResult, validate_bars, validate_ticks
from quantdesk.data.wide import VALUE_FIELDS, check_fields, panels_from_bars

if TYPE_CHECKING:
    import duckdb

__all__ = ["BarScope", "BarTables", "UnknownSymbolError", "query_bars", "symbol_zones"]

logger = logging.getLogger(__name__)


class UnknownSymbolError(KeyError):
    """Raised when bars are asked for symbols the store does not hold (at that timeframe).

    ``unknown`` lists the names asked for and not found; ``stored`` what the store holds.
    """

    def __init__(
        self, unknown: Sequence[str], stored: Sequence[str], detail: str = "", hint: str = ""
    ) -> None:
        self.unknown, self.stored = list(unknown), list(stored)
        shown = ", ".join(self.stored[:50]) + (" ..." if len(self.stored) > 50 else "")
        self.message = (
            f"unknown symbol(s) {self.unknown}{detail}; the store holds "
            f"{len(self.stored)}: {shown or 'nothing'} (see `quantdesk data info`)"
            + (f". {hint}" if hint else "")
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class BarScope(Protocol):
    """Points a connection's ``bars`` at what one part of a read needs (:func:`query_bars`)."""

    def __call__(
        self,
        con: duckdb.DuckDBPyConnection,
        source_tf: str,
        symbols: Sequence[str],
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
        target: Timeframe,
    ) -> None:
        """Make ``bars`` hold the ``source_tf`` bars of ``symbols`` that make ``target``
        bars in ``[lo, hi)`` (it may hold more: the query filters)."""


def _bucket_sql(target: Timeframe, source: Timeframe) -> str:
    """Return the SQL expression of the target bar that holds each source bar ``b.ts``.

    Days follow the symbol's own timezone when built from intraday bars (a New York
    symbol's day is its New York calendar day); weeks and months are the ISO week
    (from Monday) and calendar month of that session date.  A daily source bar is
    already labelled by its session date at 00:00 UTC.
    """
    if not target.is_daily:
        return "time_bucket(to_seconds($width), b.ts, TIMESTAMPTZ '1970-01-01')"
    zone = "'UTC'" if source.is_daily else "s.timezone"
    day = f"CAST(timezone({zone}, b.ts) AS DATE)"
    if target.is_calendar:
        day = f"date_trunc('{'week' if target.name == '1w' else 'month'}', {day})"
    return f"CAST({day} AS TIMESTAMP) AT TIME ZONE 'UTC'"


def _windows_by_zone(
    symbols: Sequence[str],
    zones: dict[str, str],
    start: Any,
    end: Any,
    daily: bool,
) -> dict[tuple[pd.Timestamp | None, pd.Timestamp | None], list[str]]:
    """Return the symbols grouped by the ``[lo, hi)`` instants of ``start..end`` in their zone.

    One group per distinct window (usually one: every symbol in one zone, or bounds
    that are instants), so a read runs one query per window.
    """
    windows: dict[str, tuple[pd.Timestamp | None, pd.Timestamp | None]] = {}
    groups: dict[tuple[pd.Timestamp | None, pd.Timestamp | None], list[str]] = {}
    for symbol in symbols:
        zone = zones.get(symbol, "UTC")
        if zone not in windows:
            windows[zone] = bound_window(start, end, zone, daily=daily)
        groups.setdefault(windows[zone], []).append(symbol)
    return groups


def query_bars(
    con: duckdb.DuckDBPyConnection,
    symbols: str | Sequence[str] | None,
    start: Any,
    end: Any,
    timeframe: str,
    *,
    ordered: bool,
    series: str = "bars",
    scope: BarScope | None = None,
) -> pd.DataFrame:
    """Return long bars read through ``con``: the one query behind every bars read.

    ``con`` holds a ``bars`` relation (``symbol, timeframe, ts, open, high, low, close,
    volume``) and a ``symbols`` one (``symbol, timezone``): the store's tables, or views
    of a snapshot's Parquet files (:mod:`quantdesk.data.snapshot`), so both answer a
    query with the same SQL.  ``series`` names the relation whose ``(symbol,
    timeframe)`` pairs plan the read (a snapshot keeps them in a small table of their
    own); ``scope``, when given, is called before each part of the read with the source
    timeframe, the symbols and the window ``[lo, hi)`` of the target bars, to point
    ``bars`` at the files that part needs.  What is returned: :meth:`BarTables.bars`.
    """
    tf = parse_timeframe(timeframe)
    syms = as_symbols(symbols)
    # Sorting millions of rows costs more than the scan; wide panels do not need it.
    order = " ORDER BY symbol, ts" if ordered else ""
    stored = fetch_frame(
        con,
        f"SELECT symbol, timeframe FROM {series} "
        "WHERE $syms IS NULL OR list_contains($syms, symbol) GROUP BY ALL",
        {"syms": syms},
    )
    plan = _plan_sources(stored, tf)
    if syms is not None:
        _check_known(con, syms, plan, tf, series)
    zones = symbol_zones(con, [s for group in plan.values() for s in group])
    parts = []
    for source_tf, group in plan.items():
        for (lo, hi), members in _windows_by_zone(group, zones, start, end, tf.is_daily).items():
            if scope is not None:
                scope(con, source_tf, members, lo, hi, tf)
            params: dict[str, Any] = {"syms": members, "tf": source_tf, "lo": lo, "hi": hi}
            if source_tf != tf.name and not tf.is_daily:
                params["width"] = tf.seconds
            parts.append(fetch_frame(con, _bars_sql(tf, source_tf) + order, params))
    if not parts:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS})
        empty["symbol"] = empty["symbol"].astype(object)
        return utc_ns_column(empty)
    if len(parts) > 1:
        out = pd.concat(parts, ignore_index=True)
        if ordered:
            out = out.sort_values(["symbol", "ts"], kind="stable", ignore_index=True)
    else:
        out = parts[0]
    return utc_ns_column(out)[list(BAR_COLUMNS)]


def symbol_zones(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> dict[str, str]:
    """Return each symbol's time zone from the symbols table (absent ones are UTC)."""
    frame = fetch_frame(
        con,
        "SELECT symbol, timezone FROM symbols WHERE list_contains($syms, symbol)",
        {"syms": list(symbols)},
    )
    return dict(zip(frame["symbol"].astype(str), frame["timezone"].astype(str), strict=True))


def _bars_sql(target: Timeframe, source_tf: str) -> str:
    """Return the query of bars at ``target`` read from stored ``source_tf`` bars.

    Parameters: ``$syms``, ``$tf`` (the source), the window ``[$lo, $hi)`` (either
    may be NULL) and, for intraday aggregation, the bar ``$width`` in seconds.
    """
    if source_tf == target.name:
        return """
            SELECT symbol, ts, open, high, low, close, volume FROM bars
            WHERE timeframe = $tf AND symbol IN (SELECT unnest($syms))
              AND ($lo IS NULL OR ts >= $lo) AND ($hi IS NULL OR ts < $hi)
        """
    bucket = _bucket_sql(target, parse_timeframe(source_tf))
    return f"""
        WITH src AS (
            SELECT b.symbol, {bucket} AS bucket, b.ts, b.open, b.high, b.low,
                   b.close, b.volume
            FROM bars b JOIN symbols s USING (symbol)
            WHERE b.timeframe = $tf AND b.symbol IN (SELECT unnest($syms))
        )
        SELECT symbol, bucket AS ts, arg_min_null(open, ts) AS open,
               max(high) AS high, min(low) AS low, arg_max(close, ts) AS close,
               sum(volume) AS volume
        FROM src
        WHERE ($lo IS NULL OR bucket >= $lo) AND ($hi IS NULL OR bucket < $hi)
        GROUP BY symbol, bucket
    """


def _plan_sources(stored: pd.DataFrame, target: Timeframe) -> dict[str, list[str]]:
    """Return, per source timeframe, the symbols to read from it for a target timeframe.

    A symbol is read at the target itself, or else aggregated from the coarsest
    stored timeframe of fixed length that divides it (weeks and months are built
    from days or intraday bars, never from each other).
    """
    plan: dict[str, list[str]] = {}
    for symbol, group in stored.groupby("symbol", sort=True):
        tfs = [parse_timeframe(t) for t in group["timeframe"]]
        usable = [
            t for t in tfs if t == target or (not t.is_calendar and target.seconds % t.seconds == 0)
        ]
        if usable:
            best = target if target in usable else max(usable)
            plan.setdefault(best.name, []).append(str(symbol))
    return plan


def _check_known(
    con: duckdb.DuckDBPyConnection,
    symbols: Sequence[str],
    plan: dict[str, list[str]],
    target: Timeframe,
    series: str = "bars",
) -> None:
    """Raise :class:`UnknownSymbolError` for asked symbols that no stored bars can serve."""
    served = {s for group in plan.values() for s in group}
    missing = [s for s in dict.fromkeys(symbols) if s not in served]
    if not missing:
        return
    held = fetch_frame(
        con, f"SELECT symbol, list(DISTINCT timeframe) AS tfs FROM {series} GROUP BY ALL"
    )
    stored = dict(zip(held["symbol"].astype(str), held["tfs"], strict=True))
    unknown = [s for s in missing if s not in stored]
    if unknown:
        raise UnknownSymbolError(unknown, sorted(stored))
    coarser = {s: sorted(map(str, stored[s])) for s in missing}
    raise UnknownSymbolError(
        missing,
        sorted(stored),
        f" at {target.name}: stored only at {coarser}, which cannot make {target.name} bars",
    )


class BarTables(IngestLog):
    """Bars, ticks and symbol metadata in the store file (a part of ``MarketStore``)."""

    def write_bars(
        self,
        df: pd.DataFrame,
        timeframe: str = "1d",
        *,
        source: str = "<dataframe>",
        strict: bool = False,
        metadata: pd.DataFrame | None = None,
        validation: ValidationResult | None = None,
        timezone: str | None = None,
    ) -> IngestReport:
        """Return the report of an idempotent upsert of long bars, in one transaction.

        Every row is validated first (see :func:`~quantdesk.data.validation.validate_bars`).
        Bad rows go to the ``rejects`` table with their source, row number and reason, or
        with ``strict=True`` the first bad row raises and nothing is written.  Re-writing
        the same rows changes nothing; rows whose key exists with other values are
        updated (a vendor correction) and counted.  If anything fails, nothing changes.

        ``metadata`` (columns of :data:`SYMBOL_COLUMNS`) is upserted with the bars;
        symbols without metadata get a default row (timezone UTC).  ``timezone`` (e.g.
        ``"America/New_York"``, the zone a file's times were read in) becomes the time
        zone of every symbol written: the zone its days follow when daily bars are built
        from its intraday bars; a change of a symbol's zone is noted in the report.
        ``validation`` lets a caller that already validated (e.g. a file reader) pass
        its result.
        """
        tf = parse_timeframe(timeframe)
        result = validation or validate_bars(df, tf.name, source=source, strict=strict)
        if strict:
            result.raise_first()
        good = result.good.assign(timeframe=tf.name)[["symbol", "timeframe", "ts", *VALUE_FIELDS]]
        started = datetime.now(UTC)
        with self._transaction() as con:
            # Each row records the ingest that wrote it (an unchanged row keeps its own).
            ingest_id = self._next_ingest_id(con)
            con.register("incoming", good)
            con.execute("CREATE TEMP TABLE staged AS SELECT * FROM incoming")
            con.unregister("incoming")
            counts = con.execute(
                """
                SELECT
                    count(*) FILTER (WHERE b.symbol IS NULL),
                    count(*) FILTER (WHERE b.symbol IS NOT NULL AND (
                        b.open IS DISTINCT FROM s.open OR b.high IS DISTINCT FROM s.high OR
                        b.low IS DISTINCT FROM s.low OR b.close IS DISTINCT FROM s.close OR
                        b.volume IS DISTINCT FROM s.volume))
                FROM staged s
                LEFT JOIN bars b USING (symbol, timeframe, ts)
                """
            ).fetchall()[0]
            inserted, updated = int(counts[0]), int(counts[1])
            con.execute(
                """
                INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, ingest_id)
                SELECT symbol, timeframe, ts, open, high, low, close, volume, $ingest_id
                FROM staged
                ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET
                    open = excluded.open, high = excluded.high, low = excluded.low,
                    close = excluded.close, volume = excluded.volume,
                    ingest_id = excluded.ingest_id
                WHERE bars.open IS DISTINCT FROM excluded.open
                   OR bars.high IS DISTINCT FROM excluded.high
                   OR bars.low IS DISTINCT FROM excluded.low
                   OR bars.close IS DISTINCT FROM excluded.close
                   OR bars.volume IS DISTINCT FROM excluded.volume
                """,
                {"ingest_id": ingest_id},
            )
            con.execute("DROP TABLE staged")
            symbols = good["symbol"].unique()
            moved = self._set_timezone(con, symbols, timezone) if timezone else []
            self._upsert_symbols(con, symbols, metadata, source, timezone or "UTC")
            report = IngestReport(
                ingest_id=ingest_id,
                source=source,
                kind="bars",
                timeframe=tf.name,
                rows_in=result.rows_in,
                inserted=inserted,
                updated=updated,
                unchanged=len(good) - inserted - updated,
                duplicates=result.duplicates,
                rejected=len(result.rejects),
                weekend_rows=result.weekend_rows,
                notes=(*result.notes, *moved),
            )
            self._log_ingest(con, report, result, started)
        logger.info(report.summary())
        return report

    def write_ticks(
        self, df: pd.DataFrame, *, source: str = "<dataframe>", strict: bool = False
    ) -> IngestReport:
        """Return the report of an idempotent write of ticks (``symbol, ts, price, size``).

        Ticks sharing ``(symbol, ts)`` are numbered in input order (``seq``), so writing
        the same file twice stores each trade once.
        """
        result = validate_ticks(df, source=source, strict=strict)
        good = result.good
        good = good.assign(seq=good.groupby(["symbol", "ts"], sort=False).cumcount())
        good = good[["symbol", "ts", "seq", "price", "size"]]
        started = datetime.now(UTC)
        with self._transaction() as con:
            before = self._count(con, "ticks")
            con.register("incoming", good)
            con.execute(
                """
                INSERT INTO ticks SELECT * FROM incoming
                ON CONFLICT (symbol, ts, seq) DO UPDATE SET
                    price = excluded.price, size = excluded.size
                WHERE ticks.price IS DISTINCT FROM excluded.price
                   OR ticks.size IS DISTINCT FROM excluded.size
                """
            )
            con.unregister("incoming")
            inserted = self._count(con, "ticks") - before
            self._upsert_symbols(con, good["symbol"].unique(), None, source)
            report = IngestReport(
                ingest_id=self._next_ingest_id(con),
                source=source,
                kind="ticks",
                timeframe=None,
                rows_in=result.rows_in,
                inserted=inserted,
                updated=0,
                unchanged=len(good) - inserted,
                duplicates=0,
                rejected=len(result.rejects),
            )
            self._log_ingest(con, report, result, started)
        logger.info(report.summary())
        return report

    def write_symbols(self, metadata: pd.DataFrame) -> int:
        """Return the number of symbol metadata rows upserted (columns of SYMBOL_COLUMNS)."""
        with self._transaction() as con:
            self._upsert_symbols(con, metadata["symbol"].unique(), metadata, "metadata")
        return len(metadata)

    @staticmethod
    def _set_timezone(con: duckdb.DuckDBPyConnection, symbols: Any, timezone: str) -> list[str]:
        """Return notes of the symbols whose stored zone changed on setting it to ``timezone``."""
        names = [str(s) for s in symbols]
        changed = con.execute(
            "SELECT symbol, timezone FROM symbols "
            "WHERE list_contains($syms, symbol) AND timezone <> $tz ORDER BY symbol",
            {"syms": names, "tz": timezone},
        ).fetchall()
        con.execute(
            "UPDATE symbols SET timezone = $tz WHERE list_contains($syms, symbol)",
            {"syms": names, "tz": timezone},
        )
        return [f"time zone of {sym} changed from {old} to {timezone}" for sym, old in changed]

    @staticmethod
    def _upsert_symbols(
        con: duckdb.DuckDBPyConnection,
        symbols: Any,
        metadata: pd.DataFrame | None,
        source: str,
        timezone: str = "UTC",
    ) -> None:
        now = datetime.now(UTC)
        if metadata is not None and len(metadata):
            meta = metadata.reindex(columns=list(SYMBOL_COLUMNS)).copy()
            meta["timezone"] = meta["timezone"].fillna("UTC")
            meta["updated_at"] = now
            con.register("meta", meta.astype({"symbol": str}))
            con.execute(
                """
                INSERT INTO symbols SELECT * FROM meta
                ON CONFLICT (symbol) DO UPDATE SET
                    name = excluded.name, asset_class = excluded.asset_class,
                    currency = excluded.currency, timezone = excluded.timezone,
                    source = excluded.source, updated_at = excluded.updated_at
                """
            )
            con.unregister("meta")
        defaults = pd.DataFrame({"symbol": pd.Series(symbols, dtype=object).astype(str)})
        defaults["source"] = source
        defaults["timezone"] = timezone
        defaults["updated_at"] = now
        con.register("defaults", defaults)
        con.execute(
            """
            INSERT INTO symbols (symbol, timezone, source, updated_at)
            SELECT symbol, timezone, source, updated_at FROM defaults
            ON CONFLICT (symbol) DO NOTHING
            """
        )
        con.unregister("defaults")

    def symbols(self) -> list[str]:
        """Return the sorted symbols that have bars or ticks in the store."""
        frame = self.sql(
            "SELECT DISTINCT symbol FROM bars UNION SELECT DISTINCT symbol FROM ticks ORDER BY 1"
        )
        return [str(s) for s in frame["symbol"]]

    def metadata(self, symbols: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Return symbol metadata (name, asset class, currency, timezone, source)."""
        syms = as_symbols(symbols)
        return self.sql(
            f"SELECT {', '.join(SYMBOL_COLUMNS)} FROM symbols "
            "WHERE $syms IS NULL OR list_contains($syms, symbol) ORDER BY symbol",
            {"syms": syms},
        )

    def timeframes(self) -> pd.DataFrame:
        """Return stored bar counts by symbol and timeframe with first and last ts."""
        frame = self.sql(
            "SELECT symbol, timeframe, count(*) AS rows, min(ts) AS first, max(ts) AS last "
            "FROM bars GROUP BY ALL ORDER BY symbol, timeframe"
        )
        return utc_ns_column(utc_ns_column(frame, "first"), "last")

    def bars(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        timeframe: str = "1d",
    ) -> pd.DataFrame:
        """Return long bars (``symbol, ts, open, high, low, close, volume``) sorted by symbol, ts.

        ``start`` and ``end`` are inclusive; a bound given as a day (``"2024-03-08"``)
        is that whole day in the symbol's time zone, one with a time part an instant
        (:func:`~quantdesk.data.timestamps.bound_window`).  A symbol stored only at a
        finer timeframe is aggregated on the fly from the coarsest finer timeframe that divides the
        requested one; daily buckets follow the symbol's own timezone (a New York
        symbol's 1d bar covers its New York calendar day) and are labelled with the
        session date at 00:00 UTC.  Weekly (``"1w"``) and monthly (``"1mo"``) bars of a
        symbol stored at 1d or finer are its sessions grouped by ISO week or calendar
        month, labelled by the Monday or the 1st: open of the first bar, highest high,
        lowest low, close of the last bar, volume summed (missing if every bar's is).

        Raises
        ------
        UnknownSymbolError
            When a symbol asked for has no bars in the store, or none at the requested
            timeframe or a finer one; the message lists what the store holds.
        """
        return self._query_bars(symbols, start, end, timeframe, ordered=True)

    def _query_bars(
        self,
        symbols: str | Sequence[str] | None,
        start: Any,
        end: Any,
        timeframe: str,
        *,
        ordered: bool,
    ) -> pd.DataFrame:
        with self._connect() as con:
            return query_bars(con, symbols, start, end, timeframe, ordered=ordered)

    # The alert outbox reads symbols' zones through the store's class.
    _zones = staticmethod(symbol_zones)

    def panel(
        self,
        field: str = "close",
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        timeframe: str = "1d",
    ) -> pd.DataFrame:
        """Return a wide panel of one field: index ``ts``, one column per symbol.

        Examples
        --------
        >>> store = MarketStore()  # doctest: +SKIP
        >>> close = store.panel("close", symbols=["SPX"], start="2008-01-01")  # doctest: +SKIP
        >>> close.pct_change().std() * 252**0.5  # doctest: +SKIP
        """
        return self.panels([field], symbols, start, end, timeframe)[field]

    def panels(
        self,
        fields: Sequence[str] = VALUE_FIELDS,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        timeframe: str = "1d",
    ) -> dict[str, pd.DataFrame]:
        """Return one wide panel per field, all on the same ``ts`` index and symbol columns."""
        check_fields(fields)
        tf = parse_timeframe(timeframe)
        bars = self._query_bars(symbols, start, end, tf.name, ordered=False)
        return panels_from_bars(bars, fields, tf.name)

    def ticks(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Return stored ticks (``symbol, ts, price, size``) in time order; bounds inclusive.

        A bound given as a day is that whole day in the symbol's time zone, as in :meth:`bars`.
        """
        syms = as_symbols(symbols)
        query = """
            SELECT symbol, ts, price, size FROM ticks
            WHERE list_contains($syms, symbol)
              AND ($lo IS NULL OR ts >= $lo) AND ($hi IS NULL OR ts < $hi)
            ORDER BY ts, symbol, seq
        """
        with self._connect() as con:
            if syms is None:
                syms = [
                    str(s) for s in fetch_frame(con, "SELECT DISTINCT symbol FROM ticks")["symbol"]
                ]
            windows = _windows_by_zone(syms, symbol_zones(con, syms), start, end, False)
            parts = [
                fetch_frame(con, query, {"syms": members, "lo": lo, "hi": hi})
                for (lo, hi), members in (windows or {(None, None): []}).items()
            ]
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        # Ticks of one (ts, symbol) come from one query, so their seq order is kept.
        return utc_ns_column(frame.sort_values(["ts", "symbol"], kind="stable", ignore_index=True))
