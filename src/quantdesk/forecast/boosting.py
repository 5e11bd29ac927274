"""Next-session return forecast by gradient boosting (LightGBM) on causal features.

The features of ``(t, symbol)`` are the 14 :func:`quantdesk.signals.common_features`
(returns over 1-60 sessions, realised volatilities, moving-average ratios, volume ratios,
the high-low range), each using bars up to ``t`` only, plus their cross-sectional ranks
on that session (``*_rank``, in [0, 1]; 0.5 when only one symbol trades), plus the
context features :data:`CONTEXT_FEATURES` when the panels carry them:

* the nine filtered regime probabilities ``p_*`` of session ``t`` (P(cell at t | bars up
  to t), the stored regimes or an HMM's filter), and
* the daily news sentiment of session ``t`` (:func:`quantdesk.signals.sentiment.daily_sentiment`:
  ``sentiment_mean``, ``sentiment_count``, ``sentiment_decayed``; a story published after
  ``t``'s close counts for the next session).

:func:`with_context` adds them to the panels (as wide panels under those names, so
:func:`~quantdesk.forecast.base.truncate` cuts them with the bars) and
:func:`store_context` reads them from a store.  Panels without them give NaN in those
columns, which LightGBM routes as missing.  One model is
trained on the rows of every symbol pooled (target: :func:`~quantdesk.forecast.targets.return_1d`),
on the training window only; :func:`~quantdesk.forecast.evaluation.walk_forward` refits it
on its schedule with an expanding window.  Settings are fixed (no tuning on any
evaluation window); ``deterministic`` LightGBM on one thread with a seed, so the same data
gives the same model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.forecast.base import ForecastModel, Panels, as_session, stack_long
from quantdesk.forecast.targets import return_1d
from quantdesk.signals.features import COMMON_FEATURE_NAMES, common_features

if TYPE_CHECKING:
    from quantdesk.data.snapshot import SnapshotReader
    from quantdesk.data.store.market import MarketStore

__all__ = [
    "CONTEXT_FEATURES",
    "FEATURE_NAMES",
    "SENTIMENT_FEATURES",
    "LightGBMReturn",
    "feature_rows",
    "store_context",
    "with_context",
]

logger = logging.getLogger(__name__)

#: The daily news sentiment features (the fields of a DailySentiment).
SENTIMENT_FEATURES: tuple[str, ...] = ("sentiment_mean", "sentiment_count", "sentiment_decayed")
#: Features read from panels of the same names when present (NaN otherwise).
CONTEXT_FEATURES: tuple[str, ...] = (*REGIME_PROBABILITY_COLUMNS, *SENTIMENT_FEATURES)
FEATURE_NAMES: tuple[str, ...] = (
    *COMMON_FEATURE_NAMES,
    *(f"{name}_rank" for name in COMMON_FEATURE_NAMES),
    *CONTEXT_FEATURES,
)

_DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "verbosity": -1,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
}


def feature_rows(panels: Panels, sessions: Iterable[Any] | None = None) -> pd.DataFrame:
    """Return one row per ``(ts, symbol)`` with the :data:`FEATURE_NAMES` columns.

    Rows are those where the symbol has a close, at every session or only at ``sessions``
    (the values are the same: the features run over the whole history, as their rolling
    sums carry it, and only the ranks and rows of the chosen sessions are assembled);
    features may be NaN (LightGBM routes missing values itself).  The
    :data:`CONTEXT_FEATURES` are the panels of those names as they are (NaN where the
    panels have none: see :func:`with_context`).
    """
    features = common_features(panels)
    close = panels["close"]
    if sessions is not None:
        wanted = pd.DatetimeIndex([as_session(s) for s in sessions])
        keep = close.index.isin(wanted)
        close = close.loc[keep]
        features = {name: frame.loc[keep] for name, frame in features.items()}
    columns: dict[str, np.ndarray] = {}
    mask = close.notna().to_numpy().ravel()
    for name, frame in features.items():
        columns[name] = frame.to_numpy().ravel()[mask]
    for name, frame in features.items():
        ranks = frame.rank(axis=1, pct=True)
        several = np.broadcast_to(frame.count(axis=1).gt(1).to_numpy()[:, None], ranks.shape)
        ranks = ranks.where(several, 0.5)
        columns[f"{name}_rank"] = ranks.where(frame.notna()).to_numpy().ravel()[mask]
    for name in CONTEXT_FEATURES:
        given = panels.get(name)
        if given is None:
            columns[name] = np.full(int(mask.sum()), np.nan)
            continue
        aligned = given.reindex(index=close.index, columns=close.columns)
        columns[name] = aligned.to_numpy(dtype=np.float64).ravel()[mask]
    ts = close.index.repeat(close.shape[1])[mask]
    symbols = np.tile(close.columns.astype(str).to_numpy(), len(close))[mask]
    return pd.DataFrame({"ts": ts, "symbol": symbols, **columns})


def with_context(
    panels: Panels,
    regimes: pd.DataFrame | None = None,
    news: pd.DataFrame | None = None,
    *,
    halflife: float = 5.0,
    timezone: str = "America/New_York",
    close: str = "16:00",
) -> dict[str, pd.DataFrame]:
    """Return the panels with the :data:`CONTEXT_FEATURES` added as wide panels.

    Parameters
    ----------
    panels
        Wide panels by field, at least ``close`` (its index is the session calendar).
    regimes
        Filtered regime probabilities, long: ``symbol, ts`` and the nine ``p_*`` columns
        (:meth:`quantdesk.data.MarketStore.regimes`, or
        :func:`~quantdesk.forecast.regime_models.filtered_regimes`), the row of session
        ``t`` from bars up to ``t``.  Rows off the calendar or of other symbols are left
        out.  ``None``: no regime panels.
    news
        Scored news, long: ``symbol, ts, score``
        (:meth:`quantdesk.data.store.news.NewsStore.scored_news`).  ``None``: no
        sentiment panels.
    halflife, timezone, close
        Passed to :func:`quantdesk.signals.sentiment.daily_sentiment` (a story published
        at or after the close counts for the next session).

    Raises
    ------
    ValueError
        When ``regimes`` or ``news`` lacks a column, or ``regimes`` holds two rows for the
        same symbol and session (which one holds is not guessed).

    Examples
    --------
    >>> ix = pd.DatetimeIndex(["2024-03-01", "2024-03-04"], tz="UTC")
    >>> news = pd.DataFrame({"symbol": ["A", "A"], "score": [0.5, -1.0],
    ...     "ts": pd.to_datetime(["2024-03-01 15:00", "2024-03-01 16:30"])
    ...     .tz_localize("America/New_York")})
    >>> out = with_context({"close": pd.DataFrame({"A": [1.0, 2.0]}, index=ix)}, news=news)
    >>> out["sentiment_mean"]["A"].tolist(), out["sentiment_count"]["A"].tolist()
    ([0.5, -1.0], [1.0, 1.0])
    """
    from quantdesk.signals.sentiment import daily_sentiment

    calendar = panels["close"]
    out = dict(panels)
    if regimes is not None:
        wanted = ["symbol", "ts", *REGIME_PROBABILITY_COLUMNS]
        missing = [c for c in wanted if c not in regimes.columns]
        if missing:
            raise ValueError(f"regimes lack the columns {missing}")
        frame = regimes[wanted].assign(
            symbol=regimes["symbol"].astype(str), ts=pd.to_datetime(regimes["ts"], utc=True)
        )
        twice = frame.duplicated(["symbol", "ts"], keep=False)
        if twice.any():
            first = frame.loc[twice].iloc[0]
            raise ValueError(
                f"regimes hold {int(twice.sum())} rows sharing a (symbol, ts), first "
                f"{first['symbol']} at {first['ts']:%Y-%m-%d}: pick one model version"
            )
        for name in REGIME_PROBABILITY_COLUMNS:
            wide = frame.pivot(index="ts", columns="symbol", values=name)
            out[name] = wide.reindex(index=calendar.index, columns=calendar.columns.astype(str))
            out[name].columns = calendar.columns
    if news is not None:
        missing = [c for c in ("symbol", "ts", "score") if c not in news.columns]
        if missing:
            raise ValueError(f"news lacks the columns {missing}")
        daily = daily_sentiment(
            news,
            pd.DatetimeIndex(calendar.index),
            symbols=[str(c) for c in calendar.columns],
            halflife=halflife,
            timezone=timezone,
            close=close,
        )
        for name, wide in zip(
            SENTIMENT_FEATURES, (daily.mean, daily.count, daily.decayed), strict=True
        ):
            frame = wide.astype(np.float64)
            frame.columns = calendar.columns
            out[name] = frame
    return out


def store_context(
    store: MarketStore | SnapshotReader | str,
    panels: Panels,
    *,
    regime_version: str | None = None,
    score_key: Any = None,
    halflife: float = 5.0,
) -> dict[str, pd.DataFrame]:
    """Return the panels with the store's regimes and daily news sentiment added.

    The regimes are :meth:`~quantdesk.data.MarketStore.regimes` of the panels' symbols up
    to their last session (``regime_version`` picks the model versions, e.g.
    ``"regimes-wf/*"`` for a walk-forward's refits, whose filter parameters were fitted
    before each row: other versions may have been fitted on later bars); the sentiment,
    :meth:`~quantdesk.data.store.news.NewsStore.scored_news` (``score_key``: default the
    latest) through :func:`with_context`.  A store without regimes or scored news gives
    no such panels (their features are then missing).  ``store`` may be a
    :class:`~quantdesk.data.snapshot.SnapshotReader` (a task on a cluster), which answers
    the same reads from its version (a version without regimes or scores has none).
    """
    from quantdesk.data.snapshot import SnapshotReader
    from quantdesk.data.store.market import as_store
    from quantdesk.data.store.news import NewsStore

    symbols = [str(c) for c in panels["close"].columns]
    last = panels["close"].index[-1] if len(panels["close"].index) else None
    if isinstance(store, SnapshotReader):
        held = store.tables()
        regimes = (
            store.regimes(symbols, end=last, model_version=regime_version)
            if "regimes" in held
            else pd.DataFrame()
        )
        news = (
            store.scored_news(symbols, key=score_key)
            if {"news", "news_scores"} <= set(held)
            else pd.DataFrame()
        )
    else:
        market = as_store(store, read_only=True)
        regimes = market.regimes(symbols, end=last, model_version=regime_version)
        news = NewsStore(market, read_only=True).scored_news(symbols, key=score_key)
    logger.info(
        "lightgbm context: %d regime rows, %d scored stories for %d symbols",
        len(regimes),
        len(news),
        len(symbols),
    )
    return with_context(
        panels,
        regimes if len(regimes) else None,
        news if len(news) else None,
        halflife=halflife,
    )


class LightGBMReturn(ForecastModel):
    """Pooled LightGBM regression of the next session's log return on causal features."""

    name: ClassVar[str] = "lightgbm"
    version: ClassVar[str] = "2"  # 2: regime and sentiment features

    def __init__(
        self,
        target: str = "return_1d",
        *,
        num_boost_round: int = 200,
        random_state: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if target != "return_1d":
            raise ValueError(f"LightGBMReturn forecasts 'return_1d', not {target!r}")
        super().__init__(target)
        self.num_boost_round = int(num_boost_round)
        self.random_state = int(random_state)
        self.lgb_params = {**_DEFAULT_PARAMS, **dict(params or {}), "seed": self.random_state}
        self.booster_: Any = None
        self.n_train_: int = 0
        self.feature_names_: list[str] = list(FEATURE_NAMES)

    def params(self) -> dict[str, Any]:
        """Return the boosting rounds and LightGBM's parameters."""
        return {"num_boost_round": self.num_boost_round, **self.lgb_params}

    def _fit(self, panels: Panels) -> None:
        import lightgbm as lgb

        rows = feature_rows(panels)
        target = return_1d(panels)
        y = stack_long(target, "y")
        y["symbol"] = y["symbol"].astype(str)
        rows = rows.merge(y, on=["ts", "symbol"], how="inner").dropna(subset=["y"])
        if len(rows) < 500:
            raise ValueError(
                f"lightgbm: {len(rows)} training rows with an outcome; need at least 500"
            )
        self.feature_names_ = list(FEATURE_NAMES)
        data = lgb.Dataset(
            rows[self.feature_names_].to_numpy(dtype=np.float64),
            label=rows["y"].to_numpy(),
            feature_name=self.feature_names_,
            free_raw_data=True,
        )
        self.booster_ = lgb.train(self.lgb_params, data, num_boost_round=self.num_boost_round)
        self.n_train_ = len(rows)
        logger.info("lightgbm: trained on %d rows", len(rows))

    def predict_many(self, panels: Panels, sessions: Iterable[Any]) -> pd.DataFrame:
        """Return the forecast next-session log return per symbol and session."""
        self._require_fitted()
        wanted = pd.DatetimeIndex([as_session(s) for s in sessions])
        rows = feature_rows(panels, wanted)
        rows = rows.loc[rows["ts"].isin(wanted)].reset_index(drop=True)
        values = (
            self.booster_.predict(rows[self.feature_names_].to_numpy(dtype=np.float64))
            if len(rows)
            else np.empty(0)
        )
        return pd.DataFrame({"ts": rows["ts"], "symbol": rows["symbol"], "value": values})

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        text = self.booster_.model_to_string() if self.booster_ is not None else ""
        return {"booster": np.frombuffer(text.encode(), dtype=np.uint8)}, {"n_train": self.n_train_}

    def _load_state(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        import lightgbm as lgb

        text = np.asarray(arrays["booster"], dtype=np.uint8).tobytes().decode()
        self.booster_ = lgb.Booster(model_str=text) if text else None
        self.n_train_ = int(state.get("n_train", 0))
        # A booster saved before the context features knows its own (fewer) features.
        if self.booster_ is not None:
            self.feature_names_ = list(self.booster_.feature_name())
