"""Fit diagnostics: is a fitted regime grid degenerate, and why.

A fit is degenerate when a volatility level or trend direction (for the free structure, a
cell) holds almost no days, when neighbouring levels are not ordered and separated in the
dimension that defines them, or when volatility levels last no longer than the noise of
the volatility window (as on a market with one regime).  :class:`RegimeModel` then falls
back to the product of two 3-state chains and checks that too; see ``research/regimes.md``.
"""

from __future__ import annotations

import math

import numpy as np

from quantdesk.data.schemas import REGIME_CELL_NAMES, TREND_LABELS, VOL_LABELS
from quantdesk.regimes.chain import GaussianChain
from quantdesk.regimes.labels import trend_dimension

__all__ = [
    "joint_degeneracy",
    "level_durations",
    "persistence_problems",
    "product_degeneracy",
]

# A volatility level must last this many volatility windows on average (see
# persistence_problems).
_MIN_VOL_PERSISTENCE = 2.0
_VOL_LEVEL_CELLS: tuple[tuple[int, ...], ...] = ((0, 1, 2), (3, 4, 5), (6, 7, 8))
_TREND_LEVEL_CELLS: tuple[tuple[int, ...], ...] = ((0, 3, 6), (1, 4, 7), (2, 5, 8))
# Cap on an expected trend episode (days) when separating drifts (a chain that never leaves
# a level has an infinite one).
_MAX_EPISODE_DAYS = 10_000.0


def joint_degeneracy(
    chain: GaussianChain,
    occupancy: np.ndarray,
    *,
    structure: str,
    min_occupancy: float,
    min_separation: float,
    drift_separation: float,
    vol_window: int,
) -> str | None:
    """Return why the 9-state fit is degenerate, or None if it is a clean 3x3 grid.

    The thresholds are :class:`~quantdesk.regimes.model.RegimeModel`'s parameters of the
    same names; ``occupancy`` is the expected share of training days in each cell.
    """
    problems = []
    if structure == "factorial":
        # A cell's parameters are its volatility level's and trend direction's, so a
        # combination the window never saw (no bullish days in high volatility, say) is
        # no defect; a level or a direction that holds no days is.
        grid = occupancy.reshape(3, 3)
        names = [*VOL_LABELS, *TREND_LABELS]
        shares = [*grid.sum(axis=1), *grid.sum(axis=0)]
        what = "level(s)"
    else:
        names, shares, what = list(REGIME_CELL_NAMES), list(occupancy), "cell(s)"
    empty = [n for n, share in zip(names, shares, strict=True) if share < min_occupancy]
    if empty:
        problems.append(
            f"{what} {', '.join(empty)} hold less than {min_occupancy:.1%} of the training bars"
        )
    means = chain.means.reshape(3, 3, -1)  # [vol level, trend direction, feature]
    covars = chain.full_covars()
    trend_dim = trend_dimension(chain.columns)
    for dim, axis, labels, others in (
        ("log_vol", 0, VOL_LABELS, TREND_LABELS),
        (trend_dim, 1, TREND_LABELS, VOL_LABELS),
    ):
        f = chain.columns.index(dim)
        unit = float(np.sqrt(np.mean(covars[:, f, f])))
        what = "within-state sd"
        if dim == "log_return":
            # One day's return says little about the drift: separate the drifts by
            # their standard error over an expected trend episode.
            days = level_durations(chain.transmat, chain.startprob, _TREND_LEVEL_CELLS)
            unit /= math.sqrt(float(np.mean(np.minimum(days, _MAX_EPISODE_DAYS))))
            what = "standard errors over a trend episode"
        need = drift_separation if dim == "log_return" else min_separation
        levels = np.moveaxis(means[:, :, f], axis, 0)  # [level in dim, level of the other]
        for o, other in enumerate(others):
            for g, gap in enumerate(np.diff(levels[:, o]) / unit):
                if gap < need:
                    problems.append(
                        f"{labels[g]} and {labels[g + 1]} {dim} at {other} are "
                        f"{gap:+.2f} {what} apart (need >= {need:g})"
                    )
    problems += persistence_problems(
        level_durations(chain.transmat, chain.startprob, _VOL_LEVEL_CELLS), vol_window
    )
    return "; ".join(problems) if problems else None


def persistence_problems(durations: np.ndarray, vol_window: int) -> list[str]:
    """Return a problem for each volatility level that lasts no longer than noise would.

    Under a single volatility regime ``log_vol`` still wanders, because of the sampling
    noise of its window, and a fitted level then lasts about as long as the window (4-11
    days for a 5-day window on simulated constant-volatility prices, against 14 days
    and more on S&P 500 decades and 22 and more on the regime simulator).
    """
    floor = _MIN_VOL_PERSISTENCE * vol_window
    return [
        f"{label} volatility lasts {days:.1f} bars on average, no longer than the noise of "
        f"the {vol_window}-bar volatility window (need >= {floor:g})"
        for label, days in zip(VOL_LABELS, durations, strict=True)
        if days < floor
    ]


def product_degeneracy(
    chains: tuple[GaussianChain, ...], *, min_separation: float, vol_window: int
) -> str | None:
    """Return why the product fallback (volatility chain, trend chain) is degenerate, or None."""
    problems = []
    for chain, dim, labels in zip(
        chains, ("log_vol", "trend"), (VOL_LABELS, TREND_LABELS), strict=True
    ):
        f = chain.columns.index(dim)
        sd = float(np.sqrt(np.mean(chain.full_covars()[:, f, f])))
        for g, gap in enumerate(np.diff(chain.means[:, f]) / sd):
            if gap < min_separation:
                problems.append(
                    f"{labels[g]} and {labels[g + 1]} {dim} are {gap:.2f} within-state sd apart"
                )
    vol_chain = chains[0]
    problems += persistence_problems(
        level_durations(vol_chain.transmat, vol_chain.startprob, ((0,), (1,), (2,))), vol_window
    )
    return "; ".join(problems) if problems else None


def level_durations(
    transmat: np.ndarray, stationary: np.ndarray, levels: tuple[tuple[int, ...], ...]
) -> np.ndarray:
    """Return the expected stay in each group of states, ``1 / (1 - P(stay in group))``.

    ``P(stay in group)`` averages the within-group transition mass over the group's states,
    weighted by their stationary probabilities.
    """
    out = np.empty(len(levels))
    for i, group in enumerate(levels):
        idx = list(group)
        weights = stationary[idx]
        stay = transmat[np.ix_(idx, idx)].sum(axis=1)
        p_stay = float(weights @ stay / weights.sum()) if weights.sum() > 0 else 0.0
        out[i] = np.inf if p_stay >= 1.0 else 1.0 / (1.0 - p_stay)
    return out
