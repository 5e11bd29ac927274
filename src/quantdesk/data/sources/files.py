"""Import bars from CSV and Parquet files: dialects, column recognition, dates, timezones.

The reader keeps every field as the file wrote it, maps columns onto the bar
contract, parses timestamps in the file's timezone and hands the result to
:func:`~quantdesk.data.validation.validate_bars`, so a bad row is reported with the
file name, its row number, the field and the text that was in the file.

What it recognises without being told (each choice is written into the result's
``notes`` so the ingest summary says what was done):

* the delimiter (``,`` ``;`` tab ``|``) and the decimal mark (``.`` or ``,``, with the
  other one, or a space, taken as the thousands separator);
* the timestamp column: a column named like a date or time (``Date``, ``Datetime``,
  ``Timestamp``, ``Date/Time``, ``Trade Date``...), separate ``Date`` and ``Time``
  columns (joined), or an unnamed first column (``pandas.DataFrame.to_csv`` writes
  its index that way);
* OHLCV names in any case and spelling (``Open``, ``CLOSE``, ``Vol.``);
* a close-only series: one value column (FRED's ``DCOILWTICO``, an index level) is the
  close; open, high, low and volume are stored as missing, never invented;
* ``Adj Close``: ignored by default (``close`` is the traded close, O/H/L match it);
  ``adjusted=True`` stores Adj Close as the close and scales open, high and low by the
  same factor (volume is left as traded).

Timestamps are read one way per column (see :mod:`quantdesk.data.timestamps`).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from quantdesk.data.schemas import BAR_COLUMNS, PRICE_COLUMNS, parse_timeframe
from quantdesk.data.timestamps import parse_timestamp_column
from quantdesk.data.validation import ValidationError, ValidationResult, validate_bars

__all__ = ["COLUMN_ALIASES", "Dialect", "read_bars_file", "sniff_dialect"]

logger = logging.getLogger(__name__)

#: Header names recognised without a mapping, compared after lower-casing and dropping
#: everything but letters and digits ("Vol." is "vol", "Date/Time" is "datetime").
COLUMN_ALIASES: dict[str, str] = {
    "symbol": "symbol", "ticker": "symbol", "sym": "symbol",
    "ts": "ts", "date": "ts", "datetime": "ts", "time": "ts", "timestamp": "ts",
    "open": "open", "o": "open",
    "high": "high", "h": "high",
    "low": "low", "l": "low",
    "close": "close", "c": "close", "last": "close",
    "volume": "volume", "vol": "volume", "v": "volume",
}  # fmt: skip
_ADJ_CLOSE = frozenset({"adjclose", "adjustedclose", "adjclosing"})
_DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = 1 << 16
# A date such as 03.01.2005 looks like a number with dots; keep it out of the decimal vote.
_DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_COMMA_DECIMAL = re.compile(r"^[+-]?(\d{1,3}([. ]\d{3})+|\d+),\d+$")
_POINT_DECIMAL = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)\.\d+$")


@dataclasses.dataclass(frozen=True)
class Dialect:
    """A CSV file's delimiter and decimal mark; ``thousands`` is the other grouping mark."""

    sep: str
    decimal: str

    @property
    def thousands(self) -> str:
        """Return the thousands separator that goes with the decimal mark."""
        return "." if self.decimal == "," else ","


def _normal(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _head(path: Path) -> str:
    """Return the first characters of a (possibly gzipped) text file, without a BOM."""
    with gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb") as handle:
        data = handle.read(_SAMPLE_BYTES)
    # utf-8-sig drops the byte-order mark spreadsheet exports start with.
    return data.decode("utf-8-sig", errors="replace")


def sniff_dialect(
    path: str | Path, *, sep: str | None = None, decimal: str | None = None
) -> Dialect:
    """Return the delimiter and decimal mark of a CSV file, detected from its first lines.

    The delimiter is the candidate (``,`` ``;`` tab ``|``) that splits the header and
    every sampled line into the same number (more than one) of fields, the most fields
    winning.  The decimal mark is ``,`` when the delimiter is not a comma and numbers
    such as ``1,5`` or ``1.234,5`` appear; otherwise ``.``.

    Raises
    ------
    ValidationError
        When no delimiter splits the lines consistently (pass ``sep``).
    """
    path = Path(path)
    text = _head(path)
    lines = text.splitlines()
    if len(text) >= _SAMPLE_BYTES - 4 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut mid-way
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValidationError(path.name, None, None, "empty file")
    if sep is None:
        best: tuple[int, str] | None = None
        for candidate in _DELIMITERS:
            widths = {len(row) for row in csv.reader(lines[:200], delimiter=candidate)}
            width = widths.pop() if len(widths) == 1 else 0
            if width > 1 and (best is None or width > best[0]):
                best = (width, candidate)
        if best is None:
            raise ValidationError(
                path.name,
                None,
                None,
                "cannot tell the delimiter (tried , ; tab |): pass sep=... (--sep)",
            )
        sep = best[1]
    if decimal is None:
        decimal = "."
        if sep != ",":
            cells = [c.strip() for row in csv.reader(lines[1:200], delimiter=sep) for c in row]
            numbers = [c for c in cells if not _DATE_LIKE.match(c)]
            if any(_COMMA_DECIMAL.match(c) for c in numbers) and not any(
                _POINT_DECIMAL.match(c) and "," in c for c in numbers
            ):
                decimal = ","
    if decimal not in (".", ","):
        raise ValidationError(path.name, None, None, f"decimal mark {decimal!r}: use '.' or ','")
    return Dialect(sep=sep, decimal=decimal)


def _read_raw(path: Path, sep: str | None, decimal: str | None) -> tuple[pd.DataFrame, Dialect]:
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith((".parquet", ".pq")):
        return pd.read_parquet(path), Dialect(",", ".")
    if suffixes.endswith((".csv", ".csv.gz", ".txt", ".txt.gz", ".tsv", ".tsv.gz")):
        if sep is None and ".tsv" in suffixes:
            sep = "\t"
        dialect = sniff_dialect(path, sep=sep, decimal=decimal)
        # Everything as text: the validator reports what the file held, not a parser's guess.
        raw = pd.read_csv(
            path,
            sep=dialect.sep,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",
        )
        return raw, dialect
    raise ValidationError(str(path), None, None, "unsupported file type (use .csv or .parquet)")


@dataclasses.dataclass
class _ColumnPlan:
    """Which file column feeds which bar field, and what the reader chose on its own."""

    mapping: dict[str, str]
    ts_parts: tuple[str, ...] = ()
    adj_close: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def _plan_columns(
    raw: pd.DataFrame, columns: Mapping[str, str] | None, source: str, adjusted: bool
) -> _ColumnPlan:
    explicit = {str(k): v for k, v in (columns or {}).items()}
    unknown_targets = set(explicit.values()) - set(BAR_COLUMNS)
    if unknown_targets:
        raise ValidationError(
            source,
            None,
            None,
            f"column mapping targets {sorted(unknown_targets)} not in {BAR_COLUMNS}",
        )
    names = [str(c) for c in raw.columns]
    missing_sources = set(explicit) - set(names)
    if missing_sources:
        raise ValidationError(
            source, None, sorted(missing_sources)[0], f"mapped column not in file {names}"
        )
    plan = _ColumnPlan(mapping=dict(explicit))
    taken = set(explicit.values())
    normal = {name: _normal(name) for name in names if name not in explicit}
    adj = [name for name, n in normal.items() if n in _ADJ_CLOSE]
    if adj:
        plan.adj_close = adj[0]
        normal.pop(adj[0])

    if "ts" not in taken:
        by_normal = {n: name for name, n in normal.items()}
        if "date" in by_normal and "time" in by_normal:
            plan.ts_parts = (by_normal["date"], by_normal["time"])
            plan.notes.append(f"timestamps joined from columns {list(plan.ts_parts)}")
            for name in plan.ts_parts:
                normal.pop(name)
            taken.add("ts")
    for name, n in normal.items():
        field = COLUMN_ALIASES.get(n)
        if field and field not in taken:
            plan.mapping[name] = field
            taken.add(field)
    unmapped = [name for name in normal if name not in plan.mapping]
    if "ts" not in taken:
        datelike = [name for name in unmapped if "date" in normal[name] or "time" in normal[name]]
        if len(datelike) > 1:
            raise ValidationError(
                source,
                None,
                "ts",
                f"columns {datelike} could each be the timestamp: pass --map COLUMN=ts",
            )
        if not datelike and names and (names[0].startswith("Unnamed: 0") or not names[0].strip()):
            datelike = [names[0]]  # pandas' to_csv writes its index as a nameless first column
        if datelike:
            plan.mapping[datelike[0]] = "ts"
            taken.add("ts")
            unmapped.remove(datelike[0])
            plan.notes.append(f"column {datelike[0]!r} read as the timestamp")

    ohl = [f for f in ("open", "high", "low") if f in taken]
    if ohl and len(ohl) < 3:
        missing = [f for f in (*PRICE_COLUMNS,) if f not in taken]
        raise ValidationError(
            source,
            None,
            missing[0],
            f"no column for {missing} (a file gives open, high and low together or none of "
            f"them); columns are {names}",
        )
    if adjusted and plan.adj_close is not None and "close" not in taken and not ohl:
        plan.mapping[plan.adj_close] = "close"
        taken.add("close")
        plan.notes.append(f"column {plan.adj_close!r} read as the close (the only price)")
        plan.adj_close = None
    elif adjusted:
        if plan.adj_close is None:
            raise ValidationError(
                source, None, "close", f"adjusted=True but no Adj Close in {names}"
            )
        if "close" not in taken and ohl:
            raise ValidationError(
                source,
                None,
                "close",
                "adjusted=True needs the unadjusted Close too, to scale open, high and low",
            )
        plan.notes.append(
            f"close is {plan.adj_close!r}; open, high and low scaled by Adj Close / Close"
        )
    elif plan.adj_close is not None:
        if "close" in taken:
            plan.notes.append(
                f"{plan.adj_close!r} ignored: close is the traded Close (adjusted=True, "
                "--adjusted, uses it)"
            )
        elif ohl:
            raise ValidationError(
                source,
                None,
                "close",
                f"the file has {plan.adj_close!r} but no Close to go with its open, high and "
                "low: pass --map 'COLUMN=close' for the close to store, or drop O/H/L",
            )
        else:
            plan.mapping[plan.adj_close] = "close"
            taken.add("close")
            plan.notes.append(f"column {plan.adj_close!r} read as the close (the only price)")
            plan.adj_close = None
    if "close" not in taken:
        values = [name for name in unmapped if plan.mapping.get(name) is None]
        if len(values) == 1 and not ohl:
            plan.mapping[values[0]] = "close"
            plan.notes.append(f"column {values[0]!r} read as the close (the only value column)")
        else:
            missing = [f for f in (*PRICE_COLUMNS,) if f not in taken] if ohl else ["close"]
            hint = f"; columns {values} could each be it" if len(values) > 1 else ""
            raise ValidationError(
                source,
                None,
                missing[0],
                f"no column for {missing}{hint}; pass --map COLUMN=close; columns are {names}",
            )
    return plan


def _numbers_as_text(values: pd.Series, dialect: Dialect) -> pd.Series:
    """Return number text in plain form (``1.234,5`` -> ``1234.5``); other text untouched.

    Only well-formed numbers of the file's dialect are rewritten (thousands groups of
    exactly three digits), so ``1,5`` in a point-decimal file stays ``1,5`` and is
    rejected as not a number instead of silently becoming 15.
    """
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    text = values.astype("string").str.strip()
    dec = re.escape(dialect.decimal)
    groups = f"[{re.escape(dialect.thousands)} ]"
    pattern = rf"^[+-]?(\d{{1,3}}({groups}\d{{3}})+|\d+)({dec}\d*)?([eE][+-]?\d+)?$"
    well_formed = text.str.match(pattern).fillna(False).to_numpy(dtype=bool)
    plain = text.str.replace(groups, "", regex=True).str.replace(dialect.decimal, ".", regex=False)
    return text.where(~well_formed, plain)


def _localise(
    parsed: pd.Series, text: pd.Series, *, tz: str, daily: bool
) -> tuple[pd.Series, pd.Series]:
    """Return UTC timestamps and the source text, noting where a local time does not exist."""
    if parsed.dt.tz is None:
        # Naive wall-clock times are in the exchange's timezone; DST gaps become NaT.
        localized = parsed.dt.tz_localize(tz, nonexistent="NaT", ambiguous="NaT")
        lost = localized.isna() & parsed.notna()
        if lost.any():
            text = text.astype("string").copy()
            text[lost] = text[lost] + f" (no such wall-clock time in {tz}: DST)"
        parsed = localized
    if daily:
        # A daily bar is its session date: the calendar date in the exchange's timezone.
        local_date = parsed.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
        return local_date.dt.tz_localize("UTC"), text
    return parsed.dt.tz_convert("UTC"), text


def read_bars_file(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str = "1d",
    columns: Mapping[str, str] | None = None,
    ts_format: str | None = None,
    dayfirst: bool | None = None,
    tz: str = "UTC",
    sep: str | None = None,
    decimal: str | None = None,
    adjusted: bool = False,
    strict: bool = False,
) -> ValidationResult:
    """Return the validated bars of a CSV or Parquet file, with a reject for every bad row.

    Parameters
    ----------
    path
        A ``.csv`` (optionally ``.gz``), ``.tsv``, ``.txt`` or ``.parquet`` file.
    symbol
        The symbol of every row, for files without a symbol column.
    timeframe
        Bar length of the file (``"1min"`` ... ``"1d"``, ``"1w"``, ``"1mo"``).  Daily
        bars keep the file's calendar date (in ``tz``) and are stored at 00:00 UTC of
        that date; weekly and monthly bars may be dated on any day of their period and
        are labelled by its start (the Monday, the 1st).
    columns
        Mapping from the file's column names to bar fields, e.g.
        ``{"Trade Date": "ts", "Px Last": "close"}``; see the module notes for what
        is recognised without one.
    ts_format
        A ``strftime`` format for the timestamps (default: inferred from all values).
    dayfirst
        ``True`` for ``DD/MM/YYYY`` dates, ``False`` for ``MM/DD/YYYY``; needed only
        when every date in the file reads both ways.
    tz
        Timezone of naive timestamps in the file (e.g. ``"America/New_York"``);
        timestamps carrying an offset are converted from it.
    sep, decimal
        Delimiter and decimal mark of a CSV file (default: detected).
    adjusted
        Store ``Adj Close`` as the close and scale open, high and low with it.
    strict
        Raise at the first bad row instead of rejecting it.

    Raises
    ------
    ValidationError
        For a problem with the whole file (no close column, an ambiguous date column,
        an empty file), naming the file and field; row problems become rejects.

    Examples
    --------
    >>> result = read_bars_file("spy.csv", symbol="SPY", tz="America/New_York")  # doctest: +SKIP
    >>> MarketStore().write_bars(result.good, "1d", validation=result)  # doctest: +SKIP
    """
    tf = parse_timeframe(timeframe)
    path = Path(path)
    source = path.name
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    raw, dialect = _read_raw(path, sep, decimal)
    if raw.empty:
        raise ValidationError(source, None, None, "no data rows after the header")
    plan = _plan_columns(raw, columns, source, adjusted)
    frame = raw[list(plan.mapping)].rename(columns=plan.mapping)
    if plan.ts_parts:
        frame["ts"] = raw[plan.ts_parts[0]].str.cat(raw[plan.ts_parts[1]], sep=" ")
    if "symbol" in frame.columns and symbol is not None:
        raise ValidationError(source, None, "symbol", "file has a symbol column; drop --symbol")
    if "symbol" not in frame.columns:
        if symbol is None:
            raise ValidationError(
                source, None, "symbol", "file has no symbol column; pass symbol=... (--symbol)"
            )
        frame["symbol"] = symbol
    if "ts" not in frame.columns:
        raise ValidationError(
            source,
            None,
            "ts",
            f"no timestamp column; pass --map COLUMN=ts; columns are {list(raw.columns)}",
        )
    for field in ("open", "high", "low", "volume"):
        if field not in frame.columns:
            frame[field] = np.nan  # missing, never zero: a close-only series has no range
    if "volume" not in plan.mapping.values():
        plan.notes.append("no volume column: volume stored as missing")
    if "open" not in plan.mapping.values():
        plan.notes.append("close-only series: open, high and low stored as missing")
    for field in ("open", "high", "low", "close", "volume"):
        frame[field] = _numbers_as_text(frame[field], dialect)
    if plan.adj_close is not None and adjusted:
        adj = pd.to_numeric(_numbers_as_text(raw[plan.adj_close], dialect), errors="coerce")
        close = pd.to_numeric(frame["close"], errors="coerce")
        factor = adj / close
        for field in ("open", "high", "low"):
            scaled = pd.to_numeric(frame[field], errors="coerce") * factor
            frame[field] = frame[field].where(scaled.isna(), scaled)
        frame["close"] = raw[plan.adj_close].where(adj.isna(), adj)
    if dialect.decimal == ",":
        plan.notes.append("decimal comma")
    parsed = parse_timestamp_column(
        frame["ts"], ts_format=ts_format, dayfirst=dayfirst, source=source, column="ts"
    )
    plan.notes.append(f"timestamps read as {parsed.reading}")
    frame["ts"], ts_text = _localise(parsed.values, frame["ts"], tz=tz, daily=tf.is_daily)
    result = validate_bars(
        frame[list(BAR_COLUMNS)],
        tf.name,
        source=source,
        raw=raw,
        ts_text=ts_text,
        strict=strict,
    )
    result = dataclasses.replace(result, notes=(*plan.notes, *result.notes))
    logger.info(result.summary())
    return result
