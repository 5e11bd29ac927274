"""The compiled order simulation behind :mod:`quantdesk.backtest.orders` (numba).

Importing this module imports numba and compiles the kernel, or loads it from numba's
on-disk cache; :func:`quantdesk.backtest.orders.fill_target_percent` imports it on its
first call so that ``import quantdesk.backtest`` stays light.  The rules are written out
in that module's docstring.

A first backtest in a new process with a cold cache pays for everything compiled here,
so the kernel asks numba for little beyond its own loops: the caller allocates every
array (no NumPy constructor is compiled); holdings are copied element by element (a
slice assignment between arrays compiles numba's shape-mismatch message, string
formatting included: seconds); and the call order comes from a plain merge sort,
:func:`stable_argsort`, instead of numba's generic ``np.argsort(kind="mergesort")``
(over a second to compile).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fill_target_percent", "stable_argsort"]

from quantdesk.backtest.order_rules import add, fill_order, is_close, is_less, settle, snap

_jit = numba.njit(cache=True, nogil=True)

# vectorbt's default smallest order (portfolio settings ``min_size``): less is no fill.
_MIN_SIZE = 1e-8


@_jit  # type: ignore[misc]
def stable_argsort(keys: np.ndarray, order: np.ndarray, scratch: np.ndarray) -> None:
    """Write into ``order`` the indices that sort ``keys`` as ``np.argsort(kind="stable")``.

    Ascending, ties in index order, NaN last.  A bottom-up merge sort; ``order`` and
    ``scratch`` are int64 buffers as long as ``keys``, so nothing is allocated.

    Examples
    --------
    >>> import numpy as np
    >>> order, scratch = np.empty(5, np.int64), np.empty(5, np.int64)
    >>> stable_argsort(np.array([2.0, np.nan, 1.0, 2.0, -np.inf]), order, scratch)
    >>> order.tolist()
    [4, 2, 0, 3, 1]
    """
    n = keys.shape[0]
    for i in range(n):
        order[i] = i
    width = 1
    in_order = True  # which buffer holds the runs merged so far
    while width < n:
        src, dst = (order, scratch) if in_order else (scratch, order)
        for lo in range(0, n, 2 * width):
            # (conditionals, not min(): each builtin is one more thing to compile)
            mid = lo + width if lo + width < n else n
            hi = lo + 2 * width if lo + 2 * width < n else n
            i, j = lo, mid
            for k in range(lo, hi):
                take_right = j < hi
                if take_right and i < mid:
                    a, b = keys[src[i]], keys[src[j]]
                    # the right run goes first only when strictly before: ties keep index
                    # order; NaN sorts after everything, as in NumPy
                    take_right = b < a or (a != a and b == b)
                if take_right:
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
        in_order = not in_order
        width *= 2
    if not in_order:
        for i in range(n):
            order[i] = scratch[i]


@_jit  # type: ignore[misc]
def fill_target_percent(
    valuation: np.ndarray,
    orders: np.ndarray,
    max_size: np.ndarray,
    group_size: int,
    fees: float,
    slippage: float,
    granularity: float,
    init_cash: float,
    init_position: np.ndarray,
    fill_ints: np.ndarray,
    fill_floats: np.ndarray,
    work: np.ndarray,
    sort_work: np.ndarray,
) -> int:
    # Outputs, one column per fill (as many as there are orders): fill_ints rows bar and
    # column, fill_floats rows signed units, price and commission.  Scratch, one group
    # wide: work rows units, valuation price and order value (float64); sort_work rows
    # call order and the sort's buffer (int64).  Returns the number of fills.
    n_bars, n_cols = orders.shape
    n_groups = n_cols // group_size
    # valuation and max_size are either as wide as the orders or one group wide (a sweep
    # reuses one price panel for every group); max_size may also be one scalar cell.
    val_full = valuation.shape[1] == n_cols
    ms_rows = max_size.shape[0] > 1
    ms_cols = max_size.shape[1]
    position = work[0]
    val_price = work[1]
    order_value = work[2]
    call = sort_work[0]
    n = 0
    for g in range(n_groups):
        first = g * group_size
        cash = init_cash
        # every group starts from the same holdings (flat in a backtest; the paper
        # ledger's current book when it trades one bar)
        for k in range(group_size):
            position[k] = init_position[k]
            val_price[k] = np.nan
        for t in range(n_bars):
            active = False
            for k in range(group_size):
                p = valuation[t, first + k if val_full else k]
                if not np.isnan(p):
                    val_price[k] = p
                if not np.isnan(orders[t, first + k]):
                    active = True
            if not active:  # NaN orders change nothing: skip the bar
                continue
            value = cash
            for k in range(group_size):
                if position[k] != 0:
                    value += position[k] * val_price[k]
            for k in range(group_size):
                v = orders[t, first + k] * value - position[k] * val_price[k]
                # NaN (no order) sorts last; order values are finite otherwise
                order_value[k] = np.inf if np.isnan(v) else v
            # A stable sort, sells first, ties in column order: the order vectorbt's
            # insertion sort gives, in n log n (a 500-asset book sorts every bar).
            stable_argsort(order_value, call, sort_work[1])
            value_now = snap(value)
            for j in range(group_size):
                k = call[j]
                col = first + k
                cash = snap(cash)
                position[k] = snap(position[k])
                weight = orders[t, col]
                price = valuation[t, col if val_full else k]
                if np.isnan(weight) or np.isnan(price):
                    continue
                if np.isnan(cash) or cash < 0:
                    raise ValueError("cash cannot be NaN and must be greater than 0")
                if not value_now > 0:  # a wiped-out portfolio places no orders
                    continue
                vp = snap(val_price[k])
                size = weight * value_now / vp - position[k]
                cap = max_size[
                    t if ms_rows else 0,
                    (col if ms_cols == n_cols else k) if ms_cols > 1 else 0,
                ]
                if size > 0:
                    if cash == 0:
                        continue
                    want = cap if cap < size else size  # min(size, cap)
                    if not np.isnan(granularity):
                        want = want // granularity * granularity
                    if is_close(want, 0.0):
                        continue
                    fill_price, fee_paid, change = fill_order(want, price, fees, slippage)
                    if is_close(-change, cash) or -change < cash:
                        units = want
                    else:  # cash runs out: buy what it covers, commission included
                        max_req_cash = cash / (1 + fees)
                        if max_req_cash <= 0:
                            continue
                        units = max_req_cash / fill_price
                        if not np.isnan(granularity):
                            units = units // granularity * granularity
                            if is_less(units, _MIN_SIZE):
                                continue
                            fill_price, fee_paid, change = fill_order(units, price, fees, slippage)
                        else:  # the whole cash: what is not the commission buys units
                            fee_paid = cash - max_req_cash
                            change = -cash
                    if is_less(units, _MIN_SIZE):
                        continue
                    cash = settle(cash, change)
                    position[k] = add(position[k], units)
                    signed = units
                else:
                    units = cap if cap < -size else -size  # min(-size, cap)
                    if not np.isnan(granularity):
                        units = units // granularity * granularity
                    if is_close(units, 0.0) or is_less(units, _MIN_SIZE):
                        continue
                    fill_price, fee_paid, received = fill_order(-units, price, fees, slippage)
                    if received < 0:
                        continue
                    cash = settle(cash, received)
                    position[k] = add(position[k], -units)
                    signed = -units
                fill_ints[0, n] = t
                fill_ints[1, n] = col
                fill_floats[0, n] = signed
                fill_floats[1, n] = fill_price
                fill_floats[2, n] = fee_paid
                n += 1
    return n
