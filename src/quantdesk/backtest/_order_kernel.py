"""The compiled order simulation behind :mod:`quantdesk.backtest.orders` (numba).

Importing this module imports numba and compiles the kernel, or loads it from numba's
on-disk cache; :func:`quantdesk.backtest.orders.fill_target_percent` imports it on its
first call so that ``import quantdesk.backtest`` stays light.  The rules are written out
in that module's docstring.

A first backtest in a new process with a cold cache pays for everything compiled here,
so the kernel asks numba for little beyond its own loops:

- the caller allocates every array, so no NumPy constructor is compiled;
- holdings are copied element by element: a slice assignment between arrays compiles
  numba's shape-mismatch message (string formatting of integers: seconds);
- the call order comes from a plain merge sort, :func:`stable_argsort`, instead of
  numba's generic ``np.argsort(kind="mergesort")`` (over a second to compile);
- lots and order caps are code that a plain backtest never runs: given as None they are
  left out of the compiled kernel (numba prunes a branch on an argument that is None),
  so that a backtest without them compiles about two thirds of the kernel, and a run
  with them compiles its own specialisation on first use;
- cash gone NaN or negative returns -1 for the caller to raise, rather than compiling
  numba's exception machinery into the kernel;
- each group's value at every close comes out of the same loop (a separate replay of
  the fills is one more kernel to compile).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fill_target_percent", "stable_argsort"]

from quantdesk.backtest.order_rules import add, fill_order, is_close, is_less, settle, snap

_jit = numba.njit(cache=True, nogil=True)

# vectorbt's default smallest order (portfolio settings ``min_size``): less is no fill.
_MIN_SIZE = 1e-8


# Runs this short are sorted by insertion before merging (NumPy's mergesort does the same).
_RUN = 16


@_jit  # type: ignore[misc]
def stable_argsort(keys: np.ndarray, rows: np.ndarray, values: np.ndarray) -> int:
    """Return which row of ``rows`` holds the order that sorts ``keys``, stably.

    The row holds ``np.argsort(keys, kind="stable")``: ascending, ties in index order,
    NaN last.  Insertion sort of short runs, then bottom-up merges; ``rows`` (int64) and
    ``values`` (float64) are buffers of shape ``(2, len(keys))``: the runs move from one
    row to the other each pass, each index with its key (comparisons then read memory
    in order, as fast as numba's own argsort), and nothing is allocated.

    Examples
    --------
    >>> import numpy as np
    >>> keys = np.array([2.0, np.nan, 1.0, 2.0, -np.inf])
    >>> rows, values = np.empty((2, 5), np.int64), np.empty((2, 5))
    >>> rows[stable_argsort(keys, rows, values)].tolist()
    [4, 2, 0, 3, 1]
    """
    n = keys.shape[0]
    # "b before a" is b < a, or a NaN and b not: NaN sorts after everything, as in
    # NumPy, and equal keys never swap, so ties keep index order
    for lo in range(0, n, _RUN):
        hi = lo + _RUN if lo + _RUN < n else n
        for i in range(lo, hi):
            b = keys[i]
            j = i
            while j > lo:
                a = values[0, j - 1]
                if not (b < a or (a != a and b == b)):
                    break
                rows[0, j] = rows[0, j - 1]
                values[0, j] = a
                j -= 1
            rows[0, j] = i
            values[0, j] = b
    src = 0
    width = _RUN
    while width < n:
        dst = 1 - src
        for lo in range(0, n, 2 * width):
            mid = lo + width if lo + width < n else n
            hi = mid + width if mid + width < n else n
            i = lo
            j = mid
            k = lo
            while i < mid and j < hi:
                a = values[src, i]
                b = values[src, j]
                if b < a or (a != a and b == b):
                    rows[dst, k] = rows[src, j]
                    values[dst, k] = b
                    j += 1
                else:
                    rows[dst, k] = rows[src, i]
                    values[dst, k] = a
                    i += 1
                k += 1
            while i < mid:
                rows[dst, k] = rows[src, i]
                values[dst, k] = values[src, i]
                i += 1
                k += 1
            while j < hi:
                rows[dst, k] = rows[src, j]
                values[dst, k] = values[src, j]
                j += 1
                k += 1
        src = dst
        width *= 2
    return src


@_jit  # type: ignore[misc]
def fill_target_percent(
    valuation: np.ndarray,
    orders: np.ndarray,
    max_size: np.ndarray | None,
    group_size: int,
    fees: float,
    slippage: float,
    granularity: float | None,
    init_cash: float,
    init_position: np.ndarray,
    fill_ints: np.ndarray,
    fill_floats: np.ndarray,
    position: np.ndarray,
    val_price: np.ndarray,
    order_value: np.ndarray,
    call_rows: np.ndarray,
    call_values: np.ndarray,
    values: np.ndarray,
    held: np.ndarray,
) -> int:
    # Outputs, one column per fill (as many as there are orders): fill_ints rows bar and
    # column, fill_floats rows signed units, price and commission.  Scratch, one group
    # wide: units held, valuation prices, order values and the sort's buffers.
    # max_size (bars x columns, as wide as the orders or one group wide) and granularity
    # are None when there is no cap or no lot.  values (bars x groups) receives each
    # group's value at every close, cash plus units at the valuation prices, with cash
    # and units replayed from the fills exactly as Fills.equity replays them (same
    # operations, same order: the same bits), from units held in the scratch held.
    # Returns the number of fills, or -1 when cash is NaN or negative.
    n_bars, n_cols = orders.shape
    n_groups = n_cols // group_size
    # valuation is either as wide as the orders or one group wide (a sweep reuses one
    # price panel for every group)
    val_group = 1 if valuation.shape[1] == n_cols else 0
    n = 0
    for g in range(n_groups):
        first = g * group_size
        val_first = first * val_group
        cash = init_cash
        # every group starts from the same holdings (flat in a backtest; the paper
        # ledger's current book when it trades one bar)
        replay_cash = init_cash
        for k in range(group_size):
            position[k] = init_position[k]
            held[k] = init_position[k]
            val_price[k] = np.nan
        for t in range(n_bars):
            active = False
            for k in range(group_size):
                p = valuation[t, val_first + k]
                if p == p:  # not NaN
                    val_price[k] = p
                if orders[t, first + k] == orders[t, first + k]:
                    active = True
            # NaN orders change nothing: a bar without one only gets its value
            if active:
                value = cash
                for k in range(group_size):
                    if position[k] != 0:
                        value += position[k] * val_price[k]
                for k in range(group_size):
                    v = orders[t, first + k] * value - position[k] * val_price[k]
                    # NaN (no order) sorts last; order values are finite otherwise
                    order_value[k] = v if v == v else np.inf
                # A stable sort, sells first, ties in column order: the order vectorbt's
                # insertion sort gives, in n log n (a 500-asset book sorts every bar).
                call = stable_argsort(order_value, call_rows, call_values)
                value_now = snap(value)
                for j in range(group_size):
                    k = call_rows[call, j]
                    col = first + k
                    cash = snap(cash)
                    position[k] = snap(position[k])
                    weight = orders[t, col]
                    price = valuation[t, val_first + k]
                    if weight != weight or price != price:  # NaN
                        continue
                    if not cash >= 0:  # NaN or negative
                        return -1
                    if not value_now > 0:  # a wiped-out portfolio places no orders
                        continue
                    vp = snap(val_price[k])
                    size = weight * value_now / vp - position[k]
                    # min(|size|, cap): the cap is a cell of max_size, if any
                    units = size if size > 0 else -size
                    if max_size is not None:
                        cap_col = col if max_size.shape[1] == n_cols else k
                        cap = max_size[
                            t if max_size.shape[0] > 1 else 0,
                            cap_col if max_size.shape[1] > 1 else 0,
                        ]
                        if cap < units:
                            units = cap
                    if granularity is not None:
                        units = units // granularity * granularity
                    if size > 0:
                        if cash == 0:
                            continue
                        want = units
                        if is_close(want, 0.0):
                            continue
                        fill_price, fee_paid, change = fill_order(want, price, fees, slippage)
                        if not (is_close(-change, cash) or -change < cash):
                            # cash runs out: buy what it covers, commission included
                            max_req_cash = cash / (1 + fees)
                            if max_req_cash <= 0:
                                continue
                            units = max_req_cash / fill_price
                            if granularity is not None:
                                units = units // granularity * granularity
                                if is_less(units, _MIN_SIZE):
                                    continue
                                fill_price, fee_paid, change = fill_order(
                                    units, price, fees, slippage
                                )
                            else:  # the whole cash: what is not the commission buys units
                                fee_paid = cash - max_req_cash
                                change = -cash
                        if is_less(units, _MIN_SIZE):
                            continue
                        cash = settle(cash, change)
                        position[k] = add(position[k], units)
                        signed = units
                    else:
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
                    # the fills replayed as Fills.equity replays them, in its order
                    held[k] += signed
                    replay_cash -= signed * fill_price + fee_paid
                    n += 1
            # the group's value at the close: Fills.equity's sum, term for term
            worth = replay_cash
            for k in range(group_size):
                if held[k] != 0.0:
                    worth += held[k] * valuation[t, val_first + k]
            values[t, g] = worth
    return n
