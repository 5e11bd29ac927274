"""RegimeModel: causal filter against independent references, accuracy on the simulator
against statsmodels and the true-parameter filter, the S&P 500, label stability,
degenerate fits and artifacts."""

from __future__ import annotations

import io
import json
import logging
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal, norm

from quantdesk.data import load_sample, simulate
from quantdesk.data.sources.simulator import TREND_LABELS as SIM_TREND_LABELS
from quantdesk.data.sources.simulator import VOL_LABELS as SIM_VOL_LABELS
from quantdesk.data.sources.simulator import RegimeParams
from quantdesk.regimes.em import factorial_start as _factorial_start
from quantdesk.regimes.em import run_em as _run_em
from quantdesk.regimes.factorial import factorial_emissions as _factorial_emissions
from quantdesk.regimes.factorial import factorial_transmat as _factorial_transmat
from quantdesk.regimes.factorial import trend_prior_counts as _trend_prior_counts
from quantdesk.regimes.features import compute_features
from quantdesk.regimes.labels import assign_cells as _assign_cells
from quantdesk.regimes.model import (
    CELL_NAMES,
    STATE_COLUMNS,
    TREND_LABELS,
    VOL_LABELS,
    RegimeModel,
    forward_filter,
)

PROBS = list(STATE_COLUMNS)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return simulate(n_symbols=1, n_days=1500, seed=3).bars


@pytest.fixture(scope="module")
def model(bars: pd.DataFrame) -> RegimeModel:
    return RegimeModel(random_state=0).fit(bars)


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    return load_sample("sp500")[0]


def _plain_forward(log_b: np.ndarray, start: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """The normalised forward recursion with explicit loops over states, in log space."""
    n, k = log_b.shape
    out = np.empty((n, k))
    log_alpha = [math.log(p) if p > 0 else -math.inf for p in start]
    for t in range(n):
        if t > 0:
            prev = log_alpha
            log_alpha = []
            for j in range(k):
                terms = [
                    prev[i] + math.log(trans[i][j])
                    for i in range(k)
                    if trans[i][j] > 0 and prev[i] > -math.inf
                ]
                if not terms:  # unreachable
                    log_alpha.append(-math.inf)
                    continue
                top = max(terms)
                log_alpha.append(top + math.log(sum(math.exp(v - top) for v in terms)))
        log_alpha = [a + log_b[t][j] for j, a in enumerate(log_alpha)]
        top = max(log_alpha)
        log_norm = top + math.log(sum(math.exp(a - top) for a in log_alpha))
        log_alpha = [a - log_norm for a in log_alpha]
        out[t] = [math.exp(a) for a in log_alpha]
    return out


# ------------------------------------------------------------------ the forward filter


def test_forward_filter_equals_hand_written_recursion_on_two_states() -> None:
    rng = np.random.default_rng(0)
    start = np.array([0.3, 0.7])
    trans = np.array([[0.95, 0.05], [0.1, 0.9]])
    states = [0]
    for _ in range(199):
        states.append(int(rng.random() < trans[states[-1], 1]))
    x = rng.normal(np.array([-1.0, 1.0])[states], 1.5)
    log_b = np.column_stack([norm.logpdf(x, -1.0, 1.5), norm.logpdf(x, 1.0, 1.5)])
    np.testing.assert_allclose(
        forward_filter(log_b, start, trans), _plain_forward(log_b, start, trans), atol=1e-12
    )


def test_forward_filter_survives_underflow_and_impossible_states() -> None:
    # Row 1: the likeliest state (2) cannot be reached from state 0, and the reachable one
    # is exp(-2000) times less likely, which underflows a naive recursion.
    start = np.array([1.0, 0.0, 0.0])
    trans = np.array([[0.5, 0.5, 0.0], [0.2, 0.6, 0.2], [0.0, 0.5, 0.5]])
    log_b = np.array([[0.0, -5.0, -9.0], [-2000.0, -2001.0, 0.0], [-3.0, -1.0, -2.0]])
    got = forward_filter(log_b, start, trans)
    np.testing.assert_allclose(got, _plain_forward(log_b, start, trans), atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_filter_equals_an_independent_reference(model: RegimeModel, bars: pd.DataFrame) -> None:
    """Densities from scipy, the recursion in plain loops, parameters from the artifact."""
    arrays, meta = model.to_artifact()
    assert meta["kind"] == "joint"
    features = compute_features(bars)
    std = meta["standardizer"]
    z = (features.to_numpy() - np.array(std["mean"])) / np.array(std["scale"])
    x = z[:, [list(features.columns).index(c) for c in meta["chain_columns"]["joint"]]]
    assert meta["structure"] == "factorial" and meta["covariance_type"] == "diag"
    log_b = np.column_stack(
        [
            multivariate_normal(mean, np.diag(var)).logpdf(x)
            for mean, var in zip(arrays["joint_means"], arrays["joint_covars"], strict=True)
        ]
    )
    expected = _plain_forward(log_b, arrays["joint_startprob"], arrays["joint_transmat"])
    got = model.filter(bars)
    np.testing.assert_allclose(got[PROBS].to_numpy(), expected, atol=1e-9)


def test_filter_and_smoother_agree_only_on_the_last_day(
    model: RegimeModel, bars: pd.DataFrame
) -> None:
    filtered = model.filter(bars)
    smoothed = model.smooth(bars)  # hmmlearn's forward-backward
    pd.testing.assert_index_equal(filtered.index, smoothed.index)
    np.testing.assert_allclose(
        filtered[PROBS].iloc[-1].to_numpy(), smoothed[PROBS].iloc[-1].to_numpy(), atol=1e-8
    )
    # Earlier rows differ: the smoother uses the future.
    assert np.abs(filtered[PROBS].to_numpy() - smoothed[PROBS].to_numpy()).max() > 0.5


def test_filter_is_causal(model: RegimeModel, bars: pd.DataFrame) -> None:
    full = model.filter(bars)
    for stop in (200, 555, 1000, len(bars) - 1):
        part = model.filter(bars.iloc[:stop])
        assert len(part) == stop - model.features.warmup
        head = full.iloc[: len(part)]
        np.testing.assert_allclose(part[PROBS].to_numpy(), head[PROBS].to_numpy(), atol=1e-10)
        assert (part["state"] == head["state"]).all()


def test_filter_output_contract(model: RegimeModel, bars: pd.DataFrame) -> None:
    out = model.filter(bars)
    assert list(out.columns) == ["state", "vol_label", "trend_label", *PROBS]
    assert out.index.name == "ts" and str(out.index.tz) == "UTC"
    assert out["state"].dtype == np.int64
    np.testing.assert_allclose(out[PROBS].sum(axis=1), 1.0, atol=1e-12)
    assert (out["state"].to_numpy() == out[PROBS].to_numpy().argmax(axis=1)).all()
    assert (out["vol_label"] == np.array(VOL_LABELS)[out["state"] // 3]).all()
    assert (out["trend_label"] == np.array(TREND_LABELS)[out["state"] % 3]).all()
    assert model.filter(bars.iloc[:30]).empty  # all warm-up


def test_constants_follow_the_interface() -> None:
    assert VOL_LABELS == SIM_VOL_LABELS == ("low", "medium", "high")
    assert TREND_LABELS == SIM_TREND_LABELS == ("bearish", "neutral", "bullish")
    assert STATE_COLUMNS[0] == "p_low_bearish" and STATE_COLUMNS[8] == "p_high_bullish"
    assert STATE_COLUMNS[5] == "p_medium_bullish"  # cell id = vol * 3 + trend
    assert CELL_NAMES[3] == "medium/bearish"


# ------------------------------------------------------------------ accuracy


def _statsmodels_vol_labels(returns: np.ndarray) -> np.ndarray:
    """Filtered volatility level of statsmodels' 3-regime switching-variance model."""
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # EM then one BFGS step: the same log-likelihood as statsmodels' default fit (EM 5
        # + BFGS) on these series, in a fifth of the time.
        result = sm.tsa.MarkovRegression(
            pd.Series(100 * returns), k_regimes=3, switching_variance=True
        ).fit(disp=False, em_iter=100, maxiter=1)
    variances = np.asarray(result.params)[-3:]  # sigma2[0..2]
    level_of_regime = np.argsort(np.argsort(variances))
    return level_of_regime[np.asarray(result.filtered_marginal_probabilities).argmax(axis=1)]


def _confusion(truth: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> str:
    table = pd.crosstab(
        pd.Categorical(np.array(labels)[truth], categories=labels),
        pd.Categorical(np.array(labels)[predicted], categories=labels),
        rownames=["true"],
        colnames=["filtered"],
        dropna=False,
    )
    return table.to_string()


@pytest.mark.slow
def test_accuracy_on_simulated_markets_against_statsmodels_and_the_oracle() -> None:
    """Four 20-year paths of the default simulator; ground truth = its regime path."""
    params = RegimeParams()
    ours_v, ours_t, truth_v, truth_t = [], [], [], []
    peer_v, peer_truth, oracle_v, oracle_t = [], [], [], []
    for seed in (0, 1):
        market = simulate(2, 5040, seed, regime_scope="symbol", params=params)
        for symbol in market.symbols:
            sym_bars = market.bars[market.bars["symbol"] == symbol]
            truth = market.regimes[market.regimes["symbol"] == symbol].set_index("ts")
            filtered = RegimeModel(random_state=0).fit(sym_bars).filter(sym_bars)
            aligned = truth.loc[filtered.index]
            ours_v.append(filtered["state"].to_numpy() // 3)
            ours_t.append(filtered["state"].to_numpy() % 3)
            truth_v.append(aligned["vol_state"].to_numpy())
            truth_t.append(aligned["trend_state"].to_numpy())
            returns = np.diff(np.log(sym_bars["close"].to_numpy()))
            peer_v.append(_statsmodels_vol_labels(returns))
            peer_truth.append(truth["vol_state"].to_numpy()[1:])
            cells = params.true_filter(returns, float(market.vol_scales[symbol]))
            oracle_v.append(np.mean(cells // 3 == truth["vol_state"].to_numpy()[1:]))
            oracle_t.append(np.mean(cells % 3 == truth["trend_state"].to_numpy()[1:]))
    v, t = np.concatenate(ours_v), np.concatenate(ours_t)
    tv, tt = np.concatenate(truth_v), np.concatenate(truth_t)
    pv, ptv = np.concatenate(peer_v), np.concatenate(peer_truth)
    vol_acc, trend_acc, peer_acc = np.mean(v == tv), np.mean(t == tt), np.mean(pv == ptv)
    print(
        f"\nvolatility accuracy: quantdesk {vol_acc:.3f}, "
        f"statsmodels MarkovRegression {peer_acc:.3f}"
    )
    print(f"trend accuracy: quantdesk {trend_acc:.3f} (chance 0.333)")
    print(
        f"true-parameter filter on close-to-close returns (ceiling reference): volatility "
        f"{np.mean(oracle_v):.3f}, trend {np.mean(oracle_t):.3f}"
    )
    print("quantdesk volatility confusion:\n" + _confusion(tv, v, VOL_LABELS))
    print("quantdesk trend confusion:\n" + _confusion(tt, t, TREND_LABELS))
    print("statsmodels volatility confusion:\n" + _confusion(ptv, pv, VOL_LABELS))
    assert vol_acc >= 0.85
    assert vol_acc > peer_acc
    # The target; the filter that knows the simulator's true parameters is the
    # ceiling (0.583 on these paths, 0.578 on the benchmark's twelve), ours 0.579 here.
    assert trend_acc >= 0.55
    assert trend_acc >= np.mean(oracle_t) - 0.03


# ------------------------------------------------------------------ real data


def test_sp500_crisis_is_high_volatility_and_2017_is_calm(sp500: pd.DataFrame) -> None:
    whole = RegimeModel(random_state=0).fit(sp500).filter(sp500)
    crisis = whole.loc["2008-09-15":"2009-03-31", "vol_label"]
    calm = whole.loc["2017-01-01":"2017-12-31", "vol_label"]
    print(
        f"\nwhole-sample fit: crisis high {np.mean(crisis == 'high'):.1%}, 2017 low/medium "
        f"{np.mean(calm.isin(['low', 'medium'])):.1%}"
    )
    assert np.mean(crisis == "high") >= 0.8
    assert np.mean(calm.isin(["low", "medium"])) >= 0.9
    # Out of sample: fitted on data up to mid-2008 (or 2016), filtered forward.
    before = sp500[sp500["ts"] < "2008-07-01"]
    ahead = RegimeModel(random_state=0).fit(before).filter(sp500)
    crisis_oos = ahead.loc["2008-09-15":"2009-03-31", "vol_label"]
    before_2017 = sp500[sp500["ts"] < "2017-01-01"]
    calm_oos = RegimeModel(random_state=0).fit(before_2017).filter(sp500).loc["2017", "vol_label"]
    print(
        f"expanding fits: crisis high {np.mean(crisis_oos == 'high'):.1%}, 2017 low/medium "
        f"{np.mean(calm_oos.isin(['low', 'medium'])):.1%}"
    )
    assert np.mean(crisis_oos == "high") >= 0.8
    assert np.mean(calm_oos.isin(["low", "medium"])) >= 0.9


def _shifted_agreement(
    bars: pd.DataFrame, start: int, window: int = 2520, shift: int = 21
) -> tuple[float, float]:
    """Share of overlapping days with the same cell: (independent refit, warm-started)."""
    first = bars.iloc[start : start + window]
    second = bars.iloc[start + shift : start + shift + window]
    base = RegimeModel(random_state=0).fit(first)
    cold = RegimeModel(random_state=0).fit(second)
    warm = RegimeModel(random_state=0).fit(second, init_from=base)
    overlap = slice(second["ts"].iloc[0], first["ts"].iloc[-1])
    labels = [m.filter(bars).loc[overlap, "state"] for m in (base, cold, warm)]
    return float(np.mean(labels[0] == labels[1])), float(np.mean(labels[0] == labels[2]))


def test_label_stability_on_a_window_shifted_by_one_month(sp500: pd.DataFrame) -> None:
    for seed in (0, 1):
        sim = simulate(1, 2520 + 21, seed).bars.reset_index(drop=True)
        cold, warm = _shifted_agreement(sim, 0)
        print(f"\nsimulated seed {seed}: same cell on {cold:.1%} (refit) / {warm:.1%} (warm start)")
        assert cold >= 0.95 and warm >= 0.95
    spx = sp500.reset_index(drop=True)
    for start in (0, 1250, 2500):
        cold, warm = _shifted_agreement(spx, start)
        print(
            f"S&P 500 window from {spx['ts'].iloc[start]:%Y-%m}: same cell on {cold:.1%} "
            f"(refit) / {warm:.1%} (warm start)"
        )
        # The factorial structure leaves EM little room for another optimum: independent
        # refits agree too (the free structure's gave 72-99% on these windows).
        assert cold >= 0.95 and warm >= 0.95


def test_cell_assignment_ignores_the_order_em_leaves_states_in() -> None:
    rng = np.random.default_rng(4)
    vol = np.repeat([-1.2, 0.0, 1.3], 3) + rng.normal(0, 0.1, 9)
    trend = np.tile([-1.0, 0.1, 1.1], 3) + rng.normal(0, 0.1, 9)
    targets = np.array([-1.2, 0.0, 1.2]), np.array([-1.0, 0.0, 1.0])
    base = _assign_cells(vol, trend, *targets)
    assert sorted(base) == list(range(9))
    assert (base == np.arange(9)).all()
    for _ in range(5):
        perm = rng.permutation(9)
        assert (_assign_cells(vol[perm], trend[perm], *targets) == base[perm]).all()


def test_cells_are_ordered_in_the_dimension_that_defines_them(model: RegimeModel) -> None:
    assert model.kind_ == "joint" and model.degenerate_ is None
    assert sorted(model.state_map_) == list(range(9))
    vol = model.cell_means_["log_vol"].to_numpy().reshape(3, 3)
    trend = model.cell_means_["trend"].to_numpy().reshape(3, 3)
    assert (np.diff(vol, axis=0) > 0).all()  # low < medium < high in every trend column
    assert (np.diff(trend, axis=1) > 0).all()  # bearish < neutral < bullish in every row


# ------------------------------------------------------------------ the factorial structure


def _kron_factors(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the two 3x3 chains whose Kronecker product ``matrix`` should be."""
    c = matrix.reshape(3, 3, 3, 3)
    vol, trend = c.sum(axis=(1, 3)), c.sum(axis=(0, 2))
    return vol / vol.sum(axis=1, keepdims=True), trend / trend.sum(axis=1, keepdims=True)


def test_factorial_transition_update_recovers_two_independent_chains() -> None:
    rng = np.random.default_rng(0)
    vol = rng.dirichlet(np.ones(3), size=3) + np.eye(3) * 4
    trend = rng.dirichlet(np.ones(3), size=3) + np.eye(3) * 8
    vol, trend = vol / vol.sum(1, keepdims=True), trend / trend.sum(1, keepdims=True)
    joint = np.kron(vol, trend)
    # Expected counts of a long path of the product chain: occupancy x transition row.
    occupancy = rng.dirichlet(np.ones(9)) * 5000
    got = _factorial_transmat(occupancy[:, None] * joint)
    np.testing.assert_allclose(got, joint, atol=1e-9)
    # Any counts: the maximiser normalises each chain's counts summed over the other chain.
    counts = rng.uniform(0, 50, size=(9, 9))
    expected_vol = np.zeros((3, 3))
    expected_trend = np.zeros((3, 3))
    for i in range(9):
        for j in range(9):
            expected_vol[i // 3, j // 3] += counts[i, j]
            expected_trend[i % 3, j % 3] += counts[i, j]
    expected = np.kron(
        expected_vol / expected_vol.sum(1, keepdims=True),
        expected_trend / expected_trend.sum(1, keepdims=True),
    )
    np.testing.assert_allclose(_factorial_transmat(counts), expected, atol=1e-9)


def test_trend_prior_is_a_dirichlet_map_update_on_the_trend_chain_only() -> None:
    prior = _trend_prior_counts(1000.0, 63.0)
    assert prior is not None and _trend_prior_counts(0.0, 63.0) is None
    np.testing.assert_allclose(prior.sum(axis=1), 1000.0)
    np.testing.assert_allclose(1 / (1 - np.diag(prior) / 1000.0), 63.0)  # expected stay
    assert prior[0, 1] == pytest.approx(3 * prior[0, 2])  # a trend ends in neutral 3 in 4
    rng = np.random.default_rng(1)
    counts = rng.uniform(0, 50, size=(9, 9))
    got = _factorial_transmat(counts, prior).reshape(3, 3, 3, 3)
    plain = _factorial_transmat(counts).reshape(3, 3, 3, 3)
    vol_got, trend_got = got.sum(axis=(1, 3)) / 3, got.sum(axis=(0, 2)) / 3
    np.testing.assert_allclose(vol_got, plain.sum(axis=(1, 3)) / 3, atol=1e-12)  # untouched
    # MAP of a multinomial row under Dirichlet(1 + prior): (counts + prior) / row total, by
    # hand from the trend chain's counts (summed over the volatility chain).
    trend_counts = counts.reshape(3, 3, 3, 3).sum(axis=(0, 2)) + prior
    np.testing.assert_allclose(
        trend_got, trend_counts / trend_counts.sum(1, keepdims=True), atol=1e-12
    )


def _expected_log_likelihood(
    gamma: np.ndarray, x: np.ndarray, means: np.ndarray, variances: np.ndarray
) -> float:
    """sum_t sum_k gamma[t, k] log N(x[t]; means[k], diag(variances[k])), with scipy."""
    total = 0.0
    for k in range(9):
        total += float(gamma[:, k] @ norm.logpdf(x, means[k], np.sqrt(variances[k])).sum(axis=1))
    return total


def test_factorial_emission_update_maximises_the_expected_log_likelihood() -> None:
    """Against a numerical optimiser of the tied parameters (scipy), from another start."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(1)
    t = 3000
    vol, trend = rng.integers(0, 3, t), rng.integers(0, 3, t)
    x = np.column_stack(
        [
            rng.normal(np.array([-1.0, 0.0, 1.2])[vol], 0.4),
            rng.normal(np.array([-0.2, 0.0, 0.15])[trend], np.array([0.6, 1.0, 1.8])[vol]),
            rng.normal(np.array([-1.0, 0.1, 1.0])[trend], 0.7),
        ]
    )
    gamma = rng.dirichlet(np.ones(9) * 0.3, size=t)
    gamma[np.arange(t), 3 * vol + trend] += 2.0
    gamma /= gamma.sum(axis=1, keepdims=True)
    columns = ("log_vol", "log_return", "trend")
    stats = gamma.sum(0), gamma.T @ x, gamma.T @ x**2
    means = np.zeros((9, 3))
    for _ in range(20):  # the update is a fixed point at the optimum
        means, variances = _factorial_emissions(*stats, columns, means, 1e-6)
    ours = _expected_log_likelihood(gamma, x, means, variances)
    vol_of, trend_of = np.repeat(np.arange(3), 3), np.tile(np.arange(3), 3)

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = np.column_stack([theta[0:3][vol_of], theta[6:9][trend_of], theta[12:15][trend_of]])
        v = np.exp(
            np.column_stack([theta[3:6][vol_of], theta[9:12][vol_of], np.full(9, theta[15])])
        )
        return m, v

    result = minimize(
        lambda theta: -_expected_log_likelihood(gamma, x, *unpack(theta)),
        np.zeros(16),
        method="L-BFGS-B",
        options={"maxiter": 5000, "maxfun": 100_000},
    )
    assert ours >= -result.fun - 1e-6 * abs(result.fun)
    best_means, best_vars = unpack(result.x)
    np.testing.assert_allclose(means, best_means, atol=2e-3)
    np.testing.assert_allclose(variances, best_vars, rtol=5e-3)


def test_factorial_em_raises_the_likelihood_and_keeps_its_structure(bars: pd.DataFrame) -> None:
    features = compute_features(bars)
    z = ((features - features.mean()) / features.std()).to_numpy()
    columns = ("log_return", "log_vol", "trend")
    codes = [np.minimum(3 * np.argsort(np.argsort(z[:, c])) // len(z), 2) for c in (1, 2)]
    start = _factorial_start(z, columns, codes[0], codes[1], 0.97)
    result = _run_em(z, start, "diag", 60, 1e-9, (np.zeros((9, 3)), 0.0), columns)
    history = np.asarray(result.hmm.monitor_.history)
    assert len(history) > 5
    assert (np.diff(history) >= -1e-6 * np.abs(history[1:])).all()  # EM never goes down
    means, variances = result.hmm.means_, result.hmm._covars_
    for f, by in ((0, "trend"), (1, "vol"), (2, "trend")):
        levels = means[:, f].reshape(3, 3)  # [vol, trend]
        axis = 0 if by == "trend" else 1  # the mean is constant along the other factor
        np.testing.assert_allclose(levels - levels.mean(axis=axis, keepdims=True), 0, atol=1e-12)
    np.testing.assert_allclose(variances[:, 0].reshape(3, 3).std(axis=1), 0, atol=1e-12)
    assert np.ptp(variances[:, 2]) < 1e-12  # one trend-feature variance
    transmat = np.asarray(result.hmm.transmat_)
    np.testing.assert_allclose(transmat, np.kron(*_kron_factors(transmat)), atol=1e-12)


@pytest.mark.parametrize("structure", ["factorial", "free"])
def test_both_structures_fit_a_clean_grid(bars: pd.DataFrame, structure: str) -> None:
    fitted = RegimeModel(random_state=0, structure=structure).fit(bars)  # type: ignore[arg-type]
    assert fitted.kind_ == "joint" and fitted.degenerate_ is None
    assert fitted.structure == structure
    vol = fitted.cell_means_["log_vol"].to_numpy().reshape(3, 3)
    trend = fitted.cell_means_["trend"].to_numpy().reshape(3, 3)
    assert (np.diff(vol, axis=0) > 0).all() and (np.diff(trend, axis=1) > 0).all()
    matrix = fitted.transition_matrix().to_numpy()
    is_kron = np.allclose(matrix, np.kron(*_kron_factors(matrix)), atol=1e-10)
    assert is_kron == (structure == "factorial")
    assert f"{structure} structure" in fitted.summary()


def test_auto_features_read_the_trend_from_returns_when_they_identify_it(
    sp500: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    # The simulator's drifts are visible in its returns: the returns model is kept.
    sim = simulate(1, 5040, 0, regime_scope="symbol").bars
    fitted = RegimeModel(random_state=0).fit(sim)
    assert fitted.hmm_features == "auto"
    assert fitted.kind_ == "joint" and fitted.hmm_features_ == ("log_return", "log_vol")
    drifts = fitted.cell_means_["log_return"].to_numpy().reshape(3, 3)
    assert (np.diff(drifts, axis=1) > 0).all()
    # A decade of the S&P 500 does not separate three drifts: the trend statistic is added,
    # and the rejection is logged with its reason.
    with caplog.at_level(logging.INFO, logger="quantdesk.regimes.model"):
        real = RegimeModel(random_state=0).fit(sp500.iloc[:2520])
    assert real.kind_ == "joint" and real.hmm_features_ == ("log_return", "log_vol", "trend")
    assert "on log_return, log_vol: " in caplog.text and "standard errors" in caplog.text
    assert "HMM features log_return, log_vol, trend (auto)" in real.summary()
    # Both round-trip through artifacts; a warm start keeps its own features.
    for one, data in ((fitted, sim), (real, sp500.iloc[:2520])):
        again = RegimeModel.from_artifact(*one.to_artifact())
        assert again.hmm_features == "auto" and again.hmm_features_ == one.hmm_features_
        pd.testing.assert_frame_equal(again.filter(data), one.filter(data), check_exact=True)
    shifted = sp500.iloc[21 : 21 + 2520]
    assert RegimeModel(random_state=0).fit(shifted, init_from=real).hmm_features_ == (
        real.hmm_features_
    )


def test_trend_prior_draws_the_fitted_trend_episodes_towards_a_quarter() -> None:
    spread = {}
    for weight in (0.0, 1000.0):
        days = []
        for seed in (0, 1, 4):
            sim = simulate(1, 5040, seed, regime_scope="symbol").bars
            fitted = RegimeModel(random_state=0, trend_prior_weight=weight).fit(sim)
            assert fitted.hmm_features_ == ("log_return", "log_vol")
            matrix = fitted.transition_matrix().to_numpy().reshape(3, 3, 3, 3)
            trend = matrix.sum(axis=(0, 2)) / 3  # the trend chain of kron(A_vol, A_trend)
            days.append(1 / (1 - np.diag(trend)))
        spread[weight] = np.abs(np.log(np.concatenate(days) / 63.0))
    # Unpenalised, 20 years of returns pin a trend direction's duration only loosely
    # (36-256 days on these paths; the simulator's are 80-100); the prior, 1000
    # pseudo-transitions of quarter-long trends per row, draws them to 56-80 days.
    assert spread[0.0].max() > math.log(2.0)
    assert spread[1000.0].max() < math.log(1.5)
    assert spread[1000.0].mean() < spread[0.0].mean() / 2


def test_artifacts_without_a_structure_load_as_the_free_model(bars: pd.DataFrame) -> None:
    fitted = RegimeModel(random_state=0, structure="free").fit(bars)
    arrays, meta = fitted.to_artifact()
    old = {k: v for k, v in meta.items() if k != "structure"}  # written before it existed
    loaded = RegimeModel.from_artifact(arrays, old)
    assert loaded.structure == "free" and loaded.covariance_type == "tied"
    pd.testing.assert_frame_equal(loaded.filter(bars), fitted.filter(bars), check_exact=True)


# ------------------------------------------------------------------ degenerate fits


def test_one_regime_market_is_detected_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    flat = RegimeParams(vol_levels=(0.18, 0.18, 0.18), drifts=(0.0, 0.0, 0.0))
    gbm = simulate(1, 2520, 11, params=flat).bars
    with caplog.at_level(logging.WARNING, logger="quantdesk.regimes.model"):
        fitted = RegimeModel(random_state=0).fit(gbm)
    print("\n" + fitted.summary())
    assert fitted.kind_ == "product"
    assert fitted.degenerate_ is not None
    assert "no longer than the noise of the 5-bar volatility window" in fitted.degenerate_
    assert "the product fallback is degenerate too" in fitted.degenerate_
    assert any("degenerate 9-state regime fit" in r.message for r in caplog.records)
    assert "DEGENERATE" in fitted.summary()
    out = fitted.filter(gbm)
    np.testing.assert_allclose(out[PROBS].sum(axis=1), 1.0, atol=1e-12)


def test_product_fallback_is_the_product_of_two_chains(bars: pd.DataFrame) -> None:
    # An impossible separation requirement forces the fallback on good data.
    fitted = RegimeModel(random_state=0, min_separation=1e6).fit(bars)
    assert fitted.kind_ == "product"
    assert "need >= 1e+06" in (fitted.degenerate_ or "")
    probs = fitted.filter(bars)[PROBS].to_numpy().reshape(-1, 3, 3)
    vol, trend = probs.sum(axis=2), probs.sum(axis=1)
    np.testing.assert_allclose(probs, vol[:, :, None] * trend[:, None, :], atol=1e-12)
    matrix = fitted.transition_matrix().to_numpy()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    smoothed = fitted.smooth(bars)[PROBS].to_numpy()
    np.testing.assert_allclose(smoothed[-1], probs[-1].ravel(), atol=1e-8)
    assert sorted(fitted.state_map_) == list(range(9))


# ------------------------------------------------------------------ artifacts, API


@pytest.mark.parametrize("min_separation", [0.25, 1e6], ids=["joint", "product"])
def test_artifact_round_trip_reproduces_the_filter(
    bars: pd.DataFrame, min_separation: float
) -> None:
    fitted = RegimeModel(random_state=0, min_separation=min_separation).fit(bars)
    arrays, meta = fitted.to_artifact()
    # As a registry would store them: arrays in an .npz, metadata as JSON.
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded_arrays = {k: npz[k] for k in npz.files}
    loaded = RegimeModel.from_artifact(loaded_arrays, json.loads(json.dumps(meta)))
    assert loaded.kind_ == fitted.kind_
    pd.testing.assert_frame_equal(loaded.filter(bars), fitted.filter(bars), check_exact=True)
    pd.testing.assert_frame_equal(loaded.smooth(bars), fitted.smooth(bars))
    pd.testing.assert_frame_equal(loaded.transition_matrix(), fitted.transition_matrix())
    pd.testing.assert_frame_equal(loaded.cell_means_, fitted.cell_means_)
    assert loaded.summary() == fitted.summary()
    assert meta["train_start"] == fitted.train_start_.isoformat()
    assert {"hmmlearn", "numpy", "scikit-learn"} <= set(meta["versions"])
    with pytest.raises(ValueError, match="format"):
        RegimeModel.from_artifact(arrays, {**meta, "format": 99})


def test_warm_start_converges_faster_to_the_same_labels(bars: pd.DataFrame) -> None:
    first = RegimeModel(random_state=0).fit(bars.iloc[:1200])
    cold = RegimeModel(random_state=0).fit(bars.iloc[21:1221])
    warm = RegimeModel(random_state=0).fit(bars.iloc[21:1221], init_from=first)
    assert warm.n_iter_ < cold.n_iter_
    same = warm.filter(bars)["state"] == first.filter(bars)["state"]
    assert same.mean() >= 0.95


def test_transition_matrix_and_summary(model: RegimeModel) -> None:
    matrix = model.transition_matrix()
    assert list(matrix.index) == list(CELL_NAMES) == list(matrix.columns)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert (model.expected_durations() > 1).all()
    text = model.summary()
    assert "high/bullish" in text and "converged" in text
    assert model.converged_ and model.n_iter_ > 0 and model.n_obs_ == 1500 - 67
    assert np.isfinite(model.log_likelihood_)
    assert model.occupancy_.sum() == pytest.approx(1.0)


def test_same_seed_same_model(bars: pd.DataFrame, model: RegimeModel) -> None:
    again = RegimeModel(random_state=0).fit(bars)
    pd.testing.assert_frame_equal(again.filter(bars), model.filter(bars))


def test_invalid_use_gives_clear_errors(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="n_states must be 9"):
        RegimeModel(4)
    with pytest.raises(ValueError, match="hmm_features"):
        RegimeModel(structure="free", hmm_features=("log_return", "log_vol"))
    with pytest.raises(ValueError, match="including 'log_vol'"):
        RegimeModel(hmm_features=("log_return", "trend"))
    with pytest.raises(ValueError, match="'auto' with the factorial structure"):
        RegimeModel(structure="free", hmm_features="auto")
    with pytest.raises(ValueError, match="trend_prior_weight must be >= 0"):
        RegimeModel(trend_prior_weight=-1.0)
    with pytest.raises(ValueError, match="trend_prior_days must be > 1"):
        RegimeModel(trend_prior_days=1.0)
    with pytest.raises(ValueError, match="must be 'diag'"):
        RegimeModel(covariance_type="full")
    with pytest.raises(ValueError, match="structure"):
        RegimeModel(structure="joint")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not fitted"):
        RegimeModel().filter(bars)
    with pytest.raises(ValueError, match="at least 250 bars"):
        RegimeModel().fit(bars.iloc[:300])
    with pytest.raises(ValueError, match="one symbol"):
        RegimeModel().fit(simulate(2, 400, 0).bars)


def test_importing_the_model_loads_no_heavy_library() -> None:
    code = (
        "import sys, quantdesk.regimes.model, quantdesk.regimes.features; "
        "print([m for m in ('hmmlearn', 'sklearn', 'numba', 'statsmodels', 'scipy.optimize') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
