"""Forecasts: one session for a simulated universe with fitted models; LightGBM vs linear.

* One session's forecasts, every target (14 models: baselines, HAR, GARCH, HMM,
  LightGBM), for ``N`` simulated symbols with the models fitted and saved beforehand
  (not timed): :func:`quantdesk.forecast.jobs.run_forecasts` end to end on a DuckDB
  store and a local registry (read the bars, load the models, forecast, fingerprint the
  bars, append the record).  The goal is under 5 s for 500 symbols; there is no peer (no
  library issues and records forecasts this way).  A second call measures the idempotent
  rerun (nothing new recorded).
* Training time of :class:`~quantdesk.forecast.boosting.LightGBMReturn`'s booster on its
  pooled feature rows, beside scikit-learn's ``LinearRegression`` (same rows, same
  target) and ``LogisticRegression`` (the sign of the target) on the same rows; the linear
  models get missing features as 0 (they cannot take NaN; LightGBM routes them itself).

* The walk-forward evaluation of every model of every target
  (:func:`quantdesk.forecast.walk_forward`: refits every 63 sessions on an expanding
  window from the 756th session on, each block forecast out of sample) on
  ``QUANTDESK_BENCH_FORECAST_WF_SYMBOLS`` (default 500) simulated symbols x
  ``QUANTDESK_BENCH_FORECAST_WF_DAYS`` (default 2520: 10 years) sessions: the seconds
  each model spent fitting and forecasting, summed over the refits, and each target's
  whole run.  Below 500 symbols the row also gives a linear extrapolation to 500
  (labelled so: every model but LightGBM fits per symbol; LightGBM's pooled training
  grows with the rows too).

``QUANTDESK_BENCH_FORECAST_SYMBOLS`` (default 500) and ``QUANTDESK_BENCH_FORECAST_DAYS``
(default 400: the HMM needs 320 bars) set the universe of the first two; fitting the 500
HMMs is the slow, untimed part of the setup.  ``QUANTDESK_BENCH_FORECAST_PARTS`` picks
the parts (default ``session,training,walk_forward``).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._timing import best_of, row

N_SYMBOLS = int(os.environ.get("QUANTDESK_BENCH_FORECAST_SYMBOLS", "500"))
N_DAYS = int(os.environ.get("QUANTDESK_BENCH_FORECAST_DAYS", "400"))
WF_SYMBOLS = int(os.environ.get("QUANTDESK_BENCH_FORECAST_WF_SYMBOLS", "500"))
WF_DAYS = int(os.environ.get("QUANTDESK_BENCH_FORECAST_WF_DAYS", "2520"))
PARTS = os.environ.get("QUANTDESK_BENCH_FORECAST_PARTS", "session,training,walk_forward")


def _session(root: Path) -> tuple[list[dict[str, Any]], Any]:
    from quantdesk.data.sources.simulator import simulate
    from quantdesk.data.store.market import MarketStore
    from quantdesk.forecast.jobs import fit_forecasts, run_forecasts
    from quantdesk.regimes.registry import ModelRegistry

    market = simulate(n_symbols=N_SYMBOLS, n_days=N_DAYS, seed=0)
    store = MarketStore(root / "bench.duckdb")
    store.write_bars(market.bars)
    registry = ModelRegistry(str(root / "models"))
    t0 = time.perf_counter()
    fit = fit_forecasts(store, None, registry=registry)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = run_forecasts(store, None, registry=registry)
    run_s = time.perf_counter() - t0
    rerun_s, again = best_of(lambda: run_forecasts(store, None, registry=registry), repeat=1)
    assert again.recorded == 0, "a rerun must record nothing new"
    universe = f"{N_SYMBOLS} symbols x {N_DAYS} sessions"
    rows = [
        row(
            f"forecast run: one session, {N_SYMBOLS} symbols, all targets",
            run_s,
            float("nan"),
            "s",
            "< 5 s (500 symbols)",
            note=f"{run.recorded} rows recorded, {len(fit.saved)} models; {universe}; "
            f"fit (untimed setup) took {fit_s:.0f} s",
            met=run_s < 5.0 if N_SYMBOLS >= 500 else None,
        ),
        row(
            f"forecast run again (idempotent), {N_SYMBOLS} symbols",
            rerun_s,
            float("nan"),
            "s",
            "-",
            note="nothing new recorded",
        ),
    ]
    return rows, store


def _training(store: Any) -> list[dict[str, Any]]:
    import lightgbm as lgb
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from quantdesk.forecast.base import stack_long
    from quantdesk.forecast.boosting import FEATURE_NAMES, LightGBMReturn, feature_rows
    from quantdesk.forecast.targets import return_1d

    panels = store.panels()
    rows = feature_rows(panels)
    y = stack_long(return_1d(panels), "y")
    y["symbol"] = y["symbol"].astype(str)
    rows = rows.merge(y, on=["ts", "symbol"]).dropna(subset=["y"])
    x = rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    target = rows["y"].to_numpy()
    model = LightGBMReturn()

    def boost() -> Any:
        data = lgb.Dataset(x, label=target, feature_name=list(FEATURE_NAMES))
        return lgb.train(model.lgb_params, data, num_boost_round=model.num_boost_round)

    filled = np.nan_to_num(x, nan=0.0)
    lgb_s, _ = best_of(boost, repeat=1)
    ols_s, _ = best_of(lambda: LinearRegression().fit(filled, target), repeat=3)
    logit_s, _ = best_of(
        lambda: LogisticRegression(max_iter=1000).fit(filled, target > 0), repeat=1
    )
    shape = f"{len(target):,} rows x {x.shape[1]} features"
    threads = "LightGBM on 1 thread (deterministic), 200 rounds"
    return [
        row(
            "train LightGBM vs sklearn LinearRegression",
            lgb_s,
            ols_s,
            "s",
            "report",
            note=f"{shape}; {threads}",
        ),
        row(
            "train LightGBM vs sklearn LogisticRegression (sign)",
            lgb_s,
            logit_s,
            "s",
            "report",
            note=f"{shape}; lbfgs, max_iter 1000",
        ),
    ]


def _walk_forward() -> list[dict[str, Any]]:
    from quantdesk.data.sources.simulator import simulate
    from quantdesk.data.wide import panels_from_bars
    from quantdesk.forecast.evaluation import walk_forward

    market = simulate(n_symbols=WF_SYMBOLS, n_days=WF_DAYS, seed=0)
    panels = panels_from_bars(market.bars, ["open", "high", "low", "close", "volume"], "1d")
    scale = 500 / WF_SYMBOLS
    universe = f"{WF_SYMBOLS} symbols x {WF_DAYS} sessions"
    rows = []
    for target in ("return_1d", "vol_1d", "vol_5d", "regime_1d"):
        began = time.perf_counter()
        wf = walk_forward(panels, None, target, refit=63, min_train=756)
        total = time.perf_counter() - began
        refits = len(wf.refits)
        for model in wf.models:
            spent = float(wf.refits[f"{model}_s"].sum())
            guess = (
                f"; extrapolated to 500 symbols (x{scale:g}, linear): {spent * scale:.0f} s"
                if WF_SYMBOLS < 500
                else ""
            )
            rows.append(
                row(
                    f"walk-forward {target}: {model}",
                    spent,
                    float("nan"),
                    "s",
                    "report",
                    note=f"{universe}, {refits} refits (every 63 sessions from 756){guess}",
                )
            )
        guess = (
            f"; extrapolated to 500 symbols (x{scale:g}, linear): {total * scale:.0f} s"
            if WF_SYMBOLS < 500
            else ""
        )
        rows.append(
            row(
                f"walk-forward {target}: every model, outcomes and scores",
                total + _seconds(wf.scores),
                float("nan"),
                "s",
                "report",
                note=f"{universe}{guess}",
            )
        )
    return rows


def _seconds(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def run() -> list[dict[str, Any]]:
    """Return the benchmark rows."""
    parts = {p.strip() for p in PARTS.split(",")}
    rows: list[dict[str, Any]] = []
    if parts & {"session", "training"}:
        with tempfile.TemporaryDirectory() as tmp:
            found, store = _session(Path(tmp))
            if "session" in parts:
                rows.extend(found)
            if "training" in parts:
                rows.extend(_training(store))
    if "walk_forward" in parts:
        rows.extend(_walk_forward())
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import render

    print(render(run()))
