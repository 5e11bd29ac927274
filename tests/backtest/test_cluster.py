"""Sweeps and walk-forward backtests on a real Dask cluster reading an S3 snapshot.

The cluster of tests/cluster_harness.py (CLI-started scheduler and two workers that
cannot reach the store, moto's S3 server): each task reads the closes from the
snapshot itself and the result equals the local run's, column for column.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.backtest.jobs import sweep_trend
from quantdesk.cli import app
from quantdesk.data import MarketStore, simulate

from ..cluster_harness import DaskCluster, ObjectStore

pytestmark = pytest.mark.slow

GRID = {"lookbacks": [21, 63, 126], "target_vols": [0.1, 0.2]}


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, object_store: ObjectStore) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("market")
    store = MarketStore(folder / "market.duckdb")
    store.write_bars(simulate(n_symbols=4, n_days=900, seed=11).bars, "1d")
    url = object_store.url("sweeps")
    assert int(store.snapshot(url)) == 1
    return store.path, url


def test_a_sweep_on_the_cluster_equals_the_local_sweep(
    market: tuple[Path, str], dask_cluster: DaskCluster
) -> None:
    local = sweep_trend(market[0], **GRID)
    remote = sweep_trend(snapshot=market[1], scheduler=dask_cluster.address, **GRID)
    assert local.snapshot is None and remote.snapshot == {"url": market[1], "version": 1}
    assert remote.executor == dask_cluster.address
    pd.testing.assert_frame_equal(remote.result.equity, local.result.equity, check_exact=True)
    pd.testing.assert_frame_equal(remote.table, local.table, check_exact=True)


def test_cli_walk_forward_on_the_cluster_equals_the_local_run(
    market: tuple[Path, str], dask_cluster: DaskCluster
) -> None:
    settings = ["--lookbacks", "21,63,126", "--target-vols", "0.1,0.2", "--walk-forward"]
    settings += ["--train", "300", "--test", "100"]
    local = CliRunner().invoke(app, ["sweep", *settings, "--store", str(market[0]), "--json"])
    assert local.exit_code == 0, local.output
    args = ["sweep", *settings, "--snapshot", market[1], "--scheduler", dask_cluster.address]
    remote = CliRunner().invoke(app, [*args, "--json"])
    assert remote.exit_code == 0, remote.output
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert b["snapshot"] == {"url": market[1], "version": 1} and a["snapshot"] is None
    assert len(a["folds"]) >= 4
    for key in ("table", "folds", "overfitting", "symbols"):
        assert a[key] == b[key], key
