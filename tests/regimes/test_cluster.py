"""Regime fits on a real Dask cluster that reads a Parquet snapshot from an S3 endpoint.

Real parts (tests/cluster_harness.py): a ``dask scheduler`` and two ``dask worker``
processes started from the CLI, each in its own folder, whose store path lies under a
regular file (they cannot open or create the DuckDB file), and ``moto_server`` as the
object store.  The same job run locally (a process pool on the store) and on the
cluster (from the snapshot) must store the same regimes and save the same models.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore, simulate
from quantdesk.data.pinned import SnapshotBars
from quantdesk.regimes import ModelRegistry, fit_regimes

from ..cluster_harness import CREDENTIALS, HELPERS, DaskCluster, ObjectStore

pytestmark = pytest.mark.slow

FAST = {"window": 330, "refit": 95}
SYMBOLS = ["SIM000", "SIM001", "SIM002"]


def _until(found: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Return ``found()``'s first true value; fail after ``timeout`` (bounds a hang only)."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)
    return value


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, object_store: ObjectStore) -> tuple[Path, str]:
    """A store file with three simulated symbols, and its snapshot on the S3 endpoint."""
    folder = tmp_path_factory.mktemp("market")
    store = MarketStore(folder / "market.duckdb")
    store.write_bars(simulate(n_symbols=3, n_days=520, seed=5).bars, "1d")
    url = object_store.url("market")
    assert int(store.snapshot(url)) == 1
    return store.path, url


def _copy(market: tuple[Path, str], folder: Path) -> MarketStore:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(market[0], folder / "store.duckdb")
    return MarketStore(folder / "store.duckdb")


def _stored(store: MarketStore) -> pd.DataFrame:
    """Return every stored regime row (all versions, duplicates kept), in key order."""
    return store.sql(
        "SELECT * EXCLUDE (written_at) FROM regimes ORDER BY symbol, ts, model_version"
    )


def _assert_same_models(a: ModelRegistry, b: ModelRegistry, name: str) -> None:
    for symbol in SYMBOLS:
        arrays_a, meta_a = a.load_artifact(name, symbol)
        arrays_b, meta_b = b.load_artifact(name, symbol)
        assert sorted(arrays_a) == sorted(arrays_b)
        for key in arrays_a:
            np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
        assert meta_a == meta_b
        assert (
            a.record(name, symbol).metadata["data_fingerprint"]
            == (b.record(name, symbol).metadata["data_fingerprint"])
        )


@pytest.fixture(scope="module")
def local_walk_forward(
    market: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[MarketStore, ModelRegistry]:
    """The walk-forward run locally: a process pool reading the store."""
    folder = tmp_path_factory.mktemp("local")
    store = _copy(market, folder)
    registry = ModelRegistry(str(folder / "models"))
    run = fit_regimes(
        store, walk_forward=True, registry=registry, workers=2, progress=False, **FAST
    )
    assert run.ok and run.fits is not None and run.fits.executor == "process x2"
    assert run.snapshot is None
    return store, registry


def test_a_worker_cannot_reach_the_store(dask_cluster: DaskCluster) -> None:
    # The harness's promise: a task that opened the store would fail, so the jobs below
    # that pass never touched it.
    from distributed import Client

    def open_store() -> str:
        return str(MarketStore().create().path)

    with Client(dask_cluster.address) as client:
        with pytest.raises(OSError, match="not-a-folder"):
            client.submit(open_store, pure=False).result()
        homes = client.run(lambda: os.environ["QUANTDESK_STORE"])
    assert all(str(dask_cluster.no_store) in home for home in homes.values())


def test_cli_walk_forward_on_the_cluster_equals_the_local_run(
    market: tuple[Path, str],
    local_walk_forward: tuple[MarketStore, ModelRegistry],
    dask_cluster: DaskCluster,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="quantdesk")
    store = _copy(market, tmp_path / "cluster")
    models = tmp_path / "models"
    args = ["regimes", "fit", "--walk-forward", "--window", "330", "--refit", "95"]
    args += ["--snapshot", market[1], "--scheduler", dask_cluster.address]
    args += ["--models", str(models), "--store", str(store.path), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    local_store, local_registry = local_walk_forward
    # The same regime rows, to the last probability, and the same models.
    pd.testing.assert_frame_equal(_stored(store), _stored(local_store), check_exact=True)
    registry = ModelRegistry(str(models))
    _assert_same_models(registry, local_registry, "regimes-wf")
    # The models say which data they were fitted on.
    for symbol in SYMBOLS:
        extra = registry.record("regimes-wf", symbol).metadata["extra"]
        assert extra["snapshot"] == {"url": market[1], "version": 1}
    # Credentials came from the environment and went nowhere else.
    secret = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    assert secret not in result.output + caplog.text + dask_cluster.logs()
    assert secret.encode() not in pickle.dumps(SnapshotBars.pin(market[1]))


def test_the_version_is_pinned_at_submit(
    market: tuple[Path, str], dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    # A new version published after the job was submitted is not read by its tasks:
    # pin version 1, publish version 2 with other bars, run the job on version 1.
    source = MarketStore(tmp_path / "source.duckdb")
    source.write_bars(simulate(n_symbols=3, n_days=520, seed=5).bars, "1d")
    url = market[1].rstrip("/") + "-pinned"
    assert int(source.snapshot(url)) == 1
    pinned = SnapshotBars.pin(url)
    source.write_bars(simulate(n_symbols=3, n_days=600, seed=9).bars, "1d")
    assert int(source.snapshot(url)) == 2
    store = _copy(market, tmp_path / "cluster")
    registry = ModelRegistry(str(tmp_path / "models"))
    run = fit_regimes(
        store, snapshot=pinned, scheduler=dask_cluster.address, registry=registry,
        progress=False,
    )  # fmt: skip
    assert run.ok and run.snapshot == {"url": url, "version": 1}
    local = fit_regimes(
        _copy(market, tmp_path / "local"), registry=str(tmp_path / "local-models"),
        workers=1, progress=False,
    )  # fmt: skip
    for symbol in SYMBOLS:
        assert run.symbols[symbol].rows == local.symbols[symbol].rows
        assert (
            run.symbols[symbol].record.metadata["data_fingerprint"]
            == (local.symbols[symbol].record.metadata["data_fingerprint"])
        )


def test_a_killed_worker_reruns_its_task_and_each_result_is_written_once(
    market: tuple[Path, str],
    dask_cluster: DaskCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(HELPERS))
    from cluster_gate import OPEN, GatedBars

    gate = tmp_path / "gate"
    gate.mkdir()
    pinned = SnapshotBars.pin(market[1])
    gated = GatedBars(pinned.url, pinned.version, gate=str(gate))
    store = _copy(market, tmp_path / "cluster")
    registry = ModelRegistry(str(tmp_path / "models"))
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(
            fit_regimes, store, snapshot=gated, scheduler=dask_cluster.address,
            registry=registry, progress=False,
        )  # fmt: skip
        # A task has started on a worker (it left its marker and waits at the gate):
        # kill that worker's process outright, as the kernel's OOM killer would.
        first = _until(lambda: sorted(gate.glob("started-*")), "no task started")[0]
        killed_symbol, pid = first.name.split("-")[1], int(first.read_text())
        os.kill(pid, signal.SIGKILL)
        _until(lambda: not Path(f"/proc/{pid}").exists(), "the worker did not die")
        (gate / OPEN).touch()
        run = job.result(timeout=600)
    assert run.ok, run.errors
    # Dask ran the killed worker's task again, in another process.
    attempts = sorted(gate.glob(f"started-{killed_symbol}-*"))
    assert len(attempts) >= 2
    assert len({p.read_text() for p in attempts}) >= 2
    # Each symbol's result was saved and written once: one model per symbol, every row
    # new at its one write, no duplicate rows, and the same rows as a local run.
    assert sorted(registry.list("regimes")["symbol"]) == SYMBOLS
    for symbol in SYMBOLS:
        assert run.symbols[symbol].written == run.symbols[symbol].rows
    stored = _stored(store)
    assert len(stored) == sum(fit.rows for fit in run.symbols.values())
    assert not stored.duplicated(["symbol", "ts", "model_version"]).any()
    local_store = _copy(market, tmp_path / "local")
    local = fit_regimes(
        local_store, registry=str(tmp_path / "local-models"), workers=2, progress=False
    )
    assert local.ok
    pd.testing.assert_frame_equal(stored, _stored(local_store), check_exact=True)
