"""Synthetic headlines tied to the simulator's true regimes, for demos without a network.

:func:`synthetic_news` writes templated headlines for a
:class:`~quantdesk.data.sources.simulator.SimulatedMarket`: on each session a symbol gets a
headline with probability ``rate``, and whether it is good, bad or neutral news follows
the symbol's true trend state that day (:data:`TONE_PROBABILITIES`), so sentiment lines
up with the regimes the demo reports show.  Every item is labelled: ``source`` is
``"synthetic"`` and the body says it was generated.  Same seed, same headlines.

The templates use words of the Loughran-McDonald dictionary (and a few negations), so
the lexicon scorer reads their tone; a few hit after the close or before the open, so
the daily signals' calendar rules have work to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from quantdesk.data.sources.simulator import SimulatedMarket

__all__ = ["SYNTHETIC_SOURCE", "TEMPLATES", "TONE_PROBABILITIES", "synthetic_news"]

SYNTHETIC_SOURCE = "synthetic"
#: P(positive, negative, neutral headline) by true trend state (bearish, neutral, bullish).
TONE_PROBABILITIES: dict[int, tuple[float, float, float]] = {
    0: (0.15, 0.55, 0.30),
    1: (0.25, 0.25, 0.50),
    2: (0.55, 0.15, 0.30),
}
#: Headline templates by tone; ``{s}`` is the symbol, ``{p}`` a percentage.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "positive": (
        "{s} posts strong gains as profits improve {p}%",
        "{s} achieves record efficiency, margins improve",
        "Analysts say {s} will outperform after strong quarter",
        "{s} reports improvement in sales, up {p}%",
        "{s} reports no losses in key division",
        "{s} rewarded by investors for strong execution",
    ),
    "negative": (
        "{s} warns of losses as demand weakens",
        "{s} cuts outlook after {p}% decline in orders",
        "{s} faces investigation over reporting failures",
        "{s} sees no improvement in margins",
        "{s} shares hit by downgrade and weak guidance",
        "{s} announces layoffs amid difficult conditions",
    ),
    "neutral": (
        "{s} to present at industry conference",
        "{s} schedules quarterly earnings call",
        "{s} announces annual shareholder meeting date",
        "{s} shares trade in line with the market",
        "{s} names new head of investor relations",
    ),
}
_TONES = ("positive", "negative", "neutral")


def synthetic_news(
    market: SimulatedMarket,
    *,
    rate: float = 0.3,
    seed: int = 0,
    timezone: str = "America/New_York",
) -> pd.DataFrame:
    """Return synthetic news items (``id, ts, source, headline, body, symbols``) for a market.

    Parameters
    ----------
    market
        The simulated market whose true ``trend_state`` sets each headline's tone.
    rate
        Probability that a symbol has a headline on a session.
    seed
        Seed of the draws (independent of the market's own seed).
    timezone
        The exchange's timezone: publication times fall between 07:00 and 20:00 local
        time of the session date, some after the 16:00 close.

    Examples
    --------
    >>> from quantdesk.data.sources.simulator import simulate
    >>> items = synthetic_news(simulate(n_symbols=2, n_days=20, seed=1), rate=0.5)
    >>> items["source"].unique().tolist(), list(items.columns)
    (['synthetic'], ['id', 'ts', 'source', 'headline', 'body', 'symbols'])
    """
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], not {rate}")
    rng = np.random.default_rng(seed)
    regimes = market.regimes
    picked = regimes[rng.random(len(regimes)) < rate].reset_index(drop=True)
    n = len(picked)
    probabilities = np.array([TONE_PROBABILITIES[int(s)] for s in range(3)])
    cumulative = probabilities.cumsum(axis=1)[picked["trend_state"].to_numpy()]
    tone = (rng.random(n)[:, None] > cumulative).sum(axis=1)
    tone = np.minimum(tone, 2)
    minutes = rng.integers(7 * 60, 20 * 60, size=n)
    percent = rng.integers(2, 30, size=n)
    choice = rng.random(n)
    headlines = []
    for t, sym, p, c in zip(tone, picked["symbol"], percent, choice, strict=True):
        options = TEMPLATES[_TONES[t]]
        headlines.append(options[int(c * len(options))].format(s=sym, p=p))
    session = picked["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    local = (session + pd.to_timedelta(minutes, unit="min")).dt.tz_localize(timezone)
    ts = local.dt.tz_convert("UTC")
    body = (
        "Synthetic headline generated from the simulator's true regime path (seed "
        + str(seed)
        + ", session "
        + session.dt.strftime("%Y-%m-%d")
        + "); not real news."
    )
    return pd.DataFrame(
        {
            "id": [f"synthetic-{seed}-{i}" for i in range(n)],
            "ts": ts.dt.as_unit("ns"),
            "source": SYNTHETIC_SOURCE,
            "headline": headlines,
            "body": body,
            "symbols": [[str(s)] for s in picked["symbol"]],
        }
    )
