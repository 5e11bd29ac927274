"""NewsStore: news items and their sentiment scores, in the market store's DuckDB file.

The news lives beside the bars in one file, written and read through the same
short-lived connections (:mod:`quantdesk.data.store.locking`), so a notebook, the
monitor and a scoring job work on it at once.  Two tables:

* ``news``: one row per story, keyed by its content hash
  (:func:`~quantdesk.data.news_items.content_hash`).  Writing a story that is already stored
  changes nothing (the first stored copy is kept) and is counted ``unchanged``.
* ``news_scores``: a score cache keyed by ``(content_hash, model_id, model_revision,
  quantization)``.  A scorer asks :meth:`NewsStore.unscored` for what its key has not
  seen, so rescoring is incremental, and a new model (or revision, or quantisation)
  scores everything again without touching the other models' rows.

Every write is one transaction: a failed write changes nothing.  Imports are logged in
the store's ``ingest_log`` and their bad rows kept in ``rejects``, like bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.core.coerce import as_symbols, as_utc
from quantdesk.data.news_items import validate_news
from quantdesk.data.schemas import NEWS_COLUMNS
from quantdesk.data.store.file import fetch_frame
from quantdesk.data.store.ingest_log import IngestReport
from quantdesk.data.store.market import MarketStore
from quantdesk.data.store.news_ddl import NEWS_DDL as _NEWS_DDL
from quantdesk.data.store.tables import StoreTables
from quantdesk.data.timestamps import utc_ns_column
from quantdesk.data.validation import ValidationResult

__all__ = [
    "SCORE_COLUMNS",
    "NewsStore",
    "ScoreKey",
    "empty_news",
    "query_news",
    "query_score_keys",
    "query_scored_news",
    "query_unscored",
]

if TYPE_CHECKING:
    import duckdb

#: The columns every sentiment scorer returns, one row per text.
SCORE_COLUMNS: tuple[str, ...] = ("positive", "negative", "neutral", "score")


@dataclass(frozen=True)
class ScoreKey:
    """What a cached score was made with: model id, its revision and its quantisation."""

    model_id: str
    model_revision: str = "unknown"
    quantization: str = "none"

    def __str__(self) -> str:
        return f"{self.model_id}@{self.model_revision} ({self.quantization})"


class NewsStore(StoreTables):
    """News items and their cached sentiment scores, in the market store's file.

    Parameters
    ----------
    store
        A :class:`~quantdesk.data.store.market.MarketStore`, its file, or None for the default.
    read_only
        Refuse writes.

    Examples
    --------
    >>> news = NewsStore(tmp_path / "demo.duckdb")  # doctest: +SKIP
    >>> news.write_news(items, source="vendor.jsonl").summary()  # doctest: +SKIP
    >>> news.news(["ACME"]).head()  # doctest: +SKIP
    """

    DDL = _NEWS_DDL
    MARKER_TABLE = "news"

    # -- writes ------------------------------------------------------------------------

    def write_news(
        self,
        df: pd.DataFrame,
        *,
        source: str = "<dataframe>",
        strict: bool = False,
        validation: ValidationResult | None = None,
    ) -> IngestReport:
        """Return the report of storing news items, in one transaction.

        Rows are validated first (:func:`~quantdesk.data.news_items.validate_news`) unless a
        reader passes its ``validation``; bad rows go to ``rejects``, or with
        ``strict=True`` the first raises and nothing is written.  A story already
        stored (same content hash) is left as it is and counted ``unchanged``.
        """
        result = validation or validate_news(df, source=source, strict=strict)
        if strict:
            result.raise_first()
        good = result.good[list(NEWS_COLUMNS)]
        started = datetime.now(UTC)
        with self._transaction() as con:
            ingest_id = MarketStore._next_ingest_id(con)
            staged = good.assign(ingest_id=ingest_id)
            con.register("incoming", staged)
            inserted = int(
                con.execute(
                    "SELECT count(*) FROM incoming i ANTI JOIN news n USING (content_hash)"
                ).fetchall()[0][0]
            )
            con.execute(
                """
                INSERT INTO news
                SELECT content_hash, id, ts, source, headline, body,
                       CAST(symbols AS VARCHAR[]), ingest_id
                FROM incoming
                ON CONFLICT (content_hash) DO NOTHING
                """
            )
            con.unregister("incoming")
            result = _new_rejects(con, result)
            rejected = len(result.rejects)
            report = IngestReport(
                ingest_id=ingest_id,
                source=result.source,
                kind="news",
                timeframe=None,
                rows_in=result.rows_in,
                inserted=inserted,
                updated=0,
                unchanged=len(good) - inserted,
                duplicates=result.duplicates,
                rejected=rejected,
                notes=result.notes,
            )
            self.market._log_ingest(con, report, result, started)
        return report

    def write_scores(self, scores: pd.DataFrame, key: ScoreKey) -> int:
        """Return the number of scores stored for ``key`` (an upsert, one transaction).

        ``scores`` has ``content_hash`` and :data:`SCORE_COLUMNS`.
        """
        missing = [c for c in ("content_hash", *SCORE_COLUMNS) if c not in scores.columns]
        if missing:
            raise ValueError(f"scores lack column(s) {missing}")
        frame = scores[["content_hash", *SCORE_COLUMNS]].astype(
            {c: "float64" for c in SCORE_COLUMNS}
        )
        frame = frame.assign(
            model_id=key.model_id,
            model_revision=key.model_revision,
            quantization=key.quantization,
            scored_at=datetime.now(UTC),
        )
        with self._transaction() as con:
            con.register("incoming", frame)
            con.execute(
                """
                INSERT OR REPLACE INTO news_scores
                SELECT content_hash, model_id, model_revision, quantization,
                       positive, negative, neutral, score, scored_at
                FROM incoming
                """
            )
            con.unregister("incoming")
        return len(frame)

    # -- reads ------------------------------------------------------------------------

    def news(
        self,
        symbols: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Return stored news items (columns of NEWS_COLUMNS) by time, optionally filtered.

        ``symbols`` keeps items about any of them; ``start``/``end`` bound ``ts``
        (inclusive; naive times are UTC).
        """
        if not self._has_tables():
            return empty_news()
        with self.market._connect() as con:
            return query_news(con, symbols, start, end)

    def unscored(self, key: ScoreKey | None) -> pd.DataFrame:
        """Return ``content_hash, headline, body`` of the stored news ``key`` has not scored.

        ``key=None`` returns every stored story (for a full rescore).
        """
        with self.market._connect() as con:
            return query_unscored(con, key)

    def score_keys(self) -> list[ScoreKey]:
        """Return the keys of the stored scores, the most recently written first."""
        if not self._has_tables():
            return []
        with self.market._connect() as con:
            return query_score_keys(con)

    def scored_news(
        self,
        symbols: str | Sequence[str] | None = None,
        key: ScoreKey | None = None,
        start: Any = None,
        end: Any = None,
    ) -> pd.DataFrame:
        """Return one row per (story, symbol) with its scores, by time.

        Columns: ``symbol, ts, id, source, headline, content_hash`` and
        :data:`SCORE_COLUMNS`; stories without a score for ``key`` (default the most
        recently written key) are left out, and so are stories naming no symbol.
        """
        if not self._has_tables():
            return query_scored_news(None, symbols, key, start, end)
        with self.market._connect() as con:
            return query_scored_news(con, symbols, key, start, end)


# The reads as functions of a connection holding ``news`` and ``news_scores`` relations:
# the store's tables, or views of a snapshot's files (quantdesk.data.snapshot.reader),
# so both answer with the same SQL.


def empty_news() -> pd.DataFrame:
    """Return the news frame of a store that holds no news (columns of NEWS_COLUMNS)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in NEWS_COLUMNS})


def query_news(
    con: duckdb.DuckDBPyConnection,
    symbols: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Return news items read through ``con``, as :meth:`NewsStore.news` does."""
    frame = fetch_frame(
        con,
        f"""
        SELECT {", ".join(NEWS_COLUMNS)} FROM news
        WHERE ($syms IS NULL OR len(list_intersect(symbols, $syms)) > 0)
          AND ($start IS NULL OR ts >= $start) AND ($end IS NULL OR ts <= $end)
        ORDER BY ts, content_hash
        """,
        {"syms": as_symbols(symbols), "start": _bound(start), "end": _bound(end)},
    )
    frame["symbols"] = frame["symbols"].map(lambda s: [str(x) for x in s])
    # An absent body is None, as validate_news gives it (not NaN).
    frame["body"] = pd.Series(
        [None if pd.isna(b) else str(b) for b in frame["body"]], index=frame.index, dtype=object
    )
    return utc_ns_column(frame)


def query_unscored(con: duckdb.DuckDBPyConnection, key: ScoreKey | None) -> pd.DataFrame:
    """Return the stories ``key`` has not scored, read through ``con`` (as
    :meth:`NewsStore.unscored` does)."""
    if key is None:
        key = ScoreKey("", "", "")  # no model has an empty id: nothing is excluded
    return fetch_frame(
        con,
        """
        SELECT n.content_hash, n.headline, n.body FROM news n
        ANTI JOIN (SELECT content_hash FROM news_scores
                   WHERE model_id = $m AND model_revision = $r AND quantization = $q)
        USING (content_hash)
        ORDER BY n.ts, n.content_hash
        """,
        {"m": key.model_id, "r": key.model_revision, "q": key.quantization},
    )


def query_score_keys(con: duckdb.DuckDBPyConnection) -> list[ScoreKey]:
    """Return the keys of the scores read through ``con``, the most recently written first."""
    frame = fetch_frame(
        con,
        "SELECT model_id, model_revision, quantization, max(scored_at) AS last "
        "FROM news_scores GROUP BY ALL ORDER BY last DESC, model_id",
    )
    return [
        ScoreKey(str(m), str(r), str(q))
        for m, r, q in frame[["model_id", "model_revision", "quantization"]].itertuples(index=False)
    ]


def query_scored_news(
    con: duckdb.DuckDBPyConnection | None,
    symbols: str | Sequence[str] | None = None,
    key: ScoreKey | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Return scored news read through ``con`` (None: a store without news), as
    :meth:`NewsStore.scored_news` does."""
    columns = ["symbol", "ts", "id", "source", "headline", "content_hash", *SCORE_COLUMNS]
    keys = [] if con is None else query_score_keys(con)
    if con is None or (key is None and not keys):
        return utc_ns_column(pd.DataFrame({c: pd.Series(dtype=object) for c in columns}))
    key = key or keys[0]
    frame = fetch_frame(
        con,
        f"""
        SELECT u.symbol, n.ts, n.id, n.source, n.headline, n.content_hash,
               {", ".join("s." + c for c in SCORE_COLUMNS)}
        FROM news n
        CROSS JOIN unnest(n.symbols) AS u(symbol)
        JOIN news_scores s ON s.content_hash = n.content_hash
            AND s.model_id = $m AND s.model_revision = $r AND s.quantization = $q
        WHERE ($syms IS NULL OR list_contains($syms, u.symbol))
          AND ($start IS NULL OR n.ts >= $start) AND ($end IS NULL OR n.ts <= $end)
        ORDER BY n.ts, n.content_hash, u.symbol
        """,
        {
            "m": key.model_id,
            "r": key.model_revision,
            "q": key.quantization,
            "syms": as_symbols(symbols),
            "start": _bound(start),
            "end": _bound(end),
        },
    )
    return utc_ns_column(frame[columns])


def _new_rejects(con: Any, result: ValidationResult) -> ValidationResult:
    """Return ``result`` without the rejects an earlier import already stored, noting them.

    A reject is the same when its source, row, field, reason and raw text are: importing
    one file again stores each of its bad rows once.
    """
    if not len(result.rejects):
        return result
    rejects = result.rejects.reset_index(drop=True)
    con.register("incoming_rejects", rejects.assign(pos=range(len(rejects))))
    seen = con.execute(
        """
        SELECT DISTINCT i.pos, r.ingest_id FROM incoming_rejects i
        JOIN rejects r ON r.source = i.source AND r."row" = i."row"
            AND r.field IS NOT DISTINCT FROM i.field AND r.reason = i.reason
            AND r.raw IS NOT DISTINCT FROM i.raw
        """
    ).fetchall()
    con.unregister("incoming_rejects")
    if not seen:
        return result
    positions = sorted({int(pos) for pos, _ in seen})
    earlier = ", ".join(str(i) for i in sorted({int(i) for _, i in seen}))
    note = (
        f"{len(positions)} rejected row(s) not stored again: an earlier import kept them "
        f"(quantdesk data rejects --ingest {earlier})"
    )
    return replace(
        result,
        rejects=rejects.drop(index=positions).reset_index(drop=True),
        notes=(*result.notes, note),
    )


def _bound(value: Any) -> datetime | None:
    ts = as_utc(value)
    return None if ts is None else ts.to_pydatetime()
