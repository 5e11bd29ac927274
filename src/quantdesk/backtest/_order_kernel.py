"""The compiled order simulation behind :mod:`quantdesk.backtest.orders` (numba).

Importing this module imports numba and compiles the kernel, or loads it from numba's
on-disk cache; :func:`quantdesk.backtest.orders.fill_target_percent` imports it on its
first call so that ``import quantdesk.backtest`` stays light.  The rules are written out
in that module's docstring.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["fill_target_percent"]

from quantdesk.backtest.order_rules import add, fill_order, is_close, is_less, settle, snap

_jit = numba.njit(cache=True, nogil=True)

# vectorbt's default smallest order (portfolio settings ``min_size``): less is no fill.
_MIN_SIZE = 1e-8


@_jit  # type: ignore[misc]
def _count_orders(orders: np.ndarray) -> int:
    n = 0
    for t in range(orders.shape[0]):
        for c in range(orders.shape[1]):
            if not np.isnan(orders[t, c]):
                n += 1
    return n


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_bars, n_cols = orders.shape
    n_groups = n_cols // group_size
    capacity = _count_orders(orders)
    out_bar = np.empty(capacity, dtype=np.int64)
    out_col = np.empty(capacity, dtype=np.int64)
    out_signed = np.empty(capacity, dtype=np.float64)
    out_price = np.empty(capacity, dtype=np.float64)
    out_fees = np.empty(capacity, dtype=np.float64)
    # valuation and max_size are either as wide as the orders or one group wide (a sweep
    # reuses one price panel for every group); max_size may also be one scalar cell.
    val_full = valuation.shape[1] == n_cols
    ms_rows = max_size.shape[0] > 1
    ms_cols = max_size.shape[1]
    position = np.zeros(group_size)
    val_price = np.empty(group_size)
    order_value = np.empty(group_size)
    n = 0
    for g in range(n_groups):
        first = g * group_size
        cash = init_cash
        # every group starts from the same holdings (flat in a backtest; the paper
        # ledger's current book when it trades one bar)
        position[:] = init_position
        val_price[:] = np.nan
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
            call = np.argsort(order_value, kind="mergesort")
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
                    want = min(size, cap)
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
                    units = min(-size, cap)
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
                out_bar[n] = t
                out_col[n] = col
                out_signed[n] = signed
                out_price[n] = fill_price
                out_fees[n] = fee_paid
                n += 1
    return out_bar[:n], out_col[:n], out_signed[:n], out_price[:n], out_fees[:n]
