"""The factorial M-step: EM updates of a 9-state HMM tied to the 3 x 3 regime grid.

State (volatility ``v``, trend ``d``) has the emission of its volatility level and trend
direction, and the transition matrix is the Kronecker product of a volatility chain and a
trend chain (25 free parameters against the free model's 90; see ``research/regimes.md``).
Pure numpy on EM's sufficient statistics; :mod:`quantdesk.regimes.em` plugs it into hmmlearn.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CELL_TREND",
    "CELL_VOL",
    "factorial_emissions",
    "factorial_transmat",
    "trend_prior_counts",
]

CELL_VOL = np.repeat(np.arange(3), 3)
CELL_TREND = np.tile(np.arange(3), 3)
# Coordinate-ascent sweeps between the trend means and the volatility variances of the
# daily return in one factorial M-step (each sweep raises the expected log-likelihood).
_RETURN_SWEEPS = 4
# Where a trend direction goes when it ends, in the trend-chain prior (rows: from bearish,
# neutral, bullish): a trend ends in a sideways market three times in four.
_TREND_PRIOR_EXITS = ((0.0, 0.75, 0.25), (0.5, 0.0, 0.5), (0.25, 0.75, 0.0))


def _group_sums(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Return the sum of ``values`` (over states) within each of the 3 levels in ``groups``."""
    return np.bincount(groups, weights=values, minlength=3)


def factorial_emissions(
    post: np.ndarray,
    obs: np.ndarray,
    obs2: np.ndarray,
    columns: tuple[str, ...],
    means: np.ndarray,
    min_covar: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the factorial model's means and diagonal variances from EM statistics.

    ``post``, ``obs``, ``obs2`` are the expected count, sum and sum of squares of each
    feature in each of the nine states (hmmlearn's sufficient statistics).  The emission of
    state (volatility ``v``, trend ``d``) is tied by what each feature measures:

    * ``log_vol``: mean and variance depend on ``v`` only;
    * ``log_return``: mean depends on ``d`` (the drift), variance on ``v`` (the volatility),
      as in a returns process ``r = mu[d] + sigma[v] * e``; the two are solved jointly by
      coordinate ascent from the current ``means``;
    * ``trend``: mean depends on ``d``; one variance for all states.

    Each update is the exact maximiser of the expected complete-data log-likelihood under
    that tying (the return's, per coordinate), so EM keeps its monotone ascent.
    """
    n = post + 1e-12
    out_means = np.empty_like(obs)
    out_vars = np.empty_like(obs)
    vol, trend = CELL_VOL, CELL_TREND
    for f, column in enumerate(columns):
        s1, s2 = obs[:, f], obs2[:, f]
        if column == "log_vol":
            count = _group_sums(n, vol)
            mean = _group_sums(s1, vol) / count
            out_means[:, f] = mean[vol]
            out_vars[:, f] = (_group_sums(s2, vol) / count - mean**2)[vol]
        elif column == "log_return":
            mu = np.asarray(means[:3, f], dtype=np.float64)  # states 0, 1, 2: trend 0, 1, 2
            for _ in range(_RETURN_SWEEPS):
                m = mu[trend]
                var = _group_sums(s2 - 2 * m * s1 + m**2 * n, vol) / _group_sums(n, vol)
                precision = 1.0 / np.maximum(var, min_covar)[vol]
                mu = _group_sums(s1 * precision, trend) / _group_sums(n * precision, trend)
            m = mu[trend]
            var = _group_sums(s2 - 2 * m * s1 + m**2 * n, vol) / _group_sums(n, vol)
            out_means[:, f] = m
            out_vars[:, f] = var[vol]
        elif column == "trend":
            mean = (_group_sums(s1, trend) / _group_sums(n, trend))[trend]
            out_means[:, f] = mean
            out_vars[:, f] = np.sum(s2 - 2 * mean * s1 + mean**2 * n) / n.sum()
        else:  # pragma: no cover - RegimeModel validates the columns
            raise ValueError(f"no factorial role for feature {column!r}")
    return out_means, np.maximum(out_vars, min_covar)


def factorial_transmat(counts: np.ndarray, trend_prior: np.ndarray | None = None) -> np.ndarray:
    """Return ``kron(A_vol, A_trend)`` from expected 9x9 transition counts.

    With independent volatility and trend chains the expected log-likelihood of the
    transitions splits into one term per chain, each maximised by its own normalised
    counts: the counts summed over the other chain's states.  ``trend_prior`` (3x3
    pseudo-counts, :func:`trend_prior_counts`) is a Dirichlet prior on the trend chain's
    rows: the MAP update adds it to the trend chain's counts.
    """
    c = np.asarray(counts, dtype=np.float64).reshape(3, 3, 3, 3)  # [v, d, v', d']
    chains = []
    for i, a in enumerate((c.sum(axis=(1, 3)), c.sum(axis=(0, 2)))):
        if i == 1 and trend_prior is not None:
            a = a + trend_prior
        a = a + 1e-12
        chains.append(a / a.sum(axis=1, keepdims=True))
    return np.asarray(np.kron(chains[0], chains[1]))


def trend_prior_counts(weight: float, days: float) -> np.ndarray | None:
    """Return the Dirichlet pseudo-counts of the trend-chain prior (None if ``weight`` is 0).

    Each row holds ``weight`` pseudo-transitions of a chain whose directions last ``days``
    days on average; a bearish or bullish trend ends in a neutral market
    (``_TREND_PRIOR_EXITS``) three times in four, and a neutral market turns either way
    alike.
    """
    if weight <= 0:
        return None
    stay = 1.0 - 1.0 / days
    prior = (1.0 - stay) * np.asarray(_TREND_PRIOR_EXITS, dtype=np.float64)
    np.fill_diagonal(prior, stay)
    return np.asarray(weight * prior)
