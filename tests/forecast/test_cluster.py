"""The forecasts' walk-forward backfill on a real Dask cluster reading an S3 snapshot.

The cluster of tests/cluster_harness.py (CLI-started scheduler and two workers that
cannot reach the store, moto's S3 server): each (target, model) walk-forward reads
its panels and context from the snapshot, and the rows recorded here equal a local
backfill's, data fingerprints included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore, simulate

from ..cluster_harness import THREADS, DaskCluster, ObjectStore

pytestmark = pytest.mark.slow

TARGETS = "vol_1d,return_1d"


def _recorded(path: Path) -> pd.DataFrame:
    return MarketStore(path).sql(
        "SELECT * EXCLUDE (made_at) FROM forecasts ORDER BY model, target, symbol, as_of"
    )


def test_a_backfill_on_the_cluster_records_what_the_local_backfill_records(
    object_store: ObjectStore, dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    store = MarketStore(tmp_path / "market.duckdb")
    store.write_bars(simulate(n_symbols=3, n_days=700, seed=8).bars, "1d")
    sessions = store.panel("close").index
    url = object_store.url("forecasts")
    assert int(store.snapshot(url, ("bars", "regimes", "news", "scores"))) == 1
    shutil.copy(store.path, tmp_path / "local.duckdb")
    args = ["forecast", "backfill", "--start", f"{sessions[600]:%Y-%m-%d}"]
    args += ["--end", f"{sessions[660]:%Y-%m-%d}", "--targets", TARGETS, "--refit", "30"]
    # The local run in a process with the workers' thread settings: GARCH's optimiser
    # lands 1e-8 apart when OMP_NUM_THREADS differs at start-up.
    env = {**os.environ, **{k: "1" for k in THREADS}}
    local = subprocess.run(
        [sys.executable, "-m", "quantdesk", *args, "--store", str(tmp_path / "local.duckdb"),
         "--json"],
        env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]
    mine = json.loads(local.stdout)
    assert mine["snapshot"] is None and sum(mine["recorded"].values()) > 100
    args += ["--snapshot", url, "--scheduler", dask_cluster.address]
    result = CliRunner().invoke(app, [*args, "--store", str(store.path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["snapshot"] == {"url": url, "version": 1}
    assert doc["recorded"] == mine["recorded"]
    pd.testing.assert_frame_equal(
        _recorded(store.path), _recorded(tmp_path / "local.duckdb"), check_exact=True
    )
