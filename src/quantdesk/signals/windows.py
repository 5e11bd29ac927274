"""Rolling windows over whole wide panels at once.

``DataFrame.rolling`` runs one kernel call per column, so on a universe of 800
symbols most of its time is per-column overhead.  These functions run one compiled
kernel over the whole 2-D array with the same online add/remove algorithm pandas
uses (Kahan-compensated sums; Welford updates for the variance), and return the
same values as ``rolling(window)`` with its default ``min_periods=window``: a result
needs ``window`` non-NaN values in the window, otherwise it is NaN.  All are causal.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["rolling_mean", "rolling_std"]


@cache
def _kernels() -> tuple[Callable[..., Any], Callable[..., Any]]:
    import numba

    @numba.njit(cache=True, nogil=True)  # type: ignore[misc]
    def mean_kernel(values: np.ndarray, window: int) -> np.ndarray:
        cols, rows = values.shape
        out = np.full((cols, rows), np.nan)
        for j in range(cols):
            total = 0.0
            comp = 0.0  # Kahan compensation
            nobs = 0
            for i in range(rows):
                x = values[j, i]
                if x == x:
                    nobs += 1
                    y = x - comp
                    t = total + y
                    comp = (t - total) - y
                    total = t
                if i >= window:
                    old = values[j, i - window]
                    if old == old:
                        nobs -= 1
                        y = -old - comp
                        t = total + y
                        comp = (t - total) - y
                        total = t
                if nobs == window:
                    out[j, i] = total / nobs
        return out

    @numba.njit(cache=True, nogil=True)  # type: ignore[misc]
    def var_kernel(values: np.ndarray, window: int, ddof: int) -> np.ndarray:
        cols, rows = values.shape
        out = np.full((cols, rows), np.nan)
        for j in range(cols):
            nobs = 0
            mean = 0.0
            ssqdm = 0.0
            same = 0  # length of the current run of equal values
            for i in range(rows):
                x = values[j, i]
                if x == x:
                    nobs += 1
                    delta = x - mean
                    mean += delta / nobs
                    ssqdm += delta * (x - mean)
                    same = same + 1 if i > 0 and values[j, i - 1] == x else 1
                else:
                    same = 0
                if i >= window:
                    old = values[j, i - window]
                    if old == old:
                        nobs -= 1
                        if nobs == 0:
                            mean = 0.0
                            ssqdm = 0.0
                        else:
                            delta = old - mean
                            mean -= delta / nobs
                            ssqdm -= delta * (old - mean)
                if i % window == window - 1 and nobs > 0:
                    # Online updates drift by about eps * level**2 each; an exact two-pass
                    # recomputation once per window keeps the error bounded.
                    total = 0.0
                    for k in range(i - window + 1, i + 1):
                        if values[j, k] == values[j, k]:
                            total += values[j, k]
                    mean = total / nobs
                    ssqdm = 0.0
                    for k in range(i - window + 1, i + 1):
                        if values[j, k] == values[j, k]:
                            ssqdm += (values[j, k] - mean) ** 2
                if nobs == window:
                    out[j, i] = 0.0 if same >= window else max(ssqdm, 0.0) / (nobs - ddof)
        return out

    return mean_kernel, var_kernel


def _by_column(frame: pd.DataFrame) -> np.ndarray:
    """Return the frame's values as (columns, rows), each column contiguous (as the kernels
    walk them); a float frame's values are stored so already, and are not copied."""
    return np.ascontiguousarray(frame.to_numpy(dtype=np.float64).T)


def _check(window: int) -> None:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


def rolling_mean(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    """Return the mean over the trailing ``window`` rows of every column.

    Examples
    --------
    >>> rolling_mean(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]}), 2)["a"].tolist()
    [nan, 1.5, 2.5, 3.5]
    """
    _check(window)
    out = _kernels()[0](_by_column(frame), window)
    return pd.DataFrame(out.T, index=frame.index, columns=frame.columns)


def rolling_std(frame: pd.DataFrame, window: int, ddof: int = 1) -> pd.DataFrame:
    """Return the standard deviation (``ddof=1``) over the trailing ``window`` rows.

    Examples
    --------
    >>> rolling_std(pd.DataFrame({"a": [1.0, 2.0, 4.0]}), 3)["a"].round(6).tolist()
    [nan, nan, 1.527525]
    """
    _check(window)
    if window <= ddof:
        raise ValueError(f"window ({window}) must exceed ddof ({ddof})")
    out = np.sqrt(_kernels()[1](_by_column(frame), window, ddof))
    return pd.DataFrame(out.T, index=frame.index, columns=frame.columns)
