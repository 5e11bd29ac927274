"""ForecastStore: the append-only record of forecasts and their outcomes, in the store's file.

Two tables beside the bars (one owner of the file's schema, through
:class:`~quantdesk.data.store.tables.StoreTables`):

* ``forecasts``: one row per ``(model, version, symbol, target, horizon, as_of)`` with the
  forecast (``value``, or ``probs``: JSON of the nine regime probabilities), the wall-clock
  time it was made, the data and code fingerprints, and its ``origin``: ``live`` (made
  before its outcome existed) or ``backfill`` (made by a walk-forward afterwards).  Rows
  are never updated or deleted: writing a key that exists raises and writes nothing, so a
  re-forecast is a new ``version``.  A ``live`` row is refused when the store already has
  a bar of its symbol after ``as_of`` (then its outcome may have been known).
* ``forecast_outcomes``: the realised outcome of ``(symbol, target, as_of)``, written once
  when it is due (the forecast layer computes it from the bars).

:meth:`ForecastStore.forecasts` returns the forecasts with their outcomes joined where due.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from quantdesk.core.coerce import as_symbols
from quantdesk.data.store.tables import StoreTables
from quantdesk.data.timestamps import utc_ns_column

__all__ = ["FORECAST_COLUMNS", "ORIGINS", "ForecastStore"]

#: The forecast contract (docs/architecture.md, "Where each table lives"): one row per forecast.
FORECAST_COLUMNS: tuple[str, ...] = (
    "model",
    "version",
    "symbol",
    "target",
    "horizon",
    "as_of",
    "value",
    "probs",
    "made_at",
    "data_fingerprint",
    "code_fingerprint",
    "origin",
)
ORIGINS = ("live", "backfill")
_KEY = ("model", "version", "symbol", "target", "horizon", "as_of")

_FORECAST_DDL = """
CREATE TABLE IF NOT EXISTS forecasts (
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    horizon INTEGER NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    value DOUBLE,
    probs VARCHAR,
    made_at TIMESTAMPTZ NOT NULL,
    data_fingerprint VARCHAR NOT NULL,
    code_fingerprint VARCHAR NOT NULL,
    origin VARCHAR NOT NULL CHECK (origin IN ('live', 'backfill')),
    PRIMARY KEY (model, version, symbol, target, horizon, as_of)
);
CREATE TABLE IF NOT EXISTS forecast_outcomes (
    symbol VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    value DOUBLE,
    probs VARCHAR,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, target, as_of)
);
"""


def _check_rows(rows: pd.DataFrame, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in rows.columns]
    if missing:
        raise ValueError(f"forecast rows lack column(s) {missing}")
    for i, row in enumerate(rows.itertuples(index=False)):
        value, probs = getattr(row, "value", None), getattr(row, "probs", None)
        if (value is None or pd.isna(value)) and (probs is None or pd.isna(probs)):
            raise ValueError(f"forecast row {i} ({row.symbol}, {row.as_of}): no value or probs")


class ForecastStore(StoreTables):
    """The forecast record and the outcomes, in the market store's file.

    Examples
    --------
    >>> record = ForecastStore(tmp_path / "demo.duckdb")  # doctest: +SKIP
    >>> record.append(rows)  # doctest: +SKIP
    >>> record.forecasts(["SPX"], target="vol_1d")  # doctest: +SKIP
    """

    DDL = _FORECAST_DDL
    MARKER_TABLE = "forecasts"

    def append(self, rows: pd.DataFrame) -> int:
        """Return the number of forecasts appended (one transaction; all or nothing).

        ``rows`` has the :data:`FORECAST_COLUMNS` (``made_at`` defaults to now, ``probs``
        and ``value`` to NULL).  Raises ValueError, writing nothing, when a row's key is
        already stored (the record is append-only: forecast again under a new version),
        an ``origin`` is not ``live``/``backfill``, or a ``live`` row's symbol already has
        a bar after its ``as_of``.
        """
        frame = rows.copy()
        for column, default in (("value", None), ("probs", None)):
            if column not in frame.columns:
                frame[column] = default
        if "made_at" not in frame.columns:
            frame["made_at"] = pd.Timestamp(datetime.now(UTC))
        _check_rows(frame, FORECAST_COLUMNS)
        bad = sorted(set(frame["origin"]) - set(ORIGINS))
        if bad:
            raise ValueError(f"origin must be one of {ORIGINS}, got {bad}")
        frame = frame[list(FORECAST_COLUMNS)].astype({"value": "float64", "horizon": "int64"})
        frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
        frame["made_at"] = pd.to_datetime(frame["made_at"], utc=True)
        with self._transaction() as con:
            con.register("incoming", frame)
            dup = con.execute(
                f"SELECT {', '.join(_KEY)} FROM incoming SEMI JOIN forecasts USING "
                f"({', '.join(_KEY)}) LIMIT 1"
            ).fetchall()
            if dup:
                raise ValueError(
                    f"forecast {dict(zip(_KEY, dup[0], strict=True))} is already recorded; "
                    "the record is append-only: forecast again under a new version"
                )
            late = con.execute(
                """
                SELECT i.symbol, i.as_of, max(b.ts) FROM incoming i
                JOIN bars b ON b.symbol = i.symbol AND b.timeframe = '1d' AND b.ts > i.as_of
                WHERE i.origin = 'live' GROUP BY ALL LIMIT 1
                """
            ).fetchall()
            if late:
                symbol, as_of, last = late[0]
                raise ValueError(
                    f"live forecast of {symbol} as of {as_of:%Y-%m-%d} refused: the store has "
                    f"bars up to {last:%Y-%m-%d}, after it (record it as 'backfill')"
                )
            con.execute(f"INSERT INTO forecasts SELECT {', '.join(FORECAST_COLUMNS)} FROM incoming")
            con.unregister("incoming")
        return len(frame)

    def record_outcomes(self, outcomes: pd.DataFrame) -> int:
        """Return the number of new outcomes stored (``symbol, target, as_of, value|probs``).

        An outcome already stored is kept as it was (outcomes are facts, written once).
        """
        frame = outcomes.copy()
        for column in ("value", "probs"):
            if column not in frame.columns:
                frame[column] = None
        frame = frame[["symbol", "target", "as_of", "value", "probs"]].astype({"value": "float64"})
        frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
        frame["recorded_at"] = pd.Timestamp(datetime.now(UTC))
        with self._transaction() as con:
            con.register("incoming", frame)
            before = con.execute("SELECT count(*) FROM forecast_outcomes").fetchall()[0][0]
            con.execute(
                "INSERT INTO forecast_outcomes SELECT symbol, target, as_of, value, probs, "
                "recorded_at FROM incoming ON CONFLICT DO NOTHING"
            )
            after = con.execute("SELECT count(*) FROM forecast_outcomes").fetchall()[0][0]
            con.unregister("incoming")
        return int(after - before)

    def forecasts(
        self,
        symbols: str | Sequence[str] | None = None,
        *,
        target: str | None = None,
        model: str | None = None,
        origin: str | None = None,
    ) -> pd.DataFrame:
        """Return the recorded forecasts, oldest first, with ``outcome``/``outcome_probs`` joined.

        The outcome columns are NULL until :meth:`record_outcomes` stored them.
        """
        columns = [*FORECAST_COLUMNS, "outcome", "outcome_probs"]
        if not self._has_tables():
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        frame = self.market.sql(
            f"""
            SELECT {", ".join("f." + c for c in FORECAST_COLUMNS)},
                   o.value AS outcome, o.probs AS outcome_probs
            FROM forecasts f
            LEFT JOIN forecast_outcomes o
              ON o.symbol = f.symbol AND o.target = f.target AND o.as_of = f.as_of
            WHERE ($syms IS NULL OR list_contains($syms, f.symbol))
              AND ($target IS NULL OR f.target = $target)
              AND ($model IS NULL OR f.model = $model)
              AND ($origin IS NULL OR f.origin = $origin)
            ORDER BY f.as_of, f.symbol, f.model, f.version
            """,
            {"syms": as_symbols(symbols), "target": target, "model": model, "origin": origin},
        )
        return utc_ns_column(utc_ns_column(frame[columns], "as_of"), "made_at")

    def pending(self) -> pd.DataFrame:
        """Return ``symbol, target, horizon, as_of`` of the forecasts with no outcome yet."""
        if not self._has_tables():
            return pd.DataFrame(columns=["symbol", "target", "horizon", "as_of"])
        frame = self.market.sql(
            """
            SELECT DISTINCT f.symbol, f.target, f.horizon, f.as_of FROM forecasts f
            ANTI JOIN forecast_outcomes o
              ON o.symbol = f.symbol AND o.target = f.target AND o.as_of = f.as_of
            ORDER BY f.as_of, f.symbol, f.target
            """
        )
        return utc_ns_column(frame, "as_of")
