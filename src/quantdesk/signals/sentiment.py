"""Daily news sentiment per symbol on the bar calendar, without look-ahead.

Pure functions: they take scored news (long: ``symbol, ts, score``, e.g.
:meth:`quantdesk.data.store.news.NewsStore.scored_news`) and a bar calendar (the index
of a daily price panel: session dates at 00:00 UTC) and return wide panels (index the
calendar, one column per symbol).

**Which session a story counts for.**  A story published at local time ``t`` in the
exchange's timezone (default ``America/New_York``) counts for the session of its local
date if ``t`` is before the close (default 16:00), else for the next day; a day without
a session (weekend, holiday: not in the calendar) rolls forward to the next session of
the calendar.  So the value at session ``d`` uses only news published before ``d``'s
close, the moment ``d``'s closing price is known, like every other signal here.  Stories
after the last session of the calendar count for no session yet.

Examples
--------
>>> calendar = pd.DatetimeIndex(["2024-03-01", "2024-03-04"], tz="UTC")  # Fri, Mon
>>> news = pd.DataFrame({"symbol": ["A", "A", "A"], "score": [0.5, -1.0, 0.25],
...     "ts": pd.to_datetime(["2024-03-01 15:00", "2024-03-01 16:30", "2024-03-02 12:00"])
...     .tz_localize("America/New_York")})
>>> daily = daily_sentiment(news, calendar, halflife=1)
>>> daily.mean["A"].tolist(), daily.count["A"].tolist()
([0.5, -0.375], [1, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DailySentiment",
    "daily_sentiment",
    "join_sentiment",
    "sentiment_shock",
    "session_close",
    "session_positions",
]


def _calendar_dates(calendar: pd.DatetimeIndex) -> np.ndarray:
    """Return the session dates of a bar calendar as ``datetime64[D]``."""
    index = pd.DatetimeIndex(calendar)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    dates = index.normalize().to_numpy(dtype="datetime64[D]")
    if len(dates) > 1 and not (np.diff(dates.astype(np.int64)) > 0).all():
        raise ValueError("the calendar must be strictly increasing session dates")
    return dates


def session_close(
    calendar: pd.DatetimeIndex, timezone: str = "America/New_York", close: str = "16:00"
) -> pd.DatetimeIndex:
    """Return the UTC time of each session's close (the session date at ``close`` local).

    Examples
    --------
    >>> session_close(pd.DatetimeIndex(["2024-07-01"], tz="UTC"))[0]
    Timestamp('2024-07-01 20:00:00+0000', tz='UTC')
    """
    dates = pd.DatetimeIndex(_calendar_dates(calendar).astype("datetime64[ns]"))
    local = (dates + pd.Timedelta(close + ":00")).tz_localize(timezone)
    return local.tz_convert("UTC")


def session_positions(
    ts: pd.Series | pd.DatetimeIndex,
    calendar: pd.DatetimeIndex,
    timezone: str = "America/New_York",
    close: str = "16:00",
) -> np.ndarray:
    """Return, for each publication time, the position of its session in ``calendar``.

    A time at or after the close counts for the next day; a day without a session rolls
    forward to the next session; ``-1`` marks times after the calendar's last session.
    Naive times are taken as UTC.
    """
    stamps = pd.DatetimeIndex(ts)
    stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps
    local = stamps.tz_convert(timezone).tz_localize(None)
    day = local.normalize()
    after_close = (local - day) >= pd.Timedelta(close + ":00")
    effective = (day + pd.to_timedelta(after_close.astype(np.int64), unit="D")).to_numpy(
        dtype="datetime64[D]"
    )
    dates = _calendar_dates(calendar)
    pos = np.searchsorted(dates, effective, side="left")
    return np.where(pos < len(dates), pos, -1).astype(np.int64)


@dataclass(frozen=True)
class DailySentiment:
    """Return value of :func:`daily_sentiment`: three panels on the bar calendar.

    Attributes
    ----------
    mean
        Mean score of the stories counted for each session (NaN without news).
    count
        Number of stories counted for each session (0 without news).
    decayed
        Exponentially weighted mean of the daily mean score, a session without news
        counting as neutral (0): session ``t - k`` weighs ``0.5 ** (k / halflife)``,
        from the symbol's first story on (NaN before it), normalised by the weights
        so far (pandas' ``ewm(halflife, adjust=True)``).  Without news it fades toward
        0, so an old story never reads as today's tone.
    halflife
        The half-life used, in sessions.
    """

    mean: pd.DataFrame
    count: pd.DataFrame
    decayed: pd.DataFrame
    halflife: float

    def summary(self) -> str:
        """Return one line: sessions, symbols, stories counted and coverage."""
        covered = float((self.count > 0).to_numpy().mean()) if self.count.size else 0.0
        return (
            f"daily sentiment: {len(self.count)} sessions x {self.count.shape[1]} symbols, "
            f"{int(self.count.to_numpy().sum())} stories, {covered:.1%} symbol-sessions "
            f"with news, half-life {self.halflife:g} sessions"
        )


def daily_sentiment(
    news: pd.DataFrame,
    calendar: pd.DatetimeIndex,
    *,
    symbols: Sequence[str] | None = None,
    halflife: float = 5.0,
    timezone: str = "America/New_York",
    close: str = "16:00",
) -> DailySentiment:
    """Return the daily mean, count and decayed sentiment of each symbol on ``calendar``.

    Parameters
    ----------
    news
        Long scored news: ``symbol, ts, score`` (one row per story and symbol).
    calendar
        The bar calendar (a daily price panel's index).
    symbols
        Columns of the panels (default: the symbols of ``news``, sorted).
    halflife
        Half-life of the decayed score, in sessions.
    timezone, close
        The exchange's timezone and closing time (see the module docstring).
    """
    if halflife <= 0:
        raise ValueError("halflife must be positive")
    index = pd.DatetimeIndex(calendar)
    names = sorted(news["symbol"].astype(str).unique()) if symbols is None else list(symbols)
    n_days, n_sym = len(index), len(names)
    sums: np.ndarray = np.zeros((n_days, n_sym))
    counts: np.ndarray = np.zeros((n_days, n_sym))
    if len(news) and n_days:
        pos = session_positions(news["ts"], index, timezone, close)
        col = pd.Index(names).get_indexer(pd.Index(news["symbol"].astype(str)))
        keep = (pos >= 0) & (col >= 0)
        flat = pos[keep] * n_sym + col[keep]
        score = news["score"].to_numpy(dtype=np.float64)[keep]
        sums = np.bincount(flat, weights=score, minlength=n_days * n_sym).reshape(n_days, n_sym)
        counts = np.bincount(flat, minlength=n_days * n_sym).reshape(n_days, n_sym).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / counts, np.nan)
    decay = 0.5 ** (1.0 / halflife)
    daily = np.where(counts > 0, mean, 0.0)  # no news is neutral news
    started = np.maximum.accumulate(counts > 0, axis=0).astype(float)
    weighted = np.empty_like(sums)
    weights = np.empty_like(counts)
    s = np.zeros(n_sym)
    w = np.zeros(n_sym)
    for t in range(n_days):  # a causal recursion: each session adds to the decayed past
        s = decay * s + daily[t]
        w = decay * w + started[t]
        weighted[t], weights[t] = s, w
    with np.errstate(invalid="ignore", divide="ignore"):
        decayed = np.where(weights > 0, weighted / weights, np.nan)
    columns = pd.Index(names, name="symbol")
    return DailySentiment(
        mean=pd.DataFrame(mean, index=index, columns=columns),
        count=pd.DataFrame(counts.astype(np.int64), index=index, columns=columns),
        decayed=pd.DataFrame(decayed, index=index, columns=columns),
        halflife=float(halflife),
    )


def sentiment_shock(
    daily: pd.DataFrame, k: float = 2.0, *, window: int | None = None, min_periods: int = 20
) -> pd.DataFrame:
    """Return +1 / -1 where a daily score is more than ``k`` std above / below its history.

    The history of a value is its symbol's earlier values only (sessions without news,
    NaN, are skipped): their mean and standard deviation over the last ``window``
    sessions (default: all), once at least ``min_periods`` values are there.  0 where
    the value is within ``k`` std; NaN where there is no value or too little history.

    Examples
    --------
    >>> daily = pd.DataFrame({"A": [0.0, 1.0, 0.0, 1.0, 5.0, -4.0]})
    >>> sentiment_shock(daily, k=2.0, min_periods=4)["A"].tolist()
    [nan, nan, nan, nan, 1.0, -1.0]
    """
    past = daily.shift(1)
    if window is None:
        centre = past.expanding(min_periods=min_periods).mean()
        spread = past.expanding(min_periods=min_periods).std()
    else:
        centre = past.rolling(window, min_periods=min_periods).mean()
        spread = past.rolling(window, min_periods=min_periods).std()
    z = (daily - centre) / spread.where(spread > 0)
    sign = pd.DataFrame(np.sign(z.to_numpy()), index=z.index, columns=z.columns)
    shock: pd.DataFrame = sign.where(z.abs() > k, 0.0).where(z.notna())
    return shock


def join_sentiment(
    prices: pd.DataFrame,
    daily: DailySentiment,
) -> pd.DataFrame:
    """Return the price panel with the daily sentiment beside it, aligned on its index.

    The result's columns are a (field, symbol) MultiIndex: ``price`` (``prices`` as
    given), ``mean``, ``count`` (0 where no news) and ``decayed``, each reindexed to
    the price panel's index and symbols.  Compute ``daily`` on ``prices.index`` so that
    no story is lost between sessions.
    """
    fields = {
        "price": prices,
        "mean": daily.mean.reindex(index=prices.index, columns=prices.columns),
        "count": daily.count.reindex(index=prices.index, columns=prices.columns, fill_value=0),
        "decayed": daily.decayed.reindex(index=prices.index, columns=prices.columns),
    }
    return pd.concat(fields, axis=1, names=["field", "symbol"])
