"""Walk-forward evaluation of forecast models against their baselines, out of sample.

How the walk-forward splits
---------------------------
Sessions are the rows of the panels.  Evaluation starts at session ``start`` (default: the
``min_train``-th session).  Refit dates are ``start``, ``start + refit``, ``start +
2 refit``, ... (in sessions).  At each refit date ``s_k`` every model is fitted on all bars
up to and including ``s_k`` (an expanding window; training rows whose outcome lies after
``s_k`` are not seen), then forecasts every session of ``[s_k, s_{k+1})`` with the bars up to
``s_{k+1} - 1`` only (each forecast as of ``t`` reads bars up to ``t``: the models' truncation
tests prove it).  Model settings are fixed beforehand; nothing is tuned on the evaluation
window.

Outcomes: the target of each session (:mod:`quantdesk.forecast.targets`).  For
``regime_1d`` the outcome is the next session's filtered probabilities under the HMM of the
same refit (:class:`~quantdesk.forecast.regime_models.HMMRegimeForecast`'s fit), and, when
``true_regimes`` are given (the simulator), also the true regime as a one-hot row
(metrics ``log_loss_truth`` and ``brier_truth``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.forecast import scores as sc
from quantdesk.forecast.base import ForecastModel, Panels, as_session, stack_long, truncate
from quantdesk.forecast.models import models_for
from quantdesk.forecast.regime_models import HMMRegimeForecast, filtered_regimes
from quantdesk.forecast.targets import (
    regime_1d,
    return_1d,
    target_horizon,
    variance_estimators,
    vol_1d,
    vol_5d,
)

if TYPE_CHECKING:
    from quantdesk.data.store.market import MarketStore

__all__ = ["SCORE_COLUMNS", "WalkForwardForecasts", "load_panels", "walk_forward"]

logger = logging.getLogger(__name__)

SCORE_COLUMNS = (
    "model", "target", "metric", "value", "baseline", "baseline_value", "skill", "lo", "hi",
)  # fmt: skip
_REFIT_ALIASES = {"monthly": 21, "quarterly": 63, "yearly": 252, "annual": 252}
_PROBS = list(REGIME_PROBABILITY_COLUMNS)


def load_panels(
    store_or_panels: MarketStore | str | Path | Panels, symbols: Sequence[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Return daily wide panels from a store (or its path), or the given panels as they are."""
    if isinstance(store_or_panels, Mapping):
        panels = dict(store_or_panels)
        if symbols is not None:
            panels = {f: p[list(symbols)] for f, p in panels.items()}
        if "close" not in panels:
            raise ValueError("panels need at least a 'close' panel")
        return panels
    from quantdesk.data.store.market import as_store

    store = as_store(store_or_panels, read_only=True)
    panels = store.panels(symbols=symbols)
    if panels["close"].empty:
        raise ValueError(f"no daily bars in {store.path} for {symbols or 'any symbol'}")
    return panels


def _refit_every(refit: int | str) -> int:
    if isinstance(refit, str):
        if refit not in _REFIT_ALIASES:
            raise ValueError(f"refit must be sessions or one of {sorted(_REFIT_ALIASES)}")
        return _REFIT_ALIASES[refit]
    if isinstance(refit, bool) or int(refit) < 1:
        raise ValueError(f"refit must be a positive number of sessions, got {refit!r}")
    return int(refit)


def _wide_outcome(panels: Panels, target: str) -> pd.DataFrame:
    fn = {"return_1d": return_1d, "vol_1d": vol_1d, "vol_5d": vol_5d}[target]
    return fn(panels)


def _one_hot(true_regimes: pd.DataFrame) -> pd.DataFrame:
    cell = true_regimes["vol_state"].to_numpy() * 3 + true_regimes["trend_state"].to_numpy()
    probs = pd.DataFrame(np.eye(9)[cell.astype(int)], columns=_PROBS)
    return pd.concat([true_regimes[["symbol", "ts"]].reset_index(drop=True), probs], axis=1)


@dataclass
class WalkForwardForecasts:
    """Out-of-sample forecasts of several models for one target, with their outcomes.

    Attributes
    ----------
    target : str
    forecasts : pandas.DataFrame
        Long: ``model, ts, symbol`` and ``value`` (or the nine probabilities).
    outcomes : dict of str to pandas.DataFrame
        Long ``ts, symbol`` and ``value`` (or nine probabilities), by outcome kind:
        ``"realised"`` (or ``"filter"`` and ``"truth"`` for regimes).
    baselines : list of str
    refits : pandas.DataFrame
        One row per refit: date, sessions forecast, seconds per model.
    estimators : pandas.Series
        The per-bar variance estimator of each symbol (``range`` or ``close``).
    """

    target: str
    forecasts: pd.DataFrame
    outcomes: dict[str, pd.DataFrame]
    baselines: list[str]
    refits: pd.DataFrame
    estimators: pd.Series
    _scores: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def horizon(self) -> int:
        """Return the target's horizon in sessions."""
        return target_horizon(self.target)

    @property
    def models(self) -> list[str]:
        """Return the model names, in the order given."""
        return list(dict.fromkeys(self.forecasts["model"]))

    def _paired(self, model: str, baseline: str, kind: str) -> pd.DataFrame:
        cols = _PROBS if self.target == "regime_1d" else ["value"]
        fc = self.forecasts
        m = fc.loc[fc["model"] == model, ["ts", "symbol", *cols]]
        b = fc.loc[fc["model"] == baseline, ["ts", "symbol", *cols]]
        y = self.outcomes[kind]
        out = m.merge(b, on=["ts", "symbol"], suffixes=("_m", "_b"))
        y = y.rename(columns={c: f"{c}_y" for c in cols})
        return out.merge(y, on=["ts", "symbol"]).dropna()

    def _session_metrics(self, paired: pd.DataFrame, side: str, kind: str) -> dict[str, pd.Series]:
        ts = paired["ts"]
        if self.target == "regime_1d":
            p = paired[[f"{c}_{side}" for c in _PROBS]].to_numpy()
            q = paired[[f"{c}_y" for c in _PROBS]].to_numpy()
            suffix = "" if kind == "filter" else "_truth"
            return {
                f"log_loss{suffix}": pd.Series(sc.log_loss(p, q)).groupby(ts.to_numpy()).mean(),
                f"brier{suffix}": pd.Series(sc.brier(p, q)).groupby(ts.to_numpy()).mean(),
            }
        f = paired[f"value_{side}"].to_numpy()
        y = paired["value_y"].to_numpy()
        if self.target == "return_1d":
            wf = paired.pivot(index="ts", columns="symbol", values=f"value_{side}")
            wy = paired.pivot(index="ts", columns="symbol", values="value_y")
            return {
                "ic": sc.daily_ic(wf, wy),
                "rank_ic": sc.daily_ic(wf, wy, rank=True),
                "hit_rate": sc.hit_rate(wf, wy),
                "mse": pd.Series(sc.squared_error(f, y)).groupby(ts.to_numpy()).mean(),
            }
        fv, yv = f**2, y**2
        return {
            "mse": pd.Series(sc.squared_error(fv, yv)).groupby(ts.to_numpy()).mean(),
            "qlike": pd.Series(sc.qlike(fv, yv)).groupby(ts.to_numpy()).mean(),
        }

    def scores(self) -> pd.DataFrame:
        """Return each model's metrics beside each baseline: the columns :data:`SCORE_COLUMNS`.

        One row per (model, metric, baseline), computed on the rows both forecast; every
        model is compared with every baseline but itself.
        """
        if self._scores is not None:
            return self._scores.copy()
        rows = []
        for model in self.models:
            for baseline in self.baselines:
                if baseline == model:
                    continue
                for kind in self.outcomes:
                    paired = self._paired(model, baseline, kind)
                    if paired.empty:
                        continue
                    mine = self._session_metrics(paired, "m", kind)
                    theirs = self._session_metrics(paired, "b", kind)
                    for metric, series in mine.items():
                        value, base, skill, lo, hi = sc.skill(
                            series, theirs[metric], metric, self.horizon
                        )
                        rows.append(
                            (model, self.target, metric, value, baseline, base, skill, lo, hi)
                        )
                        if metric == "ic":
                            rows.append(
                                (
                                    model,
                                    self.target,
                                    "icir",
                                    sc.icir(series),
                                    baseline,
                                    sc.icir(theirs[metric]),
                                    sc.icir(series) - sc.icir(theirs[metric]),
                                    np.nan,
                                    np.nan,
                                )
                            )
        self._scores = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
        return self._scores.copy()

    def calibration(self, model: str, kind: str = "filter", bins: int = 10) -> pd.DataFrame:
        """Return the reliability table of a regime model's forecasts (see scores)."""
        if self.target != "regime_1d":
            raise ValueError("calibration tables are for regime forecasts (target regime_1d)")
        fc = self.forecasts.loc[self.forecasts["model"] == model, ["ts", "symbol", *_PROBS]]
        y = self.outcomes[kind].rename(columns={c: f"{c}_y" for c in _PROBS})
        both = fc.merge(y, on=["ts", "symbol"]).dropna()
        return sc.calibration_table(
            both[_PROBS].to_numpy(), both[[f"{c}_y" for c in _PROBS]].to_numpy(), bins
        )

    def daily_ic(self, *, rank: bool = False) -> pd.DataFrame:
        """Return each model's cross-sectional IC on every session (columns: the models).

        The Pearson (or, with ``rank=True``, Spearman) correlation across symbols of the
        forecasts and the realised returns (:func:`quantdesk.forecast.scores.daily_ic`);
        for ``return_1d`` only.
        """
        if self.target != "return_1d":
            raise ValueError("a daily IC is for return forecasts (target return_1d)")
        y = self.outcomes["realised"].pivot(index="ts", columns="symbol", values="value")
        fc = self.forecasts
        columns = {
            model: sc.daily_ic(
                fc.loc[fc["model"] == model].pivot(index="ts", columns="symbol", values="value"),
                y,
                rank=rank,
            )
            for model in self.models
        }
        return pd.DataFrame(columns).rename_axis(index="ts", columns="model")

    def versus_outcome(self, symbol: str, kind: str | None = None) -> pd.DataFrame:
        """Return one symbol's forecast by each model beside its outcome, by session.

        Columns: the models, then ``kind`` (default: the first outcome, ``realised``);
        for ``return_1d``, ``vol_1d`` and ``vol_5d``.

        Raises
        ------
        ValueError
            For regime forecasts, or a symbol that was not forecast.
        """
        if self.target == "regime_1d":
            raise ValueError("regime forecasts are probabilities: see calibration()")
        kind = kind or next(iter(self.outcomes))
        fc = self.forecasts.loc[self.forecasts["symbol"] == symbol]
        if fc.empty:
            known = sorted(set(self.forecasts["symbol"]))
            raise ValueError(f"{symbol!r} was not forecast; the symbols are {known}")
        wide = fc.pivot(index="ts", columns="model", values="value")[self.models]
        y = self.outcomes[kind]
        wide[kind] = y.loc[y["symbol"] == symbol].set_index("ts")["value"].reindex(wide.index)
        return wide.rename_axis(columns=None)

    def summary(self) -> str:
        """Return the scores as text: one line per model, metric and baseline."""
        table = self.scores()
        n_sessions = self.forecasts["ts"].nunique()
        symbols = self.forecasts["symbol"].nunique()
        lines = [
            f"Walk-forward forecasts of {self.target} (horizon {self.horizon}): "
            f"{n_sessions} sessions x {symbols} symbols, {len(self.refits)} refits; "
            f"baselines {', '.join(self.baselines)}",
        ]
        if self.target.startswith("vol"):
            counts = self.estimators.value_counts().to_dict()
            lines.append(f"  realised variance estimator per symbol: {counts}")
        for row in table.itertuples(index=False):
            lines.append(
                f"  {row.model:<12} {row.metric:<14} {row.value:10.4g}  vs {row.baseline:<12}"
                f" {row.baseline_value:10.4g}  skill {row.skill:+8.4f} "
                f"[{row.lo:+.4f}, {row.hi:+.4f}]"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from quantdesk.core.html import Html, element

        head = self.summary().splitlines()[0]
        # pandas escapes the cells of the table it writes
        table = Html(
            self.scores().to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
        )
        scores = element("details", element("summary", "scores"), table, open="")
        return element("div", element("p", element("b", head)), scores)

    def to_dict(self) -> dict[str, Any]:
        """Return the scores and the settings as JSON-ready data."""
        from quantdesk.core.jsonable import jsonable

        return {
            "target": self.target,
            "baselines": self.baselines,
            "refits": len(self.refits),
            "scores": jsonable(self.scores().to_dict(orient="records")),
        }


def walk_forward(
    store_or_panels: MarketStore | str | Path | Panels,
    models: Sequence[ForecastModel] | None = None,
    target: str = "vol_1d",
    start: Any = None,
    refit: int | str = "quarterly",
    *,
    symbols: Sequence[str] | None = None,
    min_train: int = 756,
    end: Any = None,
    true_regimes: pd.DataFrame | None = None,
) -> WalkForwardForecasts:
    """Return the out-of-sample forecasts and scores of ``models`` for ``target``.

    Parameters
    ----------
    store_or_panels
        A :class:`~quantdesk.data.MarketStore`, its path, or wide panels by field.
    models
        Forecast models of ``target``; ``None``: every model of it
        (:func:`~quantdesk.forecast.models.models_for`).  The target's baselines are added
        when missing, since every model is scored against them.
    target
        ``return_1d``, ``vol_1d``, ``vol_5d`` or ``regime_1d``.
    start
        First session forecast (default: the ``min_train``-th session, about 3 years).
    refit
        Sessions between refits, or ``"monthly"`` (21), ``"quarterly"`` (63, the default),
        ``"yearly"`` (252).  See the module docstring for the splits.
    symbols
        Symbols to read from a store (default all).
    end
        Last session forecast (default: the last one).
    true_regimes
        The simulator's true regimes (``symbol, ts, vol_state, trend_state``) for
        ``regime_1d``: its forecasts are then also scored against the truth.

    Returns
    -------
    WalkForwardForecasts
        ``.scores()`` has the columns :data:`SCORE_COLUMNS`; ``.summary()`` the text.

    Examples
    --------
    >>> from quantdesk.data import simulate
    >>> from quantdesk.data.wide import panels_from_bars
    >>> panels = panels_from_bars(simulate(n_symbols=2, n_days=700, seed=1).bars,
    ...                           ["open", "high", "low", "close"], "1d")
    >>> wf = walk_forward(panels, target="vol_1d", min_train=550, refit=50)
    >>> sorted(set(wf.scores()["model"]))
    ['ewma', 'garch', 'har', 'previous']
    """
    target_horizon(target)
    every = _refit_every(refit)
    panels = load_panels(store_or_panels, symbols)
    index = panels["close"].index
    chosen = list(models) if models is not None else models_for(target)
    for model in chosen:
        if model.target != target:
            raise ValueError(f"model {model.name} forecasts {model.target}, not {target}")
    names = [m.name for m in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be distinct, got {names}")
    for base in models_for(target):
        if base.is_baseline and base.name not in names:
            chosen.insert(0, base)
    baselines = [m.name for m in chosen if m.is_baseline]
    first = int(min_train) if start is None else int(index.searchsorted(as_session(start)))
    last = len(index) - 1 if end is None else int(index.searchsorted(as_session(end), "right")) - 1
    if first < 1 or first > last:
        raise ValueError(
            f"nothing to evaluate: {len(index)} sessions, evaluation from row {first} to "
            f"{last} (lower min_train or move start)"
        )
    outcome_kinds: dict[str, list[pd.DataFrame]] = {}
    if target != "regime_1d":
        wide = _wide_outcome(panels, target)
        outcome_kinds["realised"] = [stack_long(wide, "value").dropna()]
    else:
        outcome_kinds["filter"] = []
        if true_regimes is not None:
            outcome_kinds["truth"] = [regime_1d(_one_hot(true_regimes))]

    forecasts = []
    refits = []
    starts = list(range(first, last + 1, every))
    for k, row in enumerate(starts):
        stop = min(starts[k + 1] - 1 if k + 1 < len(starts) else last, last)
        fit_end, block_end = index[row], index[stop]
        sessions = index[row : stop + 1]
        visible = truncate(panels, block_end)
        timings: dict[str, float] = {}
        for model in chosen:
            began = time.perf_counter()
            try:
                model.fit(panels, end=fit_end)
            except ValueError as exc:
                logger.warning("%s: no fit at %s: %s", model.name, f"{fit_end:%Y-%m-%d}", exc)
                continue
            out = model.predict_many(visible, sessions)
            forecasts.append(out.assign(model=model.name))
            timings[model.name] = time.perf_counter() - began
        if target == "regime_1d":
            hmm = HMMRegimeForecast(random_state=0).fit(panels, end=fit_end)
            # One session beyond the block: the outcome of its last forecast.
            reach = truncate(panels, index[min(stop + 1, len(index) - 1)])
            filt = filtered_regimes(hmm.models_, reach)
            nxt = regime_1d(filt)
            outcome_kinds["filter"].append(nxt.loc[nxt["ts"].isin(sessions)])
        refits.append(
            {
                "refit": fit_end,
                "first": sessions[0],
                "last": sessions[-1],
                "sessions": len(sessions),
                **{f"{n}_s": t for n, t in timings.items()},
            }
        )
        logger.info(
            "forecast walk-forward %s: refit %d/%d at %s",
            target,
            k + 1,
            len(starts),
            f"{fit_end:%Y-%m-%d}",
        )
    if not forecasts:
        raise ValueError("no model could be fitted: too little history before the start")
    cols = _PROBS if target == "regime_1d" else ["value"]
    frame = pd.concat(forecasts, ignore_index=True)[["model", "ts", "symbol", *cols]]
    frame["symbol"] = frame["symbol"].astype(str)
    outcomes = {}
    for kind, parts in outcome_kinds.items():
        o = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=["ts", "symbol", *cols])
        )
        o["symbol"] = o["symbol"].astype(str)
        outcomes[kind] = o[["ts", "symbol", *cols]]
    return WalkForwardForecasts(
        target=target,
        forecasts=frame,
        outcomes=outcomes,
        baselines=baselines,
        refits=pd.DataFrame(refits),
        estimators=variance_estimators(panels),
    )
