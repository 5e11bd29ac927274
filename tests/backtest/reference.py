"""An independent, plain-Python implementation of the target-weight accounting.

Written from the rules in quantdesk.backtest.engine's docstring, not from vectorbt's
code: one loop over bars, one over orders.  Slow and obvious on purpose.
"""

from __future__ import annotations

import math

import pandas as pd


def reference_backtest(
    close: pd.DataFrame,
    weights: pd.DataFrame,
    *,
    commission_bps: float = 0.0,
    slippage_bps: float = 0.0,
    init_cash: float = 1_000_000.0,
) -> tuple[pd.Series, pd.DataFrame, float]:
    """Return (equity per bar, units per bar, total costs) for target weights."""
    fee = commission_bps * 1e-4
    slip = slippage_bps * 1e-4
    symbols = list(close.columns)
    cash = init_cash
    units = dict.fromkeys(symbols, 0.0)
    last_price: dict[str, float] = {}
    first_price = {s: close[s].dropna().iloc[0] for s in symbols}
    equity, held, costs = [], [], 0.0
    for ts in close.index:
        for s in symbols:
            p = close.at[ts, s]
            if not math.isnan(p):
                last_price[s] = p
        price = {s: last_price.get(s, first_price[s]) for s in symbols}
        value = cash + sum(units[s] * price[s] for s in symbols)
        orders = []
        for k, s in enumerate(symbols):
            w = weights.at[ts, s]
            if math.isnan(w) or math.isnan(close.at[ts, s]):
                continue
            delta = w * value / price[s] - units[s]
            orders.append((delta * price[s], k, s, delta))
        # sells (negative order value) first; ties keep column order
        for _, _, s, delta in sorted(orders, key=lambda o: (o[0], o[1])):
            if delta > 0:
                fill = price[s] * (1 + slip)
                need = delta * fill * (1 + fee)
                if need > cash:  # partial fill with all remaining cash
                    delta = cash / (1 + fee) / fill
                    need = cash
                cash -= need
                costs += delta * fill * fee + delta * (fill - price[s])
            elif delta < 0:
                fill = price[s] * (1 - slip)
                proceeds = -delta * fill
                cash += proceeds * (1 - fee)
                costs += proceeds * fee + (-delta) * (price[s] - fill)
            units[s] += delta
        equity.append(cash + sum(units[s] * price[s] for s in symbols))
        held.append(dict(units))
    return (
        pd.Series(equity, index=close.index),
        pd.DataFrame(held, index=close.index),
        costs,
    )
