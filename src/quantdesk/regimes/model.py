"""The 9-state market regime model: 3 volatility levels x 3 trend directions, on hmmlearn.

:class:`RegimeModel` fits a Gaussian hidden Markov model (hmmlearn ``GaussianHMM``) to the
standardised features of :mod:`quantdesk.regimes.features` and names each hidden state after
one cell of the 3x3 grid::

    cell id = vol_index * 3 + trend_index      0 = low/bearish ... 8 = high/bullish

Design, in short (each point is detailed where it is implemented):

* **Two structures.**  ``structure="factorial"`` (the default) ties the nine states'
  Gaussian emissions to the grid, the way the regimes are defined: state (volatility ``v``,
  trend ``d``) sees ``log_vol`` with mean and variance of level ``v``, the daily
  ``log_return`` with the drift of direction ``d`` and the variance of level ``v`` (a
  returns process ``r = mu[d] + sigma[v] e``), and the ``trend`` t-statistic with the mean
  of direction ``d``; the transition matrix is the Kronecker product of a volatility chain
  and a trend chain.  EM is hmmlearn's, with the M-step replaced by the exact maximiser
  under that tying (:func:`_factorial_emissions`, :func:`_factorial_transmat`).  It has 25
  free parameters where the free model has 90, so EM has far less room for other optima:
  independent refits of S&P 500 decades shifted by a month agree on 97-99.5% of days (the
  free model: 72-99%).
* **Reading the trend** (factorial, ``hmm_features="auto"``, the default).  The daily
  return with a drift per trend direction *is* the returns process, and is what the
  Bayes filter that knows the true parameters reads; the ``trend`` t-statistic is a
  smoothed function of the same returns, so an HMM that also takes it as an independent
  observation each day counts every return some 60 times (the statistic's integrated
  autocorrelation time at a 21-day half-life) and switches on its threshold crossings.
  So the model first fits (``log_return``, ``log_vol``) and keeps it if the fitted drifts
  of neighbouring directions are at least ``drift_separation`` (0.5) standard errors of a
  drift over a trend episode apart; where returns alone do not separate three drifts (a
  decade of the S&P 500, whose trends are weaker than its noise) it fits
  (``log_return``, ``log_vol``, ``trend``), where the statistic names the directions.
  ``hmm_features_`` says which.  Simulated trend accuracy (benchmark, twelve 20-year
  paths) is 0.565 against 0.539 for the second set alone; the true-parameter filter
  reaches 0.578.
* **A Dirichlet prior on the trend chain** (factorial; MAP-EM, ``trend_prior_weight``
  pseudo-transitions per row of a chain whose directions last ``trend_prior_days``, a
  quarter, and end in a neutral market three times in four).  Twenty years of returns pin
  a trend's duration only loosely (unpenalised fits of 80-100-day simulated trends gave
  7 to 256 days), and a filter with the wrong persistence flips direction on noise; with
  the prior the fitted durations lie within a factor 1.5 of a quarter.
  ``structure="free"`` is the unconstrained 9-state ``GaussianHMM`` on (``log_vol``,
  ``trend``) with a tied covariance, the earlier design; without the tying, the raw return
  let states specialise in the up days and the down days of a crisis (states lasting under
  two days on the S&P 500), so that structure leaves it out by default.
* **Initialisation**: the first start is the tercile grid (volatility tercile of
  ``log_vol`` x trend tercile of ``trend`` in the training window): the factorial model
  starts from the tied parameters of that hard assignment, the free model puts each state
  at the feature means of one cell.  The other ``n_init - 1`` starts cut the grid at
  random quantiles (factorial) or put states at random days (free).  Each start runs a few
  EM iterations, the best log-likelihood continues to convergence (short-run selection).
* **A weak prior on the means** (free structure and the product fallback; MAP-EM,
  ``prior_weight`` pseudo-days at each state's tercile-grid cell).  Where the likelihood
  is nearly flat across arrangements of nine states (a decade of real prices) it picks the
  arrangement nearest the grid, so that fits on overlapping windows agree: independent
  refits of 11 S&P 500 decades, each against the same decade shifted by a month, put
  27-100% (median 88%) of the overlapping days in the same cell without it and 72-99%
  (median 99%) with it.  The factorial structure needs no prior.
* **Labels** (hmmlearn's label switching, its issues #140 and #177): after every fit each
  state gets one cell, all nine distinct.  Factorial: state ``3 v + d`` keeps its
  volatility level and trend direction through EM, so the three volatility levels are
  ordered by their ``log_vol`` means and the three directions by their ``trend`` means
  (``log_return`` without ``trend``).  Free: ``scipy.optimize.linear_sum_assignment``
  matches the states' mean ``log_vol`` and ``trend`` to the tercile means of the training
  window.  Either way ``high/bearish`` always means the most volatile, most negative-trend
  group, whatever order EM left the states in; the parameters are stored in cell order.
* **Degenerate fits** (a volatility level or trend direction, or for the free structure a
  cell, that holds almost no days; neighbouring levels not ordered and separated in the
  dimension that defines them; volatility levels that last no longer than the noise of the
  volatility window, as on a market with one regime) are logged, recorded in
  ``degenerate_``, and the model falls back to the product of a 3-state volatility HMM (on
  ``log_vol``) and a 3-state trend HMM (on ``trend``), fitted separately; the probability of
  a cell is the product of the two chains' probabilities (``kind_ == "product"``).  If the
  fallback fails the same checks, ``degenerate_`` says so too.
* **Inference without look-ahead**: :meth:`RegimeModel.filter` runs its own forward
  recursion (:func:`forward_filter`), P(state at t | features up to t).  hmmlearn's
  ``predict_proba`` is forward-backward smoothing, which uses the future; it is offered only
  as :meth:`RegimeModel.smooth`, for historical analysis.  Both start from the stationary
  distribution of the fitted transition matrix, so a filter over bars that start on any day
  starts from the long-run regime mix.
* **Walk-forward refits** pass ``fit(bars, init_from=previous)``: EM starts from the previous
  model and converges in a few iterations, near the same optimum (S&P 500 decades shifted
  by a month: 97.8-99.5% of the overlapping days in the same cell).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
import platform
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from quantdesk.data.schemas import (
    REGIME_CELL_NAMES,
    REGIME_PROBABILITY_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
)
from quantdesk.regimes.features import (
    REGIME_FEATURE_NAMES,
    FeatureConfig,
    Standardizer,
    compute_features,
)

if TYPE_CHECKING:
    from hmmlearn.hmm import GaussianHMM

__all__ = [
    "CELL_NAMES",
    "STATE_COLUMNS",
    "TREND_LABELS",
    "VOL_LABELS",
    "RegimeModel",
    "forward_filter",
    "gaussian_log_density",
]

logger = logging.getLogger(__name__)

# The regime contract of quantdesk.data.schemas under the names quantdesk.regimes exports.
STATE_COLUMNS: tuple[str, ...] = REGIME_PROBABILITY_COLUMNS
CELL_NAMES: tuple[str, ...] = REGIME_CELL_NAMES

CovarianceType = Literal["tied", "full", "diag"]
ModelKind = Literal["joint", "product"]
Structure = Literal["factorial", "free"]

# What the 9-state HMM sees by default, per structure (see RegimeModel).
_DEFAULT_HMM_FEATURES: dict[str, tuple[str, ...] | Literal["auto"]] = {
    "factorial": "auto",
    "free": ("log_vol", "trend"),
}
_DEFAULT_COVARIANCE: dict[str, CovarianceType] = {"factorial": "diag", "free": "tied"}

_N_CELLS = 9
_ARTIFACT_FORMAT = 1
# A volatility level must last this many volatility windows on average (see
# RegimeModel._persistence_problems).
_MIN_VOL_PERSISTENCE = 2.0
_VOL_LEVEL_CELLS: tuple[tuple[int, ...], ...] = ((0, 1, 2), (3, 4, 5), (6, 7, 8))
_TREND_LEVEL_CELLS: tuple[tuple[int, ...], ...] = ((0, 3, 6), (1, 4, 7), (2, 5, 8))
# Cap on an expected trend episode (days) when separating drifts (a chain that never leaves
# a level has an infinite one).
_MAX_EPISODE_DAYS = 10_000.0
# EM iterations each start runs before the best one continues (short-run EM selection).
_PROBE_ITER = 8
# Fewer feature rows than this cannot pin down nine states and their transitions.
_MIN_TRAIN_OBS = 250
# hmmlearn's floor on variances (in standardised units).
_MIN_COVAR = 1e-3


# --------------------------------------------------------------------------- inference


def forward_filter(
    log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
) -> np.ndarray:
    """Return the filtered state probabilities P(state_t | observations up to t).

    The scaled forward recursion: ``alpha_0 = startprob * b_0`` and ``alpha_t =
    (alpha_{t-1} @ transmat) * b_t``, each row normalised to sum to 1.  Emission densities
    ``b_t`` come in log space and are divided by their row maximum before ``exp`` so that no
    row underflows; if every state the chain can reach still underflows, the step is redone
    in log space.  Row ``t`` uses rows ``0..t`` only.  The loop is compiled (numba, cached
    on disk), as a walk-forward filters thousands of rows at every monthly refit.

    Parameters
    ----------
    log_emission : ndarray, shape (T, K)
        ``log p(x_t | state k)``, finite.
    startprob : ndarray, shape (K,)
        Distribution of the state at the first row.
    transmat : ndarray, shape (K, K)
        Row-stochastic transition matrix, ``transmat[i, j] = P(j at t+1 | i at t)``.

    Returns
    -------
    ndarray, shape (T, K)

    Examples
    --------
    >>> A = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> logb = np.log([[0.5, 0.1], [0.1, 0.5]])
    >>> forward_filter(logb, np.array([0.5, 0.5]), A).round(3)
    array([[0.833, 0.167],
           [0.42 , 0.58 ]])
    """
    log_emission = np.ascontiguousarray(log_emission, dtype=np.float64)
    startprob = np.ascontiguousarray(startprob, dtype=np.float64)
    transmat = np.ascontiguousarray(transmat, dtype=np.float64)
    if log_emission.ndim != 2:
        raise ValueError(f"log_emission must be 2-D (T, K), got shape {log_emission.shape}")
    n, k = log_emission.shape
    if startprob.shape != (k,) or transmat.shape != (k, k):
        raise ValueError(
            f"shapes disagree: log_emission {log_emission.shape}, startprob "
            f"{startprob.shape}, transmat {transmat.shape}"
        )
    if not np.isfinite(log_emission).all():
        raise ValueError("log_emission must be finite")
    out = np.empty((n, k))
    if n:
        _forward_kernel()(log_emission, startprob, transmat, out)
    return out


@functools.cache
def _forward_kernel() -> Callable[..., None]:
    import numba

    @numba.njit(cache=True, nogil=True)  # type: ignore[misc]
    def kernel(
        log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray, out: np.ndarray
    ) -> None:
        n, k = log_emission.shape
        predicted = startprob.copy()
        alpha = np.empty(k)
        for t in range(n):
            top = log_emission[t, 0]
            for j in range(1, k):
                top = max(top, log_emission[t, j])
            total = 0.0
            for j in range(k):
                alpha[j] = predicted[j] * np.exp(log_emission[t, j] - top)
                total += alpha[j]
            if not total > 0.0:
                # Every reachable state is far less likely than the best one, whose prior
                # is 0: redo the step in log space.
                top = -np.inf
                for j in range(k):
                    alpha[j] = np.log(predicted[j]) + log_emission[t, j]
                    top = max(top, alpha[j])
                total = 0.0
                for j in range(k):
                    alpha[j] = np.exp(alpha[j] - top)
                    total += alpha[j]
            for j in range(k):
                alpha[j] /= total
                out[t, j] = alpha[j]
            for j in range(k):
                acc = 0.0
                for i in range(k):
                    acc += alpha[i] * transmat[i, j]
                predicted[j] = acc

    return kernel  # type: ignore[no-any-return]


def gaussian_log_density(x: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    """Return ``log N(x_t | means[k], covars[k])`` for every row ``t`` and state ``k``.

    Parameters
    ----------
    x : ndarray, shape (T, d)
    means : ndarray, shape (K, d)
    covars : ndarray, shape (K, d, d)
        Full, symmetric positive-definite covariance matrices.

    Returns
    -------
    ndarray, shape (T, K)

    Examples
    --------
    >>> gaussian_log_density(np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1, 1))).round(4)
    array([[-0.9189]])
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    out = np.empty((n, len(means)))
    for k, (mean, cov) in enumerate(zip(means, covars, strict=True)):
        chol = np.linalg.cholesky(cov)
        # Whitening by the inverse factor (d x d, tiny) is a single matrix product over the
        # rows, several times faster than a triangular solve with T right-hand sides.
        inv_chol = np.linalg.inv(chol)
        z = (x - mean) @ inv_chol.T
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        out[:, k] = -0.5 * (d * math.log(2.0 * math.pi) + log_det + np.einsum("ij,ij->i", z, z))
    return out


def _stationary_distribution(transmat: np.ndarray) -> np.ndarray:
    """Return the stationary distribution ``pi = pi @ transmat`` (least squares, clipped)."""
    k = len(transmat)
    system = np.vstack([transmat.T - np.eye(k), np.ones(k)])
    target = np.zeros(k + 1)
    target[-1] = 1.0
    pi = np.linalg.lstsq(system, target, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    if not pi.sum() > 0:
        return np.full(k, 1.0 / k)
    return np.asarray(pi / pi.sum())


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread.

    The HMM works on 9x3 matrices: OpenBLAS threads cost far more than they save there (on
    the 2-core CI machine an EM iteration took 16x longer with 2 threads than with 1).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------- one HMM


class _GaussianChain:
    """The parameters of one Gaussian HMM in label order, and its hmmlearn twin.

    ``columns`` are the feature columns it reads, ``means`` etc. are in standardised units.
    """

    def __init__(
        self,
        columns: tuple[str, ...],
        covariance_type: str,
        startprob: np.ndarray,
        transmat: np.ndarray,
        means: np.ndarray,
        covars: np.ndarray,
    ) -> None:
        self.columns = columns
        self.covariance_type = covariance_type
        self.startprob = np.asarray(startprob, dtype=np.float64)
        self.transmat = np.asarray(transmat, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.covars = np.asarray(covars, dtype=np.float64)  # hmmlearn's compact shape
        self._hmm: GaussianHMM | None = None

    @property
    def n_states(self) -> int:
        return len(self.means)

    def full_covars(self) -> np.ndarray:
        """Return the covariances as ``(K, d, d)`` full matrices."""
        k, d = self.means.shape
        if self.covariance_type == "full":
            return self.covars
        if self.covariance_type == "tied":
            return np.broadcast_to(self.covars, (k, d, d))
        if self.covariance_type == "diag":
            return np.stack([np.diag(c) for c in self.covars])
        raise ValueError(f"unknown covariance_type {self.covariance_type!r}")

    def select(self, z: pd.DataFrame) -> np.ndarray:
        return z.loc[:, list(self.columns)].to_numpy(dtype=np.float64)

    def log_emission(self, z: pd.DataFrame) -> np.ndarray:
        return gaussian_log_density(self.select(z), self.means, self.full_covars())

    def filter(self, z: pd.DataFrame) -> np.ndarray:
        return forward_filter(self.log_emission(z), self.startprob, self.transmat)

    def hmm(self) -> GaussianHMM:
        """Return an hmmlearn ``GaussianHMM`` with these parameters (for smoothing)."""
        if self._hmm is None:
            from hmmlearn.hmm import GaussianHMM

            hmm = GaussianHMM(
                n_components=self.n_states,
                covariance_type=self.covariance_type,
                min_covar=_MIN_COVAR,
                init_params="",
                params="",
                implementation="scaling",
            )
            hmm.n_features = self.means.shape[1]
            hmm.startprob_ = self.startprob
            hmm.transmat_ = self.transmat
            hmm.means_ = self.means
            hmm.covars_ = self.covars
            self._hmm = hmm
        return self._hmm

    def smooth(self, z: pd.DataFrame) -> np.ndarray:
        x = self.select(z)
        if len(x) == 0:
            return np.empty((0, self.n_states))
        with _single_threaded_blas():
            return np.asarray(self.hmm().predict_proba(x))

    def permuted(self, order: np.ndarray) -> _GaussianChain:
        """Return the chain with state ``order[i]`` renamed ``i``."""
        covars = self.covars if self.covariance_type == "tied" else self.covars[order]
        return _GaussianChain(
            self.columns,
            self.covariance_type,
            self.startprob[order],
            self.transmat[np.ix_(order, order)],
            self.means[order],
            covars,
        )

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}startprob": self.startprob.copy(),
            f"{prefix}transmat": self.transmat.copy(),
            f"{prefix}means": self.means.copy(),
            f"{prefix}covars": self.covars.copy(),
        }

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        prefix: str,
        columns: tuple[str, ...],
        covariance_type: str,
    ) -> _GaussianChain:
        return cls(
            columns,
            covariance_type,
            np.asarray(arrays[f"{prefix}startprob"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}transmat"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}means"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}covars"], dtype=np.float64),
        )


class _EMResult:
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


# The cells of the 3x3 grid, by state index: volatility level and trend direction.
_CELL_VOL = np.repeat(np.arange(3), 3)
_CELL_TREND = np.tile(np.arange(3), 3)
# Coordinate-ascent sweeps between the trend means and the volatility variances of the
# daily return in one factorial M-step (each sweep raises the expected log-likelihood).
_RETURN_SWEEPS = 4
# Where a trend direction goes when it ends, in the trend-chain prior (rows: from bearish,
# neutral, bullish): a trend ends in a sideways market three times in four.
_TREND_PRIOR_EXITS = ((0.0, 0.75, 0.25), (0.5, 0.0, 0.5), (0.25, 0.75, 0.0))
# The HMM features tried in turn by hmm_features="auto" (factorial structure).
_AUTO_HMM_FEATURES: tuple[tuple[str, ...], ...] = (
    ("log_return", "log_vol"),
    ("log_return", "log_vol", "trend"),
)


def _group_sums(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Return the sum of ``values`` (over states) within each of the 3 levels in ``groups``."""
    return np.bincount(groups, weights=values, minlength=3)


def _factorial_emissions(
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
    vol, trend = _CELL_VOL, _CELL_TREND
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


def _factorial_transmat(counts: np.ndarray, trend_prior: np.ndarray | None = None) -> np.ndarray:
    """Return ``kron(A_vol, A_trend)`` from expected 9x9 transition counts.

    With independent volatility and trend chains the expected log-likelihood of the
    transitions splits into one term per chain, each maximised by its own normalised
    counts: the counts summed over the other chain's states.  ``trend_prior`` (3x3
    pseudo-counts, :func:`_trend_prior_counts`) is a Dirichlet prior on the trend chain's
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


def _trend_prior_counts(weight: float, days: float) -> np.ndarray | None:
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


@functools.cache
def _factorial_hmm_class() -> type[GaussianHMM]:
    """Return the fitting HMM with the factorial M-step (:func:`_factorial_emissions`).

    hmmlearn computes the forward-backward posteriors and the sufficient statistics; only
    the parameter update is replaced, which is how hmmlearn's own model classes differ.
    ``columns`` (set on the instance) names the feature in each column.
    """

    class _FactorialGaussianHMM(_fitting_hmm_class()):  # type: ignore[misc]
        columns: tuple[str, ...] = ()
        trend_prior: np.ndarray | None = None

        def _do_mstep(self, stats: dict[str, Any]) -> None:
            current: np.ndarray = np.asarray(getattr(self, "means_"))  # noqa: B009
            means, variances = _factorial_emissions(
                stats["post"],
                stats["obs"],
                stats["obs**2"],
                self.columns,
                current,
                self.min_covar,
            )
            self.means_ = means
            self.covars_ = variances
            self.transmat_ = _factorial_transmat(stats["trans"], self.trend_prior)

    return _FactorialGaussianHMM


def _factorial_start(
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
    post = np.bincount(cells, minlength=_N_CELLS).astype(np.float64)
    obs = np.stack([np.bincount(cells, weights=col, minlength=_N_CELLS) for col in x.T], 1)
    obs2 = np.stack([np.bincount(cells, weights=col**2, minlength=_N_CELLS) for col in x.T], 1)
    trend_means = np.stack(
        [
            np.bincount(trend_codes, weights=col, minlength=3)
            / np.maximum(np.bincount(trend_codes, minlength=3), 1)
            for col in x.T
        ],
        1,
    )
    means, variances = _factorial_emissions(post, obs, obs2, columns, trend_means, _MIN_COVAR)
    chain = _sticky_transmat(3, stay)
    full = np.stack([np.diag(v) for v in variances])
    return np.kron(chain, chain), means, full


def _quantile_codes(values: np.ndarray, cuts: tuple[float, float]) -> np.ndarray:
    """Return 0/1/2 for ``values`` below, between and above the quantiles ``cuts``."""
    return np.searchsorted(np.quantile(values, cuts), values, side="right").astype(np.int64)


def _run_em(
    x: np.ndarray,
    start: tuple[np.ndarray, np.ndarray, np.ndarray],
    covariance_type: str,
    n_iter: int,
    tol: float,
    prior: tuple[np.ndarray, float],
    factorial: tuple[str, ...] = (),
    trend_prior: np.ndarray | None = None,
) -> _EMResult:
    """Run EM from ``(transmat, means, full covars)`` for at most ``n_iter`` iterations.

    ``factorial`` names the feature columns for the factorial M-step
    (:func:`_factorial_emissions`); empty: hmmlearn's free Gaussian M-step.
    ``trend_prior``: the factorial trend chain's Dirichlet pseudo-counts, or None.
    """
    transmat, means, full_covars = start
    k, d = means.shape
    hmm_class = _factorial_hmm_class() if factorial else _fitting_hmm_class()
    hmm = hmm_class(
        n_components=k,
        covariance_type=covariance_type,
        min_covar=_MIN_COVAR,
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
    return _EMResult(hmm, int(hmm.monitor_.iter))


def _continue_em(result: _EMResult, x: np.ndarray, n_iter: int) -> _EMResult:
    """Return ``result`` after up to ``n_iter`` more EM iterations from where it stopped."""
    if result.converged or n_iter <= 0:
        return result
    hmm = result.hmm
    hmm.n_iter = n_iter
    hmm.monitor_.n_iter = n_iter  # the monitor keeps its own copy of the limit
    hmm.fit(x)
    return _EMResult(hmm, result.n_iter + int(hmm.monitor_.iter))


def _sticky_transmat(k: int, stay: float) -> np.ndarray:
    transmat = np.full((k, k), (1.0 - stay) / (k - 1))
    np.fill_diagonal(transmat, stay)
    return transmat


def _ranks(values: np.ndarray) -> np.ndarray:
    """Return the rank of each value, 0 for the smallest (ties by position)."""
    return np.argsort(np.argsort(values, kind="stable"), kind="stable").astype(np.int64)


def _tercile_codes(values: np.ndarray) -> np.ndarray:
    """Return 0/1/2 for the lower, middle and upper third of ``values`` (ties by rank)."""
    codes: np.ndarray = np.minimum(3 * _ranks(values) // len(values), 2)
    return codes


def _group_start(
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
    pooled = pooled / max(len(x) - n_groups, 1) + _MIN_COVAR * np.eye(d)
    full = np.broadcast_to(pooled, (n_groups, d, d)).copy()
    return _sticky_transmat(n_groups, 0.95), means, full


def _random_start(
    x: np.ndarray, n_states: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an EM start at ``n_states`` random days, with the total covariance."""
    d = x.shape[1]
    means = x[rng.choice(len(x), size=n_states, replace=False)]
    cov = np.atleast_2d(np.cov(x, rowvar=False)) + _MIN_COVAR * np.eye(d)
    full = np.broadcast_to(cov, (n_states, d, d)).copy()
    return _sticky_transmat(n_states, float(rng.uniform(0.85, 0.98))), means, full


def _fit_best(
    x: np.ndarray,
    starts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    covariance_type: str,
    n_iter: int,
    tol: float,
    prior: tuple[np.ndarray, float],
    factorial: tuple[str, ...] = (),
    trend_prior: np.ndarray | None = None,
) -> _EMResult:
    """Return the EM run with the best log-likelihood over ``starts`` (short-run selection).

    With one start, EM simply runs to convergence.  With several, each runs
    ``_PROBE_ITER`` iterations, and the best continues up to ``n_iter`` in all: the ranking
    of starts rarely changes after the first iterations, and it costs a fraction of running
    every start to convergence.
    """
    if len(starts) == 1:
        return _run_em(x, starts[0], covariance_type, n_iter, tol, prior, factorial, trend_prior)
    probes = [
        _run_em(x, s, covariance_type, min(_PROBE_ITER, n_iter), tol, prior, factorial, trend_prior)
        for s in starts
    ]
    scores = [p.log_likelihood for p in probes]
    best = probes[int(np.argmax(scores))]
    logger.debug("EM start log-likelihoods after %d iterations: %s", _PROBE_ITER, scores)
    return _continue_em(best, x, n_iter - best.n_iter)


# --------------------------------------------------------------------------- the model


class RegimeModel:
    """A 9-state (3 volatility x 3 trend) Gaussian HMM of one symbol's daily bars.

    Parameters
    ----------
    n_states : int
        Number of hidden states; must be 9, one per cell of the 3x3 grid (the argument
        exists so that calls read as what they are).
    random_state : int
        Seed of the random EM starts; the same data and seed give the same model.
    n_init : int
        EM starts per fit (default 4): one at the tercile grid, the rest at random days.
        The best log-likelihood after a few iterations runs on to convergence.
    n_iter : int
        Most EM iterations per fit, the winning start's probe iterations included.
    tol : float
        EM stops when the log-likelihood gains less than ``tol`` in an iteration.
    features : FeatureConfig
        Feature windows.
    structure : {"factorial", "free"}
        ``"factorial"`` (default): emissions and transitions tied to the 3x3 grid (see the
        module docstring); ``"free"``: an unconstrained 9-state Gaussian HMM.
    covariance_type : {"tied", "full", "diag"}, optional
        Emission covariance of the free structure (default ``"tied"``); the factorial
        structure is diagonal by construction (``"diag"``, the default there).
    hmm_features : tuple of str or "auto", optional
        The features the HMM sees.  Factorial default ``"auto"``: ``("log_return",
        "log_vol")`` if the fitted drifts separate the trend directions (see
        ``drift_separation``), else ``("log_return", "log_vol", "trend")`` (see the module
        docstring); a tuple must include ``log_vol`` and one of the other two.  Free
        default ``("log_vol", "trend")`` (must include both; adding ``"log_return"`` lets
        states specialise in up days and down days of a crisis, which makes refits
        disagree).
    prior_weight : float
        Weight, in pseudo-days, of a Normal prior on each state's mean at its tercile-grid
        cell (MAP-EM; 0 turns it off; default 20), for the free structure and the product
        fallback.  See the module docstring.
    trend_prior_weight : float
        Pseudo-transitions per row of the Dirichlet prior on the factorial trend chain
        (MAP-EM; default 1000, against about 1700 observed transitions per row in 20 years;
        0 turns it off).
    trend_prior_days : float
        Expected duration of a trend direction under that prior (default 63, a quarter).
    min_occupancy : float
        A volatility level or trend direction (free structure: a cell) that the fitted
        model expects on fewer than this share of the training days makes the fit
        degenerate (default 0.005, e.g. 25 days of 5000).
    min_separation : float
        Neighbouring cells in one dimension (``log_vol`` between volatility levels in each
        trend column, ``trend`` between trend directions in each volatility row) must have
        means in that order and at least this many within-state standard deviations apart
        (default 0.25); otherwise the fit is degenerate.  When ``log_return`` orders the
        trend directions (factorial without ``trend``), the unit is the standard error of
        the drift over an expected trend episode instead, and the threshold is
        ``drift_separation``.
    drift_separation : float
        Least separation of neighbouring drifts, in standard errors of a drift over an
        expected trend episode, for returns alone to define the trend directions (default
        0.5); ``hmm_features="auto"`` adds the ``trend`` statistic below it.

    Attributes
    ----------
    kind_ : {"joint", "product"}
        ``"joint"``: the 9-state HMM; ``"product"``: the fallback after a degenerate fit.
    hmm_features_ : tuple of str
        The features the fitted model reads (with ``"auto"``: which set was kept).
    degenerate_ : str or None
        Why the 9-state fit was rejected (None if it was not).
    state_map_ : ndarray of int, shape (9,)
        ``state_map_[s]`` is the cell id given to EM's hidden state ``s`` (product: to state
        ``3 * vol_state + trend_state`` of the two chains).
    cell_means_ : pandas.DataFrame
        Mean of each feature over the training days, weighted by the smoothed probability
        of each cell (feature units); index :data:`CELL_NAMES`.
    occupancy_ : pandas.Series
        Expected share of training days in each cell (smoothed probabilities).
    log_likelihood_, converged_, n_iter_
        Log-likelihood of the training features under the fitted model, whether EM
        converged (both chains for ``"product"``), and its iterations.
    train_start_, train_end_, n_obs_
        First and last training ``ts`` with features, and the number of such days.
    standardizer_ : Standardizer
        Training-window statistics of the features.

    Examples
    --------
    >>> from quantdesk.data import simulate
    >>> bars = simulate(n_symbols=1, n_days=1500, seed=3).bars
    >>> model = RegimeModel(random_state=0).fit(bars)
    >>> probs = model.filter(bars)
    >>> list(probs.columns[:4])
    ['state', 'vol_label', 'trend_label', 'p_low_bearish']
    >>> bool(np.allclose(probs[list(STATE_COLUMNS)].sum(axis=1), 1.0))
    True
    """

    def __init__(
        self,
        n_states: int = 9,
        *,
        random_state: int = 0,
        n_init: int = 4,
        n_iter: int = 200,
        tol: float = 1e-2,
        features: FeatureConfig | None = None,
        structure: Structure = "factorial",
        covariance_type: CovarianceType | None = None,
        hmm_features: tuple[str, ...] | Literal["auto"] | None = None,
        prior_weight: float = 20.0,
        trend_prior_weight: float = 1000.0,
        trend_prior_days: float = 63.0,
        min_occupancy: float = 0.005,
        min_separation: float = 0.25,
        drift_separation: float = 0.5,
    ) -> None:
        if n_states != _N_CELLS:
            raise ValueError(
                "RegimeModel has one state per cell of the 3x3 volatility x trend grid: "
                f"n_states must be 9, got {n_states!r}"
            )
        for name, value in (("n_init", n_init), ("n_iter", n_iter)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not tol > 0:
            raise ValueError(f"tol must be positive, got {tol!r}")
        if structure not in ("factorial", "free"):
            raise ValueError(f"structure must be 'factorial' or 'free', got {structure!r}")
        if covariance_type is None:
            covariance_type = _DEFAULT_COVARIANCE[structure]
        if covariance_type not in ("tied", "full", "diag"):
            raise ValueError(
                f"covariance_type must be 'tied', 'full' or 'diag', got {covariance_type!r}"
            )
        if structure == "factorial" and covariance_type != "diag":
            raise ValueError(
                "the factorial structure ties diagonal variances to the volatility level: "
                f"covariance_type must be 'diag' (or None), got {covariance_type!r}"
            )
        if hmm_features is None:
            hmm_features = _DEFAULT_HMM_FEATURES[structure]
        if isinstance(hmm_features, str):
            if hmm_features != "auto" or structure != "factorial":
                raise ValueError(
                    "hmm_features must be a tuple of feature names, or 'auto' with the "
                    f"factorial structure, got {hmm_features!r} ({structure} structure)"
                )
            self._candidates: tuple[tuple[str, ...], ...] = _AUTO_HMM_FEATURES
        else:
            self._candidates = (self._checked_hmm_features(tuple(hmm_features), structure),)
        weights: dict[str, float] = {
            "prior_weight": prior_weight,
            "trend_prior_weight": trend_prior_weight,
            "drift_separation": drift_separation,
        }
        for name, weight in weights.items():
            if not weight >= 0:
                raise ValueError(f"{name} must be >= 0, got {weight!r}")
        if not trend_prior_days > 1:
            raise ValueError(f"trend_prior_days must be > 1, got {trend_prior_days!r}")
        if not 0 <= min_occupancy < 1 / _N_CELLS:
            raise ValueError(f"min_occupancy must lie in [0, 1/9), got {min_occupancy!r}")
        if not min_separation >= 0:
            raise ValueError(f"min_separation must be >= 0, got {min_separation!r}")
        self.n_states = n_states
        self.random_state = int(random_state)
        self.n_init = int(n_init)
        self.n_iter = int(n_iter)
        self.tol = float(tol)
        self.features = FeatureConfig() if features is None else features
        self.structure: Structure = structure
        self.covariance_type: CovarianceType = covariance_type
        self.hmm_features: tuple[str, ...] | Literal["auto"] = (
            "auto" if isinstance(hmm_features, str) else self._candidates[0]
        )
        self.prior_weight = float(prior_weight)
        self.trend_prior_weight = float(trend_prior_weight)
        self.trend_prior_days = float(trend_prior_days)
        self.min_occupancy = float(min_occupancy)
        self.min_separation = float(min_separation)
        self.drift_separation = float(drift_separation)
        self._chains: tuple[_GaussianChain, ...] = ()

    @staticmethod
    def _checked_hmm_features(hmm_features: tuple[str, ...], structure: str) -> tuple[str, ...]:
        """Return ``hmm_features`` in feature order, or raise if they cannot define the grid."""
        unknown = [f for f in hmm_features if f not in REGIME_FEATURE_NAMES]
        required = (
            "'log_vol' and one of 'log_return', 'trend'"
            if structure == "factorial"
            else "'log_vol' and 'trend'"
        )
        has_trend = (
            bool({"log_return", "trend"} & set(hmm_features))
            if structure == "factorial"
            else "trend" in hmm_features
        )
        if (
            unknown
            or len(set(hmm_features)) != len(hmm_features)
            or "log_vol" not in hmm_features
            or not has_trend
        ):
            raise ValueError(
                f"hmm_features must be distinct names from {list(REGIME_FEATURE_NAMES)} including "
                f"{required} (they define the cells of the {structure} structure), got "
                f"{list(hmm_features)}"
            )
        # In feature order, so that the same set always gives the same model.
        return tuple(f for f in REGIME_FEATURE_NAMES if f in hmm_features)

    # ------------------------------------------------------------------ fitting

    @property
    def is_fitted(self) -> bool:
        """Return whether the model has been fitted (or loaded)."""
        return bool(self._chains)

    def fit(self, bars: pd.DataFrame, *, init_from: RegimeModel | None = None) -> RegimeModel:
        """Return ``self`` fitted on one symbol's bars (the training window).

        Parameters
        ----------
        bars : pandas.DataFrame
            Long bars of one symbol, or ``open, high, low, close`` indexed by ``ts``.
        init_from : RegimeModel, optional
            Warm start for walk-forward refits: EM starts once from this fitted model's
            parameters (moved to the new window's standardisation) instead of from
            ``n_init`` starts.  It converges in a few iterations and stays at the same
            optimum, so consecutive refits agree; cells are still assigned afresh, by the
            same rule.  Used for the fit of the same kind (joint or product); ignored, with
            a log line, if its features, HMM features or covariance type differ.

        Returns
        -------
        RegimeModel
            ``self``.

        Raises
        ------
        ValueError
            For invalid bars or fewer than 250 bars with features.
        """
        features = compute_features(bars, self.features)
        # Pin the annualisation of log_vol to the training bars' frequency, so that filter()
        # on a later or shorter window standardises features on the same scale.
        self.features = self.features.pinned(features)
        if len(features) < _MIN_TRAIN_OBS:
            raise ValueError(
                f"need at least {_MIN_TRAIN_OBS} bars with features to fit 9 regimes, got "
                f"{len(features)} (the first {self.features.warmup} bars are feature warm-up)"
            )
        standardizer = Standardizer().fit(features)
        z = standardizer.transform(features)
        warm = self._usable_warm_start(init_from)
        with _single_threaded_blas():
            reasons: list[str] = []
            for columns in self._candidate_order(warm):
                joint, result, state_map = self._fit_joint(z, standardizer, warm, columns)
                smoothed = joint.smooth(z)
                reason = self._joint_degeneracy(joint, smoothed.mean(axis=0))
                if reason is None:
                    break
                if len(self._candidates) > 1:
                    reason = f"on {', '.join(columns)}: {reason}"
                    logger.info("9-state regime fit %s", reason)
                reasons.append(reason)
            if reason is None:
                chains: tuple[_GaussianChain, ...] = (joint,)
                kind: ModelKind = "joint"
                results = [result]
            else:
                reason = "; ".join(reasons)
                logger.warning(
                    "degenerate 9-state regime fit (%s to %s): %s; falling back to the "
                    "product of a 3-state volatility HMM and a 3-state trend HMM",
                    features.index[0].date(),
                    features.index[-1].date(),
                    reason,
                )
                chains, results, state_map = self._fit_product(z, standardizer, warm, columns)
                kind = "product"
                smoothed = _cell_probabilities([c.smooth(z) for c in chains])
                fallback = self._product_degeneracy(chains)
                if fallback is not None:
                    reason = f"{reason}; the product fallback is degenerate too: {fallback}"
                    logger.error(
                        "the regime model's fallback is degenerate as well (%s): the labels "
                        "of this fit carry little information",
                        fallback,
                    )
            log_likelihood = float(sum(c.hmm().score(c.select(z)) for c in chains))
        converged = all(r.converged for r in results)
        n_iter = sum(r.n_iter for r in results)
        if not converged:
            logger.warning(
                "regime HMM EM did not converge in %d iterations (tol %g)", n_iter, self.tol
            )
        weights = smoothed / smoothed.sum(axis=0)
        self._chains = chains
        self.kind_: ModelKind = kind
        self.hmm_features_: tuple[str, ...] = _used_features(chains)
        self.degenerate_: str | None = reason
        self.state_map_: np.ndarray = state_map
        self.standardizer_ = standardizer
        self.log_likelihood_ = log_likelihood
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)
        self.n_obs_ = len(features)
        self.train_start_: pd.Timestamp = features.index[0]
        self.train_end_: pd.Timestamp = features.index[-1]
        self.occupancy_ = pd.Series(smoothed.mean(axis=0), index=list(CELL_NAMES), name="share")
        self.cell_means_ = pd.DataFrame(
            weights.T @ features.to_numpy(),
            index=list(CELL_NAMES),
            columns=list(REGIME_FEATURE_NAMES),
        )
        logger.info(
            "fitted %s regime model on %d bars (%s to %s): log-likelihood %.1f, %s after %d "
            "EM iterations",
            kind,
            self.n_obs_,
            self.train_start_.date(),
            self.train_end_.date(),
            log_likelihood,
            "converged" if converged else "NOT converged",
            n_iter,
        )
        return self

    def _usable_warm_start(self, init_from: RegimeModel | None) -> RegimeModel | None:
        if init_from is None:
            return None
        if not isinstance(init_from, RegimeModel) or not init_from.is_fitted:
            raise ValueError("init_from must be a fitted RegimeModel")
        if (
            init_from.features != self.features
            or init_from.structure != self.structure
            or init_from.hmm_features != self.hmm_features
            or init_from.covariance_type != self.covariance_type
        ):
            logger.info("warm start ignored: features, structure or covariance type differ")
            return None
        return init_from

    def _candidate_order(self, warm: RegimeModel | None) -> tuple[tuple[str, ...], ...]:
        """Return the HMM feature sets to try in turn: a warm start's own set first.

        A walk-forward refit thus keeps the previous fit's features while they still give a
        valid grid, so that consecutive refits do not switch between two ways of reading
        the trend.
        """
        if warm is None or warm.kind_ != "joint" or warm.hmm_features_ not in self._candidates:
            return self._candidates
        rest = tuple(c for c in self._candidates if c != warm.hmm_features_)
        return (warm.hmm_features_, *rest)

    def _fit_joint(
        self,
        z: pd.DataFrame,
        standardizer: Standardizer,
        warm: RegimeModel | None,
        columns: tuple[str, ...],
    ) -> tuple[_GaussianChain, _EMResult, np.ndarray]:
        """Fit the 9-state HMM on ``columns``; return it in cell order, its EM run and map.

        A warm-start model is used only if its 9-state fit saw the same ``columns``.
        """
        if warm is not None and (warm.kind_ != "joint" or warm._chains[0].columns != columns):
            warm = None
        x = z.loc[:, list(columns)].to_numpy()
        vol_codes = _tercile_codes(z["log_vol"].to_numpy())
        trend_codes = _tercile_codes(z["trend"].to_numpy())
        if self.structure == "factorial":
            return self._fit_factorial(z, x, columns, vol_codes, trend_codes, standardizer, warm)
        grid = _group_start(x, 3 * vol_codes + trend_codes, _N_CELLS)
        if warm is not None:
            starts = [_warm_start(warm._chains[0], warm.standardizer_, standardizer)]
        else:
            rng = np.random.default_rng(self.random_state)
            starts = [grid] + [_random_start(x, _N_CELLS, rng) for _ in range(self.n_init - 1)]
        prior = (grid[1], self.prior_weight)
        result = _fit_best(x, starts, self.covariance_type, self.n_iter, self.tol, prior)
        hmm = result.hmm
        means = np.asarray(hmm.means_)
        # Cell targets: the mean log_vol of each volatility tercile of the training window
        # and the mean trend of each trend tercile.
        vol, trend = z["log_vol"].to_numpy(), z["trend"].to_numpy()
        state_map = _assign_cells(
            means[:, columns.index("log_vol")],
            means[:, columns.index("trend")],
            np.array([vol[vol_codes == i].mean() for i in range(3)]),
            np.array([trend[trend_codes == j].mean() for j in range(3)]),
        )
        transmat = np.asarray(hmm.transmat_)
        chain = _GaussianChain(
            columns,
            self.covariance_type,
            _stationary_distribution(transmat),
            transmat,
            means,
            np.asarray(hmm._covars_),
        ).permuted(np.argsort(state_map))  # cell c <- the EM state mapped to c
        return chain, result, state_map

    def _fit_factorial(
        self,
        z: pd.DataFrame,
        x: np.ndarray,
        columns: tuple[str, ...],
        vol_codes: np.ndarray,
        trend_codes: np.ndarray,
        standardizer: Standardizer,
        warm: RegimeModel | None,
    ) -> tuple[_GaussianChain, _EMResult, np.ndarray]:
        """Fit the factorial 9-state HMM; return it in cell order, its EM run and state map.

        Starts: the tied parameters of the tercile grid (volatility terciles of ``log_vol`` x
        trend terciles of ``trend``), and ``n_init - 1`` grids cut at random quantiles with
        random persistence; or the warm-start model alone.  State ``3 * v + d`` keeps
        volatility level ``v`` and trend direction ``d`` through EM (the tying), so labels
        come from ordering the three volatility means and the three trend means.
        """
        if warm is not None:
            starts = [_warm_start(warm._chains[0], warm.standardizer_, standardizer)]
        else:
            rng = np.random.default_rng(self.random_state)
            starts = [_factorial_start(x, columns, vol_codes, trend_codes, 0.97)]
            for _ in range(self.n_init - 1):
                cuts = (float(rng.uniform(0.15, 0.45)), float(rng.uniform(0.55, 0.85)))
                starts.append(
                    _factorial_start(
                        x,
                        columns,
                        _quantile_codes(z["log_vol"].to_numpy(), cuts),
                        _quantile_codes(z["trend"].to_numpy(), cuts),
                        float(rng.uniform(0.9, 0.99)),
                    )
                )
        no_prior = (np.zeros_like(starts[0][1]), 0.0)
        trend_prior = _trend_prior_counts(self.trend_prior_weight, self.trend_prior_days)
        result = _fit_best(x, starts, "diag", self.n_iter, self.tol, no_prior, columns, trend_prior)
        hmm = result.hmm
        means = np.asarray(hmm.means_)
        vol_rank = _ranks(means[[0, 3, 6], columns.index("log_vol")])
        trend_rank = _ranks(means[:3, columns.index(self._trend_dimension(columns))])
        state_map = (3 * vol_rank[_CELL_VOL] + trend_rank[_CELL_TREND]).astype(np.int64)
        transmat = np.asarray(hmm.transmat_)
        chain = _GaussianChain(
            columns,
            "diag",
            _stationary_distribution(transmat),
            transmat,
            means,
            np.asarray(hmm._covars_),
        ).permuted(np.argsort(state_map))
        return chain, result, state_map

    @staticmethod
    def _trend_dimension(columns: tuple[str, ...]) -> str:
        """Return the feature whose means order the trend directions."""
        return "trend" if "trend" in columns else "log_return"

    def _joint_degeneracy(self, chain: _GaussianChain, occupancy: np.ndarray) -> str | None:
        """Return why the 9-state fit is degenerate, or None if it is a clean 3x3 grid."""
        problems = []
        if self.structure == "factorial":
            # A cell's parameters are its volatility level's and trend direction's, so a
            # combination the window never saw (no bullish days in high volatility, say) is
            # no defect; a level or a direction that holds no days is.
            grid = occupancy.reshape(3, 3)
            names = [*VOL_LABELS, *TREND_LABELS]
            shares = [*grid.sum(axis=1), *grid.sum(axis=0)]
            what = "level(s)"
        else:
            names, shares, what = list(CELL_NAMES), list(occupancy), "cell(s)"
        empty = [n for n, share in zip(names, shares, strict=True) if share < self.min_occupancy]
        if empty:
            problems.append(
                f"{what} {', '.join(empty)} hold less than {self.min_occupancy:.1%} of the "
                "training bars"
            )
        means = chain.means.reshape(3, 3, -1)  # [vol level, trend direction, feature]
        covars = chain.full_covars()
        trend_dim = self._trend_dimension(chain.columns)
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
                days = _level_durations(chain.transmat, chain.startprob, _TREND_LEVEL_CELLS)
                unit /= math.sqrt(float(np.mean(np.minimum(days, _MAX_EPISODE_DAYS))))
                what = "standard errors over a trend episode"
            need = self.drift_separation if dim == "log_return" else self.min_separation
            levels = np.moveaxis(means[:, :, f], axis, 0)  # [level in dim, level of the other]
            for o, other in enumerate(others):
                for g, gap in enumerate(np.diff(levels[:, o]) / unit):
                    if gap < need:
                        problems.append(
                            f"{labels[g]} and {labels[g + 1]} {dim} at {other} are "
                            f"{gap:+.2f} {what} apart (need >= {need:g})"
                        )
        problems += self._persistence_problems(
            _level_durations(chain.transmat, chain.startprob, _VOL_LEVEL_CELLS)
        )
        return "; ".join(problems) if problems else None

    def _persistence_problems(self, durations: np.ndarray) -> list[str]:
        """Return a problem for each volatility level that lasts no longer than noise would.

        Under a single volatility regime ``log_vol`` still wanders, because of the sampling
        noise of its window, and a fitted level then lasts about as long as the window (4-11
        days for a 5-day window on simulated constant-volatility prices, against 14 days
        and more on S&P 500 decades and 22 and more on the regime simulator).
        """
        floor = _MIN_VOL_PERSISTENCE * self.features.vol_window
        return [
            f"{label} volatility lasts {days:.1f} bars on average, no longer than the noise of "
            f"the {self.features.vol_window}-bar volatility window (need >= {floor:g})"
            for label, days in zip(VOL_LABELS, durations, strict=True)
            if days < floor
        ]

    def _fit_product(
        self,
        z: pd.DataFrame,
        standardizer: Standardizer,
        warm: RegimeModel | None,
        columns: tuple[str, ...],
    ) -> tuple[tuple[_GaussianChain, ...], list[_EMResult], np.ndarray]:
        """Fit the fallback: a 3-state volatility chain and a 3-state trend chain.

        The trend chain sees ``trend``, and ``log_return`` too if the last 9-state fit
        (on ``columns``) did.
        """
        rng = np.random.default_rng(self.random_state + 1)
        # The chains see disjoint features, so that the product of their filtered
        # probabilities is the exact filter of the product chain (two independent chains).
        trend_columns = ("trend", "log_return") if "log_return" in columns else ("trend",)
        chains: list[_GaussianChain] = []
        results: list[_EMResult] = []
        ranks: list[np.ndarray] = []
        for i, (columns, key) in enumerate(((("log_vol",), "log_vol"), (trend_columns, "trend"))):
            x = z.loc[:, list(columns)].to_numpy()
            grid = _group_start(x, _tercile_codes(z[key].to_numpy()), 3)
            if warm is not None and warm.kind_ == "product":
                starts = [_warm_start(warm._chains[i], warm.standardizer_, standardizer)]
            else:
                starts = [grid] + [_random_start(x, 3, rng) for _ in range(self.n_init - 1)]
            prior = (grid[1], self.prior_weight)
            result = _fit_best(x, starts, self.covariance_type, self.n_iter, self.tol, prior)
            hmm = result.hmm
            key_means = np.asarray(hmm.means_)[:, columns.index(key)]
            order = np.argsort(key_means, kind="stable")  # level l <- EM state order[l]
            transmat = np.asarray(hmm.transmat_)
            chain = _GaussianChain(
                columns,
                self.covariance_type,
                _stationary_distribution(transmat),
                transmat,
                np.asarray(hmm.means_),
                np.asarray(hmm._covars_),
            ).permuted(order)
            chains.append(chain)
            results.append(result)
            ranks.append(np.argsort(order))
        state_map = (3 * ranks[0][:, None] + ranks[1][None, :]).ravel().astype(np.int64)
        return tuple(chains), results, state_map

    def _product_degeneracy(self, chains: tuple[_GaussianChain, ...]) -> str | None:
        problems = []
        for chain, dim, labels in zip(
            chains, ("log_vol", "trend"), (VOL_LABELS, TREND_LABELS), strict=True
        ):
            f = chain.columns.index(dim)
            sd = float(np.sqrt(np.mean(chain.full_covars()[:, f, f])))
            for g, gap in enumerate(np.diff(chain.means[:, f]) / sd):
                if gap < self.min_separation:
                    problems.append(
                        f"{labels[g]} and {labels[g + 1]} {dim} are {gap:.2f} within-state sd apart"
                    )
        vol_chain = chains[0]
        problems += self._persistence_problems(
            _level_durations(vol_chain.transmat, vol_chain.startprob, ((0,), (1,), (2,)))
        )
        return "; ".join(problems) if problems else None

    # ------------------------------------------------------------------ inference

    def _require_fitted(self) -> None:
        if not self._chains:
            raise ValueError("RegimeModel is not fitted; call fit() or from_artifact() first")

    def _standardised(self, bars: pd.DataFrame) -> pd.DataFrame:
        self._require_fitted()
        return self.standardizer_.transform(compute_features(bars, self.features))

    def filter(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Return filtered regime probabilities: P(cell at t | bars up to t), no look-ahead.

        A forward pass only (:func:`forward_filter`) with the fitted parameters, on features
        standardised with the training statistics, starting from the stationary regime
        distribution at the first day with features.  Row ``t`` does not change when bars
        after ``t`` are added, so it is what a trader could have known at the close of ``t``.

        Parameters
        ----------
        bars : pandas.DataFrame
            Bars of the symbol, any window.  The first ``features.warmup`` bars only fill
            the feature windows and get no row.

        Returns
        -------
        pandas.DataFrame
            Index ``ts``; ``state`` (cell id of the most probable cell), ``vol_label``,
            ``trend_label`` (that cell's labels) and the nine :data:`STATE_COLUMNS`
            probabilities, which sum to 1 on each row.

        Examples
        --------
        >>> from quantdesk.data import simulate
        >>> bars = simulate(n_symbols=1, n_days=1000, seed=2).bars
        >>> model = RegimeModel().fit(bars)
        >>> early = model.filter(bars.iloc[:500])[list(STATE_COLUMNS)]
        >>> later = model.filter(bars)[list(STATE_COLUMNS)]
        >>> bool(np.allclose(early, later.iloc[: len(early)]))
        True
        """
        z = self._standardised(bars)
        probs = _cell_probabilities([c.filter(z) for c in self._chains])
        return _regime_frame(probs, z.index)

    def smooth(self, bars: pd.DataFrame) -> pd.DataFrame:
        """Return smoothed probabilities P(cell at t | all bars): historical analysis only.

        Forward-backward (hmmlearn's ``predict_proba``): row ``t`` uses bars after ``t``, so
        it must never drive a decision dated ``t`` or feed a backtest; use :meth:`filter`
        for that.  On the last row the two agree.

        Returns
        -------
        pandas.DataFrame
            The columns of :meth:`filter`.
        """
        z = self._standardised(bars)
        with _single_threaded_blas():
            probs = _cell_probabilities([c.smooth(z) for c in self._chains])
        return _regime_frame(probs, z.index)

    def transition_matrix(self) -> pd.DataFrame:
        """Return the 9x9 daily transition matrix between cells (rows: from, columns: to).

        For ``kind_ == "product"`` it is the Kronecker product of the two chains' matrices.
        """
        self._require_fitted()
        if self.kind_ == "joint":
            matrix: np.ndarray = self._chains[0].transmat
        else:
            matrix = np.kron(self._chains[0].transmat, self._chains[1].transmat)
        return pd.DataFrame(matrix, index=list(CELL_NAMES), columns=list(CELL_NAMES))

    def expected_durations(self) -> pd.Series:
        """Return the expected stay in each cell in bars, ``1 / (1 - p_cc)``."""
        stay = np.diag(self.transition_matrix().to_numpy())
        with np.errstate(divide="ignore"):
            days = 1.0 / (1.0 - stay)
        return pd.Series(days, index=list(CELL_NAMES), name="expected_days")

    def summary(self) -> str:
        """Return a readable description of the fit, with one row per cell.

        Per cell: geometric-mean annualised volatility ``exp(log_vol)``, annualised mean log
        return, mean trend t-statistic, share of training bars and expected stay in bars.
        """
        if not self.is_fitted:
            return "RegimeModel(unfitted)"
        table = pd.DataFrame(
            {
                "ann_vol": np.exp(self.cell_means_["log_vol"]),
                # Pinned at fit (features.pinned), so never None on a fitted model.
                "ann_return": self.cell_means_["log_return"]
                * (self.features.periods_per_year or float("nan")),
                "trend_t": self.cell_means_["trend"],
                "share": self.occupancy_,
                "bars": self.expected_durations(),
            }
        )
        lines = [
            f"RegimeModel({self.kind_}, {self.structure} structure, {self.covariance_type} "
            "covariance, HMM features "
            f"{', '.join(self.hmm_features_)}"
            f"{' (auto)' if self.hmm_features == 'auto' else ''}): {self.n_obs_} bars "
            f"{self.train_start_:%Y-%m-%d} to {self.train_end_:%Y-%m-%d}",
            f"  log-likelihood {self.log_likelihood_:.1f}; EM "
            f"{'converged' if self.converged_ else 'NOT converged'} after {self.n_iter_} "
            "iterations",
        ]
        if self.degenerate_:
            lines.append(f"  DEGENERATE 9-state fit: {self.degenerate_}")
        lines.append(
            table.to_string(
                formatters={
                    "ann_vol": "{:7.1%}".format,
                    "ann_return": "{:+8.1%}".format,
                    "trend_t": "{:+6.2f}".format,
                    "share": "{:6.1%}".format,
                    "bars": "{:6.1f}".format,
                },
            )
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self.is_fitted:
            return f"RegimeModel(n_states=9, random_state={self.random_state}, unfitted)"
        return (
            f"RegimeModel({self.kind_}, {self.n_obs_} bars {self.train_start_:%Y-%m-%d} to "
            f"{self.train_end_:%Y-%m-%d}, log-likelihood {self.log_likelihood_:.1f})"
        )

    # ------------------------------------------------------------------ artifacts

    def to_artifact(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return ``(arrays, metadata)``: numeric parameters and JSON-serialisable metadata.

        ``arrays`` hold the fitted parameters in cell order (``joint_*``, or ``vol_*`` and
        ``trend_*``: startprob, transmat, means, covars in hmmlearn's shape) and
        ``state_map``; ``metadata`` holds the settings, feature configuration,
        standardiser, training window, log-likelihood, convergence, kind, degeneracy, cell
        statistics and library versions.  :meth:`from_artifact` rebuilds a model whose
        :meth:`filter` output is identical.

        Examples
        --------
        >>> from quantdesk.data import simulate
        >>> bars = simulate(n_symbols=1, n_days=800, seed=4).bars
        >>> model = RegimeModel().fit(bars)
        >>> again = RegimeModel.from_artifact(*model.to_artifact())
        >>> again.filter(bars).equals(model.filter(bars))
        True
        """
        self._require_fitted()
        arrays: dict[str, np.ndarray] = {"state_map": self.state_map_.copy()}
        prefixes = ("joint",) if self.kind_ == "joint" else ("vol", "trend")
        for prefix, chain in zip(prefixes, self._chains, strict=True):
            arrays.update(chain.arrays(f"{prefix}_"))
        meta: dict[str, Any] = {
            "format": _ARTIFACT_FORMAT,
            "model": "quantdesk.regimes.RegimeModel",
            "kind": self.kind_,
            "degenerate": self.degenerate_,
            "n_states": self.n_states,
            "structure": self.structure,
            "covariance_type": self.covariance_type,
            "hmm_features": (
                self.hmm_features if self.hmm_features == "auto" else list(self.hmm_features)
            ),
            "chain_columns": {
                p: list(c.columns) for p, c in zip(prefixes, self._chains, strict=True)
            },
            "params": {
                "random_state": self.random_state,
                "n_init": self.n_init,
                "n_iter": self.n_iter,
                "tol": self.tol,
                "prior_weight": self.prior_weight,
                "trend_prior_weight": self.trend_prior_weight,
                "trend_prior_days": self.trend_prior_days,
                "min_occupancy": self.min_occupancy,
                "min_separation": self.min_separation,
                "drift_separation": self.drift_separation,
            },
            "features": self.features.to_dict(),
            "feature_names": list(REGIME_FEATURE_NAMES),
            "standardizer": self.standardizer_.to_dict(),
            "train_start": self.train_start_.isoformat(),
            "train_end": self.train_end_.isoformat(),
            "n_obs": self.n_obs_,
            "log_likelihood": self.log_likelihood_,
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "state_map": [int(c) for c in self.state_map_],
            "cells": list(CELL_NAMES),
            "state_columns": list(STATE_COLUMNS),
            "occupancy": [float(v) for v in self.occupancy_],
            "cell_means": {
                c: [float(v) for v in self.cell_means_[c]] for c in REGIME_FEATURE_NAMES
            },
            "versions": _library_versions(),
        }
        return arrays, meta

    @classmethod
    def from_artifact(
        cls, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]
    ) -> RegimeModel:
        """Return the model saved by :meth:`to_artifact`.

        Raises
        ------
        ValueError
            If the metadata is not a regime model artifact this version can read.
        """
        if metadata.get("model") != "quantdesk.regimes.RegimeModel":
            raise ValueError(f"not a RegimeModel artifact: model={metadata.get('model')!r}")
        if metadata.get("format") != _ARTIFACT_FORMAT:
            raise ValueError(
                f"RegimeModel artifact format {metadata.get('format')!r} is not supported "
                f"(this version reads {_ARTIFACT_FORMAT})"
            )
        kind = metadata["kind"]
        if kind not in ("joint", "product"):
            raise ValueError(f"unknown RegimeModel kind {kind!r}")
        params = metadata["params"]
        hmm_features = metadata["hmm_features"]
        model = cls(
            int(metadata["n_states"]),
            random_state=int(params["random_state"]),
            n_init=int(params["n_init"]),
            n_iter=int(params["n_iter"]),
            tol=float(params["tol"]),
            features=FeatureConfig.from_dict(metadata["features"]),
            # Artifacts written before the factorial structure existed are all "free".
            structure=metadata.get("structure", "free"),
            covariance_type=metadata["covariance_type"],
            hmm_features="auto" if hmm_features == "auto" else tuple(hmm_features),
            prior_weight=float(params["prior_weight"]),
            # Artifacts written before the trend-chain prior existed were fitted without it,
            # and separated drifts by min_separation.
            trend_prior_weight=float(params.get("trend_prior_weight", 0.0)),
            trend_prior_days=float(params.get("trend_prior_days", 63.0)),
            min_occupancy=float(params["min_occupancy"]),
            min_separation=float(params["min_separation"]),
            drift_separation=float(params.get("drift_separation", params["min_separation"])),
        )
        prefixes = ("joint",) if kind == "joint" else ("vol", "trend")
        model._chains = tuple(
            _GaussianChain.from_arrays(
                arrays,
                f"{p}_",
                tuple(metadata["chain_columns"][p]),
                model.covariance_type,
            )
            for p in prefixes
        )
        model.kind_ = kind
        model.hmm_features_ = _used_features(model._chains)
        model.degenerate_ = metadata["degenerate"]
        model.state_map_ = np.asarray(arrays["state_map"], dtype=np.int64)
        model.standardizer_ = Standardizer.from_dict(metadata["standardizer"])
        model.train_start_ = pd.Timestamp(metadata["train_start"])
        model.train_end_ = pd.Timestamp(metadata["train_end"])
        model.n_obs_ = int(metadata["n_obs"])
        model.log_likelihood_ = float(metadata["log_likelihood"])
        model.converged_ = bool(metadata["converged"])
        model.n_iter_ = int(metadata["n_iter"])
        model.occupancy_ = pd.Series(
            metadata["occupancy"], index=list(CELL_NAMES), name="share", dtype=float
        )
        model.cell_means_ = pd.DataFrame(
            {c: metadata["cell_means"][c] for c in REGIME_FEATURE_NAMES},
            index=list(CELL_NAMES),
            dtype=float,
        )
        return model

    def copy(self) -> RegimeModel:
        """Return an independent deep copy."""
        return copy.deepcopy(self)


def _assign_cells(
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


def _level_durations(
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


def _used_features(chains: tuple[_GaussianChain, ...]) -> tuple[str, ...]:
    """Return the features the chains read, in feature order."""
    return tuple(f for f in REGIME_FEATURE_NAMES if any(f in c.columns for c in chains))


def _cell_probabilities(parts: list[np.ndarray]) -> np.ndarray:
    """Return 9-cell probabilities from the joint chain, or from the two product chains."""
    if len(parts) == 1:
        return parts[0]
    vol, trend = parts
    joint: np.ndarray = (vol[:, :, None] * trend[:, None, :]).reshape(len(vol), _N_CELLS)
    return joint


def _warm_start(
    chain: _GaussianChain, old: Standardizer, new: Standardizer
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return an EM start from ``chain``'s parameters, moved to ``new``'s standardisation."""
    idx = [old.columns_.index(c) for c in chain.columns]
    idx_new = [new.columns_.index(c) for c in chain.columns]
    raw_means = chain.means * old.scale_[idx] + old.mean_[idx]
    means = (raw_means - new.mean_[idx_new]) / new.scale_[idx_new]
    ratio = old.scale_[idx] / new.scale_[idx_new]
    full = chain.full_covars() * ratio[None, :, None] * ratio[None, None, :]
    return chain.transmat.copy(), means, np.array(full)


def _regime_frame(probs: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Return the filter/smooth output frame for cell probabilities ``probs``."""
    state = probs.argmax(axis=1).astype(np.int64) if len(probs) else np.empty(0, np.int64)
    vol = pd.array(VOL_LABELS, dtype="str").take(state // 3)
    trend = pd.array(TREND_LABELS, dtype="str").take(state % 3)
    frame = pd.DataFrame({"state": state, "vol_label": vol, "trend_label": trend}, index=index)
    for c, name in enumerate(REGIME_PROBABILITY_COLUMNS):
        frame[name] = probs[:, c]
    frame.index.name = "ts"
    return frame


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("quantdesk", "hmmlearn", "numpy", "pandas", "scipy", "scikit-learn"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out
