"""Fills of target-percent orders: the backtest engine's compiled order simulation.

One numba kernel (compiled on first use, cached on disk; runs with lots or order caps
compile a specialisation of their own, see :mod:`quantdesk.backtest._order_kernel`)
turns a panel of target weights into fills.  Its rules are vectorbt's ``Portfolio.from_orders`` with
``size_type="targetpercent"``, ``direction="both"``, grouped columns with shared cash
and ``call_seq="auto"``, step for step and in the same floating-point order, so the two
agree to rounding (``tests/backtest/test_engine.py`` checks it, and against the
plain-Python ``tests/backtest/reference.py``).  vectorbt stays the reference, not the
hot path: importing it costs seconds in every new process, this module a fraction of one.

Per group of columns (one portfolio) and bar:

1. every column's valuation price becomes the bar's price (the last one when NaN);
2. the group's value ``V`` is cash plus each non-zero position at those prices;
3. each order's approximate value ``w * V - units * price`` sorts the columns, sells
   first (NaN orders last; ties keep column order);
4. in that order each column trades ``w * V / price - units`` units: buys at
   ``price * (1 + slippage)``, partially when cash cannot cover them and their
   commission; sells at ``price * (1 - slippage)``; both capped at ``max_size`` and
   rounded down to ``granularity``; an order under 1e-8 units is not filled.

Values within 1e-9 relative (1e-12 absolute) of each other compare as equal and cash
or units within 1e-12 of zero snap to zero, as in vectorbt.  The price, commission and
cash of each fill come from :func:`quantdesk.backtest.order_rules.fill_order`, the one
rule the paper ledger's manual trades use too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["fill_target_percent"]


def _kernel() -> Callable[..., int]:
    """Return the compiled simulation (first call: numba compiles it or loads its cache)."""
    from quantdesk.backtest._order_kernel import fill_target_percent as kernel

    return kernel  # type: ignore[no-any-return]


def fill_target_percent(
    valuation: np.ndarray,
    orders: np.ndarray,
    *,
    group_size: int,
    fees: float,
    slippage: float,
    init_cash: float,
    max_size: Any = np.inf,
    granularity: float | None = None,
    init_position: np.ndarray | None = None,
    values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the fills ``(bar, col, signed units, price, commission)`` of target weights.

    Parameters
    ----------
    valuation
        Prices to value and fill at, bars x columns; as wide as ``orders`` or one group
        wide (shared by every group).
    orders
        Target fractions of each group's value, bars x (groups x ``group_size``); NaN
        places no order.
    group_size
        Columns per group; each group is one portfolio with its own cash.
    fees, slippage
        Commission on traded value and price slippage, as fractions (not bps).
    init_cash
        Starting cash of each group.
    max_size
        Largest order in units: a scalar, or bars x columns (as wide as ``orders`` or
        one group wide).
    granularity
        Round order units down to multiples of this; None for fractional units.
    init_position
        Units each group holds before the first bar, one group wide (default flat).  With
        ``init_cash`` it lets one bar of a running book (the paper ledger's rebalance) go
        through the same simulation as a whole backtest.
    values
        Where to write each group's value at every bar's close (bars x groups, float64,
        C-ordered), if wanted: cash plus units at the valuation prices, bit for bit what
        :meth:`quantdesk.backtest.engine.Fills.equity` replays from the fills (which
        starts flat: so do these when ``init_position`` is flat).

    Fills come group by group, in bar order within a group, in call order within a bar.
    """
    orders = np.ascontiguousarray(orders, dtype=np.float64)
    valuation = np.ascontiguousarray(valuation, dtype=np.float64)
    if orders.ndim != 2 or valuation.ndim != 2 or valuation.shape[0] != orders.shape[0]:
        raise ValueError("valuation and orders must be 2-D with the same number of bars")
    if group_size < 1 or orders.shape[1] % group_size:
        raise ValueError(f"{orders.shape[1]} columns do not split into groups of {group_size}")
    if valuation.shape[1] not in (orders.shape[1], group_size):
        raise ValueError("valuation must be as wide as orders or as one group")
    cap = np.atleast_2d(np.asarray(max_size, dtype=np.float64))
    if cap.shape != (1, 1) and (
        cap.shape[0] != orders.shape[0] or cap.shape[1] not in (orders.shape[1], group_size)
    ):
        raise ValueError("max_size must be a scalar or bars x columns")
    start = np.zeros(group_size) if init_position is None else init_position
    start = np.ascontiguousarray(start, dtype=np.float64)
    if start.shape != (group_size,) or not np.isfinite(start).all():
        raise ValueError(f"init_position must be {group_size} finite units (one group wide)")
    # No cap and no lots leave their code out of the kernel (see _order_kernel).
    limit = None if cap.shape == (1, 1) and cap[0, 0] == np.inf else np.ascontiguousarray(cap)
    lot = None if granularity is None else float(granularity)
    n_groups = orders.shape[1] // group_size
    if values is None:
        values = np.empty((orders.shape[0], n_groups))
    elif (
        values.shape != (len(orders), n_groups)
        or values.dtype != np.float64
        or not (values.flags.c_contiguous and values.flags.writeable)
    ):
        raise ValueError(f"values must be a writable C-ordered float64 {len(orders)} x {n_groups}")
    # every array the kernel writes is allocated here, in NumPy
    capacity = int(np.count_nonzero(~np.isnan(orders)))  # at most one fill per order
    fill_ints = np.empty((2, capacity), dtype=np.int64)
    fill_floats = np.empty((3, capacity), dtype=np.float64)
    n = _kernel()(
        valuation, orders, limit, int(group_size), float(fees), float(slippage), lot,
        float(init_cash), start, fill_ints, fill_floats, np.empty(group_size),
        np.empty(group_size), np.empty(group_size), np.empty((2, group_size), dtype=np.int64),
        np.empty((2, group_size)), values, np.empty(group_size),
    )  # fmt: skip
    if n < 0:
        raise ValueError("cash cannot be NaN and must be greater than 0")
    signed, price, commission = fill_floats[:, :n]
    return fill_ints[0, :n], fill_ints[1, :n], signed, price, commission
