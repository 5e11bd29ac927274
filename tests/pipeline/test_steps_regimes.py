"""The pipeline's ``regimes`` step on a real store and model registry.

A simulated market of 3 symbols whose last bar is 2024-06-14 (380 business days from
2023-01-02) is fitted once (module fixture); each test works on a copy of the store
file and the registry directory.  New sessions come from the demo's simulated-market
advance (the ``update`` step).  Expected values come from the saved model itself,
loaded back and run on the stored history (``RegimeModel.filter``), not from the step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.data.store.market import MarketStore
from quantdesk.pipeline import run_pipeline
from quantdesk.pipeline.definition import PipelineDefinition
from quantdesk.pipeline.steps import advance_simulated, session_ts
from quantdesk.regimes.jobs import update_regimes
from quantdesk.regimes.registry import ModelRegistry

LAST = pd.Timestamp("2024-06-14")  # a Friday
NEXT = [pd.Timestamp(d) for d in ("2024-06-17", "2024-06-18", "2024-06-20", "2024-06-21")]
SYMBOLS = ["SIM000", "SIM001", "SIM002"]
PROBS = list(REGIME_PROBABILITY_COLUMNS)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fitted")
    store_path, models = root / "store.duckdb", root / "models"
    ingest_simulated(store_path, symbols=3, days=380, seed=3, start="2023-01-02", progress=False)
    store = MarketStore(store_path)
    assert store.bars("SIM000")["ts"].max() == session_ts(LAST)
    run = update_regimes(store, LAST, registry=str(models))
    assert run.ok and sorted(run.fitted) == SYMBOLS
    return store_path, models


@pytest.fixture
def copy(fitted: tuple[Path, Path], tmp_path: Path) -> tuple[MarketStore, str]:
    store_path, models = fitted
    shutil.copy(store_path, tmp_path / "store.duckdb")
    shutil.copytree(models, tmp_path / "models")
    return MarketStore(tmp_path / "store.duckdb"), str(tmp_path / "models")


def _definition(models: str, **params: object) -> PipelineDefinition:
    return PipelineDefinition.from_mapping(
        {
            "name": "evening",
            "steps": {
                "update": {"params": {"simulated": True}},
                "regimes": {"needs": ["update"], "params": {"registry": models, **params}},
            },
        }
    )


def _versions(models: str) -> list[tuple[str, str]]:
    saved = ModelRegistry(models).list("pipeline")
    return sorted(zip(saved["version"], saved["symbol"], strict=True))


def _row(store: MarketStore, symbol: str, session: pd.Timestamp) -> pd.Series:
    rows = store.regimes(symbol, start=session, end=session, model_version="pipeline/*")
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_a_new_session_is_filtered_with_the_saved_model_without_a_refit(
    copy: tuple[MarketStore, str],
) -> None:
    store, models = copy
    before = _versions(models)
    assert before == [("s20240614", s) for s in SYMBOLS]
    run = run_pipeline(store, session=NEXT[0], definition=_definition(models))
    steps = {s.step: s for s in run.sessions[0].steps}
    assert steps["update"].counts["simulated_bars"] == 3
    assert steps["regimes"].status == "succeeded"
    assert steps["regimes"].counts == {"fitted": 0, "filtered": 3, "symbols": 3, "written": 3}
    assert _versions(models) == before  # no refit
    registry = ModelRegistry(models)
    for symbol in SYMBOLS:
        row = _row(store, symbol, session_ts(NEXT[0]))
        assert row["model_version"] == "pipeline/s20240614"
        # Independent: the saved model's causal filter over the whole stored history.
        expected = registry.load("pipeline", symbol).filter(store.bars(symbol)).iloc[-1]
        assert expected.name == session_ts(NEXT[0])
        np.testing.assert_allclose(row[PROBS].astype(float), expected[PROBS].astype(float),
                                   rtol=0, atol=1e-12)  # fmt: skip
        assert row["state"] == expected["state"]
    # A rerun of the session (forced) writes nothing new and fits nothing.
    again = run_pipeline(store, session=NEXT[0], definition=_definition(models), force=["regimes"])
    counts = {s.step: s for s in again.sessions[0].steps}["regimes"].counts
    assert counts["written"] == 0 and counts["fitted"] == 0
    assert _versions(models) == before


def test_a_model_is_refitted_once_it_is_refit_every_sessions_old(
    copy: tuple[MarketStore, str],
) -> None:
    store, models = copy
    definition = _definition(models, refit_every=2)
    first = run_pipeline(store, session=NEXT[0], definition=definition)
    assert {s.step: s for s in first.sessions[0].steps}["regimes"].counts["fitted"] == 0
    second = run_pipeline(store, session=NEXT[1], definition=definition)
    counts = {s.step: s for s in second.sessions[0].steps}["regimes"].counts
    assert counts["fitted"] == 3 and counts["written"] == 3
    assert _versions(models) == sorted(
        [("s20240614", s) for s in SYMBOLS] + [("s20240618", s) for s in SYMBOLS]
    )
    # The refitted model, trained up to the session, labels it; the older rows stay.
    assert _row(store, "SIM001", session_ts(NEXT[1]))["model_version"] == "pipeline/s20240618"
    assert _row(store, "SIM001", session_ts(NEXT[0]))["model_version"] == "pipeline/s20240614"
    registry = ModelRegistry(models)
    assert (
        registry.record("pipeline", "SIM001", "s20240618")
        .metadata["train_end"]
        .startswith("2024-06-18")
    )


def test_the_sessions_row_does_not_depend_on_later_bars(
    copy: tuple[MarketStore, str], tmp_path: Path
) -> None:
    store, models = copy
    # A second store, the same up to now, that already holds three later sessions.
    later_path = tmp_path / "later.duckdb"
    shutil.copy(store.path, later_path)
    later = MarketStore(later_path)
    for day in NEXT[:3]:
        assert advance_simulated(later, day) == 3
    advance_simulated(store, NEXT[0])
    pd.testing.assert_frame_equal(
        store.bars(end=session_ts(NEXT[0])), later.bars(end=session_ts(NEXT[0]))
    )
    plain = update_regimes(store, NEXT[0], registry=models)
    truncated = update_regimes(later, NEXT[0], registry=models)
    assert plain.filtered == truncated.filtered == dict.fromkeys(SYMBOLS, 1)
    for symbol in SYMBOLS:
        a, b = _row(store, symbol, session_ts(NEXT[0])), _row(later, symbol, session_ts(NEXT[0]))
        pd.testing.assert_series_equal(
            a.drop("written_at"), b.drop("written_at"), check_names=False
        )
    # Nothing after the session was written in the store that holds later bars.
    assert later.regimes(start=session_ts(NEXT[1]), model_version="pipeline/*").empty


def test_a_symbol_too_short_to_fit_is_listed_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "short.duckdb"
    ingest_simulated(path, symbols=2, days=200, seed=1, start="2023-01-02", progress=False)
    run = update_regimes(MarketStore(path), "2023-10-06", registry=str(tmp_path / "models"))
    assert run.ok and run.short == ["SIM000", "SIM001"] and run.fitted == {}
    assert "2 too short to fit" in run.summary()
