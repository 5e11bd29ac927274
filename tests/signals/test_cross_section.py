"""Cross-sectional transforms: hand examples, scipy/numpy row-by-row references,
invariances (monotone, affine) and causality."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quantdesk.signals import cross_section
from quantdesk.signals.cross_section import demean, rank, winsorize, zscore

from .causality import assert_causal

nan = np.nan


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Daily returns of 12 symbols with fat tails, holes, a late listing and ties."""
    rng = np.random.default_rng(21)
    idx = pd.bdate_range("2022-01-03", periods=200, tz="UTC", name="ts")
    values = rng.standard_t(3, (200, 12)) * 0.01
    values[rng.random(values.shape) < 0.05] = nan
    values[:30, 0] = nan
    values[10, :] = nan  # a market holiday: an empty row
    values[11, 1:] = nan  # a row with one value
    values[12, :4] = 0.003  # ties
    return pd.DataFrame(values, index=idx, columns=[f"S{i:02d}" for i in range(12)])


def row(*values: float) -> pd.DataFrame:
    return pd.DataFrame([values], columns=[f"S{i}" for i in range(len(values))], dtype=float)


# ---------------------------------------------------------------- rank


def test_rank_hand_calculation() -> None:
    got = rank(row(0.3, -0.1, nan, 0.3, 0.0))
    # non-missing: -0.1 < 0.0 < 0.3 = 0.3 -> ranks 1, 2, 3.5, 3.5 of 4
    assert got.iloc[0].tolist() == pytest.approx([0.875, 0.25, nan, 0.875, 0.5], nan_ok=True)
    plain = rank(row(0.3, -0.1, nan, 0.3, 0.0), pct=False)
    assert plain.iloc[0].tolist() == pytest.approx([3.5, 1, nan, 3.5, 2], nan_ok=True)


def test_rank_matches_scipy_row_by_row(panel: pd.DataFrame) -> None:
    got = rank(panel).to_numpy()
    for i, values in enumerate(panel.to_numpy()):
        ok = ~np.isnan(values)
        expected = np.full(values.shape, nan)
        if ok.any():
            expected[ok] = stats.rankdata(values[ok]) / ok.sum()
        np.testing.assert_allclose(got[i], expected, rtol=1e-12)
    finite = got[np.isfinite(got)]
    assert finite.min() > 0 and finite.max() == 1.0


@pytest.mark.parametrize(
    "transform",
    [np.exp, lambda x: x**3, lambda x: 5 * x - 2, np.arctan],
    ids=["exp", "cube", "affine", "arctan"],
)
def test_rank_invariant_to_increasing_transforms(panel: pd.DataFrame, transform) -> None:
    pd.testing.assert_frame_equal(rank(transform(panel)), rank(panel))


def test_rank_reverses_under_negation(panel: pd.DataFrame) -> None:
    plain = rank(panel, pct=False)
    count = panel.notna().sum(axis=1)
    pd.testing.assert_frame_equal(rank(-panel, pct=False), (plain.rsub(count + 1, axis=0)))


# ---------------------------------------------------------------- zscore


def test_zscore_hand_calculation() -> None:
    got = zscore(row(1.0, 2.0, nan, 6.0)).iloc[0].tolist()
    # mean 3, sample std sqrt(((-2)^2 + (-1)^2 + 3^2) / 2) = sqrt(7)
    s = np.sqrt(7.0)
    assert got == pytest.approx([-2 / s, -1 / s, nan, 3 / s], nan_ok=True)


def test_zscore_rows_have_mean_zero_std_one(panel: pd.DataFrame) -> None:
    z = zscore(panel)
    full = panel.notna().sum(axis=1) >= 2
    np.testing.assert_allclose(z[full].mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[full].std(axis=1, ddof=1), 1.0, rtol=1e-12)
    assert z[~full].isna().all().all()  # no dispersion to scale by
    pd.testing.assert_frame_equal(z.isna(), panel.isna() | ~full.to_numpy()[:, None])


def test_zscore_matches_numpy_row_by_row(panel: pd.DataFrame) -> None:
    got = zscore(panel).to_numpy()
    for i, values in enumerate(panel.to_numpy()):
        ok = ~np.isnan(values)
        if ok.sum() < 2:
            continue
        x = values[ok]
        np.testing.assert_allclose(got[i, ok], (x - x.mean()) / x.std(ddof=1), rtol=1e-10)


def test_zscore_invariant_to_positive_affine_maps_per_row(panel: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    scale = pd.Series(rng.uniform(0.1, 10, len(panel)), index=panel.index)
    shift = pd.Series(rng.normal(0, 5, len(panel)), index=panel.index)
    mapped = panel.mul(scale, axis=0).add(shift, axis=0)
    pd.testing.assert_frame_equal(zscore(mapped), zscore(panel), rtol=1e-8, atol=1e-10)


def test_zscore_constant_row_is_nan() -> None:
    assert zscore(row(2.0, 2.0, 2.0)).isna().all().all()


def test_zscore_winsorize_clips_then_restandardises() -> None:
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 50.0])
    mean, std = values.mean(), values.std(ddof=1)
    clipped = np.clip(values, mean - 1.0 * std, mean + 1.0 * std)  # only 50 is clipped
    assert (clipped != values).sum() == 1
    expected = (clipped - clipped.mean()) / clipped.std(ddof=1)
    got = zscore(row(*values), winsorize=1.0).iloc[0].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_zscore_winsorize_keeps_rows_standardised(panel: pd.DataFrame) -> None:
    z = zscore(panel, winsorize=2.0)
    full = panel.notna().sum(axis=1) >= 2
    np.testing.assert_allclose(z[full].mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[full].std(axis=1, ddof=1), 1.0, rtol=1e-12)
    # never wider than the unclipped z-scores, which reach beyond 2 on these fat tails
    assert z.abs().max().max() < zscore(panel).abs().max().max()
    with pytest.raises(ValueError, match="winsorize"):
        zscore(panel, winsorize=0.0)


# ---------------------------------------------------------------- winsorize, demean


def test_winsorize_hand_calculation() -> None:
    got = winsorize(row(10.0, nan, 0.0, 4.0, 1.0, 2.0), 0.1, 0.9).iloc[0].tolist()
    # non-missing sorted 0, 1, 2, 4, 10: 10% quantile 0 + 0.4 * 1 = 0.4, 90% 4 + 0.6 * 6 = 7.6
    assert got == pytest.approx([7.6, nan, 0.4, 4.0, 1.0, 2.0], nan_ok=True)


def test_winsorize_matches_numpy_quantiles(panel: pd.DataFrame) -> None:
    got = winsorize(panel, 0.05, 0.95).to_numpy()
    for i, values in enumerate(panel.to_numpy()):
        ok = ~np.isnan(values)
        if not ok.any():
            assert np.isnan(got[i]).all()
            continue
        lo, hi = np.quantile(values[ok], [0.05, 0.95])
        np.testing.assert_allclose(got[i, ok], np.clip(values[ok], lo, hi), rtol=1e-12)
        assert np.isnan(got[i, ~ok]).all()


def test_winsorize_full_range_changes_nothing(panel: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(winsorize(panel, 0.0, 1.0), panel)


@pytest.mark.parametrize(("lower", "upper"), [(0.5, 0.5), (-0.1, 0.9), (0.1, 1.1), (0.9, 0.1)])
def test_winsorize_rejects_bad_quantiles(panel: pd.DataFrame, lower: float, upper: float) -> None:
    with pytest.raises(ValueError, match="lower"):
        winsorize(panel, lower, upper)


def test_demean_hand_calculation_and_rows_sum_to_zero(panel: pd.DataFrame) -> None:
    assert demean(row(1.0, nan, 2.0, 6.0)).iloc[0].tolist() == pytest.approx(
        [-2.0, nan, -1.0, 3.0], nan_ok=True
    )
    centred = demean(panel)
    np.testing.assert_allclose(centred.sum(axis=1), 0.0, atol=1e-15)
    pd.testing.assert_frame_equal(centred.isna(), panel.isna())
    # demeaning twice changes nothing, and a row-wise shift is removed
    pd.testing.assert_frame_equal(demean(centred), centred, atol=1e-15)
    shifted = panel.add(pd.Series(np.arange(len(panel)), index=panel.index), axis=0)
    pd.testing.assert_frame_equal(demean(shifted), centred, atol=1e-12)


# ---------------------------------------------------------------- alignment and causality


TRANSFORMS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "rank": rank,
    "zscore": lambda p: zscore(p, winsorize=2.5),
    "winsorize": winsorize,
    "demean": demean,
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_output_aligned_to_input(panel: pd.DataFrame, name: str) -> None:
    out = TRANSFORMS[name](panel)
    assert out.index.equals(panel.index) and out.columns.equals(panel.columns)


def test_every_public_function_has_a_causality_case() -> None:
    assert set(TRANSFORMS) == set(cross_section.__all__)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_causal(panel: pd.DataFrame, name: str) -> None:
    """Values up to t are the same whether or not the rows after t exist."""
    assert_causal(TRANSFORMS[name], panel, [13, 77, 150])


def test_causality_check_catches_a_look_ahead(panel: pd.DataFrame) -> None:
    leaky = lambda p: demean(p - p.mean())  # noqa: E731 - uses column means over all rows
    with pytest.raises(AssertionError):
        assert_causal(leaky, panel, [100])


def test_docstring_examples() -> None:
    result = doctest.testmod(cross_section)
    assert result.attempted > 0 and result.failed == 0
