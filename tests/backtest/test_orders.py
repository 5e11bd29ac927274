"""The compiled order simulation against its own semantics: the call-order sort and the kernel.

The kernel was restructured so that a cold numba cache compiles less (issue 25): its
call order comes from its own merge sort instead of numba's
``np.argsort(kind="mergesort")``, and the caller allocates every array.  These tests
hold the new code to the old semantics on random inputs, ties included, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantdesk.backtest import _order_kernel
from quantdesk.backtest.orders import fill_target_percent


def _keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random order values with many exact ties, signed zeros, infinities and NaN."""
    pool = np.array([-2.5, -1.0, -0.0, 0.0, 0.0, 1.0, 1.0, 3.0, np.inf, -np.inf, np.nan])
    keys = rng.choice(pool, n)
    free = rng.random(n) < 0.3
    keys[free] = rng.normal(0, 1e6, int(free.sum()))
    return keys


def test_stable_argsort_is_numpys_stable_argsort() -> None:
    """Lengths 0 to 70 and a few longer, 40 draws each: runs sorted by insertion alone,
    then odd and even numbers of merge passes."""
    rng = np.random.default_rng(25)
    for n in [*range(71), 100, 257, 500]:
        rows, values = np.empty((2, n), np.int64), np.empty((2, n))
        for _ in range(40):
            keys = _keys(rng, n)
            order = rows[_order_kernel.stable_argsort(keys, rows, values)]
            np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"), err_msg=keys)


def test_stable_argsort_keeps_ties_in_index_order() -> None:
    rows, values = np.empty((2, 6), np.int64), np.empty((2, 6))
    row = _order_kernel.stable_argsort(np.array([1.0, 0.0, 1.0, -0.0, np.nan, 1.0]), rows, values)
    assert rows[row].tolist() == [1, 3, 0, 2, 5, 4]


def _numpy_call_order(keys: np.ndarray, rows: np.ndarray, values: np.ndarray) -> int:
    """The kernel's former call order: NumPy's stable (merge) sort of the order values."""
    rows[0] = np.argsort(keys, kind="stable")
    return 0


def _case(seed: int) -> tuple[dict, bool]:
    """A random simulation (several groups, NaN orders, late listings, costs, limits) and
    whether its order values tie (equal prices and targets in every column)."""
    rng = np.random.default_rng(seed)
    n_bars, group_size, n_groups = int(rng.integers(2, 30)), int(rng.integers(1, 6)), 2
    n_cols = group_size * n_groups
    valuation = 10 * np.exp(np.cumsum(rng.normal(0, 0.05, (n_bars, group_size)), axis=0))
    orders = rng.uniform(-1, 1, (n_bars, n_cols)) * rng.choice([0.5, 1.5, 3.0]) / group_size
    ties = bool(rng.random() < 0.5)
    if ties:  # equal prices and targets: the call order decides which buy cash cuts short
        valuation[:] = valuation[:, :1]
        orders[:] = np.abs(orders[:, :1]) * 2
    orders[rng.random(orders.shape) < 0.3] = np.nan
    if rng.random() < 0.5:
        valuation[: rng.integers(1, n_bars), rng.integers(group_size)] = np.nan
    max_size = np.inf
    if rng.random() < 0.4:
        max_size = rng.uniform(0, 5e4, (n_bars, rng.choice([n_cols, group_size])))
    case = {
        "valuation": valuation if rng.random() < 0.5 else np.tile(valuation, n_groups),
        "orders": orders,
        "group_size": group_size,
        "fees": float(rng.choice([0.0, 5e-4, 2.5e-3])),
        "slippage": float(rng.choice([0.0, 1e-3])),
        "init_cash": float(rng.choice([1e4, 1e6])),
        "max_size": max_size,
        "granularity": [None, 1.0, 7.0][int(rng.integers(3))],
        "init_position": rng.choice([0.0, 0.0, 5.0, -3.0], group_size),
    }
    return case, ties


@pytest.mark.parametrize("seed", range(60))
def test_kernel_fills_what_numpys_sort_order_fills(seed, monkeypatch) -> None:
    """The compiled kernel against its own Python source run with NumPy's stable argsort.

    ``py_func`` is the kernel's code executed by the interpreter; with the call order
    from ``np.argsort(kind="stable")`` it is the kernel as it was before its sort was
    replaced.  Every fill must agree bit for bit.
    """
    case, _ = _case(seed)
    compiled = fill_target_percent(**case)  # compiles (or loads) before the patch below
    monkeypatch.setattr(_order_kernel, "stable_argsort", _numpy_call_order)
    monkeypatch.setattr(
        "quantdesk.backtest.orders._kernel", lambda: _order_kernel.fill_target_percent.py_func
    )
    interpreted = fill_target_percent(**case)
    names = ("bar", "col", "signed", "price", "fees")
    for ours, theirs, name in zip(compiled, interpreted, names, strict=True):
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_random_cases_fill_and_tie() -> None:
    """The cases above exercise what they claim: fills, lots, caps and exact ties."""
    cases = [_case(seed) for seed in range(60)]
    fills = [len(fill_target_percent(**case)[0]) for case, _ in cases]
    assert sum(n > 0 for n in fills) >= 50
    assert sum(n > 1 and ties for n, (_, ties) in zip(fills, cases, strict=True)) >= 15
    assert sum(case["granularity"] is not None for case, _ in cases) >= 15
    assert sum(np.ndim(case["max_size"]) == 2 for case, _ in cases) >= 15


@pytest.mark.parametrize("seed", range(20))
def test_no_cap_compiles_out_exactly_what_an_infinite_cap_does(seed) -> None:
    """Without caps the kernel is compiled without their code; an infinite cap in every
    cell (the code kept) and a scalar cap spread over every cell fill the same bits."""
    case, _ = _case(seed)
    shape = case["orders"].shape
    for scalar in (np.inf, 40.0):
        spread = fill_target_percent(**{**case, "max_size": np.full(shape, scalar)})
        for ours, theirs in zip(
            fill_target_percent(**{**case, "max_size": scalar}), spread, strict=True
        ):
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("seed", range(40))
def test_values_are_the_replayed_equity_bit_for_bit(seed) -> None:
    """The values the kernel writes are what Fills.equity replays from its fills, to the
    bit (a first backtest then compiles no replay kernel); from a held book they are
    cash plus units at the valuation prices."""
    from quantdesk.backtest.engine import Fills

    case, _ = _case(seed)
    group_size = case["group_size"]
    n_bars, n_groups = len(case["orders"]), case["orders"].shape[1] // group_size
    prices = case["valuation"][:, :group_size]  # the groups trade the same assets
    values = np.empty((n_bars, n_groups))
    flat = {**case, "init_position": np.zeros(group_size)}
    fills = Fills(*fill_target_percent(**flat, values=values))
    replayed = fills.equity(prices, n_groups, case["init_cash"])
    np.testing.assert_array_equal(values.view(np.int64), replayed.view(np.int64))

    bar, col, signed, price, fees = fill_target_percent(**case, values=values)
    flows = np.zeros((n_bars, n_groups))
    np.add.at(flows, (bar, col // group_size), signed * price + fees)
    units = np.zeros((n_bars, n_groups * group_size))
    np.add.at(units, (bar, col), signed)
    units = np.cumsum(units, axis=0) + np.tile(case["init_position"], n_groups)
    held = np.where(units != 0, units * np.tile(prices, n_groups), 0.0)
    expected = case["init_cash"] - np.cumsum(flows, axis=0)
    expected += held.reshape(n_bars, n_groups, group_size).sum(axis=2)
    np.testing.assert_allclose(values, expected, rtol=1e-9, atol=1e-6)


def test_values_must_fit_the_groups() -> None:
    case, _ = _case(0)
    with pytest.raises(ValueError, match="values must be"):
        fill_target_percent(**case, values=np.empty((len(case["orders"]), 1)))
