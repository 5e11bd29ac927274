"""Forecast scores against independent calculations (scipy, sklearn, by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import brier_score_loss
from sklearn.metrics import log_loss as sk_log_loss

from quantdesk.forecast import scores as sc


@pytest.fixture
def wide():
    rng = np.random.default_rng(0)
    f = pd.DataFrame(rng.normal(size=(30, 8)))
    y = pd.DataFrame(0.3 * f.to_numpy() + rng.normal(size=(30, 8)))
    return f, y


def test_daily_ic_and_rank_ic_match_scipy(wide):
    f, y = wide
    ic, ric = sc.daily_ic(f, y), sc.daily_ic(f, y, rank=True)
    for t in (0, 7, 29):
        assert np.isclose(ic.iloc[t], pearsonr(f.iloc[t], y.iloc[t])[0])
        assert np.isclose(ric.iloc[t], spearmanr(f.iloc[t], y.iloc[t])[0])
    assert np.isclose(sc.icir(ic), ic.mean() / ic.std(ddof=1))


def test_hit_rate_by_hand():
    f = pd.DataFrame([[1.0, -1.0, 0.0, 2.0]])
    y = pd.DataFrame([[0.5, 0.5, 1.0, 1.0]])
    assert sc.hit_rate(f, y).iloc[0] == pytest.approx(2 / 3)  # the zero forecast is left out


def test_log_loss_and_brier_match_sklearn_on_one_hot_outcomes():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(9), size=200)
    labels = rng.integers(0, 9, size=200)
    q = np.eye(9)[labels]
    assert np.isclose(sc.log_loss(p, q).mean(), sk_log_loss(labels, p, labels=range(9)))
    one_vs_rest = sum(brier_score_loss(labels == k, p[:, k]) for k in range(9))
    assert np.isclose(sc.brier(p, q).mean(), one_vs_rest)


def test_qlike_is_zero_at_the_truth_and_by_hand():
    assert sc.qlike(np.array([2.0]), np.array([2.0]))[0] == 0.0
    assert np.isclose(sc.qlike(np.array([4.0]), np.array([1.0]))[0], 0.25 - np.log(0.25) - 1)


def test_newey_west_matches_statsmodels():
    import statsmodels.api as sm

    rng = np.random.default_rng(2)
    x = np.convolve(rng.normal(size=500), np.ones(5) / 5, mode="valid")
    res = sm.OLS(x, np.ones_like(x)).fit(
        cov_type="HAC", cov_kwds={"maxlags": 4, "use_correction": False}
    )
    assert np.isclose(sc.newey_west_se(x, 4), float(res.bse[0]), rtol=1e-10)


def test_skill_of_losses_and_scores():
    ts = pd.RangeIndex(100)
    model = pd.Series(1.0, index=ts)
    base = pd.Series(2.0, index=ts)
    value, b, skill, lo, hi = sc.skill(model, base, "mse")
    assert (value, b, skill) == (1.0, 2.0, 0.5) and lo == hi == 0.5
    _, _, diff, _, _ = sc.skill(base, model, "ic")
    assert diff == 1.0


def test_calibration_table_of_a_calibrated_forecast():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(20000, 1))
    q = (rng.uniform(size=p.shape) < p).astype(float)
    table = sc.calibration_table(p, q, bins=5)
    assert table["n"].sum() == 20000
    assert np.allclose(table["observed"], table["forecast"], atol=0.02)
