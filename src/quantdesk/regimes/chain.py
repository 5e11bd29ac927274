"""One Gaussian HMM's parameters in cell order, with its hmmlearn twin for smoothing.

A fitted :class:`~quantdesk.regimes.model.RegimeModel` is one 9-state chain (``"joint"``)
or a 3-state volatility chain and a 3-state trend chain (``"product"``); this module holds
what both kinds do with their chains: filter, smooth, reorder, save as arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from quantdesk.regimes.features import REGIME_FEATURE_NAMES
from quantdesk.regimes.filtering import forward_filter, gaussian_log_density, single_threaded_blas
from quantdesk.regimes.labels import N_CELLS

if TYPE_CHECKING:
    from hmmlearn.hmm import GaussianHMM

__all__ = ["MIN_COVAR", "GaussianChain", "cell_probabilities", "used_features"]

# hmmlearn's floor on variances (in standardised units).
MIN_COVAR = 1e-3


class GaussianChain:
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
                min_covar=MIN_COVAR,
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
        with single_threaded_blas():
            return np.asarray(self.hmm().predict_proba(x))

    def permuted(self, order: np.ndarray) -> GaussianChain:
        """Return the chain with state ``order[i]`` renamed ``i``."""
        covars = self.covars if self.covariance_type == "tied" else self.covars[order]
        return GaussianChain(
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
    ) -> GaussianChain:
        return cls(
            columns,
            covariance_type,
            np.asarray(arrays[f"{prefix}startprob"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}transmat"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}means"], dtype=np.float64),
            np.asarray(arrays[f"{prefix}covars"], dtype=np.float64),
        )


def used_features(chains: tuple[GaussianChain, ...]) -> tuple[str, ...]:
    """Return the features the chains read, in feature order."""
    return tuple(f for f in REGIME_FEATURE_NAMES if any(f in c.columns for c in chains))


def cell_probabilities(parts: list[np.ndarray]) -> np.ndarray:
    """Return 9-cell probabilities from the joint chain, or from the two product chains."""
    if len(parts) == 1:
        return parts[0]
    vol, trend = parts
    joint: np.ndarray = (vol[:, :, None] * trend[:, None, :]).reshape(len(vol), N_CELLS)
    return joint
