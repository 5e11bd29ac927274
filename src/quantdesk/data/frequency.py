"""Bar frequency of a panel and the number of bars in a year: the one place that annualises.

Every function in quantdesk that annualises (metrics, volatility signals, sizing,
features, regimes) calls :func:`periods_per_year` instead of assuming daily bars.

A frequency comes from, in order: an explicit ``timeframe``; the ``"timeframe"`` entry
of a frame's ``attrs`` (the store sets it on every panel it returns); or the index,
from the median spacing of its timestamps.  Bars in a year are then

==============  =====================================================================
daily           252 (trading days)
weekly          52
monthly         12
intraday        bars per session x sessions per year, by ``calendar``:
                ``"exchange"`` (6.5-hour sessions, 252 a year), ``"24/5"`` (FX: 24 h,
                260 weekdays) or ``"24/7"`` (crypto: 24 h, 365 days).  From an index the
                calendar is read off the data: bars on weekends mean 24/7; otherwise the
                median number of bars per day decides whether sessions fill the day
                (24/5) or not (the observed bars per day x 252).
==============  =====================================================================

Examples
--------
>>> periods_per_year("1d"), periods_per_year("1w"), periods_per_year("1mo")
(252.0, 52.0, 12.0)
>>> periods_per_year("1h", calendar="24/7")
8760.0
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from quantdesk.data.schemas import Timeframe, parse_timeframe

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CALENDARS",
    "DAYS_PER_YEAR",
    "Calendar",
    "infer_timeframe",
    "periods_per_year",
    "resolve_periods_per_year",
    "timeframe_of",
]

logger = logging.getLogger(__name__)

Calendar = Literal["exchange", "24/5", "24/7"]
#: Trading days per year of a daily series.
DAYS_PER_YEAR = 252.0
#: Hours per session and sessions per year of each trading calendar.
CALENDARS: dict[str, tuple[float, float]] = {
    "exchange": (6.5, DAYS_PER_YEAR),
    "24/5": (24.0, 260.0),
    "24/7": (24.0, 365.0),
}
_FIXED = {"1d": DAYS_PER_YEAR, "1w": 52.0, "1mo": 12.0}
# Standard bar lengths an index is snapped to when inferred from its spacing.
_STANDARD = (
    "1s", "5s", "10s", "15s", "30s", "1min", "2min", "5min", "10min", "15min", "30min",
    "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1d", "1w", "1mo",
)  # fmt: skip


def infer_timeframe(index: pd.Index) -> Timeframe:
    """Return the bar length of a datetime index, from the median spacing of its stamps.

    Daily data with weekend gaps reads as daily (the median gap is one day); spacings of
    6-8 days read as weekly and 28-31 days as monthly.  Raises :class:`ValueError` when
    the index has fewer than two distinct timestamps or its spacing fits no standard bar.
    """
    import numpy as np
    import pandas as pd

    if isinstance(index, pd.DatetimeIndex) and index.is_monotonic_increasing and index.is_unique:
        stamps = index.as_unit("ns")  # the usual panel index: nothing to clean
    else:
        stamps = pd.DatetimeIndex(index).dropna().unique().sort_values().as_unit("ns")
    if len(stamps) < 2:
        raise ValueError(
            "cannot infer a bar frequency from fewer than two timestamps; pass timeframe="
        )
    gap = float(np.median(np.diff(stamps.asi8))) / 1e9
    day = 86400.0
    if 6 * day <= gap <= 8 * day:
        return parse_timeframe("1w")
    if 27 * day <= gap <= 32 * day:
        return parse_timeframe("1mo")
    if day <= gap < 6 * day:
        return parse_timeframe("1d")
    for name in _STANDARD:
        tf = parse_timeframe(name)
        if not tf.is_calendar and abs(tf.seconds - gap) <= 0.05 * tf.seconds:
            return tf
    raise ValueError(
        f"cannot infer a bar frequency: median spacing {gap:g} s fits no standard bar; "
        "pass timeframe= (e.g. '1h', '1d')"
    )


def timeframe_of(data: pd.DataFrame | pd.Series | pd.Index) -> Timeframe:
    """Return the timeframe a panel carries in ``attrs['timeframe']``, else infer it."""
    attrs = getattr(data, "attrs", None) or {}
    if attrs.get("timeframe"):
        return parse_timeframe(attrs["timeframe"])
    import pandas as pd

    index = data if isinstance(data, pd.Index) else data.index
    return infer_timeframe(index)


def _observed_calendar(index: pd.Index, tf: Timeframe) -> tuple[float, float]:
    """Return (bars per session, sessions per year) read off an intraday index."""
    import numpy as np
    import pandas as pd

    stamps = pd.DatetimeIndex(index).dropna().unique()
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC")
    days = stamps.normalize()
    per_day = pd.Series(1, index=days).groupby(level=0).size()
    bars_per_day = float(np.median(per_day.to_numpy()))
    weekend_share = float((pd.DatetimeIndex(per_day.index).day_of_week >= 5).mean())
    full_day = 86400.0 / tf.seconds
    if weekend_share > 0.2:  # crypto trades every day: 2/7 of days are weekends
        return full_day, CALENDARS["24/7"][1]
    if bars_per_day >= 0.9 * full_day:
        return full_day, CALENDARS["24/5"][1]
    return bars_per_day, DAYS_PER_YEAR


def periods_per_year(
    data: pd.DataFrame | pd.Series | pd.Index | Timeframe | str | None = None,
    *,
    timeframe: str | Timeframe | None = None,
    calendar: Calendar | None = None,
) -> float:
    """Return the number of bars in a year for a timeframe or a panel.

    Parameters
    ----------
    data
        A timeframe (``"1h"``), or a panel / series / index whose frequency is read from
        ``attrs['timeframe']`` or inferred from its timestamps.
    timeframe
        The bar length, overriding what ``data`` carries.
    calendar
        For intraday bars: ``"exchange"`` (6.5-hour sessions), ``"24/5"`` (FX) or
        ``"24/7"`` (crypto).  Default: read off ``data``'s timestamps; for a bare
        intraday timeframe with no data, ``"exchange"``.

    Examples
    --------
    >>> periods_per_year("1h")  # an exchange session of 6.5 hours, 252 sessions
    1638.0
    >>> import pandas as pd
    >>> hourly = pd.date_range("2024-01-01", periods=24 * 60, freq="h", tz="UTC")
    >>> periods_per_year(hourly)  # bars every day, weekends included: 24/7
    8760.0
    """
    import pandas as pd

    if timeframe is None and isinstance(data, (str, Timeframe)):
        timeframe, data = data, None
    if timeframe is not None:
        tf = parse_timeframe(timeframe)
    elif data is not None:
        tf = timeframe_of(data)  # type: ignore[arg-type]
    else:
        raise ValueError("periods_per_year needs a timeframe or a panel")
    if tf.name in _FIXED:
        return _FIXED[tf.name]
    if calendar is not None:
        if calendar not in CALENDARS:
            raise ValueError(f"unknown calendar {calendar!r}: use one of {sorted(CALENDARS)}")
        hours, sessions = CALENDARS[calendar]
        return hours * 3600.0 / tf.seconds * sessions
    if data is not None:
        index = data if isinstance(data, pd.Index) else data.index  # type: ignore[union-attr]
        if isinstance(index, pd.DatetimeIndex) and len(index) > 1:
            bars, sessions = _observed_calendar(index, tf)
            return bars * sessions
    hours, sessions = CALENDARS["exchange"]
    return hours * 3600.0 / tf.seconds * sessions


def resolve_periods_per_year(
    periods_per_year: float | None,
    data: pd.DataFrame | pd.Series | pd.Index | object,
    *,
    what: str = "the data",
) -> float:
    """Return ``periods_per_year`` when given, else :func:`periods_per_year` of ``data``.

    The one way an annualising function fills its ``periods_per_year=None`` default: from
    the panel's ``attrs['timeframe']`` or its timestamps.  Data without a datetime index
    (a NumPy array, a range index) cannot say how long a bar is, and raises a
    :class:`ValueError` that names ``what`` and the argument that resolves it.

    Examples
    --------
    >>> import pandas as pd
    >>> weekly = pd.Series(0.0, index=pd.date_range("2024-01-01", periods=10, freq="W-MON"))
    >>> resolve_periods_per_year(None, weekly), resolve_periods_per_year(4, weekly)
    (52.0, 4.0)
    """
    import pandas as pd

    if periods_per_year is not None:
        value = float(periods_per_year)
        if not value > 0:
            raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
        return value
    has_timeframe = bool((getattr(data, "attrs", None) or {}).get("timeframe"))
    index = data if isinstance(data, pd.Index) else getattr(data, "index", None)
    if not has_timeframe and not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            f"cannot tell the bar frequency of {what}: it has no DatetimeIndex and no "
            "attrs['timeframe']; pass periods_per_year= (252 daily, 52 weekly, 12 monthly)"
        )
    try:
        return _periods_per_year_of(data)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}; or pass periods_per_year=") from exc


# The argument of resolve_periods_per_year shadows the function's name inside it.
_periods_per_year_of = periods_per_year
