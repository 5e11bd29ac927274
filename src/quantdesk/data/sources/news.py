"""News items read from vendor files (validated and keyed in :mod:`~quantdesk.data.news_items`).

A news item has the columns :data:`~quantdesk.data.schemas.NEWS_COLUMNS`: ``id, ts,
source, headline, body, symbols, content_hash``.  :func:`read_news_file` reads CSV,
JSON and JSONL files and :func:`validate_news` checks rows the way bars are checked:
every bad row comes back as a reject naming its source, row, field and reason, and in
strict mode the first bad row raises and nothing is written.

Accepted fields (first match wins, case-insensitive; nested vendor fields are
flattened as noted):

* ``ts``: ``ts``, ``published_at``, ``publishedAt``, ``published``, ``created``,
  ``datetime``, ``timestamp``, ``time``, ``date``.  Parsed once per column by
  :func:`~quantdesk.data.timestamps.parse_timestamp_column`; values without an offset
  are read in ``tz`` (default UTC).
* ``headline``: ``headline``, ``title``.
* ``body`` (optional): ``body``, ``summary``, ``description``, ``teaser``, ``content``,
  ``text``.
* ``source`` (optional, default the file's name): ``source``, ``provider``,
  ``publisher``, ``author``; an object such as NewsAPI's ``{"id": .., "name": ..}``
  gives its ``name``.
* ``symbols`` (optional, default none: market-wide news): ``symbols``, ``tickers``,
  ``stocks``, ``symbol``, ``ticker``; a list (Benzinga's ``[{"name": "AAPL"}]`` gives
  the names) or text separated by ``,``, ``;``, ``|`` or spaces, or a JSON list.
* ``id`` (optional, default the first 16 characters of the content hash): ``id``,
  ``news_id``, ``uuid``, ``url``.

A JSON file may be a list of items or an object holding one under ``articles``
(NewsAPI), ``data``, ``items``, ``news`` or ``results``.  A JSONL file holds one object
per line; its rows are numbered by file line, a line that is not a JSON object (cut
short, say) is a reject like any bad row (field ``line``), blank lines are skipped and
counted, and byte-order marks and ``\r\n`` endings are read as a user's editor wrote them.

The content hash is the SHA-256 of the normalised headline and body (Unicode NFKC,
case-folded, whitespace collapsed), so the same story carried by two vendors or
re-sent with another id or time is one item.  Within one input the earliest copy is
kept (it is when the news was out); copies are counted as duplicates, not rejected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.data.news_items import validate_news
from quantdesk.data.timestamps import parse_timestamp_column
from quantdesk.data.validation import (
    REJECT_COLUMNS,
    ValidationError,
    ValidationResult,
)

__all__ = ["NEWS_FIELD_ALIASES", "read_news_file"]

logger = logging.getLogger(__name__)

#: The names each news field may have in a vendor file, in order of preference.
NEWS_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "ts": (
        "ts",
        "published_at",
        "publishedat",
        "published",
        "created",
        "created_at",
        "datetime",
        "timestamp",
        "time",
        "date",
    ),
    "headline": ("headline", "title"),
    "body": ("body", "summary", "description", "teaser", "content", "text"),
    "source": ("source", "provider", "publisher", "author"),
    "symbols": ("symbols", "tickers", "stocks", "symbol", "ticker"),
    "id": ("id", "news_id", "uuid", "url"),
}
_JSON_CONTAINERS = ("articles", "data", "items", "news", "results")
_OFFSET = r"(?:[+-]\d{2}:?\d{2}|Z|GMT|UTC)$"


@dataclass(frozen=True)
class _Records:
    """A JSON or JSONL file's items: raw values, their line numbers, the unreadable lines."""

    frame: pd.DataFrame
    rows: np.ndarray | None
    rejects: pd.DataFrame
    notes: tuple[str, ...] = ()


def _no_rejects() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})
    frame["row"] = frame["row"].astype("int64")
    return frame


def _read_lines(path: Path, text: str) -> _Records:
    """Return the items of a JSONL file; a line that is not a JSON object is a reject.

    Lines are split at ``\n`` only (JSON strings may hold U+2028 and other breaks that
    :meth:`str.splitlines` would cut at); a trailing ``\r`` and a byte-order mark at a
    line's start (files joined with ``cat``) are dropped, blank lines skipped and counted.
    """
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    bad: list[tuple[int, str, str]] = []
    blank = 0
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r").lstrip("\ufeff")
        if not line.strip():
            blank += 1
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"not JSON: {exc.msg} (column {exc.colno})"
            if not line.rstrip().endswith(("}", "]")):
                reason += "; the line ends before its object closes (truncated?)"
        else:
            if isinstance(item, dict):
                records.append(item)
                rows.append(number)
                continue
            reason = f"a line is not a JSON object (found {type(item).__name__})"
        bad.append((number, reason, line))
    rejects = (
        pd.DataFrame(
            {
                "source": str(path),
                "row": np.array([b[0] for b in bad], dtype=np.int64),
                "field": "line",
                "reason": [b[1] for b in bad],
                "raw": [b[2] for b in bad],
            }
        )
        if bad
        else _no_rejects()
    )
    notes = (f"{blank} blank line(s) skipped",) if blank else ()
    frame = pd.DataFrame.from_records(records)
    return _Records(frame, np.asarray(rows, dtype=np.int64), rejects, notes)


def _read_records(path: Path) -> _Records:
    """Return a JSON or JSONL file's items as a frame of raw values (nested ones kept)."""
    text = path.read_text(encoding="utf-8-sig")
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        return _read_lines(path, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(str(path), None, None, f"not JSON: {exc}") from exc
    if isinstance(data, dict):
        data = next((data[k] for k in _JSON_CONTAINERS if isinstance(data.get(k), list)), None)
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ValidationError(
            str(path),
            None,
            None,
            "expected a list of objects, or an object holding one under "
            + ", ".join(_JSON_CONTAINERS),
        )
    return _Records(pd.DataFrame.from_records(data), None, _no_rejects())


def _plan(columns: Sequence[str], path: Path) -> dict[str, str]:
    """Return which file column feeds which news field."""
    by_lower = {str(c).strip().lower(): str(c) for c in columns}
    mapping: dict[str, str] = {}
    for field, aliases in NEWS_FIELD_ALIASES.items():
        found = next((by_lower[a] for a in aliases if a in by_lower), None)
        if found is not None and found not in mapping.values():
            mapping[field] = found
    for field in ("ts", "headline"):
        if field not in mapping:
            raise ValidationError(
                str(path),
                None,
                field,
                f"no {field} column (looked for {', '.join(NEWS_FIELD_ALIASES[field])}); "
                f"found {list(columns)}",
            )
    return mapping


def read_news_file(
    path: str | Path,
    *,
    tz: str = "UTC",
    ts_format: str | None = None,
    dayfirst: bool | None = None,
    strict: bool = False,
) -> ValidationResult:
    """Return the validated news items of a CSV, JSON or JSONL file, and its rejects.

    Parameters
    ----------
    path
        ``.csv``, ``.json``, ``.jsonl`` or ``.ndjson`` (see the module docstring for the
        fields each may carry).
    tz
        Timezone of timestamps written without an offset.
    ts_format, dayfirst
        How to read the timestamp column when it is ambiguous, as for bar files.
    strict
        Raise at the first bad row.

    Raises
    ------
    quantdesk.data.validation.ValidationError
        The file cannot be read as news (no headline or timestamp column, not JSON), or
        (``strict``) a row is bad.
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    name = path.name.lower()
    records = _Records(pd.DataFrame(), None, _no_rejects())
    if name.endswith((".csv", ".csv.gz")):
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    elif name.endswith((".json", ".jsonl", ".ndjson")):
        records = _read_records(path)
        raw = records.frame
        if raw.columns.empty and len(records.rejects):
            raw = pd.DataFrame({"ts": pd.Series(dtype=object), "headline": []})
    else:
        raise ValidationError(str(path), None, None, "unsupported file type (.csv, .json, .jsonl)")
    source = str(path)
    mapping = _plan(list(raw.columns), path)
    frame = pd.DataFrame({field: raw[column] for field, column in mapping.items()})
    ts_raw = frame["ts"].map(lambda v: v if not isinstance(v, dict | list) else json.dumps(v))
    parsed = parse_timestamp_column(
        ts_raw, ts_format=ts_format, dayfirst=dayfirst, source=source, column=mapping["ts"]
    )
    values = parsed.values
    if values.dt.tz is None:
        # Text dates with an offset ("Tue, 05 Mar 2024 14:32:11 -0500") come back as naive
        # UTC; only values written without one are wall-clock times in ``tz``.
        has_offset = (
            ts_raw.astype("string").str.strip().str.contains(_OFFSET, regex=True).fillna(False)
        )
        local = values.dt.tz_localize(tz, nonexistent="NaT", ambiguous="NaT")
        values = local.dt.tz_convert("UTC").where(~has_offset, values.dt.tz_localize("UTC"))
    frame["ts"] = values.dt.tz_convert("UTC")
    # Nested values are stored in rejects as JSON text, as the file held them.
    shown = raw.map(lambda v: json.dumps(v) if isinstance(v, dict | list) else v)
    result = validate_news(
        frame,
        source=source,
        default_source=path.name,
        rows=records.rows,
        raw=shown,
        ts_text=ts_raw.astype("string"),
    )
    rejects = result.rejects
    if len(records.rejects):
        rejects = pd.concat([records.rejects, rejects], ignore_index=True)
        rejects = rejects.sort_values("row", kind="stable").reset_index(drop=True)
    result = replace(
        result,
        rejects=rejects,
        rows_in=result.rows_in + len(records.rejects),
        notes=(f"timestamps read as {parsed.reading}", *records.notes, *result.notes),
    )
    if strict:
        result.raise_first()  # the first bad line of the file, whatever is wrong with it
    logger.info(result.summary())
    return result
