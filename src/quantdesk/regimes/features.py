"""Causal regime features of one symbol's bars, and their training-window standardiser.

Three features per bar ``t``, each computed from bars up to and including ``t`` only.
Windows and half-lives are counted in bars (the defaults are a week, a quarter and a month
of daily bars); ``log_vol`` is annualised by the bars in a year of the bars' own timeframe
(:func:`quantdesk.data.frequency.periods_per_year`: 252 daily, 52 weekly, 12 monthly),
so its level reads as an annual volatility on any bar length.

``log_return``
    The close-to-close log return ``ln(C[t] / C[t-1])``.
``log_vol``
    The log of the annualised realised volatility over the last ``vol_window`` bars,
    ``0.5 * ln(periods_per_year * mean(q[t-vol_window+1 .. t]))``.  The per-bar variance
    estimate ``q`` is the overnight gap squared plus the Garman-Klass intraday term,
    ``ln(O/C_prev)**2 + 0.5 ln(H/L)**2 - (2 ln 2 - 1) ln(C/O)**2``: a bar's range measures
    its variance several times more precisely than its close-to-close return, which is what
    lets a 5-day window separate calm from normal from stressed markets with little lag.
    The log makes the feature close to Gaussian (volatility is skewed), as the HMM assumes.
    Close-only bars (an index level, a fixing: no open, high or low) have no range; for
    them ``q`` is the squared close-to-close log return, noisier but unbiased, and a
    warning says so.
``trend``
    The t-statistic of the recent drift: an exponentially weighted (half-life
    ``trend_halflife`` bars, truncated at ``trend_window`` bars), precision-weighted mean of
    the per-bar log returns divided by its standard error,
    ``sum(w[k] r[t-k] / v[t-k]) / sqrt(sum(w[k]**2 / v[t-k]))`` with ``w[k] = 0.5 **
    (k / trend_halflife)`` and ``v`` the rolling per-bar variance of ``log_vol``.  Weighting
    by precision discounts returns from turbulent bars, which say little about the drift, and
    dividing by the standard error puts a trend in calm and in stressed markets on one
    scale.  Truncating the weights means that a feature depends on a fixed window of bars
    only, so it does not depend on where the bars start.

The first ``config.warmup`` rows (``vol_window + trend_window - 1``) have incomplete
windows and are dropped, so the features start on the first complete bar.

:class:`Standardizer` rescales features with the mean and standard deviation of a training
window only, so that a model fitted on that window sees later data on the same scale.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.data.frequency import resolve_periods_per_year

__all__ = [
    "REGIME_FEATURE_NAMES",
    "FeatureConfig",
    "Standardizer",
    "compute_features",
    "feature_matrix",
    "ohlc_frame",
]

logger = logging.getLogger(__name__)

REGIME_FEATURE_NAMES: tuple[str, str, str] = ("log_return", "log_vol", "trend")

_OHLC = ("open", "high", "low", "close")
# Floor of the rolling daily variance (about 0.016% annualised): a market that did not move
# for a whole window would otherwise give log(0) and a division by zero.
_MIN_DAILY_VARIANCE = 1e-10


@dataclass(frozen=True)
class FeatureConfig:
    """Windows of the regime features (in bars); see the module docstring for the formulas.

    Attributes
    ----------
    vol_window : int
        Bars in the realised volatility window (default 5, a week of daily bars).
    trend_window : int
        Bars in the (truncated) exponentially weighted trend window (default 63, a quarter
        of daily bars).
    trend_halflife : float
        Half-life in bars of the trend weights (default 21, a month of daily bars): a trend
        regime lasts months, so older bars still count, but a turn shows within weeks.
    periods_per_year : float or None
        Bars per year used to annualise ``log_vol``; ``None`` (the default) reads it from
        the bars' timeframe or index.  A :class:`~quantdesk.regimes.model.RegimeModel`
        pins it when it fits, so that later windows are scaled as its training data was.

    Examples
    --------
    >>> config = FeatureConfig()
    >>> config.names, config.warmup
    (('log_return', 'log_vol', 'trend'), 67)
    """

    vol_window: int = 5
    trend_window: int = 63
    trend_halflife: float = 21.0
    periods_per_year: float | None = None

    def __post_init__(self) -> None:
        ppy = self.periods_per_year
        if ppy is not None and (isinstance(ppy, bool) or not (math.isfinite(ppy) and ppy > 0)):
            raise ValueError(f"FeatureConfig.periods_per_year must be positive, got {ppy!r}")
        for name in ("vol_window", "trend_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"FeatureConfig.{name} must be a positive int, got {value!r}")
        if self.trend_window < 2:
            raise ValueError(f"FeatureConfig.trend_window must be >= 2, got {self.trend_window}")
        if not (math.isfinite(self.trend_halflife) and self.trend_halflife > 0):
            raise ValueError(
                f"FeatureConfig.trend_halflife must be positive, got {self.trend_halflife!r}"
            )

    @property
    def names(self) -> tuple[str, str, str]:
        """Return the feature column names, in order."""
        return REGIME_FEATURE_NAMES

    @property
    def warmup(self) -> int:
        """Return how many leading bars have no complete features (they are dropped)."""
        return self.vol_window + self.trend_window - 1

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-serialisable dict."""
        return asdict(self)

    def pinned(self, features: pd.DataFrame) -> FeatureConfig:
        """Return this configuration with the ``periods_per_year`` ``features`` were made with.

        ``features`` is a frame from :func:`compute_features`, which records the value it
        used in ``attrs``; a configuration that already fixes it is returned unchanged.
        """
        used = features.attrs.get("periods_per_year")
        if self.periods_per_year is not None or used is None:
            return self
        return replace(self, periods_per_year=float(used))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        """Return the configuration saved by :meth:`to_dict`."""
        return cls(
            vol_window=int(data["vol_window"]),
            trend_window=int(data["trend_window"]),
            trend_halflife=float(data["trend_halflife"]),
            periods_per_year=(
                None if data.get("periods_per_year") is None else float(data["periods_per_year"])
            ),
        )


def ohlc_frame(bars: pd.DataFrame) -> pd.DataFrame:
    """Return the ``open, high, low, close`` of one symbol's bars as floats indexed by ``ts``.

    Parameters
    ----------
    bars : pandas.DataFrame
        Long bars of one symbol (columns ``symbol, ts, open, high, low, close, volume``) or a
        frame with ``open, high, low, close`` indexed by ``ts``.  Rows may come in any order.

    Raises
    ------
    ValueError
        For several symbols, a missing close, a non-datetime or duplicated ``ts``, or a price
        that is not finite and positive (the message names the first bad ``ts``).  Open,
        high and low may be absent or all missing together (close-only bars); then they
        are NaN and only the close is checked.
    """
    if not isinstance(bars, pd.DataFrame):
        raise ValueError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    if "symbol" in bars.columns:
        symbols = pd.unique(bars["symbol"].dropna())
        if len(symbols) > 1:
            shown = ", ".join(map(str, symbols[:5])) + (", ..." if len(symbols) > 5 else "")
            raise ValueError(
                f"regime features take the bars of one symbol; got {len(symbols)} symbols "
                f"({shown}); select one, e.g. bars[bars['symbol'] == {str(symbols[0])!r}]"
            )
    if "close" not in bars.columns:
        raise ValueError(f"bars lack the column 'close'; need {list(_OHLC)} or a close only")
    range_columns = [c for c in _OHLC[:3] if c in bars.columns and bars[c].notna().any()]
    if range_columns and len(range_columns) < 3:
        missing = sorted(set(_OHLC[:3]) - set(range_columns))
        raise ValueError(
            f"bars have {range_columns} but no {missing}: give open, high and low together, "
            "or none of them (close-only bars)"
        )
    checked = list(_OHLC) if range_columns else ["close"]
    if "ts" in bars.columns:
        ts = pd.DatetimeIndex(bars["ts"])
    elif isinstance(bars.index, pd.DatetimeIndex):
        ts = bars.index
    else:
        raise ValueError("bars need a 'ts' column or a DatetimeIndex")
    frame = pd.DataFrame(
        {c: bars[c].to_numpy(dtype=np.float64) if c in checked else np.nan for c in _OHLC},
        index=pd.DatetimeIndex(ts, name="ts"),
    )
    if frame.index.hasnans:
        raise ValueError("bars have a missing ts")
    if frame.index.has_duplicates:
        first = frame.index[frame.index.duplicated()][0]
        raise ValueError(f"bars have duplicated ts, first {first}")
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    values = frame[checked].to_numpy()
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"bars have a non-positive or missing price: column {checked[col]!r} at ts "
            f"{frame.index[row]} is {values[row, col]!r}"
        )
    return frame


def _trailing_weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return ``sum(weights[k] * values[t - k])`` over the last ``len(weights)`` rows.

    NaN where the window is incomplete or holds a NaN, so the result is causal.
    """
    n, width = len(values), len(weights)
    out = np.full(n, np.nan)
    if n >= width:
        out[width - 1 :] = np.convolve(values, weights, mode="valid")
    return out


def feature_matrix(
    ohlc: np.ndarray, config: FeatureConfig, periods_per_year: float, *, close_only: bool = False
) -> np.ndarray:
    """Return the ``log_return, log_vol, trend`` columns of checked bars, warm-up rows included.

    The arithmetic of :func:`compute_features` on plain arrays (it calls this): ``ohlc`` is
    ``(n, 4)`` open, high, low, close of one symbol, sorted, already checked by
    :func:`ohlc_frame` (finite and positive); ``close_only`` bars estimate the variance
    from squared close-to-close returns.  The first ``config.warmup`` rows are incomplete.

    Examples
    --------
    >>> bars = np.exp(np.random.default_rng(0).normal(0, 0.01, (100, 4)).cumsum(axis=0))
    >>> feature_matrix(bars, FeatureConfig(), 252.0).shape
    (100, 3)
    """
    log_open, log_high, log_low, log_close = np.log(np.asarray(ohlc, dtype=np.float64)).T
    n = len(log_close)

    log_return = np.full(n, np.nan)
    log_return[1:] = np.diff(log_close)
    if close_only:
        daily_variance = log_return**2
    else:
        overnight = np.full(n, np.nan)
        overnight[1:] = log_open[1:] - log_close[:-1]
        intraday = (
            0.5 * (log_high - log_low) ** 2
            - (2.0 * math.log(2.0) - 1.0) * (log_close - log_open) ** 2
        )
        # Each Garman-Klass term is >= 0 for consistent bars; clip what rounding or an
        # inconsistent bar (close outside [low, high]) would make negative.
        daily_variance = overnight**2 + np.maximum(intraday, 0.0)

    window = np.ones(config.vol_window) / config.vol_window
    variance = np.maximum(_trailing_weighted_sum(daily_variance, window), _MIN_DAILY_VARIANCE)
    log_vol = 0.5 * np.log(variance * periods_per_year)

    weights = 0.5 ** (np.arange(config.trend_window) / config.trend_halflife)
    precision = 1.0 / variance
    numerator = _trailing_weighted_sum(log_return * precision, weights)
    error_variance = _trailing_weighted_sum(precision, weights**2)
    trend = numerator / np.sqrt(error_variance)
    return np.column_stack([log_return, log_vol, trend])


def compute_features(bars: pd.DataFrame, config: FeatureConfig | None = None) -> pd.DataFrame:
    """Return the causal regime features of one symbol: ``log_return, log_vol, trend``.

    Parameters
    ----------
    bars : pandas.DataFrame
        Daily bars of one symbol: long bars (``symbol, ts, open, high, low, close,
        volume``) or a frame with ``open, high, low, close`` indexed by ``ts``.
    config : FeatureConfig, optional
        Windows (default :class:`FeatureConfig()`).

    Returns
    -------
    pandas.DataFrame
        Index ``ts`` (as in ``bars``, sorted), columns :data:`REGIME_FEATURE_NAMES`, float64.  The
        first ``config.warmup`` bars are dropped (incomplete windows); a row depends on the
        bars up to its ``ts`` only, and on at most the last ``config.warmup + 1`` of them.

    Raises
    ------
    ValueError
        For bars of several symbols or invalid bars (see :func:`ohlc_frame`).

    Examples
    --------
    >>> from quantdesk.data import simulate
    >>> bars = simulate(n_symbols=1, n_days=300, seed=1).bars
    >>> features = compute_features(bars)
    >>> list(features.columns), len(features) == 300 - FeatureConfig().warmup
    (['log_return', 'log_vol', 'trend'], True)
    """
    config = FeatureConfig() if config is None else config
    frame = ohlc_frame(bars)
    close_only = bool(frame["open"].isna().all())
    if close_only:
        logger.warning(
            "regime features: close-only bars (no open, high, low); log_vol from squared "
            "close-to-close returns, noisier than the range estimate"
        )
    # Bars too few for one feature row cannot say how long they are; they give no row.
    enough = len(frame) > config.warmup
    ppy = (
        resolve_periods_per_year(config.periods_per_year, frame, what="the bars") if enough else 1.0
    )
    values = feature_matrix(frame[list(_OHLC)].to_numpy(), config, ppy, close_only=close_only)
    features = pd.DataFrame(values, index=frame.index, columns=list(REGIME_FEATURE_NAMES))
    features = features.iloc[config.warmup :]
    if features.isna().to_numpy().any():  # only possible through a bug: inputs were checked
        raise RuntimeError("regime features have NaN after the warm-up")
    if enough:
        features.attrs["periods_per_year"] = ppy
    return features


class Standardizer:
    """Per-feature standardisation with statistics from a training window only.

    ``transform(x) = (x - mean) / scale`` with the mean and the population standard deviation
    (``ddof=0``) of the features passed to :meth:`fit`.  A constant feature gets scale 1.

    Examples
    --------
    >>> x = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    >>> s = Standardizer().fit(x)
    >>> s.transform(pd.DataFrame({"a": [2.0, 4.0]}))["a"].round(4).tolist()
    [0.0, 2.4495]
    """

    def __init__(self) -> None:
        self.columns_: tuple[str, ...] = ()
        self.mean_: np.ndarray = np.empty(0)
        self.scale_: np.ndarray = np.empty(0)

    def __repr__(self) -> str:
        return f"Standardizer(columns={list(self.columns_)})"

    @property
    def is_fitted(self) -> bool:
        """Return whether :meth:`fit` (or :meth:`from_dict`) has set the statistics."""
        return len(self.columns_) > 0

    def fit(self, features: pd.DataFrame) -> Standardizer:
        """Return ``self`` with the mean and scale of each column of ``features``."""
        if len(features) < 2:
            raise ValueError(f"need at least 2 rows to standardise, got {len(features)}")
        values = features.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("features to standardise must be finite")
        self.columns_ = tuple(str(c) for c in features.columns)
        self.mean_ = values.mean(axis=0)
        scale = values.std(axis=0)
        constant = ~(scale > 0)
        if constant.any():
            logger.warning(
                "constant feature(s) %s in the training window; scale set to 1",
                [c for c, k in zip(self.columns_, constant, strict=True) if k],
            )
        self.scale_ = np.where(constant, 1.0, scale)
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """Return ``features`` standardised with the training statistics (same index)."""
        if not self.is_fitted:
            raise ValueError("Standardizer is not fitted; call fit() first")
        if tuple(str(c) for c in features.columns) != self.columns_:
            raise ValueError(
                f"features have columns {list(features.columns)}, the standardiser was fitted "
                f"on {list(self.columns_)}"
            )
        values = (features.to_numpy(dtype=np.float64) - self.mean_) / self.scale_
        return pd.DataFrame(values, index=features.index, columns=list(self.columns_))

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """Return standardised values (last axis = the columns) back in feature units."""
        out: np.ndarray = np.asarray(values, dtype=np.float64) * self.scale_ + self.mean_
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the statistics as a JSON-serialisable dict."""
        return {
            "columns": list(self.columns_),
            "mean": [float(v) for v in self.mean_],
            "scale": [float(v) for v in self.scale_],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Standardizer:
        """Return the standardiser saved by :meth:`to_dict`."""
        out = cls()
        out.columns_ = tuple(str(c) for c in data["columns"])
        out.mean_ = np.asarray(data["mean"], dtype=np.float64)
        out.scale_ = np.asarray(data["scale"], dtype=np.float64)
        if not (len(out.columns_) == len(out.mean_) == len(out.scale_)):
            raise ValueError("standardiser columns, mean and scale differ in length")
        return out
