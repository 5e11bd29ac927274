"""fit_regimes and regime_snapshot: the library calls behind `quantdesk regimes fit/show`.

Real parts: a DuckDB store file and a model registry directory in tmp dirs, real process
pools (one worker), bars nobody here wrote (backtesting's GOOG.csv) and the simulator.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from quantdesk.data import MarketStore, UnknownSymbolError, read_bars_file, simulate
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.regimes import (
    ModelRegistry,
    RegimeFitRun,
    RegimeSnapshot,
    fit_regimes,
    regime_snapshot,
)


def goog_csv() -> Path:
    spec = importlib.util.find_spec("backtesting")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "test" / "GOOG.csv"


@pytest.fixture
def goog_store(tmp_path: Path) -> MarketStore:
    store = MarketStore(tmp_path / "store.duckdb")
    result = read_bars_file(goog_csv(), symbol="GOOG", columns={"Unnamed: 0": "ts"})
    store.write_bars(result.good, "1d", source="GOOG.csv", validation=result)
    return store


def test_fit_saves_a_model_that_reproduces_the_stored_regimes(
    goog_store: MarketStore, tmp_path: Path
) -> None:
    registry = ModelRegistry(str(tmp_path / "models"))
    run = fit_regimes(goog_store, ["GOOG"], registry=registry, workers=1)
    assert isinstance(run, RegimeFitRun)
    assert run.ok and run.errors == {}
    assert (run.name, run.version, run.model_version) == ("regimes", "v1", "regimes/v1")
    stored = goog_store.regimes("GOOG")
    bars = goog_store.bars("GOOG")
    assert (stored["model_version"] == "regimes/v1").all()
    assert stored["ts"].iloc[-1] == bars["ts"].iloc[-1]
    fit = run.symbols["GOOG"]
    assert fit.rows == fit.written == len(stored)
    assert fit.record.model_version == "regimes/v1"
    # the saved model, loaded back, gives the stored regimes
    again = registry.load("regimes", "GOOG").filter(bars)
    assert again["state"].tolist() == stored["state"].tolist()
    # what ran it is recorded; by default the library call itself
    record = registry.record("regimes", "GOOG")
    assert record.metadata["extra"]["command"] == "quantdesk.regimes.fit_regimes"
    # the reported regime is the stored last row's most probable cell
    last = stored.iloc[-1]
    assert fit.regime == f"{last['vol_label']}/{last['trend_label']}"
    assert fit.probability == pytest.approx(last[list(REGIME_PROBABILITY_COLUMNS)].max())
    doc = run.to_dict()
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # strict JSON
    assert doc["symbols"]["GOOG"]["rows"] == len(stored)
    assert f"GOOG: {len(stored)} regime rows" in run.summary()
    # a second run is the next version; writing the same regimes again changes nothing
    second = fit_regimes(goog_store, ["GOOG"], registry=registry, workers=1, version="again")
    assert second.version == "again" and second.symbols["GOOG"].written == len(stored)


def test_walk_forward_stores_each_refits_out_of_sample_rows(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(simulate(n_symbols=2, n_days=700, seed=5).bars, "1d")
    registry = ModelRegistry(str(tmp_path / "models"))
    run = fit_regimes(store, walk_forward=True, window=500, refit=100, registry=registry, workers=1)
    assert run.ok and set(run.symbols) == {"SIM000", "SIM001"}
    assert run.model_version == "regimes-wf/v1"
    stored = store.regimes(model_version="regimes-wf/v1/*")
    assert len(stored) == 2 * 200  # 700 bars - the 500-bar first window, per symbol
    assert stored["model_version"].str.startswith("regimes-wf/v1/wf-").all()
    extra = registry.record("regimes-wf", "SIM001").metadata["extra"]["walk_forward"]
    assert (extra["window"], extra["refit"], extra["refits"]) == (500, 100, 2)
    assert "SIM000 walk-forward: 2 refits" in run.summary()


def test_failures_are_per_symbol_or_raised_before_any_work(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(simulate(n_symbols=1, n_days=300, seed=1).bars, "1d")
    registry = str(tmp_path / "models")
    with pytest.raises(UnknownSymbolError, match="NOPE"):
        fit_regimes(store, ["NOPE"], registry=registry)
    with pytest.raises(UnknownSymbolError, match="'NOPE'"):  # one symbol, not four letters
        fit_regimes(store, "NOPE", registry=registry)
    with pytest.raises(ValueError, match="no daily bars"):
        fit_regimes(store, ["SIM000"], start="2100-01-01", registry=registry)
    # too little history for the window: the symbol fails, nothing is stored or saved
    run = fit_regimes(store, walk_forward=True, window=400, registry=registry, workers=1)
    assert not run.ok and set(run.errors) == {"SIM000"}
    assert "more than window=400 bars" in run.errors["SIM000"]
    assert "SIM000 failed" in run.summary()
    assert store.regimes().empty
    assert ModelRegistry(registry).list().empty


def test_snapshot_of_stored_regimes(goog_store: MarketStore, tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no regimes stored for 'GOOG'"):
        regime_snapshot(goog_store, "GOOG")
    fit_regimes(goog_store, registry=str(tmp_path / "models"), workers=1)
    snapshot = regime_snapshot(goog_store, "GOOG", last=4)
    assert isinstance(snapshot, RegimeSnapshot)
    stored = goog_store.regimes("GOOG")
    assert len(snapshot.recent) == 4 and snapshot.recent.index[-1] == stored["ts"].iloc[-1]
    assert sum(snapshot.probabilities.values()) == pytest.approx(1.0)
    # the statistics count every stored bar once (the regimes start after the warm-up, so
    # every one of them has a return)
    assert int(snapshot.stats["count"].sum()) == len(stored)
    doc = snapshot.to_dict()
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    assert doc["current"]["state"] == int(stored["state"].iloc[-1])
    assert [row["probability"] for row in doc["history"]] == pytest.approx(
        stored[list(REGIME_PROBABILITY_COLUMNS)].tail(4).max(axis=1).to_numpy()
    )
    text = snapshot.summary()
    assert text.startswith(f"GOOG {stored['ts'].iloc[-1]:%Y-%m-%d}:")
    assert "last 4 bars:" in text and "mean_stay" in text
    assert np.isfinite(snapshot.stats["frequency"]).all()


def test_a_symbol_whose_rows_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    # The regimes of a run are written in batches; a batch that fails is written again
    # symbol by symbol, so only the bad symbol fails.
    from quantdesk.regimes.jobs import RegimeFitRun, _Saved, _store_regimes

    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(simulate(n_symbols=3, n_days=400, seed=2).bars, "1d")
    registry = ModelRegistry(str(tmp_path / "models"))
    good = fit_regimes(store, registry=registry, workers=1, progress=False)
    saved = {
        s: _Saved(fit.record, store.regimes(s).drop(columns="written_at"), fit.text)
        for s, fit in good.symbols.items()
    }
    broken = saved["SIM001"].regimes.copy()
    broken.loc[3, "p_low_bearish"] = float("nan")
    saved["SIM001"] = _Saved(saved["SIM001"].record, broken.assign(model_version="x/v2"), "")
    for symbol in ("SIM000", "SIM002"):
        saved[symbol] = _Saved(
            saved[symbol].record, saved[symbol].regimes.assign(model_version="x/v2"), ""
        )
    run = RegimeFitRun("x", "v2")
    _store_regimes(store, run, saved)
    assert set(run.errors) == {"SIM001"} and "p_low_bearish" in run.errors["SIM001"]
    assert sorted(run.symbols) == ["SIM000", "SIM002"]
    stored = store.regimes(model_version="x/v2")
    assert sorted(stored["symbol"].unique()) == ["SIM000", "SIM002"]
    assert all(run.symbols[s].written == run.symbols[s].rows for s in run.symbols)
