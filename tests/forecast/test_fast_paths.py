"""The fast forecast paths give exactly the values of the plain per-symbol computations.

``run_forecasts`` for one session filters every symbol's HMM on arrays, ranks the
LightGBM features of the asked sessions only and runs HAR on arrays (issue 24: 500
symbols in under 5 s).  Each reference here is the straightforward computation the fast
path replaced, written out in the test: ``RegimeModel.filter`` on one symbol's bars
frame, the full-history feature rows, HAR column by column in pandas.  Equality is
exact (``check_exact``), on a simulated universe with a gap, a close-only symbol and a
short symbol, so the array path and the fallback are both covered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.core.markov import stationary_distribution
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.data.sources.simulator import simulate
from quantdesk.data.wide import panels_from_bars
from quantdesk.forecast.base import symbol_bars
from quantdesk.forecast.baselines import annualised_vol
from quantdesk.forecast.boosting import feature_rows
from quantdesk.forecast.models import load_model, save_model
from quantdesk.forecast.regime_models import (
    HMMRegimeForecast,
    RegimePersistence,
    StationaryRegimes,
)
from quantdesk.forecast.targets import bar_variance
from quantdesk.forecast.volatility import HARVol, har_design
from quantdesk.regimes.features import FeatureConfig, compute_features, feature_matrix
from quantdesk.regimes.registry import ModelRegistry

FIELDS = ["open", "high", "low", "close", "volume"]
PROBS = list(REGIME_PROBABILITY_COLUMNS)


@pytest.fixture(scope="module")
def panels() -> dict[str, pd.DataFrame]:
    bars = simulate(n_symbols=4, n_days=420, seed=11).bars
    return panels_from_bars(bars, FIELDS, "1d")


@pytest.fixture(scope="module")
def odd(panels) -> dict[str, pd.DataFrame]:
    """The panels with a gap (symbol 1), close-only bars (2) and a short history (3)."""
    out = {f: p.copy() for f, p in panels.items()}
    for f in out:
        out[f].iloc[200:203, 1] = np.nan
        out[f].iloc[:330, 3] = np.nan
    for f in ("open", "high", "low"):
        out[f].iloc[:, 2] = np.nan
    return out


@pytest.fixture(scope="module")
def hmm(panels) -> HMMRegimeForecast:
    return HMMRegimeForecast().fit(panels)


def _sessions(panels):
    index = panels["close"].index
    return [index[150], *index[-3:]]


def _reference(model, panels, sessions) -> pd.DataFrame:
    """Return the regime forecasts by ``RegimeModel.filter`` per symbol (the plain path)."""
    frames = []
    for symbol, hmm in model.models_.items():
        filt = hmm.filter(symbol_bars(panels, symbol))[PROBS]
        filt = filt.reindex(pd.DatetimeIndex(sessions)).dropna()
        transmat = hmm.transition_matrix().to_numpy()
        f = filt.to_numpy()
        probs = {
            "hmm": f @ transmat,
            "persistence": f,
            "stationary": np.tile(stationary_distribution(transmat), (len(f), 1)),
        }[model.name]
        frames.append(pd.DataFrame(probs, columns=PROBS).assign(ts=filt.index, symbol=symbol))
    out = pd.concat(frames, ignore_index=True)[["ts", "symbol", *PROBS]]
    return out.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


def test_feature_matrix_is_the_arithmetic_of_compute_features(panels):
    bars = symbol_bars(panels, str(panels["close"].columns[0]))
    config = FeatureConfig(periods_per_year=252.0)
    expected = compute_features(bars, config).to_numpy()
    got = feature_matrix(bars.to_numpy(), config, 252.0)[config.warmup :]
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("cls", [HMMRegimeForecast, RegimePersistence, StationaryRegimes])
@pytest.mark.parametrize("which", ["plain", "odd"])
def test_regime_forecasts_equal_the_per_symbol_filter(panels, odd, hmm, cls, which):
    data = panels if which == "plain" else odd
    model = cls()
    model.models_, model.identities_, model.train_end_ = (
        hmm.models_,
        hmm.identities_,
        hmm.train_end_,
    )
    sessions = _sessions(panels)
    got = model.predict_many(data, sessions)
    expected = _reference(model, data, sessions)
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_regime_artifacts_pack_arrays_and_still_read_the_old_layout(panels, hmm, tmp_path):
    registry = ModelRegistry(str(tmp_path / "models"))
    save_model(registry, hmm)
    arrays, _ = registry.load_artifact("forecast-regime_1d-hmm", "@universe")
    assert sorted(arrays) == ["packed_float64", "packed_int64"]
    loaded = load_model(registry, "forecast-regime_1d-hmm")
    # The layout before packing: one array per symbol and name, "s{i}__{name}".
    old_arrays, old_state = {}, {"symbols": {}}
    for i, (symbol, model) in enumerate(sorted(hmm.models_.items())):
        a, meta = model.to_artifact()
        old_arrays.update({f"s{i}__{k}": v for k, v in a.items()})
        old_state["symbols"][symbol] = {"index": i, "model": meta}
    old = HMMRegimeForecast()
    old._load_state(old_arrays, old_state)
    old.train_end_ = hmm.train_end_
    assert loaded.identities_ == old.identities_
    sessions = _sessions(panels)
    expected = hmm.predict_many(panels, sessions)
    pd.testing.assert_frame_equal(loaded.predict_many(panels, sessions), expected, check_exact=True)
    pd.testing.assert_frame_equal(old.predict_many(panels, sessions), expected, check_exact=True)


@pytest.mark.parametrize("which", ["plain", "odd"])
def test_feature_rows_of_some_sessions_equal_the_full_history_rows(panels, odd, which):
    data = panels if which == "plain" else odd
    sessions = _sessions(panels)
    full = feature_rows(data)
    expected = full.loc[full["ts"].isin(pd.DatetimeIndex(sessions))].reset_index(drop=True)
    got = feature_rows(data, sessions)
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize("target", ["vol_1d", "vol_5d"])
def test_har_forecasts_equal_the_column_by_column_computation(panels, odd, target):
    model = HARVol(target).fit(panels)
    variance = bar_variance(odd)
    design = har_design(variance)
    wide = pd.DataFrame(np.nan, index=variance.index, columns=variance.columns)
    for symbol in variance.columns:
        coef = model.coef_[str(symbol)]
        x = np.column_stack([d[symbol].to_numpy() for d in design.values()])
        wide[symbol] = np.maximum(coef[0] + x @ coef[1:4], coef[4])
    sessions = _sessions(panels)
    expected = model._long(annualised_vol(wide, odd), sessions)
    pd.testing.assert_frame_equal(model.predict_many(odd, sessions), expected, check_exact=True)


def test_filtered_regimes_scores_only_the_panels_symbols(panels, hmm):
    """A universe's HMM scores the symbols asked for; one it also knows but the panels
    lack is left out (the evening's outcomes of the simulated symbols, beside a sample
    the models were also fitted on, failed with KeyError)."""
    from quantdesk.forecast.regime_models import filtered_regimes

    kept = list(panels["close"].columns[:2])
    some = {f: p[kept] for f, p in panels.items()}
    got = filtered_regimes(hmm.models_, some)
    assert set(got["symbol"]) == set(kept) and len(hmm.models_) > len(kept)
    full = filtered_regimes(hmm.models_, panels)
    expected = full[full["symbol"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
