"""The order rules: what one fill costs and how it moves cash, written once (numba).

The compiled order simulation (:mod:`quantdesk.backtest.orders`) and the paper
ledger's buys, sells and rebalances (:mod:`quantdesk.portfolio.ledger`) both price a
fill here, so a ledger and a backtest agree to the last bit:

- a buy of ``q`` units fills at ``price * (1 + slippage)``, a sell at
  ``price * (1 - slippage)``;
- the commission is ``fees`` times the traded value ``q * fill_price``;
- a buy takes ``q * fill_price + commission`` from cash, a sell brings
  ``q * fill_price - commission``; sums that nearly cancel are exactly zero
  (:func:`add`, vectorbt's ``add_nb``).

Prices and sizes that are not finite, and prices that are not positive, are refused
(:func:`fill_order` raises ``ValueError``): a NaN quote can never become NaN cash.

Values within 1e-9 relative (1e-12 absolute) of each other compare as equal
(:func:`is_close`), as in vectorbt.  Every function is numba-jitted (cached on disk)
and callable from Python.

Examples
--------
>>> price, commission, change = fill_order(10.0, 100.0, 0.001, 0.005)
>>> round(price, 6), round(commission, 6), round(change, 6)
(100.5, 1.005, -1006.005)
>>> round(settle(2000.0, change), 6)
993.995
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["ABS_TOL", "REL_TOL", "add", "fill_order", "is_close", "is_less", "settle", "snap"]

_jit = numba.njit(cache=True, nogil=True)

#: vectorbt's tolerances (``vectorbt.utils.math_``): orders are compared, not only computed.
REL_TOL = 1e-9
ABS_TOL = 1e-12


@_jit  # type: ignore[misc]
def is_close(a: float, b: float) -> bool:
    """Return whether ``a`` and ``b`` are equal within the tolerances (never for NaN or inf)."""
    if np.isnan(a) or np.isnan(b) or np.isinf(a) or np.isinf(b):
        return False
    if a == b:
        return True
    # max(REL_TOL * max(|a|, |b|), ABS_TOL), without compiling the max() builtin
    scale = abs(b) if abs(b) > abs(a) else abs(a)
    tol = REL_TOL * scale
    return abs(a - b) <= (ABS_TOL if tol < ABS_TOL else tol)


@_jit  # type: ignore[misc]
def is_less(a: float, b: float) -> bool:
    """Return whether ``a < b`` and the two are not close."""
    return a < b and not is_close(a, b)


@_jit  # type: ignore[misc]
def add(a: float, b: float) -> float:
    """Return ``a + b``, exactly zero when the two nearly cancel (vectorbt's ``add_nb``)."""
    if np.sign(a) != np.sign(b):
        if is_close(abs(a), abs(b)):
            return 0.0
    elif is_close(a + b, 0.0):
        return 0.0
    return a + b


@_jit  # type: ignore[misc]
def snap(a: float) -> float:
    """Return ``a``, or exactly zero when it is within the tolerance of zero."""
    return 0.0 if is_close(a, 0.0) else a


@_jit  # type: ignore[misc]
def fill_order(
    units: float, price: float, fees: float, slippage: float
) -> tuple[float, float, float]:
    """Return ``(fill_price, commission, cash_change)`` of filling ``units`` at ``price``.

    ``units`` are signed (positive buys, negative sells) and filled in full;
    ``cash_change`` is negative for a buy (what it spends) and the proceeds net of
    commission for a sell.  ``fees`` and ``slippage`` are fractions (not bps).

    Raises
    ------
    ValueError
        When ``units`` or ``price`` is not finite, ``units`` is zero or ``price`` is not
        positive.
    """
    if not (np.isfinite(units) and np.isfinite(price)) or units == 0 or not price > 0:
        raise ValueError("an order needs finite non-zero units and a finite positive price")
    if units > 0:
        fill_price = price * (1 + slippage)
        req_cash = units * fill_price
        commission = req_cash * fees
        return fill_price, commission, -(req_cash + commission)
    fill_price = price * (1 - slippage)
    proceeds = -units * fill_price
    commission = proceeds * fees
    return fill_price, commission, add(proceeds, -commission)


@_jit  # type: ignore[misc]
def settle(cash: float, cash_change: float) -> float:
    """Return the cash after a fill's ``cash_change`` (a spend that uses it all leaves 0)."""
    if cash_change < 0:
        return add(cash, cash_change)
    return cash + cash_change
