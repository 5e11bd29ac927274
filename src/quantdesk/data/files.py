"""Import bars from CSV and Parquet files: column mapping, date parsing, timezones.

The reader keeps every field as the file wrote it, maps columns onto the bar
contract, parses timestamps in the file's timezone and hands the result to
:func:`~quantdesk.data.validation.validate_bars`, so a bad row is reported with the
file name, its row number, the field and the text that was in the file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from quantdesk.data.schemas import BAR_COLUMNS, parse_timeframe
from quantdesk.data.validation import ValidationError, ValidationResult, validate_bars

__all__ = ["COLUMN_ALIASES", "read_bars_file"]

logger = logging.getLogger(__name__)

#: Header names recognised without a mapping (compared case-insensitively).
COLUMN_ALIASES: dict[str, str] = {
    "symbol": "symbol", "ticker": "symbol", "sym": "symbol",
    "ts": "ts", "date": "ts", "datetime": "ts", "time": "ts", "timestamp": "ts",
    "open": "open", "o": "open",
    "high": "high", "h": "high",
    "low": "low", "l": "low",
    "close": "close", "c": "close", "last": "close",
    "volume": "volume", "vol": "volume", "v": "volume",
}  # fmt: skip


def _read_raw(path: Path) -> pd.DataFrame:
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if suffixes.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        sep = "\t" if ".tsv" in suffixes else ","
        # Everything as text: the validator reports what the file held, not a parser's guess.
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    raise ValidationError(str(path), None, None, "unsupported file type (use .csv or .parquet)")


def _map_columns(raw: pd.DataFrame, columns: Mapping[str, str] | None, source: str) -> dict:
    mapping: dict[str, str] = {}
    explicit = dict(columns or {})
    unknown_targets = set(explicit.values()) - set(BAR_COLUMNS)
    if unknown_targets:
        raise ValidationError(
            source,
            None,
            None,
            f"column mapping targets {sorted(unknown_targets)} not in {BAR_COLUMNS}",
        )
    for name in raw.columns:
        target = explicit.get(str(name)) or COLUMN_ALIASES.get(str(name).strip().lower())
        if target and target not in mapping.values():
            mapping[str(name)] = target
    missing_sources = set(explicit) - set(map(str, raw.columns))
    if missing_sources:
        raise ValidationError(
            source,
            None,
            sorted(missing_sources)[0],
            f"mapped column not in file {list(raw.columns)}",
        )
    return mapping


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values) or values.dtype == object


def _parse_timestamps(
    text: pd.Series, *, ts_format: str | None, tz: str, daily: bool
) -> tuple[pd.Series, pd.Series]:
    """Return UTC timestamps and the source text, noting where a local time does not exist."""
    if not _is_text(text):
        parsed = pd.to_datetime(text)
    else:
        fmt = ts_format or "mixed"
        try:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        except ValueError:  # values with different UTC offsets: settle them in UTC
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
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
    tz: str = "UTC",
    strict: bool = False,
) -> ValidationResult:
    """Return the validated bars of a CSV or Parquet file, with a reject for every bad row.

    Parameters
    ----------
    path
        A ``.csv`` (optionally ``.gz``), ``.tsv`` or ``.parquet`` file.
    symbol
        The symbol of every row, for files without a symbol column.
    timeframe
        Bar length of the file.  Daily bars keep the file's calendar date (in ``tz``)
        and are stored at 00:00 UTC of that date.
    columns
        Mapping from the file's column names to bar fields, e.g.
        ``{"Trade Date": "ts", "Px Last": "close"}``; common names (Date, Open, Vol...)
        are recognised without one.
    ts_format
        A ``strftime`` format for the timestamps (default: inferred per value).
    tz
        Timezone of naive timestamps in the file (e.g. ``"America/New_York"``);
        timestamps carrying an offset are converted from it.
    strict
        Raise at the first bad row instead of rejecting it.

    Examples
    --------
    >>> result = read_bars_file("spy.csv", symbol="SPY", tz="America/New_York")  # doctest: +SKIP
    >>> MarketStore().write_bars(result.good, "1d", validation=result)  # doctest: +SKIP
    """
    path = Path(path)
    source = path.name
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    raw = _read_raw(path)
    mapping = _map_columns(raw, columns, source)
    frame = raw[list(mapping)].rename(columns=mapping)
    if "symbol" in frame.columns and symbol is not None:
        raise ValidationError(source, None, "symbol", "file has a symbol column; drop --symbol")
    if "symbol" not in frame.columns:
        if symbol is None:
            raise ValidationError(
                source, None, "symbol", "file has no symbol column; pass symbol=... (--symbol)"
            )
        frame["symbol"] = symbol
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing == ["volume"]:
        logger.info("%s: no volume column; storing volume as NULL", source)
        frame["volume"] = np.nan
    elif missing:
        raise ValidationError(
            source, None, missing[0], f"no column for {missing}; columns are {list(raw.columns)}"
        )
    frame["ts"], ts_text = _parse_timestamps(
        frame["ts"],
        ts_format=ts_format,
        tz=tz,
        daily=parse_timeframe(timeframe).is_daily,
    )
    result = validate_bars(
        frame[list(BAR_COLUMNS)],
        timeframe,
        source=source,
        raw=raw,
        ts_text=ts_text,
        strict=strict,
    )
    logger.info(result.summary())
    return result
