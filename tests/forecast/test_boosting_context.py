"""LightGBM's context features: regime probabilities and daily news sentiment (issue 24).

The return model reads the nine filtered regime probabilities and the daily sentiment
beside the common features.  Checked here: a forecast as of ``t`` is identical when every
bar, regime row and news story after ``t`` (after its close) is removed; the features are
in the booster and carry information (an informative synthetic sentiment raises the
out-of-sample IC); the store's regimes and scored news arrive as ``with_context`` builds
them; bad context input is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import MarketStore
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.data.sources.simulator import simulate
from quantdesk.data.store.news import NewsStore, ScoreKey
from quantdesk.data.wide import panels_from_bars
from quantdesk.forecast.base import truncate
from quantdesk.forecast.boosting import (
    CONTEXT_FEATURES,
    SENTIMENT_FEATURES,
    LightGBMReturn,
    feature_rows,
    store_context,
    with_context,
)
from quantdesk.forecast.evaluation import walk_forward
from quantdesk.forecast.targets import return_1d
from quantdesk.signals.sentiment import session_close

FIELDS = ["open", "high", "low", "close", "volume"]
PROBS = list(REGIME_PROBABILITY_COLUMNS)
VOL = ("low", "medium", "high")
TREND = ("bearish", "neutral", "bullish")


@pytest.fixture(scope="module")
def bars() -> dict[str, pd.DataFrame]:
    return panels_from_bars(simulate(n_symbols=6, n_days=800, seed=3).bars, FIELDS, "1d")


def _regimes(panels: dict[str, pd.DataFrame], seed: int = 0) -> pd.DataFrame:
    """Return random filtered probabilities, one row per symbol and session it trades."""
    close = panels["close"]
    rng = np.random.default_rng(seed)
    parts = []
    for symbol in close.columns:
        ts = close.index[close[symbol].notna().to_numpy()]
        frame = pd.DataFrame(rng.dirichlet(np.ones(9), len(ts)), columns=PROBS)
        parts.append(frame.assign(symbol=str(symbol), ts=ts))
    return pd.concat(parts, ignore_index=True)


def _news(panels: dict[str, pd.DataFrame], seed: int = 1) -> pd.DataFrame:
    """Return stories before and after each session's close, and on some weekends."""
    close = panels["close"]
    rng = np.random.default_rng(seed)
    day = close.index.tz_localize(None).normalize()
    rows = []
    for symbol in close.columns:
        for hour in ("11:00", "17:30"):  # before and after the 16:00 New York close
            picked = day[rng.random(len(day)) < 0.4]
            stamps = (picked + pd.Timedelta(hour + ":00")).tz_localize("America/New_York")
            rows.append(pd.DataFrame({"symbol": str(symbol), "ts": stamps}))
        weekend = day[rng.random(len(day)) < 0.05] + pd.Timedelta(days=5)
        rows.append(pd.DataFrame({"symbol": str(symbol), "ts": weekend.tz_localize("UTC")}))
    news = pd.concat(rows, ignore_index=True)
    news["ts"] = pd.to_datetime(news["ts"], utc=True)
    return news.assign(score=rng.uniform(-1, 1, len(news)))


def _cut(bars, regimes, news, t):
    """Return the context panels of everything known at the close of session ``t``."""
    closes = session_close(pd.DatetimeIndex([t]))[0]
    return with_context(
        truncate(bars, t), regimes.loc[regimes["ts"] <= t], news.loc[news["ts"] < closes]
    )


def test_forecast_with_context_is_unchanged_when_later_bars_regimes_and_news_are_removed(bars):
    regimes, news = _regimes(bars), _news(bars)
    full = with_context(bars, regimes, news)
    index = bars["close"].index
    fit_end = index[600]
    model = LightGBMReturn().fit(full, end=fit_end)
    used = dict(
        zip(model.booster_.feature_name(), model.booster_.feature_importance(), strict=True)
    )
    assert any(used[name] > 0 for name in PROBS) and any(used[n] > 0 for n in SENTIMENT_FEATURES)
    sessions = index[[600, 650, 700, 799]]
    many = model.predict_many(full, sessions)
    assert set(many["ts"]) == set(sessions)
    for t in sessions:
        alone = model.predict(_cut(bars, regimes, news, t), t)
        expected = many.loc[many["ts"] == t].set_index("symbol")["value"]
        np.testing.assert_array_equal(alone.loc[expected.index].to_numpy(), expected.to_numpy())
    # The stories after session t's close count for the next session: they are part of
    # the full sentiment at t + 1 but not at t.
    t = index[650]
    rows = feature_rows(full, [t]).set_index("symbol")
    cut_rows = feature_rows(_cut(bars, regimes, news, t), [t]).set_index("symbol")
    pd.testing.assert_frame_equal(rows, cut_rows)
    # Fitting reads nothing after its end either.
    again = LightGBMReturn().fit(_cut(bars, regimes, news, fit_end))
    pd.testing.assert_frame_equal(again.predict_many(full, sessions), many)


def test_feature_names_include_the_context_and_missing_context_is_nan(bars):
    model = LightGBMReturn().fit(bars, end=bars["close"].index[500])
    assert set(CONTEXT_FEATURES) <= set(model.booster_.feature_name())
    assert len(CONTEXT_FEATURES) == 12
    rows = feature_rows(bars, bars["close"].index[[400]])
    assert rows[list(CONTEXT_FEATURES)].isna().all().all()


def test_an_informative_sentiment_raises_the_out_of_sample_ic():
    panels = panels_from_bars(simulate(n_symbols=20, n_days=700, seed=9).bars, FIELDS, "1d")
    # A story at noon of session t whose score leans toward the return of t+1: by
    # construction informative, as a test of whether the model reads it at all.
    y = return_1d(panels)
    rng = np.random.default_rng(4)
    long = y.stack().rename("r").reset_index()
    long.columns = ["ts", "symbol", "r"]
    noise = rng.normal(0, 1, len(long))
    news = pd.DataFrame(
        {
            "symbol": long["symbol"].astype(str),
            "ts": long["ts"].dt.tz_localize(None).dt.normalize() + pd.Timedelta(hours=12),
            "score": np.tanh(long["r"] / long["r"].std() + noise),
        }
    )
    news["ts"] = news["ts"].dt.tz_localize("America/New_York")
    with_news = with_context(panels, news=news)

    def ic(data):
        wf = walk_forward(data, [LightGBMReturn()], "return_1d", min_train=400, refit=150)
        return float(wf.daily_ic()["lightgbm"].mean())

    plain, informed = ic(panels), ic(with_news)
    assert informed > plain + 0.2, (plain, informed)


def test_store_context_reads_the_stored_regimes_and_scored_news(bars, tmp_path: Path):
    small = {f: p.iloc[:120, :3] for f, p in bars.items()}
    store = MarketStore(tmp_path / "ctx.duckdb")
    long = small["close"].stack().rename("close").reset_index()
    long.columns = ["ts", "symbol", "close"]
    frame = long.assign(**{f: small[f].stack().to_numpy() for f in ("open", "high", "low")})
    store.write_bars(frame.assign(volume=1.0e6, timeframe="1d"))
    panels = store.panels()
    assert store_context(store, panels).keys() == panels.keys()  # nothing stored yet
    regimes = _regimes(small)
    states = regimes[PROBS].to_numpy().argmax(axis=1)
    store.write_regimes(
        regimes.assign(
            model_version="regimes/v1",
            state=states,
            vol_label=[VOL[s // 3] for s in states],
            trend_label=[TREND[s % 3] for s in states],
        )
    )
    news = _news(small).iloc[:80].reset_index(drop=True)
    items = news.assign(
        id=[f"n{i}" for i in range(len(news))],
        headline=[f"story {i}" for i in range(len(news))],
        source="wire",
        symbols=news["symbol"],
    )
    ns = NewsStore(store)
    ns.write_news(items.drop(columns=["symbol", "score"]), strict=True)
    stored = ns.news().merge(items[["id", "score"]], on="id")
    ns.write_scores(
        stored[["content_hash", "score"]].assign(positive=0.3, negative=0.3, neutral=0.4),
        ScoreKey("test-model"),
    )
    got = store_context(store, panels)
    want = with_context(panels, regimes, news)
    for name in CONTEXT_FEATURES:
        pd.testing.assert_frame_equal(got[name], want[name], check_freq=False, obj=name)
    assert got["sentiment_count"].to_numpy().sum() > 0
    # the forecast jobs (fit, run, the evening step) read their panels with this context
    from quantdesk.forecast.jobs import _panels

    fed = _panels(store, None)
    for name in CONTEXT_FEATURES:
        pd.testing.assert_frame_equal(fed[name], want[name], check_freq=False, obj=name)


def test_bad_context_is_refused(bars):
    regimes = _regimes(bars)
    with pytest.raises(ValueError, match="regimes lack the columns"):
        with_context(bars, regimes.drop(columns=PROBS[0]))
    twice = pd.concat([regimes, regimes.iloc[[5]]])
    with pytest.raises(ValueError, match="sharing a \\(symbol, ts\\)"):
        with_context(bars, twice)
    with pytest.raises(ValueError, match="news lacks the columns"):
        with_context(bars, news=_news(bars).drop(columns="score"))
