"""The latest scored headlines per symbol: what a monitor pane or a report lists.

Pure functions on the frame :meth:`quantdesk.data.store.news.NewsStore.scored_news`
returns (one row per story and symbol, with its scores); no I/O, no HTML.  Text stays
as the source wrote it: whoever displays it escapes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from quantdesk.data.store.news import SCORE_COLUMNS

__all__ = ["HEADLINE_COLUMNS", "latest_headlines"]

#: The columns of :func:`latest_headlines`.
HEADLINE_COLUMNS: tuple[str, ...] = ("symbol", "ts", "source", "headline", *SCORE_COLUMNS)


def latest_headlines(
    scored: pd.DataFrame, n: int = 5, symbols: Sequence[str] | None = None
) -> pd.DataFrame:
    """Return the ``n`` most recent scored headlines of each symbol, newest first.

    Parameters
    ----------
    scored
        Long frame with ``symbol, ts, source, headline`` and the score columns.
    n
        Headlines kept per symbol.
    symbols
        Keep these symbols only, in this order (default: every symbol, sorted).

    Examples
    --------
    >>> scored = pd.DataFrame({"symbol": ["A", "A", "B"],
    ...     "ts": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-02"], utc=True),
    ...     "source": "wire", "headline": ["old", "new", "b"], "positive": 0.5,
    ...     "negative": 0.1, "neutral": 0.4, "score": 0.4})
    >>> latest_headlines(scored, n=1)[["symbol", "headline"]]
      symbol headline
    0      A      new
    1      B        b
    """
    frame = scored.loc[:, list(HEADLINE_COLUMNS)]
    if symbols is not None:
        frame = frame[frame["symbol"].isin(list(symbols))]
    frame = frame.sort_values(["symbol", "ts"], ascending=[True, False], kind="stable")
    frame = frame.groupby("symbol", sort=False).head(n)
    if symbols is not None:
        rank = {s: i for i, s in enumerate(symbols)}
        frame = frame.sort_values("symbol", key=lambda s: s.map(rank), kind="stable")
    return frame.reset_index(drop=True)
