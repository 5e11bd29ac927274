"""Validation of bars and ticks before they reach the store.

Every write goes through here.  Good rows come back in canonical form; every bad row
comes back as a reject that names its source, row number, field and reason, so that
nothing is dropped silently.  In strict mode the first bad row raises
:class:`ValidationError` and nothing is written.

Row numbers are 1-based positions among the data records of the source (for a CSV
file, record 1 is the line after the header).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from quantdesk.data.schemas import BAR_COLUMNS, PRICE_COLUMNS, TICK_COLUMNS, parse_timeframe

__all__ = [
    "MISSING_MARKERS",
    "REJECT_COLUMNS",
    "ValidationError",
    "ValidationResult",
    "validate_bars",
    "validate_ticks",
]

logger = logging.getLogger(__name__)

REJECT_COLUMNS: tuple[str, ...] = ("source", "row", "field", "reason", "raw")
#: Text that vendors write for "no value" (FRED writes "."); such a row is rejected as a
#: missing value, not as a malformed number.
MISSING_MARKERS: frozenset[str] = frozenset({".", "NA", "N/A", "#N/A", "NAN", "NULL", "-"})


class ValidationError(ValueError):
    """Raised when input cannot be accepted; names the source, row and field."""

    def __init__(self, source: str, row: int | None, field: str | None, reason: str) -> None:
        where = source if row is None else f"{source}, row {row}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {reason}")
        self.source, self.row, self.field, self.reason = source, row, field, reason


@dataclass(frozen=True)
class ValidationResult:
    """Return value of validation: accepted rows, rejects and collapsed duplicates.

    ``weekend_rows`` counts accepted daily bars dated on a Saturday or Sunday (kept:
    crypto and some FX series trade then, but an equity file with such rows is
    probably read wrong); ``notes`` says what was decided on the caller's behalf
    (how dates were read, which column is the close, how calendar bars are labelled).
    """

    good: pd.DataFrame
    rejects: pd.DataFrame
    duplicates: int
    source: str
    rows_in: int
    weekend_rows: int = 0
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """Return an account of what happened to every input row, and the notes."""
        line = (
            f"{self.source}: {self.rows_in} rows in, {len(self.good)} accepted, "
            f"{len(self.rejects)} rejected, {self.duplicates} exact duplicates collapsed"
        )
        return "; ".join([line, *self.notes])

    def raise_first(self) -> None:
        """Raise :class:`ValidationError` for the first rejected row, if there is one."""
        if len(self.rejects):
            first = self.rejects.iloc[0]
            raise ValidationError(
                self.source, int(first["row"]), str(first["field"]), str(first["reason"])
            )


class _Problems:
    """Collects (position, field, reason) triples from vectorised checks."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[np.ndarray, str, list[str] | str]] = []

    def add(self, mask: np.ndarray | pd.Series, field: str, reason: str | pd.Series) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        where = np.flatnonzero(mask)
        reasons: list[str] | str = (
            reason if isinstance(reason, str) else [str(r) for r in np.asarray(reason)[where]]
        )
        self.items.append((where, field, reasons))

    def frame(self) -> pd.DataFrame:
        """Return one row per problem: position, field, reason (ordered by position)."""
        parts = []
        for where, field, reasons in self.items:
            parts.append(pd.DataFrame({"pos": where, "field": field, "reason": reasons}))
        if not parts:
            return pd.DataFrame({"pos": np.array([], dtype=np.int64), "field": [], "reason": []})
        return pd.concat(parts, ignore_index=True).sort_values("pos", kind="stable")


def _raw_json(raw: pd.DataFrame, positions: np.ndarray) -> list[str]:
    subset = raw.iloc[positions]
    return [
        json.dumps({str(k): (None if pd.isna(v) else str(v)) for k, v in rec.items()})
        for rec in subset.to_dict(orient="records")
    ]


def _row_numbers(n: int, rows: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if rows is None:
        return np.arange(1, n + 1, dtype=np.int64)
    out = np.asarray(rows, dtype=np.int64)
    if len(out) != n:
        raise ValueError(f"rows has {len(out)} entries for {n} input rows")
    return out


def _require_columns(df: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValidationError(
            source,
            None,
            missing[0],
            f"missing column(s) {missing}; found {list(map(str, df.columns))}",
        )


def _parse_ts(values: pd.Series, problems: _Problems, text: pd.Series | None = None) -> pd.Series:
    """Return ``values`` as UTC nanosecond timestamps; NaT rows become problems.

    ``text`` is what the source held (for messages) when ``values`` were parsed upstream.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        ts = pd.to_datetime(values, utc=True)
    else:
        ts = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    nat = ts.isna().to_numpy()
    if nat.any():
        shown = (values if text is None else text).astype("string")
        empty = (shown.isna() | (shown.str.strip() == "")).to_numpy()
        problems.add(nat & empty, "ts", "missing timestamp")
        problems.add(nat & ~empty, "ts", "unparseable timestamp '" + shown.fillna("") + "'")
    return ts.dt.as_unit("ns")


def _parse_number(values: pd.Series, field: str, problems: _Problems) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    not_number = numbers.isna().to_numpy() & values.notna().to_numpy()
    if not_number.any():
        text = values.astype("string").fillna("")
        marker = text.str.strip().str.upper().isin(MISSING_MARKERS).to_numpy()
        problems.add(not_number & marker, field, "missing value '" + text + "'")
        problems.add(not_number & ~marker, field, "not a number: '" + text + "'")
    return numbers


def _finish(
    df: pd.DataFrame,
    problems: _Problems,
    key: list[str],
    value_columns: list[str],
    *,
    source: str,
    rows: np.ndarray,
    raw: pd.DataFrame,
    collapse_duplicates: bool,
    conflict: str = "duplicate key with conflicting values",
) -> ValidationResult:
    """Resolve duplicate keys among otherwise good rows, then split good from rejected."""
    n = len(df)
    bad = np.zeros(n, dtype=bool)
    for where, _, _ in problems.items:
        bad[where] = True

    keep = ~bad
    duplicates = 0
    if collapse_duplicates:
        candidates = np.flatnonzero(keep)
        dup = df.iloc[candidates].duplicated(key, keep=False).to_numpy()
        if dup.any():
            dpos = candidates[dup]
            dups = df.iloc[dpos].assign(_row=rows[dpos])
            distinct = dups.drop_duplicates(key + value_columns)
            conflict_keys = distinct[distinct.duplicated(key, keep=False)][key].drop_duplicates()
            clash = (
                dups.merge(conflict_keys, on=key, how="left", indicator=True)["_merge"]
                .eq("both")
                .to_numpy()
            )
            if clash.any():
                listing = (
                    dups[clash]
                    .groupby(key, sort=False, observed=True)["_row"]
                    .transform(lambda r: ", ".join(map(str, r)))
                )
                reason = np.full(n, "", dtype=object)
                reason[dpos[clash]] = (conflict + " (rows " + listing + ")").to_numpy()
                mask = np.zeros(n, dtype=bool)
                mask[dpos[clash]] = True
                problems.add(mask, ",".join(key), pd.Series(reason))
                keep[mask] = False
            # Exact copies collapse to their first occurrence: counted and logged, not silent.
            exact = dpos[~clash]
            repeats = exact[df.iloc[exact].duplicated(key, keep="first").to_numpy()]
            duplicates = len(repeats)
            keep[repeats] = False

    issues = problems.frame()
    if len(issues):
        grouped = issues.groupby("pos", sort=True)
        pos = np.asarray(grouped.size().index, dtype=np.int64)
        rejects = pd.DataFrame(
            {
                "source": source,
                "row": rows[pos],
                "field": grouped["field"].agg(lambda f: ",".join(dict.fromkeys(f))).to_numpy(),
                "reason": grouped["reason"].agg("; ".join).to_numpy(),
                "raw": _raw_json(raw, pos),
            }
        )
    else:
        rejects = pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})
        rejects["row"] = rejects["row"].astype("int64")
    good = df[keep].reset_index(drop=True)
    result = ValidationResult(good, rejects, duplicates, source, n)
    if len(rejects) or duplicates:
        logger.warning(result.summary())
    return result


def validate_bars(
    df: pd.DataFrame,
    timeframe: str = "1d",
    *,
    source: str = "<dataframe>",
    rows: Sequence[int] | np.ndarray | None = None,
    raw: pd.DataFrame | None = None,
    ts_text: pd.Series | None = None,
    strict: bool = False,
) -> ValidationResult:
    """Return the valid bars of ``df`` in canonical form, and a reject for every bad row.

    Parameters
    ----------
    df
        Long bars with columns ``symbol, ts, open, high, low, close, volume``; ``ts`` may
        be text (parsed as UTC unless it carries an offset) or datetimes.
    timeframe
        The bar length.  Daily bars must sit at 00:00 UTC of their session date;
        intraday bars must start on a bucket boundary.
    source
        Where the rows came from (file name), repeated in every reject.
    rows
        Row numbers to report (default 1..n).
    raw
        The rows as read from the source, stored with each reject (default ``df``).
    ts_text
        The timestamps as the source wrote them, quoted when one cannot be parsed
        (default ``df["ts"]``).
    strict
        Raise :class:`ValidationError` at the first bad row instead of rejecting it.

    Checks: missing or unparseable timestamps, missing symbol, a missing, non-numeric
    or non-positive close, open/high/low given only in part (a row has all three or
    none: a close-only series has none), non-positive or non-numeric open/high/low,
    ``high < low``, ``open``/``close`` outside ``[low, high]`` (where they exist),
    negative volume, misaligned timestamps, and duplicate ``(symbol, ts)`` keys with
    conflicting values (exact duplicates collapse to one row and are counted).
    Missing volume stays missing (NaN), never zero.

    Weekly and monthly bars (``"1w"``, ``"1mo"``) may be dated on any day of their
    period; they are labelled by its start (:meth:`Timeframe.floor`: the Monday, the
    1st), and two rows of one symbol in the same period with different values are
    rejected as a conflict.  Daily bars on a Saturday or Sunday are kept and counted
    (``weekend_rows``).

    Examples
    --------
    >>> bars = pd.DataFrame({"symbol": ["A", "A"], "ts": ["2020-01-02", "2020-01-03"],
    ...     "open": [1.0, 2.0], "high": [1.5, 1.0], "low": [0.5, 1.5], "close": [1.2, 1.2],
    ...     "volume": [10, 10]})
    >>> result = validate_bars(bars)
    >>> len(result.good), result.rejects.loc[0, "reason"]
    (1, 'high < low; open outside [low, high]; close outside [low, high]')
    """
    tf = parse_timeframe(timeframe)
    _require_columns(df, BAR_COLUMNS, source)
    n = len(df)
    row_numbers = _row_numbers(n, rows)
    problems = _Problems(n)

    symbol = df["symbol"].astype("string").str.strip()
    problems.add((symbol.isna() | (symbol == "")).to_numpy(), "symbol", "missing symbol")
    ts = _parse_ts(df["ts"], problems, ts_text)
    valid_ts = ~ts.isna().to_numpy()
    notes: list[str] = []
    conflict = "duplicate key with conflicting values"
    if tf.is_calendar:
        period = "week" if tf.name == "1w" else "month"
        labelled = tf.floor(ts)
        moved = int((valid_ts & (labelled != ts).to_numpy()).sum())
        if moved:
            start = "Monday" if period == "week" else "1st"
            notes.append(
                f"{moved} {tf.name} bars dated inside their {period}, labelled by its {start}"
            )
        ts = labelled
        conflict = f"two rows in the same {period} with different values"
    else:
        ts_ns = ts.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")).view("i8")
        misaligned = valid_ts & (ts_ns % tf.nanos != 0)
        what = "00:00 UTC of its session date" if tf.is_daily else f"a {tf.name} boundary"
        problems.add(misaligned, "ts", f"{tf.name} bar must start at {what}")

    out = pd.DataFrame({"symbol": symbol.astype(object), "ts": ts})
    # Open, high and low come together or not at all: a close-only series has none.
    given = np.column_stack([df[c].notna().to_numpy() for c in ("open", "high", "low")])
    partial = given.any(axis=1) & ~given.all(axis=1)
    for j, col in enumerate(("open", "high", "low")):
        problems.add(
            partial & ~given[:, j],
            col,
            "missing price (open, high and low come together or not at all)",
        )
    for col in PRICE_COLUMNS:
        price = _parse_number(df[col], col, problems)
        if col == "close":
            problems.add(price.isna().to_numpy() & df[col].isna().to_numpy(), col, "missing price")
        problems.add((price <= 0).to_numpy(), col, "non-positive price")
        problems.add(~np.isfinite(price.to_numpy()) & price.notna().to_numpy(), col, "inf price")
        out[col] = price
    volume = _parse_number(df["volume"], "volume", problems)
    problems.add((volume < 0).to_numpy(), "volume", "negative volume")
    out["volume"] = volume

    o, h, lo, c = (out[col].to_numpy() for col in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        problems.add(h < lo, "high", "high < low")
        problems.add((o < lo) | (o > h), "open", "open outside [low, high]")
        problems.add((c < lo) | (c > h), "close", "close outside [low, high]")

    result = _finish(
        out,
        problems,
        ["symbol", "ts"],
        [*PRICE_COLUMNS, "volume"],
        source=source,
        rows=row_numbers,
        raw=df if raw is None else raw,
        collapse_duplicates=True,
        conflict=conflict,
    )
    if tf.name == "1d" and len(result.good):
        weekend = int((result.good["ts"].dt.day_of_week >= 5).sum())
        if weekend:
            notes.append(f"{weekend} daily bars fall on a Saturday or Sunday (kept)")
        result = replace(result, weekend_rows=weekend)
    if notes:
        result = replace(result, notes=tuple(notes))
    if strict:
        result.raise_first()
    return result


def validate_ticks(
    df: pd.DataFrame,
    *,
    source: str = "<dataframe>",
    rows: Sequence[int] | np.ndarray | None = None,
    strict: bool = False,
) -> ValidationResult:
    """Return the valid ticks of ``df`` (``symbol, ts, price, size``) and their rejects.

    Ticks have no natural key (several trades can share a timestamp), so no duplicate
    check applies; the store numbers ticks that share ``(symbol, ts)`` in input order.
    """
    _require_columns(df, TICK_COLUMNS, source)
    n = len(df)
    problems = _Problems(n)
    symbol = df["symbol"].astype("string").str.strip()
    problems.add((symbol.isna() | (symbol == "")).to_numpy(), "symbol", "missing symbol")
    ts = _parse_ts(df["ts"], problems)
    price = _parse_number(df["price"], "price", problems)
    problems.add(price.isna().to_numpy() & df["price"].isna().to_numpy(), "price", "missing price")
    problems.add(~(price > 0).to_numpy() & price.notna().to_numpy(), "price", "non-positive price")
    size = _parse_number(df["size"], "size", problems)
    problems.add((size < 0).to_numpy(), "size", "negative size")
    out = pd.DataFrame({"symbol": symbol.astype(object), "ts": ts, "price": price, "size": size})
    result = _finish(
        out,
        problems,
        ["symbol", "ts"],
        ["price", "size"],
        source=source,
        rows=_row_numbers(n, rows),
        raw=df,
        collapse_duplicates=False,
    )
    if strict:
        result.raise_first()
    return result
