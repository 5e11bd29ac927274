"""The 9-state market regime model: 3 volatility levels x 3 trend directions, on hmmlearn.

:class:`RegimeModel` fits a Gaussian hidden Markov model (hmmlearn ``GaussianHMM``) to the
standardised features of :mod:`quantdesk.regimes.features` and names each hidden state after
one cell of the 3x3 grid of :mod:`quantdesk.data.schemas`::

    cell id = vol_index * 3 + trend_index      0 = low/bearish ... 8 = high/bullish

This module assembles the parts: the factorial M-step (:mod:`~quantdesk.regimes.factorial`),
EM starts and runs (:mod:`~quantdesk.regimes.em`), labelling
(:mod:`~quantdesk.regimes.labels`), fit diagnostics and the product fallback
(:mod:`~quantdesk.regimes.diagnostics`), causal filtering (:mod:`~quantdesk.regimes.filtering`)
and artifacts (:mod:`~quantdesk.regimes.persistence`).  Why it is built this way, with the
figures measured on the S&P 500 and the simulator, is in ``research/regimes.md``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantdesk.core.html import summary_html
from quantdesk.core.markov import expected_durations, stationary_distribution
from quantdesk.data.schemas import (
    REGIME_CELL_NAMES,
    REGIME_PROBABILITY_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
)
from quantdesk.regimes.chain import GaussianChain, cell_probabilities, used_features
from quantdesk.regimes.diagnostics import joint_degeneracy, product_degeneracy
from quantdesk.regimes.em import (
    EMResult,
    factorial_start,
    fit_best,
    group_start,
    random_start,
    warm_start,
)
from quantdesk.regimes.factorial import CELL_TREND, CELL_VOL, trend_prior_counts
from quantdesk.regimes.features import (
    REGIME_FEATURE_NAMES,
    FeatureConfig,
    Standardizer,
    compute_features,
)
from quantdesk.regimes.filtering import forward_filter, gaussian_log_density, single_threaded_blas
from quantdesk.regimes.labels import (
    N_CELLS,
    assign_cells,
    quantile_codes,
    ranks,
    regime_frame,
    tercile_codes,
    trend_dimension,
)

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

# Fewer feature rows than this cannot pin down nine states and their transitions.
_MIN_TRAIN_OBS = 250
# The HMM features tried in turn by hmm_features="auto" (factorial structure).
_AUTO_HMM_FEATURES: tuple[tuple[str, ...], ...] = (
    ("log_return", "log_vol"),
    ("log_return", "log_vol", "trend"),
)


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
        ``"factorial"`` (default): emissions and transitions tied to the 3x3 grid (see
        :mod:`quantdesk.regimes.factorial`); ``"free"``: an unconstrained 9-state Gaussian HMM.
    covariance_type : {"tied", "full", "diag"}, optional
        Emission covariance of the free structure (default ``"tied"``); the factorial
        structure is diagonal by construction (``"diag"``, the default there).
    hmm_features : tuple of str or "auto", optional
        The features the HMM sees.  Factorial default ``"auto"``: ``("log_return",
        "log_vol")`` if the fitted drifts separate the trend directions (see
        ``drift_separation``), else ``("log_return", "log_vol", "trend")`` (see
        ``research/regimes.md``); a tuple must include ``log_vol`` and one of the other two.  Free
        default ``("log_vol", "trend")`` (must include both; adding ``"log_return"`` lets
        states specialise in up days and down days of a crisis, which makes refits
        disagree).
    prior_weight : float
        Weight, in pseudo-days, of a Normal prior on each state's mean at its tercile-grid
        cell (MAP-EM; 0 turns it off; default 20), for the free structure and the product
        fallback.  See ``research/regimes.md``.
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
        if n_states != N_CELLS:
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
        if not 0 <= min_occupancy < 1 / N_CELLS:
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
        self._chains: tuple[GaussianChain, ...] = ()

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
        with single_threaded_blas():
            reasons: list[str] = []
            for columns in self._candidate_order(warm):
                joint, result, state_map = self._fit_joint(z, standardizer, warm, columns)
                smoothed = joint.smooth(z)
                reason = joint_degeneracy(
                    joint,
                    smoothed.mean(axis=0),
                    structure=self.structure,
                    min_occupancy=self.min_occupancy,
                    min_separation=self.min_separation,
                    drift_separation=self.drift_separation,
                    vol_window=self.features.vol_window,
                )
                if reason is None:
                    break
                if len(self._candidates) > 1:
                    reason = f"on {', '.join(columns)}: {reason}"
                    logger.info("9-state regime fit %s", reason)
                reasons.append(reason)
            if reason is None:
                chains: tuple[GaussianChain, ...] = (joint,)
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
                smoothed = cell_probabilities([c.smooth(z) for c in chains])
                fallback = product_degeneracy(
                    chains,
                    min_separation=self.min_separation,
                    vol_window=self.features.vol_window,
                )
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
        self.hmm_features_: tuple[str, ...] = used_features(chains)
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
    ) -> tuple[GaussianChain, EMResult, np.ndarray]:
        """Fit the 9-state HMM on ``columns``; return it in cell order, its EM run and map.

        A warm-start model is used only if its 9-state fit saw the same ``columns``.
        """
        if warm is not None and (warm.kind_ != "joint" or warm._chains[0].columns != columns):
            warm = None
        x = z.loc[:, list(columns)].to_numpy()
        vol_codes = tercile_codes(z["log_vol"].to_numpy())
        trend_codes = tercile_codes(z["trend"].to_numpy())
        if self.structure == "factorial":
            return self._fit_factorial(z, x, columns, vol_codes, trend_codes, standardizer, warm)
        grid = group_start(x, 3 * vol_codes + trend_codes, N_CELLS)
        if warm is not None:
            starts = [warm_start(warm._chains[0], warm.standardizer_, standardizer)]
        else:
            rng = np.random.default_rng(self.random_state)
            starts = [grid] + [random_start(x, N_CELLS, rng) for _ in range(self.n_init - 1)]
        prior = (grid[1], self.prior_weight)
        result = fit_best(x, starts, self.covariance_type, self.n_iter, self.tol, prior)
        hmm = result.hmm
        means = np.asarray(hmm.means_)
        # Cell targets: the mean log_vol of each volatility tercile of the training window
        # and the mean trend of each trend tercile.
        vol, trend = z["log_vol"].to_numpy(), z["trend"].to_numpy()
        state_map = assign_cells(
            means[:, columns.index("log_vol")],
            means[:, columns.index("trend")],
            np.array([vol[vol_codes == i].mean() for i in range(3)]),
            np.array([trend[trend_codes == j].mean() for j in range(3)]),
        )
        transmat = np.asarray(hmm.transmat_)
        chain = GaussianChain(
            columns,
            self.covariance_type,
            stationary_distribution(transmat),
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
    ) -> tuple[GaussianChain, EMResult, np.ndarray]:
        """Fit the factorial 9-state HMM; return it in cell order, its EM run and state map.

        Starts: the tied parameters of the tercile grid (volatility terciles of ``log_vol`` x
        trend terciles of ``trend``), and ``n_init - 1`` grids cut at random quantiles with
        random persistence; or the warm-start model alone.  State ``3 * v + d`` keeps
        volatility level ``v`` and trend direction ``d`` through EM (the tying), so labels
        come from ordering the three volatility means and the three trend means.
        """
        if warm is not None:
            starts = [warm_start(warm._chains[0], warm.standardizer_, standardizer)]
        else:
            rng = np.random.default_rng(self.random_state)
            starts = [factorial_start(x, columns, vol_codes, trend_codes, 0.97)]
            for _ in range(self.n_init - 1):
                cuts = (float(rng.uniform(0.15, 0.45)), float(rng.uniform(0.55, 0.85)))
                starts.append(
                    factorial_start(
                        x,
                        columns,
                        quantile_codes(z["log_vol"].to_numpy(), cuts),
                        quantile_codes(z["trend"].to_numpy(), cuts),
                        float(rng.uniform(0.9, 0.99)),
                    )
                )
        no_prior = (np.zeros_like(starts[0][1]), 0.0)
        trend_prior = trend_prior_counts(self.trend_prior_weight, self.trend_prior_days)
        result = fit_best(x, starts, "diag", self.n_iter, self.tol, no_prior, columns, trend_prior)
        hmm = result.hmm
        means = np.asarray(hmm.means_)
        vol_rank = ranks(means[[0, 3, 6], columns.index("log_vol")])
        trend_rank = ranks(means[:3, columns.index(trend_dimension(columns))])
        state_map = (3 * vol_rank[CELL_VOL] + trend_rank[CELL_TREND]).astype(np.int64)
        transmat = np.asarray(hmm.transmat_)
        chain = GaussianChain(
            columns,
            "diag",
            stationary_distribution(transmat),
            transmat,
            means,
            np.asarray(hmm._covars_),
        ).permuted(np.argsort(state_map))
        return chain, result, state_map

    def _fit_product(
        self,
        z: pd.DataFrame,
        standardizer: Standardizer,
        warm: RegimeModel | None,
        columns: tuple[str, ...],
    ) -> tuple[tuple[GaussianChain, ...], list[EMResult], np.ndarray]:
        """Fit the fallback: a 3-state volatility chain and a 3-state trend chain.

        The trend chain sees ``trend``, and ``log_return`` too if the last 9-state fit
        (on ``columns``) did.
        """
        rng = np.random.default_rng(self.random_state + 1)
        # The chains see disjoint features, so that the product of their filtered
        # probabilities is the exact filter of the product chain (two independent chains).
        trend_columns = ("trend", "log_return") if "log_return" in columns else ("trend",)
        chains: list[GaussianChain] = []
        results: list[EMResult] = []
        ranks: list[np.ndarray] = []
        for i, (columns, key) in enumerate(((("log_vol",), "log_vol"), (trend_columns, "trend"))):
            x = z.loc[:, list(columns)].to_numpy()
            grid = group_start(x, tercile_codes(z[key].to_numpy()), 3)
            if warm is not None and warm.kind_ == "product":
                starts = [warm_start(warm._chains[i], warm.standardizer_, standardizer)]
            else:
                starts = [grid] + [random_start(x, 3, rng) for _ in range(self.n_init - 1)]
            prior = (grid[1], self.prior_weight)
            result = fit_best(x, starts, self.covariance_type, self.n_iter, self.tol, prior)
            hmm = result.hmm
            key_means = np.asarray(hmm.means_)[:, columns.index(key)]
            order = np.argsort(key_means, kind="stable")  # level l <- EM state order[l]
            transmat = np.asarray(hmm.transmat_)
            chain = GaussianChain(
                columns,
                self.covariance_type,
                stationary_distribution(transmat),
                transmat,
                np.asarray(hmm.means_),
                np.asarray(hmm._covars_),
            ).permuted(order)
            chains.append(chain)
            results.append(result)
            ranks.append(np.argsort(order))
        state_map = (3 * ranks[0][:, None] + ranks[1][None, :]).ravel().astype(np.int64)
        return tuple(chains), results, state_map

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
        probs = cell_probabilities([c.filter(z) for c in self._chains])
        return regime_frame(probs, z.index)

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
        with single_threaded_blas():
            probs = cell_probabilities([c.smooth(z) for c in self._chains])
        return regime_frame(probs, z.index)

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
        days = expected_durations(self.transition_matrix().to_numpy())
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

    def _repr_html_(self) -> str:
        if not self.is_fitted:
            return summary_html(repr(self), {})
        headline = {
            "bars": self.n_obs_,
            "from": self.train_start_,
            "to": self.train_end_,
            "log-likelihood": float(self.log_likelihood_),
            "converged": bool(self.converged_),
            "structure": self.structure,
            "HMM features": ", ".join(self.hmm_features_),
        }
        if self.degenerate_:
            headline["degenerate"] = str(self.degenerate_)
        cells = pd.DataFrame({"share": self.occupancy_, "expected bars": self.expected_durations()})
        details = {
            "cells: share of bars and expected stay": cells,
            "transition matrix": self.transition_matrix(),
            "summary": self.summary(),
        }
        return summary_html(f"RegimeModel ({self.kind_})", headline, details)

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
        from quantdesk.regimes.persistence import model_artifact

        return model_artifact(self)

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
        from quantdesk.regimes.persistence import model_from_artifact

        return model_from_artifact(cls, arrays, metadata)

    def copy(self) -> RegimeModel:
        """Return an independent deep copy."""
        return copy.deepcopy(self)
