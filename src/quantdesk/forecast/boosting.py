"""Next-session return forecast by gradient boosting (LightGBM) on causal features.

The features of ``(t, symbol)`` are the 14 :func:`quantdesk.signals.common_features`
(returns over 1-60 sessions, realised volatilities, moving-average ratios, volume ratios,
the high-low range), each using bars up to ``t`` only, plus their cross-sectional ranks
on that session (``*_rank``, in [0, 1]; 0.5 when only one symbol trades).  One model is
trained on the rows of every symbol pooled (target: :func:`~quantdesk.forecast.targets.return_1d`),
on the training window only; :func:`~quantdesk.forecast.evaluation.walk_forward` refits it
on its schedule with an expanding window.  Settings are fixed (no tuning on any
evaluation window); ``deterministic`` LightGBM on one thread with a seed, so the same data
gives the same model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from quantdesk.forecast.base import ForecastModel, Panels, as_session, stack_long
from quantdesk.forecast.targets import return_1d
from quantdesk.signals.features import COMMON_FEATURE_NAMES, common_features

__all__ = ["FEATURE_NAMES", "LightGBMReturn", "feature_rows"]

logger = logging.getLogger(__name__)

FEATURE_NAMES: tuple[str, ...] = (
    *COMMON_FEATURE_NAMES,
    *(f"{name}_rank" for name in COMMON_FEATURE_NAMES),
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
    features may be NaN (LightGBM routes missing values itself).
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
    ts = close.index.repeat(close.shape[1])[mask]
    symbols = np.tile(close.columns.astype(str).to_numpy(), len(close))[mask]
    return pd.DataFrame({"ts": ts, "symbol": symbols, **columns})


class LightGBMReturn(ForecastModel):
    """Pooled LightGBM regression of the next session's log return on causal features."""

    name: ClassVar[str] = "lightgbm"

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
        data = lgb.Dataset(
            rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64),
            label=rows["y"].to_numpy(),
            feature_name=list(FEATURE_NAMES),
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
            self.booster_.predict(rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64))
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
