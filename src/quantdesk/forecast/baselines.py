"""Naive baselines that every other forecast model is scored against.

Returns: :class:`ZeroReturn` (no move) and :class:`LastReturn` (today's return again).
Volatility: :class:`PreviousVol` (the realised volatility of the last ``h`` sessions, ``h``
the target's horizon) and :class:`EWMAVol` (RiskMetrics: an exponentially weighted mean of
the per-bar variance, ``lambda = 0.94``).  Both read
:func:`~quantdesk.forecast.targets.bar_variance`, the estimator of the target itself.
The regime baselines (persistence, the stationary distribution) live with the regime
model in :mod:`quantdesk.forecast.regime_models`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from quantdesk.data.frequency import resolve_periods_per_year
from quantdesk.forecast.base import ForecastModel, Panels
from quantdesk.forecast.targets import bar_variance, log_returns, target_horizon

__all__ = ["EWMAVol", "LastReturn", "PreviousVol", "ZeroReturn", "annualised_vol"]


def annualised_vol(variance: pd.DataFrame, panels: Panels) -> pd.DataFrame:
    """Return ``sqrt(periods_per_year * variance)`` of a per-bar variance panel."""
    ppy = resolve_periods_per_year(None, panels["close"], what="the close panel")
    vol: pd.DataFrame = (variance.clip(lower=0.0) * ppy) ** 0.5
    return vol


class ZeroReturn(ForecastModel):
    """Forecasts a next-session return of zero (the random walk)."""

    name: ClassVar[str] = "zero"
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: str = "return_1d") -> None:
        super().__init__(target)

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return 0 for every symbol with a close at each session."""
        close = panels["close"]
        return self._long(close.where(close.isna(), 0.0), sessions)


class LastReturn(ForecastModel):
    """Forecasts that the next session's log return repeats today's."""

    name: ClassVar[str] = "last_return"
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: str = "return_1d") -> None:
        super().__init__(target)

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return today's close-to-close log return for each session."""
        return self._long(log_returns(panels["close"]), sessions)


class PreviousVol(ForecastModel):
    """Forecasts that the next ``h`` sessions are as volatile as the last ``h`` were."""

    name: ClassVar[str] = "previous"
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: str = "vol_1d") -> None:
        super().__init__(target)
        self.horizon = target_horizon(target)

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the annualised realised volatility of the ``h`` sessions up to each one."""
        h = self.horizon
        trailing = bar_variance(panels).rolling(h, min_periods=h).mean()
        return self._long(annualised_vol(trailing, panels), sessions)


class EWMAVol(ForecastModel):
    """Forecasts the RiskMetrics EWMA of the per-bar variance, flat over the horizon.

    ``s[t] = lam * s[t-1] + (1 - lam) * q[t]``, started at the first bar's ``q``
    (``pandas.DataFrame.ewm(alpha=1 - lam, adjust=False)``), so a value depends on the
    bars up to ``t`` only; no forecast before ``min_periods`` bars.
    """

    name: ClassVar[str] = "ewma"
    is_baseline: ClassVar[bool] = True

    def __init__(self, target: str = "vol_1d", lam: float = 0.94, min_periods: int = 20) -> None:
        super().__init__(target)
        target_horizon(target)
        if not 0 < lam < 1:
            raise ValueError(f"lam must lie in (0, 1), got {lam!r}")
        self.lam = float(lam)
        self.min_periods = int(min_periods)

    def params(self) -> dict[str, Any]:
        """Return the decay and the warm-up."""
        return {"lam": self.lam, "min_periods": self.min_periods}

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, self.params()

    def _load_state(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        self.lam = float(state["lam"])
        self.min_periods = int(state["min_periods"])

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the annualised square root of the EWMA variance at each session."""
        variance = (
            bar_variance(panels)
            .ewm(alpha=1.0 - self.lam, adjust=False, min_periods=self.min_periods)
            .mean()
        )
        return self._long(annualised_vol(variance, panels), sessions)
