"""Labelling: the tercile grid, the assignment of fitted states to regime cells, the frame.

hmmlearn numbers its states arbitrarily (label switching, its issues #140 and #177); after
every fit each state gets one cell of the 3 x 3 grid of :mod:`quantdesk.data.schemas`, all
nine distinct, so ``high/bearish`` always means the most volatile, most negative-trend
group whatever order EM left the states in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantdesk.data.schemas import (
    REGIME_CELL_NAMES,
    REGIME_PROBABILITY_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
)

__all__ = [
    "N_CELLS",
    "assign_cells",
    "quantile_codes",
    "ranks",
    "regime_frame",
    "tercile_codes",
    "trend_dimension",
]

#: Cells of the 3 x 3 volatility x trend grid, one hidden state each.
N_CELLS = len(REGIME_CELL_NAMES)


def ranks(values: np.ndarray) -> np.ndarray:
    """Return the rank of each value, 0 for the smallest (ties by position)."""
    return np.argsort(np.argsort(values, kind="stable"), kind="stable").astype(np.int64)


def tercile_codes(values: np.ndarray) -> np.ndarray:
    """Return 0/1/2 for the lower, middle and upper third of ``values`` (ties by rank)."""
    codes: np.ndarray = np.minimum(3 * ranks(values) // len(values), 2)
    return codes


def quantile_codes(values: np.ndarray, cuts: tuple[float, float]) -> np.ndarray:
    """Return 0/1/2 for ``values`` below, between and above the quantiles ``cuts``."""
    return np.searchsorted(np.quantile(values, cuts), values, side="right").astype(np.int64)


def trend_dimension(columns: tuple[str, ...]) -> str:
    """Return the feature whose means order the trend directions."""
    return "trend" if "trend" in columns else "log_return"


def assign_cells(
    vol_means: np.ndarray,
    trend_means: np.ndarray,
    vol_targets: np.ndarray,
    trend_targets: np.ndarray,
) -> np.ndarray:
    """Return the cell id of each state: the one-to-one assignment closest to the grid.

    The cost of giving state ``s`` cell ``(i, j)`` is the squared distance of its mean
    (``log_vol``, ``trend``) to (``vol_targets[i]``, ``trend_targets[j]``), each dimension in
    units of the spread of its targets so that both count alike.  The optimal assignment
    (``scipy.optimize.linear_sum_assignment``, the Hungarian algorithm) gives every cell
    exactly one state, whatever order EM left the states in.
    """
    from scipy.optimize import linear_sum_assignment

    vol_unit = max(float(vol_targets[2] - vol_targets[0]), 1e-9)
    trend_unit = max(float(trend_targets[2] - trend_targets[0]), 1e-9)
    cell_vol = np.repeat(vol_targets, 3)
    cell_trend = np.tile(trend_targets, 3)
    cost = ((vol_means[:, None] - cell_vol[None, :]) / vol_unit) ** 2 + (
        (trend_means[:, None] - cell_trend[None, :]) / trend_unit
    ) ** 2
    states, cells = linear_sum_assignment(cost)
    state_map = np.empty(len(vol_means), dtype=np.int64)
    state_map[states] = cells
    return state_map


def regime_frame(probs: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Return the filter/smooth output frame for cell probabilities ``probs``."""
    state = probs.argmax(axis=1).astype(np.int64) if len(probs) else np.empty(0, np.int64)
    vol = pd.array(VOL_LABELS, dtype="str").take(state // 3)
    trend = pd.array(TREND_LABELS, dtype="str").take(state % 3)
    frame = pd.DataFrame({"state": state, "vol_label": vol, "trend_label": trend}, index=index)
    for c, name in enumerate(REGIME_PROBABILITY_COLUMNS):
        frame[name] = probs[:, c]
    frame.index.name = "ts"
    return frame
