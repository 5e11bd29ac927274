"""Signals: pure, causal functions on wide panels (index ts, one column per symbol).

- :mod:`~quantdesk.signals.trend`: moving-average crossovers, time-series momentum,
  Donchian breakouts.
- :mod:`~quantdesk.signals.volatility`: EWMA, Parkinson, Garman-Klass and GARCH(1,1)
  volatility, annualised.
- :mod:`~quantdesk.signals.cross_section`: per-row rank, z-score, winsorising, demeaning.
- :mod:`~quantdesk.signals.features`: the common feature set of a cross-sectional model.
- :mod:`~quantdesk.signals.sentiment`: daily news sentiment on the bar calendar (imported
  as a module: ``from quantdesk.signals.sentiment import daily_sentiment``).
"""

from __future__ import annotations

from quantdesk.signals.cross_section import demean, rank, winsorize, zscore
from quantdesk.signals.features import COMMON_FEATURE_NAMES, common_features
from quantdesk.signals.trend import blended_tsmom, donchian_breakout, ma_crossover, tsmom
from quantdesk.signals.volatility import ewma_vol, garch_vol, garman_klass_vol, parkinson_vol

__all__ = [
    "COMMON_FEATURE_NAMES",
    "blended_tsmom",
    "common_features",
    "demean",
    "donchian_breakout",
    "ewma_vol",
    "garch_vol",
    "garman_klass_vol",
    "ma_crossover",
    "parkinson_vol",
    "rank",
    "tsmom",
    "winsorize",
    "zscore",
]
