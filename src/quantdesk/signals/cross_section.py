"""Cross-sectional transforms of wide panels: each row (one ``ts``) is treated on its own.

Every function takes a wide panel (index ``ts``, one column per symbol) and returns a panel
with the same index and columns.  A row of the result depends on the same row of the input
only, so the transforms are causal whenever their input is.  Missing values are ignored by
the row statistics and stay missing in the result.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["demean", "rank", "winsorize", "zscore"]


def rank(panel: pd.DataFrame, *, pct: bool = True) -> pd.DataFrame:
    """Return the rank of every value within its row (ties share their average rank).

    With ``pct=True`` the rank is divided by the number of non-missing values in the row,
    so it lies in (0, 1] with 1 for the largest; otherwise it runs from 1 to that number.

    Examples
    --------
    >>> panel = pd.DataFrame({"A": [3.0, 1.0], "B": [1.0, None], "C": [2.0, 5.0]})
    >>> rank(panel).round(4).to_numpy().tolist()
    [[1.0, 0.3333, 0.6667], [0.5, nan, 1.0]]
    """
    return panel.rank(axis=1, method="average", pct=pct)


def demean(panel: pd.DataFrame) -> pd.DataFrame:
    """Return every value minus the mean of its row.

    Examples
    --------
    >>> demean(pd.DataFrame({"A": [1.0], "B": [2.0], "C": [6.0]})).to_numpy().tolist()
    [[-2.0, -1.0, 3.0]]
    """
    return panel.sub(panel.mean(axis=1), axis=0)


def _standardise(panel: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Row means and row standard deviations (``ddof=1``; NaN where not positive)."""
    std = panel.std(axis=1, ddof=1)
    return panel.mean(axis=1), std.where(std > 0)


def zscore(panel: pd.DataFrame, *, winsorize: float | None = None) -> pd.DataFrame:
    """Return every value as a z-score within its row: ``(x - mean) / std``, ``ddof=1``.

    Parameters
    ----------
    panel
        Wide panel.
    winsorize
        If given, a number ``k > 0``: each row is first clipped to its
        ``mean +/- k * std``, then the clipped row is standardised again, so the result
        still has row mean 0 and standard deviation 1 (its extreme values lie near
        ``+/- k``, not exactly on it).

    Returns
    -------
    pd.DataFrame
        Rows with fewer than two values or no dispersion are NaN.

    Examples
    --------
    >>> zscore(pd.DataFrame({"A": [1.0], "B": [2.0], "C": [3.0]})).to_numpy().tolist()
    [[-1.0, 0.0, 1.0]]
    """
    mean, std = _standardise(panel)
    if winsorize is not None:
        if not winsorize > 0:
            raise ValueError(
                f"winsorize must be a positive number of standard deviations: {winsorize}"
            )
        panel = panel.clip(lower=mean - winsorize * std, upper=mean + winsorize * std, axis=0)
        mean, std = _standardise(panel)
    return panel.sub(mean, axis=0).div(std, axis=0)


def winsorize(panel: pd.DataFrame, lower: float = 0.01, upper: float = 0.99) -> pd.DataFrame:
    """Return every row clipped to its own ``lower`` and ``upper`` quantiles.

    The quantiles are pandas' (linear interpolation between the non-missing values of the
    row).

    Examples
    --------
    >>> panel = pd.DataFrame({"A": [0.0], "B": [1.0], "C": [2.0], "D": [3.0], "E": [100.0]})
    >>> winsorize(panel, 0.25, 0.75).to_numpy().tolist()
    [[1.0, 1.0, 2.0, 3.0, 3.0]]
    """
    if not 0.0 <= lower < upper <= 1.0:
        raise ValueError(f"need 0 <= lower < upper <= 1, got lower={lower}, upper={upper}")
    bounds = panel.quantile([lower, upper], axis=1)
    return panel.clip(lower=bounds.iloc[0], upper=bounds.iloc[1], axis=0)
