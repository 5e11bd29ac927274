"""Causal inference for Gaussian HMMs: the forward filter and Gaussian emission densities.

:func:`forward_filter` is P(state at t | observations up to t), never the future; smoothing
(which uses the future) is hmmlearn's and lives with the chain
(:class:`~quantdesk.regimes.chain.GaussianChain`).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["forward_filter", "gaussian_log_density", "single_threaded_blas"]


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


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
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
