"""Markov-chain maths against numpy's eigen-decomposition and hand calculations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from quantdesk.core.markov import expected_durations, stationary_distribution


def _random_chain(k: int, seed: int) -> np.ndarray:
    raw = np.random.default_rng(seed).random((k, k)) + np.eye(k) * k
    return raw / raw.sum(axis=1, keepdims=True)


def test_two_state_stationary_by_hand() -> None:
    # pi_0 * 0.1 = pi_1 * 0.5 and pi_0 + pi_1 = 1  =>  pi = (5/6, 1/6).
    np.testing.assert_allclose(stationary_distribution([[0.9, 0.1], [0.5, 0.5]]), [5 / 6, 1 / 6])


@pytest.mark.parametrize(("k", "seed"), [(3, 0), (9, 1), (9, 2)])
def test_stationary_is_the_left_unit_eigenvector(k: int, seed: int) -> None:
    p = _random_chain(k, seed)
    values, left = scipy.linalg.eig(p, left=True, right=False)
    vector = np.real(left[:, np.argmin(np.abs(values - 1.0))])
    np.testing.assert_allclose(stationary_distribution(p), vector / vector.sum(), atol=1e-12)
    np.testing.assert_allclose(stationary_distribution(p) @ p, stationary_distribution(p))


def test_stationary_matches_the_long_run_power() -> None:
    p = _random_chain(3, 5)
    limit = np.full(3, 1 / 3) @ np.linalg.matrix_power(p, 4096)
    np.testing.assert_allclose(stationary_distribution(p), limit, atol=1e-12)


def test_stationary_of_a_degenerate_system_is_uniform() -> None:
    np.testing.assert_allclose(stationary_distribution(np.zeros((3, 3))), [1 / 3] * 3)


def test_durations_by_hand() -> None:
    out = expected_durations(np.array([[0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [np.nan] * 3]))
    assert out[0] == pytest.approx(10.0)
    assert np.isinf(out[1])
    assert np.isnan(out[2])


def test_durations_are_the_mean_stay_of_a_simulated_chain() -> None:
    rng = np.random.default_rng(3)
    stay = 0.8
    runs = rng.geometric(1 - stay, size=200_000)  # stays of a chain leaving w.p. 0.2
    assert expected_durations([[stay, 1 - stay], [0.5, 0.5]])[0] == pytest.approx(
        runs.mean(), rel=0.01
    )


@pytest.mark.parametrize("func", [stationary_distribution, expected_durations])
def test_non_square_is_refused(func: object) -> None:
    with pytest.raises(ValueError, match="square"):
        func(np.ones((2, 3)))  # type: ignore[operator]
