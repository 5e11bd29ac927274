"""EM runs on hmmlearn: starting points, the fitting HMM classes, short-run start selection.

hmmlearn computes the forward-backward posteriors and sufficient statistics; this module
gives it a faster emission density, the factorial M-step of
:mod:`quantdesk.regimes.factorial`, a MAP-EM convergence monitor, and the starts EM runs
from (tercile grid, random grids or days, or a previous model: a warm start).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from quantdesk.regimes.chain import MIN_COVAR, GaussianChain
from quantdesk.regimes.factorial import factorial_emissions, factorial_transmat
from quantdesk.regimes.filtering import gaussian_log_density
from quantdesk.regimes.labels import N_CELLS

if TYPE_CHECKING:
    from hmmlearn.hmm import GaussianHMM

    from quantdesk.regimes.features import Standardizer

__all__ = [
    "EMResult",
    "factorial_start",
    "fit_best",
    "group_start",
    "random_start",
    "run_em",
    "sticky_transmat",
    "warm_start",
]

logger = logging.getLogger(__name__)

# EM iterations each start runs before the best one continues (short-run EM selection).
_PROBE_ITER = 8


class EMResult:
    """An EM run: the fitted hmmlearn model, its log-likelihood and convergence."""

    def __init__(self, hmm: GaussianHMM, n_iter: int) -> None:
        history = list(hmm.monitor_.history)
        self.hmm = hmm
        self.log_likelihood = float(history[-1]) if history else -np.inf
        self.n_iter = n_iter
        self.converged = len(history) >= 2 and abs(history[-1] - history[-2]) < hmm.monitor_.tol


@functools.cache
def _monitor_class() -> type:
    """Return an hmmlearn convergence monitor for MAP-EM.

    With a prior on the means, EM raises the posterior; the likelihood alone, which
    hmmlearn monitors, may dip a little on the way.  This monitor stops when the
    likelihood changes by less than ``tol`` either way (hmmlearn's stops at the first dip
    and warns), and unlike hmmlearn's it does not call reaching ``n_iter`` "converged".
    hmmlearn documents replacing ``monitor_`` with a subclass as the way to do this.
    """
    from hmmlearn.base import ConvergenceMonitor

    class _MapMonitor(ConvergenceMonitor):  # type: ignore[misc]
        def report(self, log_prob: float) -> None:
            self.history.append(log_prob)
            self.iter += 1

        @property
        def converged(self) -> bool:
            history = self.history
            return bool(
                self.iter >= self.n_iter
                or (len(history) >= 2 and abs(history[-1] - history[-2]) < self.tol)
            )

    return _MapMonitor


def _compact_covars(full: np.ndarray, covariance_type: str) -> np.ndarray:
    """Return ``(K, d, d)`` full covariances in hmmlearn's shape for ``covariance_type``."""
    if covariance_type == "full":
        return full
    if covariance_type == "tied":
        return np.asarray(full.mean(axis=0))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in full])
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


@functools.cache
def _fitting_hmm_class() -> type[GaussianHMM]:
    """Return ``GaussianHMM`` with a faster emission density, used for EM only.

    hmmlearn evaluates Gaussian densities through ``scipy.linalg.solve_triangular`` with
    input validation on each call; :func:`gaussian_log_density` gives the same numbers in
    about a tenth of the time, which was half of an EM iteration.  Smoothing uses stock
    ``GaussianHMM``, so filter-versus-smoother checks compare two implementations.
    """
    from hmmlearn.hmm import GaussianHMM

    class _FastGaussianHMM(GaussianHMM):  # type: ignore[misc]
        def _compute_log_likelihood(self, X: np.ndarray) -> np.ndarray:
            return gaussian_log_density(X, self.means_, self.covars_)

    return _FastGaussianHMM


def _factorial_hmm_class() -> type[GaussianHMM]:
    """Return the fitting HMM with the factorial M-step (:func:`factorial_emissions`).

    hmmlearn computes the forward-backward posteriors and the sufficient statistics; only
    the parameter update is replaced, which is how hmmlearn's own model classes differ.
    ``columns`` (set on the instance) names the feature in each column.
    """

    class _FactorialGaussianHMM(_fitting_hmm_class()):  # type: ignore[misc]
        columns: tuple[str, ...] = ()
        trend_prior: np.ndarray | None = None

        def _do_mstep(self, stats: dict[str, Any]) -> None:
            current: np.ndarray = np.asarray(getattr(self, "means_"))  # noqa: B009
            means, variances = factorial_emissions(
                stats["post"],
                stats["obs"],
                stats["obs**2"],
                self.columns,
                current,
                self.min_covar,
            )
            self.means_ = means
            self.covars_ = variances
            self.transmat_ = factorial_transmat(stats["trans"], self.trend_prior)

    return _FactorialGaussianHMM


def factorial_start(
    x: np.ndarray,
    columns: tuple[str, ...],
    vol_codes: np.ndarray,
    trend_codes: np.ndarray,
    stay: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return a factorial EM start: the factorial M-step on a hard grid of the days.

    Day ``t`` is given to cell ``3 * vol_codes[t] + trend_codes[t]``; the start is the tied
    parameters that fit that assignment, with sticky chains (``stay`` on the diagonal).
    """
    cells = 3 * vol_codes + trend_codes
    post = np.bincount(cells, minlength=N_CELLS).astype(np.float64)
    obs = np.stack([np.bincount(cells, weights=col, minlength=N_CELLS) for col in x.T], 1)
    obs2 = np.stack([np.bincount(cells, weights=col**2, minlength=N_CELLS) for col in x.T], 1)
    trend_means = np.stack(
        [
            np.bincount(trend_codes, weights=col, minlength=3)
            / np.maximum(np.bincount(trend_codes, minlength=3), 1)
            for col in x.T
        ],
        1,
    )
    means, variances = factorial_emissions(post, obs, obs2, columns, trend_means, MIN_COVAR)
    chain = sticky_transmat(3, stay)
    full = np.stack([np.diag(v) for v in variances])
    return np.kron(chain, chain), means, full


def run_em(
    x: np.ndarray,
    start: tuple[np.ndarray, np.ndarray, np.ndarray],
    covariance_type: str,
    n_iter: int,
    tol: float,
    prior: tuple[np.ndarray, float],
    factorial: tuple[str, ...] = (),
    trend_prior: np.ndarray | None = None,
) -> EMResult:
    """Run EM from ``(transmat, means, full covars)`` for at most ``n_iter`` iterations.

    ``factorial`` names the feature columns for the factorial M-step
    (:func:`factorial_emissions`); empty: hmmlearn's free Gaussian M-step.
    ``trend_prior``: the factorial trend chain's Dirichlet pseudo-counts, or None.
    """
    transmat, means, full_covars = start
    k, d = means.shape
    hmm_class = _factorial_hmm_class() if factorial else _fitting_hmm_class()
    hmm = hmm_class(
        n_components=k,
        covariance_type=covariance_type,
        min_covar=MIN_COVAR,
        n_iter=max(int(n_iter), 1),
        tol=tol,
        # The start distribution is not learnt: on one sequence EM would put all its mass
        # on the state of the first day.  Filtering starts from the stationary distribution.
        params="tmc",
        init_params="",
        implementation="scaling",
    )
    hmm.n_features = d
    hmm.startprob_ = np.full(k, 1.0 / k)
    hmm.transmat_ = transmat
    hmm.means_ = means
    hmm.covars_ = _compact_covars(full_covars, covariance_type) + 0.0
    prior_means, prior_weight = prior
    if prior_weight > 0:
        hmm.means_prior = prior_means
        hmm.means_weight = prior_weight
    if factorial:
        hmm.columns = factorial
        hmm.trend_prior = trend_prior
    hmm.monitor_ = _monitor_class()(tol, hmm.n_iter, False)
    hmm.fit(x)
    return EMResult(hmm, int(hmm.monitor_.iter))


def _continue_em(result: EMResult, x: np.ndarray, n_iter: int) -> EMResult:
    """Return ``result`` after up to ``n_iter`` more EM iterations from where it stopped."""
    if result.converged or n_iter <= 0:
        return result
    hmm = result.hmm
    hmm.n_iter = n_iter
    hmm.monitor_.n_iter = n_iter  # the monitor keeps its own copy of the limit
    hmm.fit(x)
    return EMResult(hmm, result.n_iter + int(hmm.monitor_.iter))


def sticky_transmat(k: int, stay: float) -> np.ndarray:
    transmat = np.full((k, k), (1.0 - stay) / (k - 1))
    np.fill_diagonal(transmat, stay)
    return transmat


def group_start(
    x: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an EM start: each state at the mean of its group, pooled within-group covariance."""
    d = x.shape[1]
    means = np.empty((n_groups, d))
    pooled = np.zeros((d, d))
    for g in range(n_groups):
        rows = x[groups == g]
        means[g] = rows.mean(axis=0) if len(rows) else x.mean(axis=0)
        if len(rows) > 1:
            pooled += (rows - means[g]).T @ (rows - means[g])
    pooled = pooled / max(len(x) - n_groups, 1) + MIN_COVAR * np.eye(d)
    full = np.broadcast_to(pooled, (n_groups, d, d)).copy()
    return sticky_transmat(n_groups, 0.95), means, full


def random_start(
    x: np.ndarray, n_states: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an EM start at ``n_states`` random days, with the total covariance."""
    d = x.shape[1]
    means = x[rng.choice(len(x), size=n_states, replace=False)]
    cov = np.atleast_2d(np.cov(x, rowvar=False)) + MIN_COVAR * np.eye(d)
    full = np.broadcast_to(cov, (n_states, d, d)).copy()
    return sticky_transmat(n_states, float(rng.uniform(0.85, 0.98))), means, full


def fit_best(
    x: np.ndarray,
    starts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    covariance_type: str,
    n_iter: int,
    tol: float,
    prior: tuple[np.ndarray, float],
    factorial: tuple[str, ...] = (),
    trend_prior: np.ndarray | None = None,
) -> EMResult:
    """Return the EM run with the best log-likelihood over ``starts`` (short-run selection).

    With one start, EM simply runs to convergence.  With several, each runs
    ``_PROBE_ITER`` iterations, and the best continues up to ``n_iter`` in all: the ranking
    of starts rarely changes after the first iterations, and it costs a fraction of running
    every start to convergence.
    """
    if len(starts) == 1:
        return run_em(x, starts[0], covariance_type, n_iter, tol, prior, factorial, trend_prior)
    probes = [
        run_em(x, s, covariance_type, min(_PROBE_ITER, n_iter), tol, prior, factorial, trend_prior)
        for s in starts
    ]
    scores = [p.log_likelihood for p in probes]
    best = probes[int(np.argmax(scores))]
    logger.debug("EM start log-likelihoods after %d iterations: %s", _PROBE_ITER, scores)
    return _continue_em(best, x, n_iter - best.n_iter)


def warm_start(
    chain: GaussianChain, old: Standardizer, new: Standardizer
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an EM start from ``chain``'s parameters, moved to ``new``'s standardisation."""
    idx = [old.columns_.index(c) for c in chain.columns]
    idx_new = [new.columns_.index(c) for c in chain.columns]
    raw_means = chain.means * old.scale_[idx] + old.mean_[idx]
    means = (raw_means - new.mean_[idx_new]) / new.scale_[idx_new]
    ratio = old.scale_[idx] / new.scale_[idx_new]
    full = chain.full_covars() * ratio[None, :, None] * ratio[None, None, :]
    return chain.transmat.copy(), means, np.array(full)
