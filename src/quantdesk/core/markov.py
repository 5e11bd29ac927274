"""Markov-chain maths: the stationary distribution and expected stays of a chain.

Used by the market simulator (to start its regime chains in equilibrium), the regime
model (to start fitted chains and to report durations) and the regime analysis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["expected_durations", "stationary_distribution"]


def _square(transmat: Any) -> np.ndarray:
    matrix = np.asarray(transmat, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"transition matrix must be square, got shape {matrix.shape}")
    return matrix


def stationary_distribution(transmat: Any) -> np.ndarray:
    """Return the stationary distribution ``pi`` with ``pi = pi @ transmat``, summing to 1.

    Solved by least squares on ``(P.T - I) pi = 0`` with ``sum(pi) = 1``, negative
    round-off clipped to 0.  A chain with several closed classes has many solutions;
    the least-squares one is returned, and the uniform distribution if the system
    gives nothing positive.

    Parameters
    ----------
    transmat
        Square row-stochastic matrix (rows: from, columns: to).

    Returns
    -------
    numpy.ndarray
        One probability per state.

    Examples
    --------
    >>> stationary_distribution([[0.9, 0.1], [0.5, 0.5]]).round(6).tolist()
    [0.833333, 0.166667]
    """
    matrix = _square(transmat)
    k = len(matrix)
    system = np.vstack([matrix.T - np.eye(k), np.ones(k)])
    target = np.zeros(k + 1)
    target[-1] = 1.0
    pi = np.clip(np.linalg.lstsq(system, target, rcond=None)[0], 0.0, None)
    if not pi.sum() > 0:
        return np.full(k, 1.0 / k)
    return np.asarray(pi / pi.sum())


def expected_durations(transmat: Any) -> np.ndarray:
    """Return each state's expected stay in periods, ``1 / (1 - p_ii)``.

    A chain leaves state ``i`` each period with probability ``1 - p_ii``, so its stays
    are geometric with that mean.  An absorbing state (``p_ii = 1``) lasts forever
    (``inf``); a NaN diagonal entry (an unvisited state) gives NaN.

    Parameters
    ----------
    transmat
        Square matrix of transition probabilities (rows: from, columns: to).

    Returns
    -------
    numpy.ndarray
        Expected duration per state.

    Examples
    --------
    >>> expected_durations([[0.9, 0.1], [0.5, 0.5]]).tolist()
    [10.000000000000002, 2.0]
    """
    stay = np.diag(_square(transmat))
    with np.errstate(divide="ignore"):
        return np.asarray(np.where(stay >= 1.0, np.inf, 1.0 / (1.0 - stay)))
