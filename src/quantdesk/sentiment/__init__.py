"""News sentiment: FinBERT through transformers, a finance-lexicon fallback, a score cache.

- :mod:`~quantdesk.sentiment.finbert`: :class:`FinBertSentiment` (local weights only).
- :mod:`~quantdesk.sentiment.lexicon`: :class:`LexiconSentiment` (Loughran-McDonald, Henry
  2008 and headline phrases).
- :mod:`~quantdesk.sentiment.evaluate`: :func:`evaluate` (accuracy per class, bias,
  confusion matrix on labelled headlines).
- :mod:`~quantdesk.sentiment.loading`: :func:`load_model` picks one by name.
- :mod:`~quantdesk.sentiment.jobs`: :func:`score_news` scores the store's news
  incrementally through the score cache.
- :mod:`~quantdesk.sentiment.headlines`: :func:`latest_headlines` for monitors and reports.
- :mod:`~quantdesk.sentiment.analysis`: :func:`coverage`, :func:`event_study`,
  :func:`information_coefficient` for the sentiment report.

News items themselves (import, validation, the store) live in :mod:`quantdesk.data.sources.news`
and :mod:`quantdesk.data.store.news`; daily sentiment signals in
:mod:`quantdesk.signals.sentiment`.  Names load on first use: ``import
quantdesk.sentiment`` never imports torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "FinBertSentiment": "quantdesk.sentiment.finbert",
    "FinBertUnavailableError": "quantdesk.sentiment.finbert",
    "LexiconSentiment": "quantdesk.sentiment.lexicon",
    "SentimentModel": "quantdesk.sentiment.loading",
    "load_model": "quantdesk.sentiment.loading",
    "ScoreResult": "quantdesk.sentiment.jobs",
    "score_news": "quantdesk.sentiment.jobs",
    "latest_headlines": "quantdesk.sentiment.headlines",
    "Evaluation": "quantdesk.sentiment.evaluate",
    "evaluate": "quantdesk.sentiment.evaluate",
    "Coverage": "quantdesk.sentiment.analysis",
    "coverage": "quantdesk.sentiment.analysis",
    "event_study": "quantdesk.sentiment.analysis",
    "information_coefficient": "quantdesk.sentiment.analysis",
}
_SUBMODULES = frozenset(
    {"finbert", "lexicon", "loading", "jobs", "headlines", "analysis", "evaluate"}
)

__all__ = [
    "Coverage",
    "Evaluation",
    "FinBertSentiment",
    "FinBertUnavailableError",
    "LexiconSentiment",
    "ScoreResult",
    "SentimentModel",
    "coverage",
    "evaluate",
    "event_study",
    "information_coefficient",
    "latest_headlines",
    "load_model",
    "score_news",
]

if TYPE_CHECKING:
    from quantdesk.sentiment.analysis import (
        Coverage,
        coverage,
        event_study,
        information_coefficient,
    )
    from quantdesk.sentiment.evaluate import Evaluation, evaluate
    from quantdesk.sentiment.finbert import FinBertSentiment, FinBertUnavailableError
    from quantdesk.sentiment.headlines import latest_headlines
    from quantdesk.sentiment.jobs import ScoreResult, score_news
    from quantdesk.sentiment.lexicon import LexiconSentiment
    from quantdesk.sentiment.loading import SentimentModel, load_model


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
