"""How well a sentiment model reads labelled headlines: accuracy per class, bias, confusion.

:func:`evaluate` scores labelled texts with any model of
:mod:`quantdesk.sentiment.loading` and calls each one positive when its ``score``
(``positive - negative``) is at least ``band``, negative when at most ``-band``, and
neutral in between; the same rule for the lexicon and FinBERT, so their figures compare.

Examples
--------
>>> from quantdesk.sentiment.lexicon import LexiconSentiment
>>> labelled = pd.DataFrame({"headline": ["Acme beats estimates", "Acme misses estimates",
...     "Acme names new CFO"], "label": ["positive", "negative", "neutral"]})
>>> result = evaluate(LexiconSentiment(), labelled)
>>> result.accuracy["positive"], result.neutral_bias
(1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.sentiment.loading import SentimentModel

__all__ = ["LABELS", "Evaluation", "evaluate"]

#: The classes, in the order of the confusion matrix.
LABELS: tuple[str, ...] = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class Evaluation:
    """A model's figures on a labelled set.

    ``accuracy``: share of each class labelled right (recall per class); ``overall``:
    share of all texts; ``neutral_bias``: mean score of the neutral texts (0 is
    unbiased, negative leans negative); ``confusion``: counts, rows the true label,
    columns the predicted one; ``scores``: each text's label, score and prediction.
    """

    model: str
    n: int
    band: float
    accuracy: dict[str, float]
    overall: float
    neutral_bias: float
    confusion: pd.DataFrame
    scores: pd.DataFrame

    def summary(self) -> str:
        """Return the figures in a few lines."""
        per_class = ", ".join(f"{k} {v:.0%}" for k, v in self.accuracy.items())
        return (
            f"{self.model} on {self.n} headlines (band {self.band:g}): {per_class}; "
            f"overall {self.overall:.0%}; neutral bias {self.neutral_bias:+.3f}\n"
            f"{self.confusion.to_string()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as plain data (the per-text scores left out)."""
        return {
            "model": self.model,
            "n": self.n,
            "band": self.band,
            "accuracy": self.accuracy,
            "overall": self.overall,
            "neutral_bias": self.neutral_bias,
            "confusion": self.confusion.to_dict(orient="index"),
        }


def evaluate(
    model: SentimentModel,
    labelled: pd.DataFrame,
    *,
    text: str = "headline",
    label: str = "label",
    band: float = 0.1,
) -> Evaluation:
    """Return the model's accuracy per class, neutral bias and confusion matrix on ``labelled``.

    Parameters
    ----------
    model
        Anything with ``.score(texts)`` returning a ``score`` column.
    labelled
        One row per text, with the text in ``text`` and ``positive``, ``negative`` or
        ``neutral`` in ``label``.
    band
        Scores in ``(-band, band)`` are predicted neutral.
    """
    labels = labelled[label].astype(str)
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"labels must be {', '.join(LABELS)}; found {unknown}")
    score = model.score(labelled[text].astype(str).tolist())["score"].to_numpy(dtype=float)
    predicted = np.where(score >= band, "positive", np.where(score <= -band, "negative", "neutral"))
    scores = pd.DataFrame(
        {
            "text": labelled[text].to_numpy(),
            "label": labels.to_numpy(),
            "score": score,
            "predicted": predicted,
        }
    )
    confusion = pd.crosstab(
        pd.Categorical(scores["label"], categories=LABELS),
        pd.Categorical(scores["predicted"], categories=LABELS),
        rownames=["true"],
        colnames=["predicted"],
        dropna=False,
    )
    right = scores["label"] == scores["predicted"]
    accuracy = {
        c: float(right[scores["label"] == c].mean()) for c in LABELS if (scores["label"] == c).any()
    }
    neutral = scores.loc[scores["label"] == "neutral", "score"]
    key = getattr(model, "key", None)
    return Evaluation(
        model=str(key) if key is not None else repr(model),
        n=len(scores),
        band=band,
        accuracy=accuracy,
        overall=float(right.mean()) if len(scores) else float("nan"),
        neutral_bias=float(neutral.mean()) if len(neutral) else float("nan"),
        confusion=confusion,
        scores=scores,
    )
