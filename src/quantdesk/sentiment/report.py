"""The sentiment report's numbers: scored news against prices, regimes and next returns.

:func:`sentiment_report` reads the scored news of the chosen symbols (scoring stored
news first when none is scored, and for the simulated universe storing its synthetic
headlines first when it has none), turns them into daily scores on the price calendar
and measures them: coverage, the focus symbol's score beside its filtered (and, for
the simulated market, true) trend regime, returns after sentiment shocks and the
information coefficient.  ``notebooks/sentiment_report.ipynb`` draws what it returns.

A daily score at session *t* uses only news published before *t*'s close
(:func:`~quantdesk.signals.sentiment.daily_sentiment`); every return it is compared
with starts at that close.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.core.html import summary_html, summary_text
from quantdesk.data.schemas import TREND_LABELS
from quantdesk.data.sources.samples import SIMULATED_DAYS, SIMULATED_SEED, simulated_symbols
from quantdesk.data.store.market import MarketStore, as_store
from quantdesk.data.store.news import NewsStore
from quantdesk.sentiment.analysis import (
    Coverage,
    coverage,
    event_study,
    information_coefficient,
)
from quantdesk.signals.sentiment import DailySentiment, daily_sentiment, sentiment_shock

__all__ = ["SentimentReport", "scored_news_for", "sentiment_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentimentReport:
    """Return value of :func:`sentiment_report`.

    Attributes
    ----------
    symbols
        The symbols reported on.
    scored
        Their scored news, one row per (story, symbol).
    prices, returns
        Wide daily closes and close-to-close returns over the window.
    daily
        The daily mean, count and decayed score on the price calendar.
    coverage
        Headlines per symbol, per local day and per source.
    focus
        The symbol shown against its price and regime.
    focus_frame
        Its ``close``, ``decayed score``, ``daily mean``, ``filtered trend`` (-1 bearish,
        0 neutral, 1 bullish) and, for a simulated symbol whose stored prices are the
        seed's simulation, ``true trend``.
    trend_correlation
        The decayed score's same-day correlation with each trend column of
        :attr:`focus_frame` (``true trend`` first, when known).
    shocks, event_study
        The sentiment shocks (+1, -1, 0) and the mean returns after them.
    ic, ic_by_symbol
        The daily cross-sectional IC (sessions with enough symbols) and each symbol's IC
        over time.
    notes
        What was done or left out on the way (news stored or scored, no true regime).
    """

    symbols: list[str]
    scored: pd.DataFrame
    prices: pd.DataFrame
    returns: pd.DataFrame
    daily: DailySentiment
    coverage: Coverage
    focus: str
    focus_frame: pd.DataFrame
    trend_correlation: pd.Series
    shocks: pd.DataFrame
    event_study: pd.DataFrame
    ic: pd.Series
    ic_by_symbol: pd.Series
    halflife: float
    shock_k: float
    notes: tuple[str, ...] = ()

    def ic_summary(self) -> str:
        """Return one line: the mean daily IC, its t-statistic and the mean per-symbol IC."""
        if self.ic.empty:
            return "too few symbols with a score on the same sessions for a cross-sectional IC"
        t = self.ic.mean() / self.ic.std() * len(self.ic) ** 0.5
        return (
            f"mean daily IC {self.ic.mean():.4f} over {len(self.ic)} sessions (t = {t:.2f}); "
            f"mean per-symbol IC {self.ic_by_symbol.mean():.4f}"
        )

    def _headline(self) -> dict[str, Any]:
        return {
            "scored headlines": len(self.scored),
            "symbols": len(self.symbols),
            "sessions": f"{self.prices.index[0]:%Y-%m-%d} to {self.prices.index[-1]:%Y-%m-%d}",
            "focus": self.focus,
            "half-life (sessions)": self.halflife,
            "information coefficient": self.ic_summary(),
        }

    def summary(self) -> str:
        """Return the headline figures and the notes as readable text."""
        text = summary_text("Sentiment report", self._headline())
        return "\n".join([text, *(f"  note: {n}" for n in self.notes)])

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        details: dict[str, Any] = {
            "headlines by symbol": self.coverage.by_symbol,
            "returns after shocks": self.event_study,
            f"{self.focus}: correlation with the trend": self.trend_correlation,
        }
        if self.notes:
            details["notes"] = "\n".join(self.notes)
        return summary_html("Sentiment report", self._headline(), details)


def scored_news_for(
    store: MarketStore | str | Path | None,
    symbols: Sequence[str],
    *,
    universe: str = "store",
    model: str = "lexicon",
    start: Any = None,
    end: Any = None,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Return the scored news of ``symbols`` in the window, and notes on what was written.

    For ``universe="simulated"`` and no stored news of the symbols, the simulated
    universe's synthetic headlines are stored first (what ``quantdesk news demo``
    writes: the stored universe's size, seed and days).  When none of the symbols' news
    is scored, the store's news are scored with ``model``.

    Raises
    ------
    ValueError
        No scored news for the symbols: the message says how to import and score some.
    """
    market = as_store(store)
    news_store = NewsStore(market)
    notes: list[str] = []
    scored = news_store.scored_news(list(symbols), start=start, end=end)
    if universe == "simulated" and news_store.news(list(symbols)).empty:
        from quantdesk.data.sources.ingest import ingest_synthetic_news

        n_simulated = len(simulated_symbols(market))
        written = ingest_synthetic_news(
            market, symbols=n_simulated, days=SIMULATED_DAYS, seed=SIMULATED_SEED
        )
        notes.append(written.summary().splitlines()[0])
    if scored.empty and not news_store.news(list(symbols)).empty:
        from quantdesk.sentiment.jobs import score_news
        from quantdesk.sentiment.loading import load_model

        notes.append(score_news(market, load_model(model), progress=False).summary())
        scored = news_store.scored_news(list(symbols), start=start, end=end)
    if scored.empty:
        raise ValueError(
            f"no scored news for {', '.join(symbols)} in {market.path}: import news "
            "(`quantdesk news import FILE` or `quantdesk news demo`), score them "
            "(`quantdesk sentiment score`), or run with -p universe simulated"
        )
    return scored, tuple(notes)


def _true_trend(market: MarketStore, focus: str, close: pd.Series) -> pd.Series | None:
    """Return ``focus``'s true trend state (-1 .. 1) if its stored prices are the simulation's.

    The stored simulated universe is simulated again (same size, seed and days); the
    true regime path is shown only where its prices are the stored ones.
    """
    from quantdesk.data.sources.simulator import simulate

    simulated = simulated_symbols(market)
    if focus not in simulated:
        return None
    sim = simulate(n_symbols=len(simulated), n_days=SIMULATED_DAYS, seed=SIMULATED_SEED)
    truth = sim.regimes[sim.regimes["symbol"] == focus].set_index("ts")
    again = sim.bars[sim.bars["symbol"] == focus].set_index("ts")["close"].reindex(close.index)
    if not np.allclose(again.to_numpy(), close.to_numpy(), equal_nan=True):
        return None
    return (truth["trend_state"] - 1).reindex(close.index)


def sentiment_report(
    store: MarketStore | str | Path | None,
    symbols: Sequence[str],
    *,
    universe: str = "store",
    start: Any = None,
    end: Any = None,
    model: str = "lexicon",
    halflife: float = 5.0,
    shock_k: float = 2.0,
    horizons: Sequence[int] = (1, 5, 10, 20),
    focus_symbol: str | None = None,
    n_init: int = 1,
) -> SentimentReport:
    """Return the sentiment report of ``symbols``: coverage, regimes, shocks and IC.

    Parameters
    ----------
    store
        A market store or its path (``None``: the default store).
    symbols
        Stored symbols (choose them with :func:`quantdesk.data.research.open_research`).
    universe
        ``"simulated"``: store the simulated universe's synthetic news if it has none.
    start, end
        The window of news and prices (inclusive).
    model
        Scores the store's news with this model only if none of the symbols' is scored.
    halflife
        Sessions: the half-life of the decayed daily score.
    shock_k
        A shock: the day's mean score more than ``shock_k`` standard deviations from
        its history.
    horizons
        Sessions after a shock.
    focus_symbol
        The symbol shown against its price and regime; ``None``: the most covered.
    n_init
        HMM restarts of the focus symbol's filtered regime model.

    Raises
    ------
    ValueError
        No scored news for the symbols, or a ``focus_symbol`` not among them.
    """
    from quantdesk.regimes import RegimeModel

    market = as_store(store)
    chosen = list(symbols)
    if focus_symbol is not None and focus_symbol not in chosen:
        raise ValueError(f"focus_symbol {focus_symbol!r} is not among the symbols {chosen}")
    scored, notes = scored_news_for(
        market, chosen, universe=universe, model=model, start=start, end=end
    )
    prices = market.panel("close", symbols=chosen, start=start, end=end)
    returns = prices.pct_change()
    daily = daily_sentiment(scored, pd.DatetimeIndex(prices.index), halflife=halflife)
    cov = coverage(scored)

    focus = focus_symbol or str(cov.by_symbol.index[0])
    frame = pd.DataFrame(
        {
            "close": prices[focus],
            "decayed score": daily.decayed[focus],
            "daily mean": daily.mean[focus],
        }
    )
    bars = market.bars(focus, start=start, end=end)
    filtered = RegimeModel(random_state=0, n_init=n_init).fit(bars).filter(bars)
    trend_code = {label: i - 1 for i, label in enumerate(TREND_LABELS)}  # bearish -1 .. 1
    frame["filtered trend"] = (
        filtered["trend_label"].map(trend_code).reindex(frame.index).to_numpy()
    )
    truth = _true_trend(market, focus, frame["close"])
    if truth is not None:
        frame["true trend"] = truth.to_numpy()
    elif focus in simulated_symbols(market):
        notes += (
            f"{focus}'s stored prices are not the seed-{SIMULATED_SEED} simulation's: "
            "no true regime shown",
        )
    trend_columns = [c for c in ("true trend", "filtered trend") if c in frame]
    correlation = frame[["decayed score", *trend_columns]].corr()["decayed score"]

    shocks = sentiment_shock(daily.mean, k=shock_k)
    study = event_study(prices, shocks, horizons=horizons)
    ic = information_coefficient(daily.decayed, returns, by="date").dropna()
    per_symbol = information_coefficient(daily.decayed, returns, by="symbol")
    for note in notes:
        logger.info("%s", note)
    return SentimentReport(
        symbols=chosen,
        scored=scored,
        prices=prices,
        returns=returns,
        daily=daily,
        coverage=cov,
        focus=focus,
        focus_frame=frame,
        trend_correlation=correlation.loc[trend_columns],
        shocks=shocks,
        event_study=study,
        ic=ic,
        ic_by_symbol=per_symbol,
        halflife=halflife,
        shock_k=shock_k,
        notes=notes,
    )
