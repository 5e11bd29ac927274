"""Trend strategies: signals plus sizing, as pure functions of prices.

The same function feeds the backtest, the scheduled reports, the dashboards and the
paper ledger (by name, through :mod:`quantdesk.strategies.registry`), so what is tested
here is what trades.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.strategies.sizing import Rebalance, vol_target_weights

if TYPE_CHECKING:
    from quantdesk.forecast.base import ForecastModel

__all__ = [
    "DEFAULT_LOOKBACKS",
    "forecast_vol",
    "ma_crossover_weights",
    "size_trend",
    "trend_inputs",
    "trend_signal",
    "vol_target_tracking",
    "vol_target_trend",
]

DEFAULT_LOOKBACKS: tuple[int, ...] = (21, 63, 126, 252)


def vol_target_trend(
    close: pd.DataFrame,
    *,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    target_vol: float = 0.10,
    vol_halflife: float = 20,
    max_weight: float = 1.0,
    max_gross: float = 1.0,
    long_only: bool = False,
    rebalance: Rebalance = "daily",
    band: float = 0.0,
    lag: int = 1,
    periods_per_year: float | None = None,
    vol_model: ForecastModel | None = None,
    panels: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Return target weights of volatility-targeted trend following (the Stocker design).

    Each asset's signal is the time-series momentum blended over ``lookbacks`` (the
    average sign of its return over each lookback, in [-1, 1]).  Its weight is
    ``signal * (target_vol / n) / vol``, where ``vol`` is the asset's EWMA volatility
    forecast and ``n`` the number of assets with a signal on that bar, so every asset
    gets an equal share of the risk budget.  Because assets diversify one another, the
    portfolio's realised volatility sits below ``target_vol`` (near ``target_vol /
    sqrt(n)`` for uncorrelated assets, ``target_vol`` itself for one asset); raise
    ``target_vol`` (and ``max_gross``) to aim the whole portfolio higher.  Weights are
    then capped per asset (``max_weight``) and in gross (``max_gross``), and traded on
    the ``rebalance`` schedule outside a no-trade ``band``.

    ``lag`` bars separate the data a decision uses from the close it trades at: with
    the default 1, the weight held from close t is decided on data up to close t-1, so
    the backtest needs no look-ahead even when it trades at the close.

    Until an asset's longest lookback and its volatility forecast are known (its warm-up:
    ``max(lookbacks) + lag`` bars from its first close, at least ``20 + lag`` for the
    volatility), its weight is NaN, no opinion: a backtest stays flat and a paper ledger
    keeps what it holds.

    Lookbacks, the volatility half-life and ``lag`` are counted in bars (the default
    lookbacks are one month to one year of daily bars).  ``target_vol`` is annual, and the
    volatility forecast is annualised with ``periods_per_year``, by default the bars in a
    year of ``close``'s timeframe or index (252 daily, 52 weekly, 12 monthly, 24 x 260
    hourly FX), so the same target means the same risk on any bar length.

    ``vol_model`` sizes with a fitted volatility forecast model of
    :mod:`quantdesk.forecast` (target ``vol_1d`` or ``vol_5d``: HAR, GARCH, ...) instead of
    the EWMA: the forecast made at close t (from bars up to t) takes the EWMA's place,
    lagged the same way.  Such models read ``panels`` (``open, high, low, close`` by field;
    default ``{"close": close}``, close-to-close) and annualise by ``close``'s bar length.
    The model's parameters are what it learnt up to its training end: fit it before the
    period you backtest (see :func:`vol_target_tracking`).  ``None`` (the default) keeps
    the EWMA.

    Examples
    --------
    >>> import quantdesk as qd  # doctest: +SKIP
    >>> close = qd.data.MarketStore().panel("close")  # doctest: +SKIP
    >>> weights = vol_target_trend(close, target_vol=0.12, rebalance="weekly")  # doctest: +SKIP
    >>> qd.backtest.run(close, weights, commission_bps=1).summary()  # doctest: +SKIP
    """
    signal, vol = trend_inputs(
        close,
        lookbacks=lookbacks,
        vol_halflife=vol_halflife,
        lag=lag,
        periods_per_year=periods_per_year,
        vol_model=vol_model,
        panels=panels,
    )
    return size_trend(
        signal,
        vol,
        target_vol=target_vol,
        max_weight=max_weight,
        max_gross=max_gross,
        long_only=long_only,
        rebalance=rebalance,
        band=band,
    )


def trend_inputs(
    close: pd.DataFrame,
    *,
    lookbacks: Sequence[int] = DEFAULT_LOOKBACKS,
    vol_halflife: float = 20,
    lag: int = 1,
    periods_per_year: float | None = None,
    vol_model: ForecastModel | None = None,
    panels: Mapping[str, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the lagged (signal, annualised volatility forecast) panels to size.

    ``periods_per_year=None`` annualises by ``close``'s own bar length; ``vol_model``
    replaces the EWMA by a fitted volatility forecast model (see :func:`vol_target_trend`).
    """
    from quantdesk.signals.volatility import ewma_vol

    signal = trend_signal(close, lookbacks=lookbacks, lag=lag)
    if vol_model is None:
        vol = ewma_vol(close, halflife=vol_halflife, periods_per_year=periods_per_year)
    else:
        vol = forecast_vol(vol_model, close, panels)
    return signal, vol.shift(lag)


def trend_signal(
    close: pd.DataFrame, *, lookbacks: Sequence[int] = DEFAULT_LOOKBACKS, lag: int = 1
) -> pd.DataFrame:
    """Return the lagged trend signal of :func:`trend_inputs` alone (no volatility).

    A sweep over lookbacks computes one signal per lookback and the volatility once.
    """
    from quantdesk.signals.trend import blended_tsmom

    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    if not lookbacks:
        raise ValueError("lookbacks must name at least one lookback")
    return blended_tsmom(close, tuple(lookbacks)).shift(lag)


def forecast_vol(
    model: ForecastModel, close: pd.DataFrame, panels: Mapping[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Return a fitted volatility model's forecasts as a wide panel aligned to ``close``.

    Row ``t`` is the forecast made at close ``t`` from bars up to ``t`` (the model's
    ``predict_many``); NaN where it has none (too little history, a symbol it was not
    fitted on).
    """
    if not model.target.startswith("vol_"):
        raise ValueError(f"vol_model must forecast volatility (vol_1d, vol_5d), not {model.target}")
    inputs = dict(panels) if panels is not None else {"close": close}
    long = model.predict_many(inputs, close.index)
    wide = long.pivot(index="ts", columns="symbol", values="value")
    return wide.reindex(index=close.index, columns=close.columns).astype(float)


def size_trend(
    signal: pd.DataFrame,
    vol: pd.DataFrame,
    *,
    target_vol: float = 0.10,
    **sizing: Any,
) -> pd.DataFrame:
    """Return weights for trend ``signal``: an equal share of ``target_vol`` per active asset."""
    active = (signal.notna() & (vol > 0)).sum(axis=1)
    budget = (target_vol / active.where(active > 0)).fillna(0.0)
    return vol_target_weights(signal, vol, target_vol=budget, **sizing)


def ma_crossover_weights(
    close: pd.DataFrame, fast: int = 20, slow: int = 100, *, weight: float = 1.0, lag: int = 0
) -> pd.DataFrame:
    """Return long-or-flat orders: ``weight`` when the fast SMA crosses above the slow SMA.

    Orders are placed only on the bars where the crossover state changes (and flat on
    the first bar); in between the weight is NaN, so the position is held and drifts
    with the price, as a buy-and-hold-until-exit strategy does.  ``lag`` delays the
    orders: backtesting.py's ``trade_on_close`` fills an order decided on bar t at the
    close of bar t+1, which is ``lag=1``.

    Examples
    --------
    >>> close = pd.DataFrame({"A": [1.0, 2, 3, 2, 1, 1, 4]})
    >>> ma_crossover_weights(close, fast=1, slow=3)["A"].tolist()
    [0.0, nan, 1.0, 0.0, nan, nan, 1.0]
    """
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    from quantdesk.signals.windows import rolling_mean

    # the rolling means of pandas' algorithm (one compiled pass), the rest on arrays
    fast_ma = rolling_mean(close, fast).to_numpy(dtype=np.float64)
    slow_ma = rolling_mean(close, slow).to_numpy(dtype=np.float64)
    state = (fast_ma > slow_ma).astype(np.float64) * weight
    if lag:
        state = np.vstack([np.zeros((min(lag, len(state)), state.shape[1])), state[:-lag]])
    changed = np.ones(state.shape, dtype=bool)
    changed[1:] = state[1:] != state[:-1]
    return pd.DataFrame(np.where(changed, state, np.nan), index=close.index, columns=close.columns)


def vol_target_tracking(
    close: pd.DataFrame,
    vol_models: Mapping[str, ForecastModel | None],
    *,
    target_vol: float = 0.10,
    start: Any = None,
    panels: Mapping[str, pd.DataFrame] | None = None,
    window: int = 63,
    **strategy: Any,
) -> pd.DataFrame:
    """Return how close the strategy's realised volatility came to ``target_vol`` per sizing.

    For each entry of ``vol_models`` (a name to a fitted volatility model, or ``None`` for
    the EWMA) the weights of :func:`vol_target_trend` are held over the next bar:
    portfolio return ``r[t+1] = sum_i w_i[t] * (C_i[t+1] / C_i[t] - 1)`` (before costs).
    From ``start`` on (fit the models before it: out of sample) the table gives

    ``realised_vol``
        the annualised standard deviation of the portfolio returns;
    ``ratio``
        ``realised_vol / target_vol`` (1 for a perfect single-asset aim; below 1 when the
        assets diversify, see :func:`vol_target_trend`);
    ``tracking_rmse``
        the root mean square of ``ln(rolling realised vol / target_vol)`` over ``window``
        bars: how steadily the risk stayed on target (0 is perfectly steady);
    ``bars``
        portfolio returns counted.
    """
    from quantdesk.data.frequency import resolve_periods_per_year
    from quantdesk.forecast.base import as_session

    ppy = resolve_periods_per_year(strategy.get("periods_per_year"), close, what="close")
    returns = close.pct_change(fill_method=None)
    rows = []
    for name, model in vol_models.items():
        weights = vol_target_trend(
            close, target_vol=target_vol, vol_model=model, panels=panels, **strategy
        )
        port = (weights.shift(1) * returns).sum(axis=1, min_count=1)
        if start is not None:
            port = port.loc[port.index >= as_session(start)]
        port = port.dropna()
        rolling = port.rolling(window, min_periods=window).std() * math.sqrt(ppy)
        logs = np.log(rolling.dropna() / target_vol)
        rows.append(
            {
                "sizing": name,
                "target_vol": target_vol,
                "realised_vol": float(port.std() * math.sqrt(ppy)),
                "ratio": float(port.std() * math.sqrt(ppy) / target_vol),
                "tracking_rmse": float(np.sqrt(np.mean(logs**2))) if len(logs) else float("nan"),
                "bars": len(port),
            }
        )
    return pd.DataFrame(rows)
