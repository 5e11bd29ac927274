"""News sentiment analysis for reports: coverage, event study, information coefficient.

Pure functions on the frames the store and :mod:`quantdesk.signals.sentiment` return:
scored news (long: ``symbol, ts, source, ...``), wide price panels and wide daily score
panels (index the bar calendar, one column per symbol).  The report
``notebooks/sentiment_report.ipynb`` assembles them.

**No look-ahead.**  A daily score at session ``t`` uses only news published before
``t``'s close (:func:`quantdesk.signals.sentiment.daily_sentiment`), so it is compared
with what happens *after* that close: the return from ``t`` to ``t + 1`` in
:func:`information_coefficient`, from ``t`` to ``t + h`` in :func:`event_study`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["Coverage", "coverage", "event_study", "information_coefficient"]


@dataclass(frozen=True)
class Coverage:
    """Return value of :func:`coverage`.

    Attributes
    ----------
    by_symbol
        One row per symbol: ``headlines`` (count), ``days`` (local dates with news),
        ``first`` and ``last`` publication times, by descending ``headlines``.
    by_day
        Headlines per local date (all symbols), indexed by date.
    by_source
        Headlines per source, descending.
    """

    by_symbol: pd.DataFrame
    by_day: pd.Series
    by_source: pd.Series


def coverage(news: pd.DataFrame, timezone: str = "America/New_York") -> Coverage:
    """Return how many headlines there are per symbol, per local date and per source.

    Parameters
    ----------
    news
        Long news: one row per (story, symbol) with columns ``symbol, ts, source``
        (e.g. :meth:`quantdesk.data.store.news.NewsStore.scored_news`); naive ``ts``
        are taken as UTC.
    timezone
        Dates are counted in this timezone (the exchange's).

    Examples
    --------
    >>> news = pd.DataFrame({"symbol": ["A", "A", "B"], "source": ["x", "y", "x"],
    ...     "ts": pd.to_datetime(["2024-03-01 15:00", "2024-03-02 01:00",
    ...                           "2024-03-01 16:00"], utc=True)})
    >>> cov = coverage(news)
    >>> cov.by_symbol["headlines"].to_dict(), cov.by_source.to_dict()
    ({'A': 2, 'B': 1}, {'x': 2, 'y': 1})
    >>> cov.by_day.tolist()  # 01:00 UTC on the 2nd is the evening of the 1st in New York
    [3]
    """
    ts = pd.DatetimeIndex(news["ts"])
    ts = ts.tz_localize("UTC") if ts.tz is None else ts
    frame = pd.DataFrame(
        {
            "symbol": news["symbol"].to_numpy(),
            "source": news["source"].to_numpy(),
            "ts": ts,
            "date": ts.tz_convert(timezone).tz_localize(None).normalize(),
        }
    )
    grouped = frame.groupby("symbol", sort=True)
    by_symbol = pd.DataFrame(
        {
            "headlines": grouped.size(),
            "days": grouped["date"].nunique(),
            "first": grouped["ts"].min(),
            "last": grouped["ts"].max(),
        }
    ).sort_values("headlines", ascending=False, kind="stable")
    by_day = frame.groupby("date").size().rename("headlines")
    by_source = (
        frame.groupby("source")
        .size()
        .sort_values(ascending=False, kind="stable")
        .rename("headlines")
    )
    return Coverage(by_symbol=by_symbol, by_day=by_day, by_source=by_source)


def event_study(
    prices: pd.DataFrame, shocks: pd.DataFrame, horizons: Sequence[int] = (1, 5, 10, 20)
) -> pd.DataFrame:
    """Return the mean return ``h`` sessions after positive and negative sentiment shocks.

    The return after an event at session ``t`` is ``price[t + h] / price[t] - 1``: from
    the close at which the shock is known to ``h`` closes later, so no part of it
    happened before the news.  Events too close to the end for a horizon are left out
    of that horizon.

    Parameters
    ----------
    prices
        Wide closing prices (index the bar calendar, one column per symbol).
    shocks
        Wide +1 / -1 / 0 / NaN events on the same calendar, e.g.
        :func:`quantdesk.signals.sentiment.sentiment_shock`; aligned to ``prices``.
    horizons
        Sessions after the event.

    Returns
    -------
    pandas.DataFrame
        Index ``horizon``; columns ``positive``, ``negative`` (mean return after
        shocks), ``all`` (mean over every session and symbol: the baseline),
        ``spread`` (positive - negative), ``n_positive``, ``n_negative``.

    Examples
    --------
    >>> prices = pd.DataFrame({"A": [100.0, 110.0, 99.0, 99.0]})
    >>> shocks = pd.DataFrame({"A": [1.0, -1.0, 0.0, 0.0]})
    >>> table = event_study(prices, shocks, horizons=[1])
    >>> table.loc[1, ["positive", "negative", "spread"]].round(3).tolist()
    [0.1, -0.1, 0.2]
    """
    shocks = shocks.reindex(index=prices.index, columns=prices.columns)
    rows = []
    for h in horizons:
        if h < 1:
            raise ValueError(f"horizons must be >= 1, got {h}")
        forward = (prices.shift(-h) / prices - 1).to_numpy(dtype=float)
        events = shocks.to_numpy(dtype=float)
        valid = np.isfinite(forward)
        up = valid & (events > 0)
        down = valid & (events < 0)
        rows.append(
            {
                "horizon": int(h),
                "positive": forward[up].mean() if up.any() else np.nan,
                "negative": forward[down].mean() if down.any() else np.nan,
                "all": forward[valid].mean() if valid.any() else np.nan,
                "n_positive": int(up.sum()),
                "n_negative": int(down.sum()),
            }
        )
    table = pd.DataFrame(rows).set_index("horizon")
    table.insert(3, "spread", table["positive"] - table["negative"])
    return table


def information_coefficient(
    scores: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    by: Literal["date", "symbol"] = "date",
    min_observations: int = 3,
) -> pd.Series:
    """Return the Spearman rank correlation of each score with the NEXT session's return.

    ``returns.loc[t]`` is the return from the close before ``t`` to ``t``'s close, so
    the score at ``t`` (news up to ``t``'s close) is paired with ``returns.loc[t + 1]``:
    the return from ``t``'s close to the next close, which the score could have traded.

    Parameters
    ----------
    scores
        Wide daily scores (index the bar calendar, one column per symbol); NaN: no score.
    returns
        Wide one-session returns on the same calendar (e.g. ``prices.pct_change()``).
    by
        ``"date"`` (default): one IC per session, across symbols (the cross-sectional
        IC).  ``"symbol"``: one IC per symbol, over its sessions (the time-series IC).
    min_observations
        Fewer (score, return) pairs than this give NaN.

    Examples
    --------
    >>> returns = pd.DataFrame({"A": [0.0, 0.01, 0.02], "B": [0.0, 0.03, -0.01],
    ...                         "C": [0.0, 0.02, 0.00]})
    >>> scores = returns.shift(-1)  # a perfect forecast of the next return
    >>> information_coefficient(scores, returns).tolist()
    [1.0, 1.0, nan]
    """
    if by not in ("date", "symbol"):
        raise ValueError(f"by must be 'date' or 'symbol', not {by!r}")
    nxt = returns.reindex(index=scores.index, columns=scores.columns).shift(-1)
    x, y = (scores, nxt) if by == "date" else (scores.T, nxt.T)
    # One IC per row: rank the pairs where both are known, then Pearson on the ranks.
    both = x.notna() & y.notna()
    mask = both.to_numpy()
    a = np.where(mask, x.where(both).rank(axis=1).to_numpy(dtype=float), 0.0)
    b = np.where(mask, y.where(both).rank(axis=1).to_numpy(dtype=float), 0.0)
    n = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(mask, a - a.sum(axis=1, keepdims=True) / n[:, None], 0.0)
        b = np.where(mask, b - b.sum(axis=1, keepdims=True) / n[:, None], 0.0)
        covariance = (a * b).sum(axis=1)
        norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
        ic = np.where((norm > 0) & (n >= min_observations), covariance / norm, np.nan)
    return pd.Series(ic, index=x.index, name="ic")
