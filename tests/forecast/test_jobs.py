"""Forecast jobs on a real DuckDB file and a real registry: fit, run, score, backfill, view."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data.sources.simulator import simulate
from quantdesk.data.store.forecasts import ForecastStore
from quantdesk.data.store.market import MarketStore
from quantdesk.forecast.jobs import backfill_forecasts, fit_forecasts, run_forecasts
from quantdesk.forecast.scoring import score_forecasts
from quantdesk.forecast.view import forecast_view
from quantdesk.regimes.registry import ModelRegistry, data_fingerprint

CUT = 650  # the stored history ends at this session when the models are fitted
N_MODELS = 14  # 3 return + 4 + 4 volatility + 3 regime models


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("forecast_jobs")
    bars = simulate(n_symbols=3, n_days=700, seed=11).bars
    sessions = sorted(bars["ts"].unique())
    fit_store = MarketStore(root / "fit.duckdb")
    fit_store.write_bars(bars[bars["ts"] <= sessions[CUT]])
    registry = ModelRegistry(str(root / "models"))
    fit = fit_forecasts(fit_store, None, registry=registry)
    return {"bars": bars, "sessions": sessions, "registry": registry, "fit": fit}


def _store(world: dict, tmp_path: Path, upto: int = CUT) -> MarketStore:
    store = MarketStore(tmp_path / "store.duckdb")
    bars = world["bars"]
    store.write_bars(bars[bars["ts"] <= world["sessions"][upto]])
    return store


def _more_bars(world: dict, store: MarketStore, upto: int) -> None:
    bars, s = world["bars"], world["sessions"]
    store.write_bars(bars[(bars["ts"] > s[CUT]) & (bars["ts"] <= s[upto])])


def test_fit_saves_every_model_of_every_target(world):
    fit = world["fit"]
    assert fit.ok, fit.errors
    assert len(fit.saved) == N_MODELS
    assert fit.end == world["sessions"][CUT]
    listed = world["registry"].list()
    assert sorted(set(listed["name"])) == sorted(fit.saved["name"])
    assert "14 saved, 0 failed" in fit.summary()


def test_run_is_idempotent_and_says_so(world, tmp_path):
    store = _store(world, tmp_path)
    first = run_forecasts(store, None, registry=world["registry"])
    assert first.session == world["sessions"][CUT]
    assert first.recorded == N_MODELS * 3 and first.already == 0
    again = run_forecasts(store, None, registry=world["registry"])
    assert again.recorded == 0 and again.already == first.recorded
    assert "nothing new" in again.summary()
    assert len(ForecastStore(store).forecasts()) == first.recorded


def test_run_records_fingerprints_of_the_bars_up_to_the_session(world, tmp_path):
    store = _store(world, tmp_path)
    run = run_forecasts(store, None, registry=world["registry"], targets="vol_1d")
    rows = ForecastStore(store).forecasts()
    bars = world["bars"]
    expected = data_fingerprint(bars[bars["ts"] <= run.session])
    assert set(rows["data_fingerprint"]) == {expected}
    assert rows["code_fingerprint"].str.startswith("sha256:").all()
    # one code fingerprint per model: each model's settings are part of it
    assert rows.groupby("model")["code_fingerprint"].nunique().eq(1).all()
    assert rows["code_fingerprint"].nunique() == 4


def test_session_after_the_last_bar_is_refused(world, tmp_path):
    store = _store(world, tmp_path)
    later = world["sessions"][CUT + 1]
    with pytest.raises(ValueError, match="no bar for session"):
        run_forecasts(store, None, session=later, registry=world["registry"])
    assert ForecastStore(store).forecasts().empty


def test_live_row_refused_once_its_outcome_exists_backfill_allowed(world, tmp_path):
    store = _store(world, tmp_path)
    _more_bars(world, store, CUT + 5)
    past = world["sessions"][CUT]
    with pytest.raises(ValueError, match=r"live forecast .* refused"):
        run_forecasts(store, None, session=past, registry=world["registry"], targets="vol_1d")
    assert ForecastStore(store).forecasts().empty  # a failed write changes nothing
    late = run_forecasts(
        store, None, session=past, origin="backfill", registry=world["registry"], targets="vol_1d"
    )
    assert late.recorded == 12
    assert set(ForecastStore(store).forecasts()["origin"]) == {"backfill"}


def test_forecast_made_later_equals_forecast_made_live(world, tmp_path):
    live_store = _store(world, tmp_path / "a")
    live = run_forecasts(live_store, None, registry=world["registry"])
    late_store = _store(world, tmp_path / "b")
    _more_bars(world, late_store, CUT + 20)
    late = run_forecasts(
        late_store, None, session=live.session, origin="backfill", registry=world["registry"]
    )
    a = live.rows.sort_values(["model", "target", "symbol"]).reset_index(drop=True)
    b = late.rows.sort_values(["model", "target", "symbol"]).reset_index(drop=True)
    np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float))
    assert a["probs"].fillna("").tolist() == b["probs"].fillna("").tolist()
    assert a["data_fingerprint"].tolist() == b["data_fingerprint"].tolist()


def test_outcomes_are_filled_once_from_the_bars(world, tmp_path):
    store = _store(world, tmp_path)
    run_forecasts(store, None, registry=world["registry"])
    nothing_due = score_forecasts(store, registry=world["registry"])
    assert nothing_due.outcomes_recorded == 0
    _more_bars(world, store, CUT + 1)  # return_1d, vol_1d and regime_1d now due, not vol_5d
    first = score_forecasts(store, registry=world["registry"])
    assert first.outcomes_recorded == 3 * 3
    assert score_forecasts(store, registry=world["registry"]).outcomes_recorded == 0
    rows = ForecastStore(store).forecasts(target="return_1d", model="zero")
    close = world["bars"].pivot(index="ts", columns="symbol", values="close")
    t0, t1 = world["sessions"][CUT], world["sessions"][CUT + 1]
    expected = np.log(close.loc[t1] / close.loc[t0])
    got = rows.set_index("symbol")["outcome"]
    np.testing.assert_allclose(got.loc[expected.index], expected.to_numpy(), rtol=1e-12)
    assert ForecastStore(store).forecasts(target="vol_5d")["outcome"].isna().all()
    _more_bars(world, store, CUT + 5)
    assert score_forecasts(store, registry=world["registry"]).outcomes_recorded == 3


def test_scores_are_reported_separately_for_live_and_backfill(world, tmp_path):
    store = _store(world, tmp_path)
    registry = world["registry"]
    for k in range(6):  # six evenings: forecast, then the next session's bars arrive
        run_forecasts(store, None, registry=registry, targets="vol_1d")
        _more_bars(world, store, CUT + k + 1)
    backfill = backfill_forecasts(
        store, None, start=world["sessions"][600], end=world["sessions"][640],
        targets="vol_1d", refit=21,
    )  # fmt: skip
    assert backfill.recorded["vol_1d"] == 41 * 3 * 4
    again = backfill_forecasts(
        store, None, start=world["sessions"][600], end=world["sessions"][640],
        targets="vol_1d", refit=21,
    )  # fmt: skip
    assert sum(again.recorded.values()) == 0 and again.already["vol_1d"] == 41 * 3 * 4
    scores = score_forecasts(store, registry=registry)
    counts = scores.counts.set_index(["origin", "model"])["scored"]
    assert counts.loc[("live", "har")] == 6 * 3
    assert counts.loc[("backfill", "har")] == 41 * 3
    assert set(scores.scores["origin"]) == {"live", "backfill"}
    # the live MSE of HAR, recomputed from the live rows alone (variance scale)
    live = ForecastStore(store).forecasts(target="vol_1d", origin="live")
    rows = live.loc[live["model"] == "har"]
    per_day = ((rows["value"] ** 2 - rows["outcome"] ** 2) ** 2).groupby(rows["as_of"]).mean()
    table = scores.scores
    got = table.loc[
        (table["origin"] == "live")
        & (table["model"] == "har")
        & (table["metric"] == "mse")
        & (table["baseline"] == "ewma"),
        "value",
    ]
    assert float(got.iloc[0]) == pytest.approx(float(per_day.mean()), rel=1e-10)
    doc = scores.to_dict()
    assert set(doc["scores"]) == {"live", "backfill"}
    json.dumps(doc)


def test_forecast_view_has_the_api_shape(world, tmp_path):
    store = _store(world, tmp_path)
    run_forecasts(store, None, registry=world["registry"])
    _more_bars(world, store, CUT + 1)
    run_forecasts(store, None, registry=world["registry"])
    score_forecasts(store, registry=world["registry"])
    view = forecast_view(store, "SIM000")
    doc = view.to_dict()
    assert set(doc) == {"symbol", "session", "predictions", "accuracy", "history"}
    assert doc["session"].startswith(f"{world['sessions'][CUT + 1]:%Y-%m-%d}")
    assert len(doc["predictions"]) == N_MODELS
    regime = next(p for p in doc["predictions"] if p["model"] == "hmm")
    assert sum(regime["value"].values()) == pytest.approx(1.0)
    har = next(a for a in doc["accuracy"] if a["model"] == "har" and a["target"] == "vol_1d")
    assert har["n"] == 1 and set(har["metrics"]) == {"mse", "qlike"}
    assert len(doc["history"]) == 2 * N_MODELS
    json.dumps(doc)
    with pytest.raises(ValueError, match="no forecasts recorded"):
        forecast_view(store, "NOPE")


def test_cli_fit_run_score_show(world, tmp_path):
    store_path = _store(world, tmp_path).path
    models = str(tmp_path / "models")
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, ["forecast", *args, "--store", str(store_path)])
        assert result.exit_code == 0, result.output
        return result.output

    out = cli("fit", "--symbols", "SIM000,SIM001", "--targets", "vol_1d", "--models", models)
    assert "4 saved, 0 failed" in out
    assert "8 recorded" in cli("run", "--symbols", "SIM000,SIM001", "--models", models)
    assert "nothing new" in cli("run", "--symbols", "SIM000,SIM001", "--models", models)
    MarketStore(store_path).write_bars(
        world["bars"].loc[lambda b: b["ts"] > world["sessions"][CUT]]
    )
    scores = json.loads(cli("score", "--json", "--models", models))
    assert scores["outcomes_recorded"] == 2
    assert set(scores["scores"]) == {"live", "backfill"}
    # a real process: stdout carries exactly one JSON document
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "forecast", "show", "SIM000", "--json",
         "--store", str(store_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    assert set(doc) == {"symbol", "session", "predictions", "accuracy", "history"}
    assert {p["model"] for p in doc["predictions"]} == {"previous", "ewma", "har", "garch"}
    assert all(isinstance(p["value"], float) for p in doc["predictions"])
    bad = runner.invoke(app, ["forecast", "run", "--session", "2099-01-01", "--models", models,
                              "--store", str(store_path)])  # fmt: skip
    assert bad.exit_code == 1 and "no bar for session" in bad.output


def test_regime_models_loaded_together_filter_each_symbol_once(world, tmp_path, monkeypatch):
    from quantdesk.forecast import regime_models
    from quantdesk.regimes.model import RegimeModel

    calls = []
    original = RegimeModel.filter
    # The per-symbol filter (on arrays; RegimeModel.filter itself for unusual bars).
    filter_arrays = regime_models._filter_arrays

    def counted(model, index, ohlc):
        calls.append(len(ohlc))
        return filter_arrays(model, index, ohlc)

    monkeypatch.setattr(regime_models, "_FILTERED", type(regime_models._FILTERED)())
    monkeypatch.setattr(regime_models, "_filter_arrays", counted)
    store = _store(world, tmp_path)
    run = run_forecasts(store, None, registry=world["registry"], targets="regime_1d")
    assert run.recorded == 3 * 3
    assert len(calls) == 3  # one filter per symbol, shared by hmm, persistence, stationary
    # the shared filter is the filter: persistence forecasts today's filtered probabilities
    hmm = world["registry"]
    from quantdesk.forecast.models import load_model

    model = load_model(hmm, "forecast-regime_1d-persistence")
    bars = world["bars"]
    one = bars[(bars["symbol"] == "SIM000") & (bars["ts"] <= run.session)].set_index("ts")
    expected = original(model.models_["SIM000"], one[["open", "high", "low", "close"]])
    got = run.rows.loc[(run.rows["model"] == "persistence") & (run.rows["symbol"] == "SIM000")]
    probs = json.loads(got["probs"].iloc[0])
    np.testing.assert_allclose(
        [probs[c] for c in regime_models.REGIME_PROBABILITY_COLUMNS],
        expected[list(regime_models.REGIME_PROBABILITY_COLUMNS)].iloc[-1].to_numpy(float),
        rtol=1e-12,
    )


def test_targets_are_read_like_symbols_one_way() -> None:
    """A target list is text split on commas or spaces, or a list, as symbols are."""
    from quantdesk.core.coerce import as_symbols
    from quantdesk.forecast.jobs import _targets
    from quantdesk.forecast.targets import TARGETS

    for given in ("vol_1d vol_5d", "vol_1d, vol_5d", ["vol_1d", "vol_5d", "vol_1d"]):
        assert _targets(given) == as_symbols(given) == ["vol_1d", "vol_5d"]
    assert _targets(None) == _targets("") == list(TARGETS)
