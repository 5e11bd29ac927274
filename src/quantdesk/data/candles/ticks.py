"""Tick frames checked and turned into the arrays the candle kernels read.

A tick frame (``symbol, ts, price, size``) becomes symbol codes, UTC epoch
nanoseconds and float prices and sizes; a missing column, a missing symbol or ts, a
non-positive price or a negative size is refused with the row and field named.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantdesk.data.candles.kernels import F64, I64, IntArray, kernels
from quantdesk.data.schemas import TICK_COLUMNS, to_utc_ns

__all__ = [
    "FIELD_PROBLEMS",
    "TickArrays",
    "check_columns",
    "raise_if_invalid",
    "symbol_names",
    "tick_arrays",
]

# Field codes returned by the validation kernel index into TICK_COLUMNS.
FIELD_PROBLEMS = (
    "symbol is missing",
    "ts is missing (NaT)",
    "price must be a finite positive number",
    "size must be a finite non-negative number",
)


class TickArrays(NamedTuple):
    codes: IntArray  # index into categories; -1 for a missing symbol
    categories: pd.Index  # the distinct symbols (any dtype; see symbol_names)
    ts: I64  # UTC epoch nanoseconds
    price: F64
    size: F64


def check_columns(ticks: pd.DataFrame) -> None:
    if not isinstance(ticks, pd.DataFrame):
        raise TypeError(f"ticks must be a pandas DataFrame, got {type(ticks).__name__}")
    missing = [c for c in TICK_COLUMNS if c not in ticks.columns]
    if missing:
        raise ValueError(
            f"ticks is missing column(s) {', '.join(map(repr, missing))}; "
            f"expected {list(TICK_COLUMNS)}, got {list(map(str, ticks.columns))}"
        )


def _utc_ns(ts: pd.Series) -> I64:
    dtype = ts.dtype
    if not (
        isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns" and str(dtype.tz) == "UTC"
    ):
        try:
            ts = to_utc_ns(ts)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"ticks column 'ts' is not convertible to UTC datetimes: {exc}"
            ) from exc
    values: I64 = ts.array.asi8  # type: ignore[attr-defined]
    return values


def _float_values(values: pd.Series, name: str) -> F64:
    if values.dtype == np.float64:
        out: F64 = values.to_numpy()
        return out
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        # Plain integer columns cannot hold NaN: skip the (slower) missing-value path.
        return values.to_numpy().astype(np.float64)
    try:
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ticks column {name!r} is not numeric: {exc}") from exc


def tick_arrays(ticks: pd.DataFrame) -> TickArrays:
    symbol = ticks["symbol"]
    codes: IntArray
    if isinstance(symbol.dtype, pd.CategoricalDtype):
        codes = symbol.cat.codes.to_numpy()
        categories = symbol.cat.categories
    else:
        codes, categories = pd.factorize(symbol, use_na_sentinel=True)
    return TickArrays(
        codes=codes,
        categories=categories,
        ts=_utc_ns(ticks["ts"]),
        price=_float_values(ticks["price"], "price"),
        size=_float_values(ticks["size"], "size"),
    )


def symbol_names(categories: pd.Index) -> npt.NDArray[np.object_]:
    """Return the symbols as an object array of ``str``."""
    if pd.api.types.is_string_dtype(categories.dtype):
        names: npt.NDArray[np.object_] = categories.to_numpy(dtype=object)
        if categories.dtype != object or all(isinstance(s, str) for s in names):
            return names
    return np.asarray([str(s) for s in categories], dtype=object)


def raise_if_invalid(ticks: pd.DataFrame, arrays: TickArrays) -> bool:
    """Return whether ``ts`` is non-decreasing; raise ValueError naming the first bad row."""
    row, field, is_sorted = kernels().validate(arrays.codes, arrays.ts, arrays.price, arrays.size)
    if row >= 0:
        column = TICK_COLUMNS[field]
        value = ticks[column].iloc[row]
        raise ValueError(
            f"ticks row {row} (index {ticks.index[row]!r}), field {column!r}: "
            f"{FIELD_PROBLEMS[field]}, got {value!r}"
        )
    return bool(is_sorted)
