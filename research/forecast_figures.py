"""The forecast figures of issue 24: skill against baselines, and vol-targeting tracking.

For the bundled SPX and IXIC samples (``quantdesk.data.sources.bundled``) and a simulated
universe (:func:`quantdesk.data.sources.simulator.simulate`, seed 7), this runs
:func:`quantdesk.forecast.walk_forward` for each target (``return_1d``, ``vol_1d``,
``vol_5d``, ``regime_1d``) and prints, as Markdown, every non-baseline model's score
beside each baseline with its skill and Newey-West 95% interval; regime forecasts on the
simulated universe are also scored against the true regimes.  Then the trend strategy's
realised volatility against its target, sized by EWMA and by the best volatility model
(highest QLIKE skill against EWMA on ``vol_1d``), fitted on the bars before the
evaluation start (:func:`quantdesk.strategies.trend.vol_target_tracking`).

The walk-forward splits: evaluation from the ``MIN_TRAIN``-th session (756, three years)
to the last; refits every ``REFIT`` sessions (63, quarterly) on an expanding window;
fixed model settings (nothing tuned on the evaluation window).  The LightGBM return model
runs twice: on the bars' features only, and with the nine regime probabilities added
(each symbol's HMM fitted once on the bars up to the evaluation start, then filtered
causally over every session: no parameter sees an evaluated bar).  The samples and the
simulator have no news, so the sentiment features are missing (NaN) here.

Usage::

    PYTHONPATH=src python research/forecast_figures.py > /tmp/forecast_figures.md

``FIGURES_SIM_SYMBOLS`` (50) and ``FIGURES_SIM_DAYS`` (1512) size the simulated universe;
``FIGURES_ONLY`` (comma-separated: ``SPX,IXIC,SIM``) picks the universes.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.data.sources.bundled import load_sample
from quantdesk.data.sources.simulator import simulate
from quantdesk.data.wide import panels_from_bars
from quantdesk.forecast import walk_forward
from quantdesk.forecast.boosting import LightGBMReturn, with_context
from quantdesk.forecast.models import models_for
from quantdesk.forecast.regime_models import HMMRegimeForecast, filtered_regimes
from quantdesk.strategies.trend import vol_target_tracking

FIELDS = ["open", "high", "low", "close", "volume"]
MIN_TRAIN = 756
REFIT = 63
TARGETS = ("return_1d", "vol_1d", "vol_5d", "regime_1d")
SIM_SYMBOLS = int(os.environ.get("FIGURES_SIM_SYMBOLS", "50"))
SIM_DAYS = int(os.environ.get("FIGURES_SIM_DAYS", "1512"))
ONLY = os.environ.get("FIGURES_ONLY", "SPX,IXIC,SIM").split(",")


def universes() -> list[tuple[str, dict[str, pd.DataFrame], pd.DataFrame | None]]:
    """Return ``(name, panels, true regimes or None)`` for each universe asked for."""
    out: list[tuple[str, dict[str, pd.DataFrame], pd.DataFrame | None]] = []
    for name, sample in (("SPX", "sp500"), ("IXIC", "nasdaq")):
        if name in ONLY:
            bars, _ = load_sample(sample)
            out.append((name, panels_from_bars(bars, FIELDS, "1d"), None))
    if "SIM" in ONLY:
        market = simulate(n_symbols=SIM_SYMBOLS, n_days=SIM_DAYS, seed=7)
        name = f"simulated ({SIM_SYMBOLS} x {SIM_DAYS}, seed 7)"
        out.append((name, panels_from_bars(market.bars, FIELDS, "1d"), market.regimes))
    return out


def _fmt(v: float) -> str:
    return "nan" if not np.isfinite(v) else f"{v:.4g}"


def score_rows(universe: str, wf: Any, label: dict[str, str] | None = None) -> list[str]:
    """Return Markdown rows: each non-baseline model's metrics against each baseline."""
    table = wf.scores()
    table = table.loc[~table["model"].isin(wf.baselines) & table["value"].notna()]
    lines = []
    for r in table.itertuples(index=False):
        interval = "" if not np.isfinite(r.lo) else f"[{r.lo:+.4f}, {r.hi:+.4f}]"
        name = (label or {}).get(r.model, r.model)
        lines.append(
            f"| {universe} | {r.target} | {name} | {r.metric} | {_fmt(r.value)} | "
            f"{r.baseline} {_fmt(r.baseline_value)} | {r.skill:+.4f} {interval} |"
        )
    return lines


def main() -> None:
    """Print the tables."""
    logging.basicConfig(level=logging.WARNING)
    scores = [
        "| universe | target | model | metric | value | baseline (value) | skill [95% NW] |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    tracking = [
        "| universe | sizing | target vol | realised vol | ratio | tracking RMSE (63d, log) "
        "| bars |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    timing = ["| universe | target | model | walk-forward seconds (fit + forecast) |",
              "| --- | --- | --- | --- |"]  # fmt: skip
    for name, panels, truth in universes():
        index = panels["close"].index
        start = index[MIN_TRAIN]
        runs: dict[str, Any] = {}
        for target in TARGETS:
            began = time.perf_counter()
            wf = walk_forward(
                panels,
                None,
                target,
                refit=REFIT,
                min_train=MIN_TRAIN,
                true_regimes=truth if target == "regime_1d" else None,
            )
            runs[target] = wf
            scores.extend(score_rows(name, wf))
            for model in wf.models:
                col = f"{model}_s"
                spent = float(wf.refits[col].sum()) if col in wf.refits else float("nan")
                timing.append(f"| {name} | {target} | {model} | {spent:.1f} |")
            logging.warning("%s %s: %.0f s", name, target, time.perf_counter() - began)
        # LightGBM with the regime probabilities (an HMM fitted before the evaluation).
        hmm = HMMRegimeForecast(random_state=0).fit(panels, end=start)
        context = with_context(panels, filtered_regimes(hmm.models_, panels))
        wf = walk_forward(
            context, [LightGBMReturn()], "return_1d", refit=REFIT, min_train=MIN_TRAIN
        )
        scores.extend(score_rows(name, wf, {"lightgbm": "lightgbm + regimes"}))
        # Vol targeting: EWMA against the best vol_1d model, fitted before the start.
        table = runs["vol_1d"].scores()
        qlike = table.query("metric == 'qlike' and baseline == 'ewma'")
        qlike = qlike.loc[~qlike["model"].isin(runs["vol_1d"].baselines)]
        best = str(qlike.sort_values("skill", ascending=False)["model"].iloc[0])
        model = next(m for m in models_for("vol_1d") if m.name == best).fit(panels, end=start)
        track = vol_target_tracking(
            panels["close"], {"ewma": None, best: model}, target_vol=0.10, start=start,
            panels=panels,
        )  # fmt: skip
        for r in track.itertuples(index=False):
            tracking.append(
                f"| {name} | {r.sizing} | {r.target_vol:.2f} | {r.realised_vol:.4f} | "
                f"{r.ratio:.3f} | {r.tracking_rmse:.3f} | {r.bars} |"
            )
        sessions = len(index) - MIN_TRAIN
        print(
            f"<!-- {name}: evaluation {start:%Y-%m-%d} to {index[-1]:%Y-%m-%d}, "
            f"{sessions} sessions, best vol_1d model by QLIKE: {best} -->"
        )
    print("\n".join(scores))
    print()
    print("\n".join(tracking))
    print()
    print("\n".join(timing))


if __name__ == "__main__":
    main()
