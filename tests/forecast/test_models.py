"""Forecast models: causality (truncation), refusal of future sessions, values checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.sources.simulator import simulate
from quantdesk.data.wide import panels_from_bars
from quantdesk.forecast.base import truncate
from quantdesk.forecast.baselines import EWMAVol, PreviousVol
from quantdesk.forecast.models import MODEL_CLASSES, load_model, models_for, save_model
from quantdesk.forecast.targets import bar_variance, regime_1d, return_1d, vol_5d
from quantdesk.forecast.volatility import GARCHVol
from quantdesk.regimes.registry import ModelRegistry

FIELDS = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def panels() -> dict[str, pd.DataFrame]:
    bars = simulate(n_symbols=4, n_days=900, seed=5).bars
    return panels_from_bars(bars, FIELDS, "1d")


ALL = [
    (target, i)
    for target in ("return_1d", "vol_1d", "vol_5d", "regime_1d")
    for i in range(len(models_for(target)))
]


@pytest.mark.parametrize(("target", "i"), ALL)
def test_forecast_as_of_t_is_unchanged_when_later_bars_are_removed(panels, target, i):
    model = models_for(target)[i]
    index = panels["close"].index
    fit_end = index[700]
    model.fit(panels, end=fit_end)
    sessions = index[[700, 760, 820]]
    full = model.predict_many(panels, sessions)
    assert set(full["ts"]) == set(sessions), model.name
    for t in sessions:
        cut = truncate(panels, t)
        alone = model.predict(cut, t)
        rows = full.loc[full["ts"] == t].set_index("symbol").drop(columns="ts")
        expected = rows if model.probabilistic else rows["value"]
        got = alone if model.probabilistic else alone.rename("value")
        np.testing.assert_allclose(
            np.asarray(got.loc[expected.index], dtype=float),
            np.asarray(expected, dtype=float),
            rtol=1e-10,
            atol=1e-12,
            err_msg=f"{model.name} at {t}",
        )
    # fitting is causal too: bars after the training end change nothing
    again = models_for(target)[i].fit(truncate(panels, fit_end))
    np.testing.assert_allclose(
        again.predict_many(panels, sessions).drop(columns=["ts", "symbol"]).to_numpy(float),
        full.drop(columns=["ts", "symbol"]).to_numpy(float),
        rtol=1e-9,
    )


@pytest.mark.parametrize("target", ["return_1d", "vol_1d", "regime_1d"])
def test_forecast_for_a_session_after_the_last_bar_is_refused(panels, target):
    model = models_for(target)[-1].fit(panels, end=panels["close"].index[700])
    last = panels["close"].index[750]
    cut = truncate(panels, last)
    with pytest.raises(ValueError, match="no bar for session"):
        model.predict(cut, last + pd.Timedelta(days=1))
    with pytest.raises(ValueError, match="not a session"):
        model.predict(cut, pd.Timestamp("2010-01-09", tz="UTC"))  # a Saturday


def test_targets_against_hand_calculations():
    ix = pd.date_range("2024-01-01", periods=7, tz="UTC")
    close = pd.DataFrame({"A": [100.0, 101, 99, 102, 103, 101, 104]}, index=ix)
    panels = {"close": close}
    r = np.log(close["A"]).diff()
    assert np.allclose(return_1d(panels)["A"].iloc[:-1], r.iloc[1:].to_numpy())
    # close-only: squared returns; vol_5d at row 0 is sqrt(252 * mean(r1..r5 squared))
    q = bar_variance(panels)["A"]
    assert np.allclose(q.iloc[1:], r.iloc[1:] ** 2)
    expected = np.sqrt(252 * np.mean(r.iloc[1:6] ** 2))
    assert np.isclose(vol_5d(panels, periods_per_year=252)["A"].iloc[0], expected)
    assert vol_5d(panels, periods_per_year=252)["A"].iloc[2:].isna().all()


def test_regime_target_shifts_by_one_session_per_symbol():
    ts = pd.date_range("2024-01-01", periods=3, tz="UTC")
    cols = [f"p{i}" for i in range(9)]
    from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS as P

    eye = np.eye(9)
    frame = pd.concat(
        [
            pd.DataFrame(eye[[0, 4, 8]], columns=list(P)).assign(symbol="A", ts=ts),
            pd.DataFrame(eye[[1, 2, 3]], columns=list(P)).assign(symbol="B", ts=ts),
        ]
    )
    out = regime_1d(frame)
    assert len(out) == 4 and cols
    a = out[out["symbol"] == "A"][list(P)].to_numpy()
    assert np.array_equal(a, eye[[4, 8]])


def test_ewma_and_previous_match_pandas(panels):
    sessions = panels["close"].index[[300, 301]]
    q = bar_variance(panels)
    ewma = EWMAVol("vol_1d").predict_many(panels, sessions)
    sym = ewma["symbol"].iloc[0]
    ref = np.sqrt(252 * q[sym].ewm(alpha=0.06, adjust=False).mean().loc[sessions[0]])
    assert np.isclose(ewma["value"].iloc[0], ref)
    prev = PreviousVol("vol_5d").predict_many(panels, sessions)
    assert np.isclose(
        prev["value"].iloc[0], np.sqrt(252 * q[sym].loc[: sessions[0]].iloc[-5:].mean())
    )


def test_garch_one_step_matches_arch_forecast(panels):
    from arch import arch_model

    model = GARCHVol("vol_1d").fit(panels)
    sym = panels["close"].columns[0]
    y = np.log(panels["close"][sym]).diff().dropna() * 100
    res = arch_model(y.to_numpy(), mean="Constant", vol="GARCH", p=1, q=1).fit(disp="off")
    arch_next = float(res.forecast(horizon=1, reindex=False).variance.iloc[-1, 0])
    ours = model.conditional_variance(panels)[sym].iloc[-1]
    # Same parameters; the two recursions differ only in their start value, long forgotten.
    assert np.isclose(ours, arch_next, rtol=1e-3)


@pytest.mark.parametrize("name", sorted(MODEL_CLASSES))
def test_models_round_trip_through_the_registry(panels, tmp_path, name):
    cls = MODEL_CLASSES[name]
    target = {
        "LightGBMReturn": "return_1d",
        "ZeroReturn": "return_1d",
        "LastReturn": "return_1d",
    }.get(name)
    if target is None:
        target = "regime_1d" if "Regime" in name or "Stationary" in name else "vol_5d"
    model = cls(target).fit(panels, end=panels["close"].index[700])  # type: ignore[call-arg]
    registry = ModelRegistry(str(tmp_path / "models"))
    record = save_model(registry, model)
    again = load_model(registry, record.name, record.version)
    sessions = panels["close"].index[[750, 800]]
    pd.testing.assert_frame_equal(
        again.predict_many(panels, sessions), model.predict_many(panels, sessions)
    )
