"""The regimes step's per-symbol work on the one parallel runner: processes and Dask.

Real parts: a DuckDB store file, a registry directory, a spawned process pool of two
workers and a local Dask cluster of two worker processes.  The serial run is the
reference; the parallel runs must store the same regime rows and save the same models.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.data.store.market import MarketStore
from quantdesk.data.store.pipeline import PipelineRecord
from quantdesk.pipeline.steps import BUILTIN_STEPS, StepContext
from quantdesk.regimes.jobs import update_regimes
from quantdesk.regimes.registry import ModelRegistry

SESSION = pd.Timestamp("2024-06-14")  # the last of 380 business days from 2023-01-02
SYMBOLS = ["SIM000", "SIM001", "SIM002", "SIM003"]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fanout") / "store.duckdb"
    ingest_simulated(path, symbols=4, days=380, seed=5, start="2023-01-02", progress=False)
    return path


@pytest.fixture(scope="module")
def serial(market: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[MarketStore, str]:
    """The reference: every symbol fitted and filtered in this process."""
    return _run(market, tmp_path_factory.mktemp("serial"), workers=1)


def _run(market: Path, folder: Path, **options: object) -> tuple[MarketStore, str]:
    shutil.copy(market, folder / "store.duckdb")
    store, models = MarketStore(folder / "store.duckdb"), str(folder / "models")
    run = update_regimes(store, SESSION, registry=models, **options)  # type: ignore[arg-type]
    assert run.ok and sorted(run.fitted) == SYMBOLS, run.summary()
    return store, models


def _assert_same(a: tuple[MarketStore, str], b: tuple[MarketStore, str]) -> None:
    rows_a, rows_b = (s.regimes().drop(columns="written_at") for s, _ in (a, b))
    assert len(rows_a) > 0
    pd.testing.assert_frame_equal(rows_a, rows_b, check_exact=False, rtol=0, atol=1e-12)
    for symbol in SYMBOLS:
        arrays_a, meta_a = ModelRegistry(a[1]).load_artifact("pipeline", symbol)
        arrays_b, meta_b = ModelRegistry(b[1]).load_artifact("pipeline", symbol)
        assert meta_a == meta_b and sorted(arrays_a) == sorted(arrays_b)
        for key in arrays_a:
            np.testing.assert_allclose(arrays_a[key], arrays_b[key], rtol=0, atol=1e-12)


def test_two_worker_processes_store_what_the_serial_run_stores(
    market: Path, serial: tuple[MarketStore, str], tmp_path: Path
) -> None:
    shutil.copy(market, tmp_path / "store.duckdb")
    store, models = MarketStore(tmp_path / "store.duckdb"), str(tmp_path / "models")
    ctx = StepContext(store, SESSION, "evening", PipelineRecord(store.path), tmp_path)
    output = BUILTIN_STEPS["regimes"](ctx, registry=models, workers=2)
    assert output.note == "on process x2"
    assert output.counts["fitted"] == len(SYMBOLS)
    _assert_same(serial, (store, models))


def test_a_dask_cluster_stores_what_the_serial_run_stores(
    market: Path, serial: tuple[MarketStore, str], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        shutil.copy(market, tmp_path / "store.duckdb")
        store, models = MarketStore(tmp_path / "store.duckdb"), str(tmp_path / "models")
        run = update_regimes(store, SESSION, registry=models, scheduler=cluster.scheduler_address)
    assert run.ok and run.executor == f"dask {cluster.scheduler_address}"
    assert sorted(run.fitted) == SYMBOLS
    _assert_same(serial, (store, models))
