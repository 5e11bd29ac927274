"""Timestamp columns read one way per file: one format per column, never guessed per value.

A file's timestamp column is read as a whole.  Every value is classed by its shape
(ISO year-first, ``D/M/Y``-or-``M/D/Y``, plain numbers, or text such as ``Jan 3,
2005``); the shape most values share decides how the column is read, and values of
another shape are left unparsed, so the validator rejects them with their text.

* ``D/M/Y`` versus ``M/D/Y`` is settled from all values together: a value whose first
  field is above 12 can only be day-first, one whose second field is above 12 only
  month-first.  A column that fits both readings (``03/01/2005`` alone) is refused with
  a :class:`~quantdesk.data.validation.ValidationError` asking for ``dayfirst`` (CLI
  ``--dayfirst`` / ``--monthfirst``) or an explicit ``format``; one that mixes both is
  refused too.
* Numbers are ``YYYYMMDD`` (8 digits), ``YYYYMM`` (6 digits, e.g. Kenneth French's
  files) or epoch seconds, milliseconds, microseconds or nanoseconds, decided by the
  magnitude of all values (seconds from 1973 to 5138, and so on); values spread over
  two units are refused.
* ISO values may carry an offset (``2020-01-02T09:30:00-05:00``); values with different
  offsets are settled in UTC.

Because the decision depends on the set of values and not their order, a file reads
the same whatever the order of its rows.

Bounds given to reads (``start``, ``end``, a scan's ``date``) are turned into instants
here too, by one rule (:func:`bound_window`): a bound given as a day (``"2024-03-08"``,
a :class:`datetime.date`) means that whole day in the symbol's time zone; a bound with
a time part (``"2024-03-08 15:30"``, a :class:`pandas.Timestamp`) is an instant
(naive ones are UTC).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantdesk.core.coerce import as_utc
from quantdesk.data.schemas import to_utc_ns
from quantdesk.data.validation import ValidationError

__all__ = [
    "ParsedTimestamps",
    "bound_window",
    "is_day_bound",
    "parse_timestamp_column",
    "utc_ns_column",
]

logger = logging.getLogger(__name__)

_NUMBER = r"^[+-]?\d+(?:\.\d+)?$"
_ISO = r"^\d{4}[-/.]\d{1,2}(?:[-/.]\d{1,2})?(?:$|[T\s])"
_DMY = r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4}|\d{2})(?=$|[T\s,])(.*)$"
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?")
# Tie-break between shapes that are equally common: fixed, so row order never matters.
_KIND_ORDER = ("iso", "dmy", "number", "text")
# Epoch units by the magnitude of the values: [low, high) of |value|, 1973 to 5138.
_EPOCH_UNITS: tuple[tuple[Literal["s", "ms", "us", "ns"], float, float], ...] = (
    ("s", 1e8, 1e11),
    ("ms", 1e11, 1e14),
    ("us", 1e14, 1e17),
    ("ns", 1e17, 1e20),
)
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


@dataclass(frozen=True)
class ParsedTimestamps:
    """Return value of :func:`parse_timestamp_column`: the parsed values and how they were read.

    ``values`` holds datetimes (naive, or UTC where the file carried offsets), NaT
    where a value could not be read; ``reading`` says in words how the column was read
    (e.g. ``"day-first dates (DD/MM/YYYY)"``), for the ingest summary.
    """

    values: pd.Series
    reading: str


def _kinds(text: pd.Series) -> pd.Series:
    iso = text.str.match(_ISO).fillna(False).to_numpy(dtype=bool)
    if iso.all():  # the common case, decided with one pass
        return pd.Series("iso", index=text.index, dtype=object)
    kind = pd.Series("text", index=text.index, dtype=object)
    kind[text.str.match(_DMY).fillna(False).to_numpy(dtype=bool)] = "dmy"
    kind[iso] = "iso"
    kind[text.str.match(_NUMBER).fillna(False).to_numpy(dtype=bool)] = "number"
    return kind


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    """Return ``text`` parsed with ``fmt``, settling values with several UTC offsets in UTC."""
    try:
        return pd.to_datetime(text, format=fmt, errors="coerce")
    except ValueError:  # several UTC offsets in one column: one instant each, in UTC
        return pd.to_datetime(text, format=fmt, errors="coerce", utc=True)


def _merge(parsed: pd.Series, again: pd.Series) -> pd.Series:
    """Return ``parsed`` with the values of ``again`` (a subset of its index) put in."""
    if parsed.dt.tz is not None or again.dt.tz is not None:
        parsed, again = _in_utc(parsed), _in_utc(again)
    out: pd.Series = parsed.dt.as_unit("ns").copy()
    out[again.index] = again.dt.as_unit("ns")
    return out


def _to_datetime_iso(text: pd.Series) -> pd.Series:
    """Return ISO-like text parsed; ``2020/1/2`` is padded to ``2020-01-02`` first."""
    parsed = _to_datetime(text, "ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():
        rest = text[retry]
        date = rest.str.extract(_ISO_DATE)
        padded = date[0] + "-" + date[1].str.zfill(2) + ("-" + date[2].str.zfill(2)).fillna("")
        iso = (padded + rest.str.replace(_ISO_DATE, "", regex=True)).fillna(rest)
        parsed = _merge(parsed, _to_datetime(iso, "ISO8601"))
        retry = parsed.isna() & text.notna()
        if retry.any():  # e.g. "2020-01-02 9:30 PM": the date is settled, only the clock varies
            parsed = _merge(parsed, _to_datetime(iso[retry[iso.index]], "mixed"))
    return parsed


def _in_utc(values: pd.Series) -> pd.Series:
    """Return datetimes in UTC; naive ones are taken to be UTC already."""
    out: pd.Series = (
        values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    )
    return out


def _dayfirst_of(
    first: pd.Series, second: pd.Series, dayfirst: bool | None, source: str, column: str
) -> bool:
    only_dayfirst = first > 12
    only_monthfirst = second > 12
    if dayfirst is not None:
        return dayfirst
    if only_dayfirst.any() and only_monthfirst.any():
        a = first.index[only_dayfirst.to_numpy()][0]
        b = first.index[only_monthfirst.to_numpy()][0]
        raise ValidationError(
            source,
            None,
            column,
            f"dates mix day-first and month-first (values {a} and {b} fit one reading each); "
            "pass format=... (--format) with the file's one format",
        )
    if only_dayfirst.any():
        return True
    if only_monthfirst.any() or (first == second).all():
        return False
    raise ValidationError(
        source,
        None,
        column,
        "every date reads both day-first and month-first (e.g. "
        f"{first.index[(first != second).to_numpy()][0]}); pass dayfirst=True or False "
        "(--dayfirst / --monthfirst) or format=... (--format)",
    )


def _parse_dmy(
    text: pd.Series, dayfirst: bool | None, source: str, column: str
) -> tuple[pd.Series, str]:
    parts = text.str.extract(_DMY)
    # Indexed by the value itself, so that an error can quote the file's text.
    first = pd.Series(parts[0].astype(int).to_numpy(), index=text.to_numpy())
    second = pd.Series(parts[2].astype(int).to_numpy(), index=text.to_numpy())
    day_first = _dayfirst_of(first, second, dayfirst, source, column)
    day, month = (parts[0], parts[2]) if day_first else (parts[2], parts[0])
    year = parts[3].astype(int)
    # Two-digit years follow strptime's %y: 69-99 are the 1900s, 00-68 the 2000s.
    year = year.where(parts[3].str.len() == 4, year + np.where(year < 69, 2000, 1900))
    iso = (
        year.astype(str).str.zfill(4)
        + "-"
        + month.str.zfill(2)
        + "-"
        + day.str.zfill(2)
        + parts[4].fillna("")
    )
    sep = parts[1].iloc[0]
    reading = (
        f"day-first dates (DD{sep}MM{sep}YYYY)"
        if day_first
        else f"month-first dates (MM{sep}DD{sep}YYYY)"
    )
    return _to_datetime_iso(iso), reading


def _parse_numbers(text: pd.Series, source: str, column: str) -> tuple[pd.Series, str]:
    numbers = pd.Series(pd.to_numeric(text), index=text.index)
    integral = bool((numbers % 1 == 0).all())
    digits = text.str.lstrip("+-").str.split(".").str[0].str.len()
    for width, fmt, words in ((8, "%Y%m%d", "YYYYMMDD dates"), (6, "%Y%m", "YYYYMM months")):
        if integral and (digits == width).all():
            return pd.to_datetime(text, format=fmt, errors="coerce"), words
    size = numbers.abs()
    for unit, low, high in _EPOCH_UNITS:
        if ((size >= low) & (size < high)).all():
            # Whole numbers stay integers: nanoseconds since 1970 do not fit a float exactly.
            exact = numbers.astype("int64") if integral else numbers
            return pd.to_datetime(exact, unit=unit, utc=True), f"epoch {_UNIT_WORDS[unit]}"
    order = numbers.to_numpy(dtype=float).argsort()
    raise ValidationError(
        source,
        None,
        column,
        f"numeric timestamps from {text.iloc[order[0]]} to {text.iloc[order[-1]]} fit no "
        "single reading (epoch seconds/ms/us/ns by magnitude, YYYYMMDD, YYYYMM); "
        "pass format=... (--format)",
    )


def _parse_text(text: pd.Series) -> tuple[pd.Series, str]:
    """Return text dates (``Jan 3, 2005``) parsed with one format per shape of value."""
    from pandas.tseries.api import guess_datetime_format

    shape = text.str.replace(r"\d", "9", regex=True).str.replace(r"[^\W\d_]", "a", regex=True)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    formats: set[str] = set()
    for _, group in text.groupby(shape, sort=True):
        # "May" is a full month name and an abbreviation at once: a format guessed from
        # one value may not fit its neighbours, so every candidate is tried on the whole
        # group and the one that reads the most values wins (the first on a tie).
        candidates: list[str] = []
        for value in sorted(set(group.dropna().astype(str)))[:8]:
            guess = guess_datetime_format(value)
            if guess is None:
                continue
            for fmt in (guess, guess.replace("%B", "%b"), guess.replace("%b", "%B")):
                if fmt not in candidates:
                    candidates.append(fmt)
        if not candidates:
            continue
        tried = [(fmt, pd.to_datetime(group, format=fmt, errors="coerce")) for fmt in candidates]
        fmt, parsed = max(tried, key=lambda item: int(item[1].notna().sum()))
        if parsed.dt.tz is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        out[group.index] = parsed.dt.as_unit("ns")
        formats.add(fmt)
    return out, "dates in format " + " / ".join(sorted(formats)) if formats else "no known format"


def parse_timestamp_column(
    values: pd.Series,
    *,
    ts_format: str | None = None,
    dayfirst: bool | None = None,
    source: str = "<file>",
    column: str = "ts",
) -> ParsedTimestamps:
    """Return a file's timestamp column parsed one way for all its values.

    Parameters
    ----------
    values
        The column as the file held it (text), or datetimes / numbers from Parquet.
    ts_format
        A ``strftime`` format for every value; skips inference.
    dayfirst
        For ``D/M/Y``-shaped dates: ``True`` day-first, ``False`` month-first, ``None``
        inferred from all values (refused when both readings fit).
    source, column
        Named in errors.

    Raises
    ------
    ValidationError
        When the column fits two readings (or none) as a whole.

    Examples
    --------
    >>> text = pd.Series(["03/01/2005", "13/01/2005"])
    >>> parsed = parse_timestamp_column(text)
    >>> parsed.values.dt.strftime("%Y-%m-%d").tolist(), parsed.reading
    (['2005-01-03', '2005-01-13'], 'day-first dates (DD/MM/YYYY)')
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return ParsedTimestamps(values, "datetimes")
    if pd.api.types.is_numeric_dtype(values):
        values = values.astype("string")
    text = values.astype("string").str.strip()
    if ts_format is not None:
        try:
            parsed = pd.to_datetime(text, format=ts_format, errors="coerce")
        except ValueError:  # several UTC offsets under %z
            parsed = pd.to_datetime(text, format=ts_format, errors="coerce", utc=True)
        return ParsedTimestamps(parsed, f"format {ts_format!r}")
    present = text.notna() & (text != "")
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    if not present.any():
        return ParsedTimestamps(out, "no values")
    # Each distinct value is read once: a long file repeats every date once per symbol.
    codes, uniques = pd.factorize(text[present])
    distinct = pd.Series(uniques, dtype="string")
    kinds = _kinds(distinct)
    rows = np.bincount(codes, minlength=len(distinct))  # rows holding each distinct value
    counts = pd.Series(rows).groupby(kinds.to_numpy()).sum()
    kind = max(_KIND_ORDER, key=lambda k: (counts.get(k, 0), -_KIND_ORDER.index(k)))
    chosen = distinct[kinds == kind]
    if kind == "iso":
        parsed, reading = _to_datetime_iso(chosen), "ISO dates (YYYY-MM-DD)"
    elif kind == "dmy":
        parsed, reading = _parse_dmy(chosen, dayfirst, source, column)
    elif kind == "number":
        parsed, reading = _parse_numbers(chosen, source, column)
    else:
        parsed, reading = _parse_text(chosen)
    others = int(present.sum()) - int(counts.get(kind, 0))
    if others:
        logger.warning(
            "%s: %d value(s) of %r are not %s; they are rejected", source, others, column, reading
        )
    if parsed.dt.tz is not None:
        out, parsed = _in_utc(out), _in_utc(parsed)
    # back from the distinct values to the rows (NaT for values of another kind)
    parsed = parsed.dt.as_unit("ns")
    by_value = pd.Series(pd.NaT, index=distinct.index, dtype=parsed.dtype)
    by_value[chosen.index] = parsed
    out[present.to_numpy()] = by_value.array[codes]
    return ParsedTimestamps(out, reading)


# A day written without a time part: 2024-03-08, 2024/3/8, 2024.03.08 or 20240308.
_DAY_TEXT = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{8})\s*$")
_ONE_US = pd.Timedelta(1, "us")


def is_day_bound(value: Any) -> bool:
    """Return True when a bound names a whole day: a date, or date text without a time part.

    Timestamps and datetimes are instants, even at midnight.

    Examples
    --------
    >>> is_day_bound("2024-03-08"), is_day_bound("2024-03-08 00:00"), is_day_bound(
    ...     pd.Timestamp("2024-03-08"))
    (True, False, False)
    """
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True
    return isinstance(value, str) and _DAY_TEXT.match(value) is not None


def _day_start(value: Any, tz: str) -> pd.Timestamp:
    day = pd.Timestamp(value).normalize()
    # A zone whose clocks skip midnight (DST at 00:00) starts that day at the first hour.
    return day.tz_localize(tz, nonexistent="shift_forward").tz_convert("UTC")


def bound_window(
    start: Any, end: Any, tz: str = "UTC", *, daily: bool = False
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Return the UTC instants ``[lo, hi)`` that the inclusive bounds ``start..end`` cover.

    The one rule for bounds, used by every read: a bound given as a day (see
    :func:`is_day_bound`) is that whole day in the time zone ``tz`` (the symbol's), so
    ``end="2024-03-08"`` reaches up to, not including, 00:00 of Mar 9 there.  Bars of a
    day or longer (``daily=True``) are labelled by their session date at 00:00 UTC, so
    their days are read in UTC.  A bound with a time part is an instant (naive ones
    UTC); an instant ``end`` is included, to the microsecond (the store's resolution).
    ``None`` leaves that side open.

    Examples
    --------
    >>> lo, hi = bound_window("2024-03-08", "2024-03-08", "America/New_York")
    >>> lo, hi  # doctest: +NORMALIZE_WHITESPACE
    (Timestamp('2024-03-08 05:00:00+0000', tz='UTC'),
     Timestamp('2024-03-09 05:00:00+0000', tz='UTC'))
    >>> bound_window("2024-03-08", "2024-03-08", "America/New_York", daily=True)[1]
    Timestamp('2024-03-09 00:00:00+0000', tz='UTC')
    >>> bound_window(None, "2024-03-08 15:30")[1]
    Timestamp('2024-03-08 15:30:00.000001+0000', tz='UTC')
    """
    zone = "UTC" if daily else tz
    lo = hi = None
    if start is not None:
        lo = _day_start(start, zone) if is_day_bound(start) else as_utc(start)
    if end is not None:
        if is_day_bound(end):
            hi = _day_start(pd.Timestamp(end) + pd.Timedelta(days=1), zone)
        else:
            instant = as_utc(end)
            assert instant is not None
            hi = instant.floor("us") + _ONE_US
    return lo, hi


def utc_ns_column(frame: pd.DataFrame, column: str = "ts") -> pd.DataFrame:
    """Return ``frame`` with ``column`` as ``datetime64[ns, UTC]`` (set in place; naive = UTC).

    The one conversion of a time column read back from the store or a frame: an empty
    frame gets an empty column of that dtype too, so readers concatenate and compare.

    Examples
    --------
    >>> frame = utc_ns_column(pd.DataFrame({"ts": ["2024-01-02 10:00"]}))
    >>> str(frame["ts"].dtype), str(frame["ts"].iloc[0])
    ('datetime64[ns, UTC]', '2024-01-02 10:00:00+00:00')
    >>> str(utc_ns_column(pd.DataFrame({"ts": []}))["ts"].dtype)
    'datetime64[ns, UTC]'
    """
    if len(frame):
        frame[column] = to_utc_ns(frame[column])
    else:
        frame[column] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame
