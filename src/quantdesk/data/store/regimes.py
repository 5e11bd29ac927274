"""Regimes in the store: their validation, idempotent upsert and reads by version.

The table (``regimes``, declared in :mod:`quantdesk.data.store.schema`) holds one row
per ``(symbol, ts, model_version)``: the state, its labels and the nine probabilities
(:data:`~quantdesk.data.schemas.REGIME_COLUMNS`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.data.schemas import (
    REGIME_COLUMNS,
    REGIME_ESTIMATE_COLUMNS,
    REGIME_PROBABILITY_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
)
from quantdesk.data.store.file import StoreFile, fetch_frame
from quantdesk.data.timestamps import bound_window, utc_ns_column
from quantdesk.data.validation import ValidationError

__all__ = ["RegimeScope", "RegimeTables", "query_regimes", "validate_regimes"]

if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)

# A probability row must sum to one within this; filtered probabilities from a forward
# pass are normalised to ~1e-15, the slack allows float32 or rounded inputs.
_PROBABILITY_SUM_TOLERANCE = 1e-6


def validate_regimes(frame: pd.DataFrame, source: str = "<regimes>") -> pd.DataFrame:
    """Return a regime frame in the store's canonical form, or raise on the first bad row.

    The frame is long, one row per ``(symbol, ts, model_version)``, with the columns of
    :data:`REGIME_COLUMNS`.  Checked: every column is present and non-missing, ``ts``
    parses (naive times are taken as UTC), ``state`` is a cell id 0..8 that agrees with
    ``vol_label`` and ``trend_label``, the labels are known, every probability is in
    [0, 1] and each row's nine sum to 1 within 1e-6, and no key appears twice.

    Raises
    ------
    ValidationError
        Naming ``source``, the 1-based row position in ``frame``, the column and why.
    """
    missing = [c for c in REGIME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(source, None, missing[0], f"missing column(s) {missing}")
    out = frame.loc[:, list(REGIME_COLUMNS)].reset_index(drop=True)

    def fail(mask: Any, field: str, reason: str) -> None:
        bad = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(bad):
            row = int(bad[0])
            value = frame[field].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise ValidationError(source, row + 1, field, f"{reason} (got {value!r})")

    for column in ("symbol", "model_version", "vol_label", "trend_label"):
        values = out[column]
        fail(values.isna() | (values.astype(str).str.len() == 0), column, "missing value")
        out[column] = values.astype(str)
    raw_ts = out["ts"]
    if pd.api.types.is_datetime64_any_dtype(raw_ts):
        ts = pd.to_datetime(raw_ts, utc=True)
    else:  # strings or objects: parse each, a bad one becomes NaT and is reported
        ts = pd.to_datetime(raw_ts, errors="coerce", utc=True, format="mixed")
    fail(ts.isna(), "ts", "not a timestamp")
    out["ts"] = ts.dt.as_unit("ns")
    fail(~out["vol_label"].isin(VOL_LABELS), "vol_label", f"not one of {VOL_LABELS}")
    fail(~out["trend_label"].isin(TREND_LABELS), "trend_label", f"not one of {TREND_LABELS}")
    state = pd.to_numeric(out["state"], errors="coerce")
    fail(state.isna() | (state % 1 != 0) | ~state.between(0, 8), "state", "not a cell id 0..8")
    out["state"] = state.astype("int8")
    cell = (
        out["vol_label"].map({v: i for i, v in enumerate(VOL_LABELS)}) * 3
        + out["trend_label"].map({t: i for i, t in enumerate(TREND_LABELS)})
    ).to_numpy()
    fail(cell != out["state"].to_numpy(), "state", "does not match vol_label and trend_label")
    probs = out[list(REGIME_PROBABILITY_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    values = probs.to_numpy(dtype=float)
    for j, column in enumerate(REGIME_PROBABILITY_COLUMNS):
        col = values[:, j]
        fail(~np.isfinite(col) | (col < 0) | (col > 1), column, "probability outside [0, 1]")
    total = values.sum(axis=1)
    bad_sum = np.abs(total - 1.0) > _PROBABILITY_SUM_TOLERANCE
    if bad_sum.any():
        row = int(np.flatnonzero(bad_sum)[0])
        raise ValidationError(
            source,
            row + 1,
            "p_*",
            f"probabilities sum to {total[row]:.9g}, not 1 "
            f"(tolerance {_PROBABILITY_SUM_TOLERANCE})",
        )
    out[list(REGIME_PROBABILITY_COLUMNS)] = values
    dup = out.duplicated(["symbol", "ts", "model_version"], keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise ValidationError(
            source, row + 1, "ts", "duplicate (symbol, ts, model_version) key in the frame"
        )
    return out


class RegimeScope(Protocol):
    """Points a connection's ``regimes`` at what a read needs (:func:`query_regimes`)."""

    def __call__(
        self,
        con: duckdb.DuckDBPyConnection,
        symbols: list[str] | None,
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
    ) -> None:
        """Make ``regimes`` hold the rows of ``symbols`` (None: all) in ``[lo, hi)``."""


def query_regimes(
    con: duckdb.DuckDBPyConnection,
    symbols: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    model_version: str | None = None,
    *,
    scope: RegimeScope | None = None,
) -> pd.DataFrame:
    """Return regimes read through ``con``: the one query behind every regimes read.

    ``con`` holds a ``regimes`` relation: the store's table, or a view of a snapshot's
    files, which ``scope`` (when given) points at the files the read needs.  What is
    returned: :meth:`RegimeTables.regimes`.
    """
    import duckdb

    columns = ", ".join([*REGIME_COLUMNS, "written_at"])
    query = f"""
        SELECT {columns} FROM regimes
        WHERE ($syms IS NULL OR list_contains($syms, symbol))
          AND ($lo IS NULL OR ts >= $lo) AND ($hi IS NULL OR ts < $hi)
          AND ($version IS NULL OR model_version GLOB $version)
        QUALIFY row_number() OVER (
            PARTITION BY symbol, ts ORDER BY written_at DESC, model_version DESC
        ) = 1
        ORDER BY symbol, ts
    """
    # Regimes are daily: labelled by their session date at 00:00 UTC.
    lo, hi = bound_window(start, end, daily=True)
    syms = as_symbols(symbols)
    if scope is not None:
        scope(con, syms, lo, hi)
    params = {"syms": syms, "lo": lo, "hi": hi, "version": model_version}
    try:
        frame = fetch_frame(con, query, params)
    except duckdb.CatalogException:
        # A store file written before regimes existed, opened read-only (so the
        # schema could not be brought up to date): it simply holds no regimes.
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in [*REGIME_COLUMNS]})
        frame["written_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame = utc_ns_column(utc_ns_column(frame), "written_at")
    frame["state"] = frame["state"].astype("int64")
    return frame


class RegimeTables(StoreFile):
    """Regimes in the store file (a part of ``MarketStore``)."""

    def write_regimes(self, frame: pd.DataFrame, *, source: str = "<regimes>") -> int:
        """Return the number of regime rows inserted or changed by an idempotent upsert.

        ``frame`` is long (columns of :data:`REGIME_COLUMNS`: ``symbol, ts,
        model_version, state, vol_label, trend_label`` and the nine ``p_*``).  It is
        validated whole first (:func:`validate_regimes`); a bad row raises
        :class:`~quantdesk.data.validation.ValidationError` naming the row and column,
        and nothing is written.  The upsert is one transaction keyed on ``(symbol, ts,
        model_version)``: re-writing the same rows changes nothing (and returns 0); a row
        whose values differ replaces the stored one and gets a new ``written_at``.
        """
        return sum(self.write_regimes_by_symbol(frame, source=source).values())

    def write_regimes_by_symbol(
        self, frame: pd.DataFrame, *, source: str = "<regimes>"
    ) -> dict[str, int]:
        """Return, per symbol of ``frame``, the regime rows inserted or changed.

        The same validated, idempotent one-transaction upsert as :meth:`write_regimes`
        (which sums these counts): a job writing many symbols' rows at once (one
        transaction instead of one per symbol) still says what each symbol changed.
        """
        good = validate_regimes(frame, source=source)
        good["written_at"] = datetime.now(UTC)
        values = REGIME_ESTIMATE_COLUMNS
        changed = " OR ".join(f"r.{c} IS DISTINCT FROM s.{c}" for c in values)
        with self._transaction() as con:
            con.register("incoming", good)
            con.execute("CREATE TEMP TABLE staged_regimes AS SELECT * FROM incoming")
            con.unregister("incoming")
            counts = con.execute(
                f"""
                SELECT s.symbol,
                       count(*) FILTER (WHERE r.symbol IS NULL),
                       count(*) FILTER (WHERE r.symbol IS NOT NULL AND ({changed}))
                FROM staged_regimes s
                LEFT JOIN regimes r USING (symbol, ts, model_version)
                GROUP BY s.symbol
                """
            ).fetchall()
            assignments = ", ".join(f"{c} = excluded.{c}" for c in [*values, "written_at"])
            distinct = " OR ".join(f"regimes.{c} IS DISTINCT FROM excluded.{c}" for c in values)
            con.execute(
                f"""
                INSERT INTO regimes SELECT * FROM staged_regimes
                ON CONFLICT (symbol, ts, model_version) DO UPDATE SET {assignments}
                WHERE {distinct}
                """
            )
            con.execute("DROP TABLE staged_regimes")
        inserted = sum(int(c[1]) for c in counts)
        updated = sum(int(c[2]) for c in counts)
        logger.info(
            "%s: %d regime rows in -> %d inserted, %d updated, %d unchanged",
            source,
            len(good),
            inserted,
            updated,
            len(good) - inserted - updated,
        )
        return {str(c[0]): int(c[1]) + int(c[2]) for c in counts}

    def regimes(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        model_version: str | None = None,
    ) -> pd.DataFrame:
        """Return stored regimes, one row per (symbol, ts), sorted by symbol and ts.

        Columns are those of :data:`REGIME_COLUMNS` plus ``written_at``.  ``start`` and
        ``end`` are inclusive.  ``model_version`` selects the versions to read: an exact
        version, a glob pattern (``"regimes-wf/*"`` for every refit of a walk-forward
        run), or ``None`` for all.  Where several selected versions cover the same day,
        the most recently written one wins (ties go to the greater version string), so
        ``None`` gives the newest regime estimate for every day.

        Examples
        --------
        >>> store.regimes("SPX", start="2008-09-01", model_version="regimes/v1")  # doctest: +SKIP
        """
        with self._connect() as con:
            return query_regimes(con, symbols, start, end, model_version)

    def regime_versions(self, symbols: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Return stored regime versions per symbol: rows, first and last ts, last written."""
        frame = self.sql(
            """
            SELECT symbol, model_version, count(*) AS rows, min(ts) AS first, max(ts) AS last,
                   max(written_at) AS written_at
            FROM regimes WHERE $syms IS NULL OR list_contains($syms, symbol)
            GROUP BY ALL ORDER BY symbol, written_at, model_version
            """,
            {"syms": as_symbols(symbols)},
        )
        return utc_ns_column(utc_ns_column(utc_ns_column(frame, "first"), "last"), "written_at")
