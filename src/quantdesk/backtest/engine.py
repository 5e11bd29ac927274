"""Target-weight backtests with explicit costs, on a compiled order simulation.

The accounting, bar by bar (it is what ``tests/backtest/reference.py`` re-implements
independently in plain Python):

1. The portfolio value ``V`` is cash plus every position at this bar's close.
2. Each asset with a target weight ``w`` (not NaN) gets an order for
   ``w * V / close - units`` units, so weights are fractions of total value, never of
   free cash.  Orders that sell run first, so a rebalance that sells one asset to buy
   another is funded (vectorbt's rules: grouped columns, shared cash, automatic call
   order).
3. Buys fill at ``close * (1 + slippage)``, sells at ``close * (1 - slippage)``, and pay
   a commission on the traded value.  A buy that cash cannot cover is filled partially.
   An optional cap limits each order to a share of the bar's volume; optional lots
   round units down.
4. NaN weights place no order: the position is held and its weight drifts.

Orders are simulated by :func:`quantdesk.backtest.orders.fill_target_percent`, a numba
kernel that follows ``vectorbt.Portfolio.from_orders`` step for step.  vectorbt is the
reference it is tested against (:func:`simulate_orders`, and
:attr:`BacktestResult.portfolio` on demand), not the hot path: importing vectorbt takes
seconds in every new process and the kernel a fraction of one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.config import DEFAULT_COMMISSION_BPS, DEFAULT_SLIPPAGE_BPS
from quantdesk.core.html import summary_html

__all__ = [
    "DEFAULT_COMMISSION_BPS",
    "DEFAULT_SLIPPAGE_BPS",
    "BacktestResult",
    "Fills",
    "order_inputs",
    "rebalance_fills",
    "run",
    "simulate_fills",
    "simulate_orders",
]

logger = logging.getLogger(__name__)

BPS = 1e-4


def _check_close(close: pd.DataFrame) -> None:
    if not isinstance(close, pd.DataFrame):
        raise TypeError("close must be a wide DataFrame (index ts, columns symbols)")
    values = close.to_numpy(dtype=np.float64)
    if values.size and np.nanmin(values, initial=np.inf) <= 0:
        raise ValueError("close has non-positive prices")


def _check_panels(close: pd.DataFrame, weights: pd.DataFrame) -> None:
    _check_close(close)
    if not isinstance(weights, pd.DataFrame):
        raise TypeError("weights must be a wide DataFrame (index ts, columns symbols)")
    if not close.index.equals(weights.index):
        raise ValueError("weights must have the same index as close (align with .reindex_like)")
    if not close.columns.equals(weights.columns):
        missing = sorted(set(map(str, weights.columns)) ^ set(map(str, close.columns)))
        raise ValueError(f"weights and close must have the same columns; differ in {missing[:5]}")
    if np.isinf(weights.to_numpy(dtype=np.float64)).any():
        raise ValueError("weights must be finite fractions of portfolio value (NaN: no order)")


def _bar_length(index: pd.Index) -> pd.Timedelta | None:
    """Return the typical spacing of a DatetimeIndex (vectorbt's ``freq``), if any."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return None
    return pd.Timedelta(int(np.median(np.diff(index.asi8))), unit=index.unit)


@functools.cache
def _equity_kernel() -> Any:
    import numba

    # The caller allocates and fills the starting arrays (units, cash, cursors), so
    # numba compiles the loops only, no NumPy constructor (see _order_kernel).
    @numba.njit(cache=True, nogil=True)  # type: ignore[misc]
    def equity_by_group(bar, col, signed, price, fees, ends, close, units, cash, cursor, out):  # type: ignore[no-untyped-def]
        # vectorbt writes fills group by group, in bar order within a group: one cursor
        # per group walks that group's fills as the bars advance.
        n_bars, n_assets = close.shape
        n_groups = cash.shape[0]
        for t in range(n_bars):
            for g in range(n_groups):
                k = cursor[g]
                while k < ends[g] and bar[k] == t:
                    units[col[k]] += signed[k]
                    cash[g] -= signed[k] * price[k] + fees[k]
                    k += 1
                cursor[g] = k
                value = cash[g]
                for a in range(n_assets):
                    u = units[g * n_assets + a]
                    if u != 0.0:
                        value += u * close[t, a]
                out[t, g] = value

    return equity_by_group


@dataclass(frozen=True)
class Fills:
    """Order records of a simulation, mapped back to full-index bar numbers."""

    bar: np.ndarray
    col: np.ndarray
    signed: np.ndarray
    price: np.ndarray
    fees: np.ndarray

    @classmethod
    def from_records(cls, records: np.ndarray, bars: np.ndarray) -> Fills:
        """Return fills whose ``bar`` indexes the full panel (``bars`` maps sim rows)."""
        return cls(
            bar=bars[records["idx"]],
            col=records["col"].astype(np.int64),
            signed=np.where(records["side"] == 0, records["size"], -records["size"]),
            price=records["price"].copy(),
            fees=records["fees"].copy(),
        )

    def equity(self, close: np.ndarray, n_groups: int, init_cash: float) -> np.ndarray:
        """Return portfolio value per bar and group; groups share ``close``'s assets."""
        group = self.col // close.shape[1]
        if group.size and np.any(np.diff(group) < 0):
            raise ValueError("fills must be ordered group by group, as vectorbt writes them")
        starts = np.searchsorted(group, np.arange(n_groups + 1))
        close = np.ascontiguousarray(close, dtype=np.float64)
        value = np.empty((close.shape[0], n_groups))
        _equity_kernel()(
            self.bar, self.col, self.signed, self.price, self.fees, starts[1:], close,
            np.zeros(n_groups * close.shape[1]), np.full(n_groups, float(init_cash)),
            starts[:-1].copy(), value,
        )  # fmt: skip
        return value

    def units(self, shape: tuple[int, int]) -> np.ndarray:
        """Return units held per bar and column (one ``bincount`` and a cumulative sum)."""
        n_bars, n_cols = shape
        flow = np.bincount(
            self.bar * n_cols + self.col, weights=self.signed, minlength=n_bars * n_cols
        )
        # float even without fills (bincount of nothing is integer)
        return np.cumsum(flow.reshape(n_bars, n_cols), axis=0, dtype=np.float64)


def simulate_orders(
    valuation: np.ndarray,
    orders: np.ndarray,
    *,
    group_size: int,
    commission_bps: float,
    slippage_bps: float,
    init_cash: float,
    max_size: Any = np.inf,
    lot_size: float | None = None,
    freq: Any = None,
    labels: tuple[pd.Index, pd.Index] | None = None,
) -> tuple[Any, Fills]:
    """Return the vectorbt Portfolio and its fills for target-percent ``orders``.

    The reference implementation of :func:`simulate_fills` (imports vectorbt).  Only
    bars with at least one order go to vectorbt: between them target-percent orders
    leave units and cash untouched, so skipping empty bars changes no number, and the
    Portfolio spans the order bars only (:class:`Fills` maps back to the full index).
    With ``labels`` (index, columns) every bar goes, and the Portfolio carries them.
    """
    import vectorbt as vbt

    has_order = ~np.isnan(orders)
    bars = np.flatnonzero(has_order.any(axis=1))
    if bars.size == 0 or labels is not None:
        bars = np.arange(len(orders)) if labels is not None else np.array([0])
    n_orders = int(np.count_nonzero(has_order[bars]))
    if not np.isscalar(max_size):
        max_size = max_size[bars]
    n_groups = orders.shape[1] // group_size
    prices: Any = valuation[bars]
    targets: Any = orders[bars]
    if labels is not None:  # vectorbt then labels its frames with the panel's ts and symbols
        prices = pd.DataFrame(prices, index=labels[0], columns=labels[1])
        targets = pd.DataFrame(targets, index=labels[0], columns=labels[1])
    portfolio = vbt.Portfolio.from_orders(
        prices,
        targets,
        size_type="targetpercent",
        direction="both",
        group_by=np.repeat(np.arange(n_groups), group_size),
        cash_sharing=True,
        call_seq="auto",
        fees=commission_bps * BPS,
        slippage=slippage_bps * BPS,
        max_size=max_size,
        size_granularity=np.nan if lot_size is None else lot_size,
        init_cash=init_cash,
        freq=freq,
        max_orders=max(n_orders, 1),
    )
    return portfolio, Fills.from_records(portfolio.order_records, bars)


def simulate_fills(
    valuation: np.ndarray,
    orders: np.ndarray,
    *,
    group_size: int,
    commission_bps: float,
    slippage_bps: float,
    init_cash: float,
    max_size: Any = np.inf,
    lot_size: float | None = None,
    init_position: np.ndarray | None = None,
    values: np.ndarray | None = None,
) -> Fills:
    """Return the fills of target-percent ``orders`` from the compiled simulation.

    The same orders, costs and limits as :func:`simulate_orders`, with the same fills
    (to rounding), without importing vectorbt.  ``valuation`` may be one group wide
    when every group trades the same assets (a sweep).  ``init_position`` is the units
    each group holds before the first bar (default flat).  ``values`` (bars x groups),
    if given, receives each group's value at every close from the same run, bit for
    bit :meth:`Fills.equity` (see :func:`~quantdesk.backtest.orders.fill_target_percent`).
    """
    from quantdesk.backtest.orders import fill_target_percent

    bar, col, signed, price, fees = fill_target_percent(
        valuation, orders, group_size=group_size, fees=commission_bps * BPS,
        slippage=slippage_bps * BPS, init_cash=init_cash, max_size=max_size,
        granularity=lot_size, init_position=init_position, values=values,
    )  # fmt: skip
    return Fills(bar=bar, col=col, signed=signed, price=price, fees=fees)


@dataclass
class BacktestResult:
    """Return value of :func:`run`: equity, positions, trades, costs and metrics.

    Everything is a pandas object a notebook can use directly; derived frames are
    computed on first access.  :attr:`portfolio` builds the same run as a vectorbt
    Portfolio, on demand, for anything not covered here.
    """

    fills: Fills = field(repr=False)
    close: pd.DataFrame = field(repr=False)
    target_weights: pd.DataFrame = field(repr=False)
    init_cash: float
    commission_bps: float
    slippage_bps: float
    periods_per_year: float = 252.0
    options: Mapping[str, Any] = field(default_factory=dict)
    reference: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    values: np.ndarray | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def portfolio(self) -> Any:
        """The vectorbt Portfolio of the same orders (imports vectorbt: seconds, once)."""
        if self.reference is None:
            raise AttributeError("this result was not built by run(); it has no portfolio")
        return self.reference()

    @functools.cached_property
    def equity(self) -> pd.Series:
        """Total portfolio value at each bar's close."""
        value = self.values  # from the simulation, when run() made it
        if value is None:
            value = self.fills.equity(self.close.to_numpy(), 1, self.init_cash)[:, 0]
        return pd.Series(value, index=self.close.index, name="equity")

    @functools.cached_property
    def returns(self) -> pd.Series:
        """Simple returns of the portfolio per bar (the first bar against ``init_cash``)."""
        previous = self.equity.shift(1).fillna(self.init_cash)
        return (self.equity / previous - 1.0).rename("returns")

    @functools.cached_property
    def positions(self) -> pd.DataFrame:
        """Units held of each asset after each bar's orders."""
        units = self.fills.units(self.close.shape)
        return pd.DataFrame(units, index=self.close.index, columns=self.close.columns)

    @functools.cached_property
    def position_values(self) -> pd.DataFrame:
        """Value of each position at the bar's close."""
        return self.positions * self.close

    @functools.cached_property
    def cash(self) -> pd.Series:
        """Cash after each bar's orders."""
        return (self.equity - self.position_values.sum(axis=1)).rename("cash")

    @functools.cached_property
    def weights(self) -> pd.DataFrame:
        """Realised weights: position value over total value at each close."""
        return self.position_values.div(self.equity, axis=0)

    @functools.cached_property
    def trades(self) -> pd.DataFrame:
        """Every fill: ts, symbol, side, units, price, value, commission and slippage cost."""
        f = self.fills
        idx, col = f.bar, f.col
        size, price = np.abs(f.signed), f.price
        ref = self.close.to_numpy()[idx, col]
        side = np.where(f.signed > 0, "buy", "sell")
        trades = pd.DataFrame(
            {
                "ts": self.close.index[idx],
                "symbol": self.close.columns[col],
                "side": side,
                "units": size,
                "price": price,
                "value": size * price,
                "commission": f.fees,
                "slippage": size * np.abs(price - ref),
            }
        )
        return trades.sort_values(["ts", "symbol"], kind="stable", ignore_index=True)

    @functools.cached_property
    def costs(self) -> pd.DataFrame:
        """Costs paid per bar: commission, slippage and their total."""
        by_bar = self.trades.groupby("ts")[["commission", "slippage"]].sum()
        by_bar = by_bar.reindex(self.close.index, fill_value=0.0)
        by_bar["total"] = by_bar["commission"] + by_bar["slippage"]
        return by_bar

    @functools.cached_property
    def traded_value(self) -> pd.Series:
        """Absolute value traded per bar, summed over assets."""
        per_bar = self.trades.groupby("ts")["value"].sum()
        return per_bar.reindex(self.close.index, fill_value=0.0).rename("traded_value")

    @functools.cached_property
    def turnover(self) -> pd.Series:
        """Traded value over portfolio value, per bar."""
        return (self.traded_value / self.equity).rename("turnover")

    @functools.cached_property
    def exposure(self) -> pd.DataFrame:
        """Gross, net, long and short exposure as fractions of portfolio value."""
        w = self.weights
        return pd.DataFrame(
            {
                "gross": w.abs().sum(axis=1),
                "net": w.sum(axis=1),
                "long": w.clip(lower=0).sum(axis=1),
                "short": w.clip(upper=0).sum(axis=1),
            }
        )

    @functools.cached_property
    def asset_pnl(self) -> pd.DataFrame:
        """P&L of each asset per bar after its own costs; rows sum to the equity change."""
        held = self.positions.shift(1).fillna(0.0)
        price_pnl = held * self.close.diff().fillna(0.0)
        # Fills happen at the close plus slippage: marked at the close, each fill books
        # its slippage and commission as an immediate loss.
        costs = self.trades.pivot_table(
            index="ts", columns="symbol", values=["commission", "slippage"], aggfunc="sum"
        )
        booked = (
            pd.DataFrame(costs["commission"] + costs["slippage"]) if len(costs) else pd.DataFrame()
        )
        booked = booked.reindex(index=self.close.index, columns=self.close.columns)
        return price_pnl - booked.fillna(0.0)

    @functools.cached_property
    def asset_equity(self) -> pd.DataFrame:
        """Cumulative P&L of each asset (per-asset equity contribution)."""
        return self.asset_pnl.cumsum()

    def metrics(self, benchmark: pd.Series | None = None) -> pd.Series:
        """Return the performance metrics of the run as one Series.

        ``benchmark`` is a price (or equity) series of the benchmark, as for
        :meth:`figures`; its returns on the backtest's bars add excess return, beta,
        alpha, tracking error, information ratio and up/down capture
        (:func:`~quantdesk.backtest.metrics.summary_metrics`).
        """
        from quantdesk.backtest.metrics import returns_from_prices, summary_metrics

        relative = None if benchmark is None else returns_from_prices(benchmark, self.close.index)
        return summary_metrics(
            self.returns,
            traded_value=self.traded_value,
            positions_value=self.position_values,
            equity=self.equity,
            costs=self.costs["total"],
            benchmark=relative,
            periods_per_year=self.periods_per_year,
        )

    def figures(self, benchmark: pd.Series | None = None) -> dict[str, Any]:
        """Return the tearsheet figures (HoloViews): equity, drawdown, rolling Sharpe,
        monthly returns, exposure and the metrics table; ``benchmark`` is a price or equity
        series, drawn beside the equity and measured against in the table."""
        from quantdesk.backtest import figures as fig

        ppy = self.periods_per_year
        return {
            "equity": fig.equity_figure(self.equity, benchmark),
            "drawdown": fig.drawdown_figure(self.returns),
            "rolling_sharpe": fig.rolling_sharpe_figure(self.returns, periods_per_year=ppy),
            "monthly_returns": fig.monthly_returns_heatmap(self.returns),
            "exposure": fig.exposure_figure(self.exposure["gross"], self.exposure["net"]),
            "metrics": fig.metrics_table(self.metrics(benchmark)),
        }

    def summary(self) -> str:
        """Return a readable account of the run: setup, final value and metrics."""
        m = self.metrics()
        lines = [
            f"Backtest: {self.close.shape[1]} assets x {self.close.shape[0]} bars "
            f"({self.close.index[0]:%Y-%m-%d} .. {self.close.index[-1]:%Y-%m-%d})",
            f"costs: commission {self.commission_bps:g} bps, slippage {self.slippage_bps:g} bps"
            + "".join(f", {k}={v}" for k, v in self.options.items() if v is not None),
            f"equity: {self.init_cash:,.0f} -> {self.equity.iloc[-1]:,.0f}; "
            f"{len(self.trades):,} fills; costs paid {self.costs['total'].sum():,.0f}",
        ]
        width = max(len(str(k)) for k in m.index)
        lines += [f"  {k:<{width}}  {v:,.4f}" for k, v in m.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        m = self.metrics()
        final = float(self.equity.iloc[-1])
        headline = {
            "symbols": ", ".join(map(str, self.close.columns[:8]))
            + (" ..." if self.close.shape[1] > 8 else ""),
            "final equity": final,
            "total return": final / self.init_cash - 1.0,
            **{k: m[k] for k in ("CAGR", "Sharpe", "Max drawdown") if k in m.index},
            "fills": len(self.trades),
            "costs paid": float(self.costs["total"].sum()),
        }
        title = (
            f"Backtest: {self.close.shape[1]} assets x {self.close.shape[0]} bars "
            f"({self.close.index[0]:%Y-%m-%d} .. {self.close.index[-1]:%Y-%m-%d})"
        )
        details = {"metrics": m, "trades": self.trades, "account": self.summary()}
        return summary_html(title, headline, details)


def run(
    close: pd.DataFrame,
    weights: pd.DataFrame,
    *,
    commission_bps: float = DEFAULT_COMMISSION_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    init_cash: float = 1_000_000.0,
    volume: pd.DataFrame | None = None,
    max_volume_share: float | None = None,
    lot_size: float | None = None,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Return the backtest of target ``weights`` traded at each bar's close.

    Parameters
    ----------
    close
        Wide close prices (index ts, columns symbols).  NaN before a listing is allowed.
    weights
        Target fraction of total portfolio value to hold from that bar's close on; NaN
        places no order.  Same index and columns as ``close``.
    commission_bps, slippage_bps
        Commission on traded value and price slippage against the close, in basis
        points (default :data:`DEFAULT_COMMISSION_BPS` and :data:`DEFAULT_SLIPPAGE_BPS`).
    init_cash
        Starting capital.
    volume, max_volume_share
        Bar volumes and the largest share of a bar's volume one order may take (e.g.
        0.1); orders above it fill partially.  Bars with no volume do not trade.
    lot_size
        Round order units down to multiples of this (default: fractional units).
    periods_per_year
        Bars in a year, for annualised metrics.  None reads it off ``close``: its
        ``attrs["timeframe"]`` or its index (:func:`quantdesk.data.frequency.periods_per_year`:
        252 for daily bars, 52 weekly, 12 monthly, intraday by the trading calendar).

    Examples
    --------
    All in one asset at the first close, no costs: the equity follows the price.

    >>> import pandas as pd
    >>> ts = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC", name="ts")
    >>> close = pd.DataFrame({"SPX": [100.0, 110.0, 99.0]}, index=ts)
    >>> weights = pd.DataFrame({"SPX": [1.0, float("nan"), float("nan")]}, index=ts)
    >>> result = run(close, weights, commission_bps=0, slippage_bps=0)
    >>> result.equity.round(2).tolist()
    [1000000.0, 1100000.0, 990000.0]
    """
    _check_panels(close, weights)
    valuation, orders, max_size = order_inputs(
        close, weights, volume=volume, max_volume_share=max_volume_share, lot_size=lot_size
    )
    if periods_per_year is None:
        periods_per_year = _periods_per_year(close)
    inputs: dict[str, Any] = {
        "valuation": valuation.to_numpy(dtype=np.float64),
        "orders": orders.to_numpy(dtype=np.float64),
        "group_size": close.shape[1],
        "commission_bps": commission_bps,
        "slippage_bps": slippage_bps,
        "init_cash": init_cash,
        "max_size": max_size,
        "lot_size": lot_size,
    }
    values = np.empty((len(close), 1))  # the equity, from the simulation's own loop
    fills = simulate_fills(**inputs, values=values)
    logger.debug(
        "backtest: %d assets x %d bars, %d fills", close.shape[1], len(close), len(fills.bar)
    )

    def reference() -> Any:
        labels = (close.index, close.columns)
        return simulate_orders(**inputs, freq=_bar_length(close.index), labels=labels)[0]

    return BacktestResult(
        fills=fills,
        close=valuation,
        target_weights=weights,
        init_cash=init_cash,
        commission_bps=commission_bps,
        slippage_bps=slippage_bps,
        periods_per_year=float(periods_per_year),
        options={"max_volume_share": max_volume_share, "lot_size": lot_size},
        reference=reference,
        values=values[:, 0],
    )


def order_inputs(
    close: pd.DataFrame,
    weights: pd.DataFrame,
    *,
    volume: pd.DataFrame | None = None,
    max_volume_share: float | None = None,
    lot_size: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Return the ``(valuation, orders, max_size)`` that :func:`run` simulates.

    Prices before a listing are back-filled for valuation only (no order is placed on
    them); with ``max_volume_share`` bars without volume place no order and every other
    order is capped at that share of the bar's volume.  :func:`run` and
    :func:`rebalance_fills` (the paper ledger's one bar) both go through here.
    """
    if close.isna().to_numpy().any():
        # Prices before a listing only value a zero position; back-fill keeps vectorbt's
        # valuation finite there without placing any order on them.
        valuation = close.ffill().bfill()
        orders = weights.where(close.notna())
    else:
        valuation, orders = close, weights
    max_size: Any = np.inf
    if max_volume_share is not None:
        if volume is None:
            raise ValueError("max_volume_share needs the volume panel")
        if not 0 < max_volume_share <= 1:
            raise ValueError("max_volume_share must be in (0, 1]")
        vol = volume.reindex_like(close)
        tradable = vol > 0
        orders = orders.where(tradable)
        max_size = (vol * max_volume_share).where(tradable, np.inf).to_numpy()
    if lot_size is not None and lot_size <= 0:
        raise ValueError("lot_size must be positive")
    return valuation, orders, max_size


def rebalance_fills(
    prices: pd.Series,
    weights: pd.Series,
    *,
    cash: float,
    units: pd.Series,
    commission_bps: float = DEFAULT_COMMISSION_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    volume: pd.Series | None = None,
    max_volume_share: float | None = None,
    lot_size: float | None = None,
) -> pd.DataFrame:
    """Return the fills (``symbol, units, price, commission``) of one rebalance at ``prices``.

    One bar of :func:`run` for a book that already holds ``units`` and ``cash``: the same
    order inputs (:func:`order_inputs`) and the same compiled simulation
    (:func:`simulate_fills`), so weights are fractions of total value, sells go first,
    lots round down, the volume cap and both costs apply exactly as in a backtest.
    ``units`` signed fills come in the order they execute.

    Parameters
    ----------
    prices
        Price of every symbol in ``weights`` and every symbol held (index: symbols).
    weights
        Target fraction of total value per symbol; NaN (or absent) places no order.
    cash, units
        The book before the rebalance; ``units`` may hold symbols without a weight.
    commission_bps, slippage_bps, volume, max_volume_share, lot_size
        As for :func:`run` (``volume`` is this bar's volume per symbol).

    Examples
    --------
    >>> import pandas as pd
    >>> fills = rebalance_fills(
    ...     pd.Series({"A": 10.0, "B": 20.0}), pd.Series({"A": 0.0, "B": 1.0}),
    ...     cash=0.0, units=pd.Series({"A": 100.0}), commission_bps=0, slippage_bps=0,
    ... )
    >>> fills.to_dict("list")
    {'symbol': ['A', 'B'], 'units': [-100.0, 50.0], 'price': [10.0, 20.0], 'commission': [0.0, 0.0]}
    """
    held = units[units != 0]
    wanted = weights.dropna()
    symbols = list(dict.fromkeys([*map(str, wanted.index), *map(str, held.index)]))
    if not symbols:
        empty = {"units": np.empty(0), "price": np.empty(0), "commission": np.empty(0)}
        return pd.DataFrame({"symbol": pd.Series([], dtype=object), **empty})
    missing = [s for s in symbols if not np.isfinite(prices.get(s, np.nan))]
    if missing:
        raise ValueError(f"no price for {missing[:5]} (held or weighted)")
    index = pd.DatetimeIndex([pd.Timestamp(0, tz="UTC")], name="ts")
    close = pd.DataFrame([prices.reindex(symbols).to_numpy(dtype=np.float64)], index, symbols)
    target = pd.DataFrame([weights.reindex(symbols).to_numpy(dtype=np.float64)], index, symbols)
    _check_panels(close, target)
    bar_volume = None
    if volume is not None:
        bar_volume = pd.DataFrame([volume.reindex(symbols).to_numpy(np.float64)], index, symbols)
    valuation, orders, max_size = order_inputs(
        close, target, volume=bar_volume, max_volume_share=max_volume_share, lot_size=lot_size
    )
    fills = simulate_fills(
        valuation.to_numpy(dtype=np.float64),
        orders.to_numpy(dtype=np.float64),
        group_size=len(symbols),
        commission_bps=commission_bps,
        slippage_bps=slippage_bps,
        init_cash=float(cash),
        max_size=max_size,
        lot_size=lot_size,
        init_position=units.reindex(symbols, fill_value=0.0).to_numpy(dtype=np.float64),
    )
    return pd.DataFrame(
        {
            "symbol": [symbols[c] for c in fills.col],
            "units": fills.signed.astype(np.float64),
            "price": fills.price.astype(np.float64),
            "commission": fills.fees.astype(np.float64),
        }
    )


def _periods_per_year(close: pd.DataFrame) -> float:
    """Return the bars in a year of ``close``, or say how to give them."""
    from quantdesk.data.frequency import periods_per_year

    try:
        return periods_per_year(close)
    except ValueError as exc:
        raise ValueError(f"{exc}; or pass periods_per_year= to run()") from exc
