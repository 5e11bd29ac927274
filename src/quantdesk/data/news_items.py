"""News items as stored: validated like bars, and keyed by a content hash.

The contract of a news item (:data:`~quantdesk.data.schemas.NEWS_COLUMNS`) is checked
here, whatever it came from (a vendor file read by :mod:`quantdesk.data.sources.news`,
the synthetic demo headlines, a notebook), and the store validates every row it is
given with :func:`validate_news`.  The content hash is the SHA-256 of the normalised
headline and body (Unicode NFKC, case-folded, whitespace collapsed), so the same story
carried by two vendors or re-sent with another id or time is one item.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.data.schemas import NEWS_COLUMNS, to_utc_ns
from quantdesk.data.validation import (
    ValidationError,
    ValidationResult,
    _finish,
    _parse_ts,
    _Problems,
    _row_numbers,
)

__all__ = ["content_hash", "validate_news"]


_SYMBOL_SPLIT = re.compile(r"[,;|\s]+")
_SPACE = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def content_hash(headline: str, body: str | None = None) -> str:
    """Return the SHA-256 hex digest that identifies a news item's content.

    Headline and body are normalised first (NFKC, case-folded, whitespace collapsed),
    so spacing and case never make two copies of one story look different.

    Examples
    --------
    >>> content_hash("Acme beats  estimates") == content_hash("ACME beats estimates", "")
    True
    """
    text = _normalise(headline) + "\n" + _normalise(body or "")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _symbol_list(value: Any) -> list[str] | None:
    """Return the symbols of one cell, or None when the cell cannot be read as symbols."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
        else:
            return [s for s in _SYMBOL_SPLIT.split(text) if s]
    if isinstance(value, list | tuple | np.ndarray):
        out = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("name", item.get("symbol", item.get("ticker")))
            if not isinstance(item, str) or not item.strip():
                return None
            out.append(item.strip())
        return out
    return None


def _flatten(value: Any) -> Any:
    """Return a nested vendor value as text: an object gives its ``name``."""
    if isinstance(value, dict):
        return value.get("name", value.get("id"))
    return value


def validate_news(
    df: pd.DataFrame,
    *,
    source: str = "<dataframe>",
    default_source: str | None = None,
    rows: Sequence[int] | np.ndarray | None = None,
    raw: pd.DataFrame | None = None,
    ts_text: pd.Series | None = None,
    strict: bool = False,
) -> ValidationResult:
    """Return the valid news items of ``df`` in canonical form, and a reject for every bad row.

    Parameters
    ----------
    df
        Items with at least ``ts`` and ``headline``; ``id``, ``source``, ``body`` and
        ``symbols`` are optional.  ``ts`` may be text or datetimes (naive taken as UTC).
    source
        Where the rows came from (file name), repeated in every reject.
    default_source
        The ``source`` of items that name none (default ``source``).
    rows, raw, ts_text
        Row numbers to report, the rows as the file held them, and the timestamps as
        written, as in :func:`~quantdesk.data.validation.validate_bars`.
    strict
        Raise :class:`~quantdesk.data.validation.ValidationError` at the first bad row.

    Checks: a missing or unparseable timestamp, a missing headline, symbols that cannot
    be read as a list of names.  Copies of one story (same content hash) collapse to
    the earliest and are counted in ``duplicates``.

    Examples
    --------
    >>> items = pd.DataFrame({"ts": ["2024-03-01T14:30:00Z", "bad", "2024-03-01T15:00:00Z"],
    ...     "headline": ["Acme beats estimates", "Acme misses", "ACME  beats estimates"],
    ...     "symbols": ["ACME", "ACME", "ACME"]})
    >>> result = validate_news(items)
    >>> len(result.good), result.duplicates, result.rejects.loc[0, "reason"]
    (1, 1, "unparseable timestamp 'bad'")
    """
    missing = [c for c in ("ts", "headline") if c not in df.columns]
    if missing:
        raise ValidationError(
            source, None, missing[0], f"missing column(s) {missing}; found {list(df.columns)}"
        )
    n = len(df)
    row_numbers = _row_numbers(n, rows)
    raw_rows = df if raw is None else raw
    problems = _Problems(n)
    ts = _parse_ts(df["ts"], problems, ts_text)
    headline = df["headline"].astype("string").str.strip()
    problems.add((headline.isna() | (headline == "")).to_numpy(), "headline", "missing headline")
    body = (
        df["body"].astype("string").str.strip()
        if "body" in df.columns
        else pd.Series(pd.NA, index=df.index, dtype="string")
    )
    body = body.mask(body == "")
    fallback = default_source or source
    src = (
        df["source"].map(_flatten).astype("string").str.strip()
        if "source" in df.columns
        else pd.Series(pd.NA, index=df.index, dtype="string")
    )
    src = src.where(src.notna() & (src != ""), fallback)
    cells = df["symbols"] if "symbols" in df.columns else pd.Series([None] * n, index=df.index)
    symbols = [_symbol_list(v) for v in cells]
    problems.add(
        np.array([s is None for s in symbols], dtype=bool),
        "symbols",
        "symbols are not a list of names",
    )
    hashes = [
        content_hash(str(h), None if pd.isna(b) else str(b)) if not pd.isna(h) else ""
        for h, b in zip(headline, body, strict=True)
    ]
    ids = (
        df["id"].map(_flatten).astype("string").str.strip()
        if "id" in df.columns
        else pd.Series(pd.NA, index=df.index, dtype="string")
    )
    ids = ids.where(ids.notna() & (ids != ""), pd.Series([h[:16] for h in hashes], index=df.index))
    out = pd.DataFrame(
        {
            "id": ids.astype(object).to_numpy(),
            "ts": ts.to_numpy(),
            "source": src.astype(object).to_numpy(),
            "headline": headline.astype(object).to_numpy(),
            "body": pd.Series([None if pd.isna(b) else str(b) for b in body], dtype=object),
            "symbols": [sorted(dict.fromkeys(s)) if s is not None else [] for s in symbols],
            "content_hash": hashes,
        }
    )
    out["ts"] = to_utc_ns(out["ts"])
    # Earliest copy first, so that collapsing duplicates keeps when the story was out.
    order = np.argsort(out["ts"].to_numpy(dtype="datetime64[ns]"), kind="stable")
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    moved = _Problems(n)
    for where, field, reasons in problems.items:
        moved.items.append((inverse[where], field, reasons))
    if n:
        # NaT sorts last here, and every NaT row is already a problem.
        out = out.iloc[order].reset_index(drop=True)
    result = _finish(
        out,
        moved,
        ["content_hash"],
        [],
        source=source,
        rows=row_numbers[order] if n else row_numbers,
        raw=raw_rows.iloc[order] if n else raw_rows,
        collapse_duplicates=True,
    )
    result = replace(
        result,
        good=result.good.sort_values("ts", kind="stable").reset_index(drop=True)[
            list(NEWS_COLUMNS)
        ],
        rejects=result.rejects.sort_values("row", kind="stable").reset_index(drop=True),
    )
    if strict:
        result.raise_first()
    return result
