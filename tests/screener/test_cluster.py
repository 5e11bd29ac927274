"""Screener backfills on a real Dask cluster, each task scanning a batch from an S3 snapshot.

The cluster of tests/cluster_harness.py (CLI-started scheduler and two workers that
cannot reach the store, moto's S3 server).  The alerts equal a scan of the store, also
when the symbols' calendars differ (a batch is scanned on the universe's rows).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore
from quantdesk.screener import scan
from quantdesk.screener.backfill import backfill_scan

from ..cluster_harness import DaskCluster, ObjectStore
from .universe import random_bars

pytestmark = pytest.mark.slow

RULES = ["gap_up", "gap_down", "volume_spike", "new_high", "new_low", "ma_cross"]
WINDOW = {"start": "2023-03-01", "end": "2023-06-16"}


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, object_store: ObjectStore) -> tuple[Path, str]:
    bars = random_bars(12, 130, seed=7)
    # The last batch's symbols (S010, S011 at 5 a batch) skip sessions the others trade:
    # the store's scan has those rows for them (as NaN), so must the batch's.
    gaps = bars["symbol"].isin(["S010", "S011"]) & bars["ts"].dt.day.isin([3, 10, 17, 24])
    store = MarketStore(tmp_path_factory.mktemp("market") / "market.duckdb")
    store.write_bars(bars[~gaps], "1d")
    url = object_store.url("screener")
    assert int(store.snapshot(url)) == 1
    return store.path, url


def _plain(alerts: pd.DataFrame) -> list[dict]:
    return json.loads(alerts.to_json(orient="records", date_format="iso"))


def test_a_backfill_in_batches_on_the_cluster_equals_the_store_scan(
    market: tuple[Path, str], dask_cluster: DaskCluster
) -> None:
    local = scan(market[0], RULES, **WINDOW)
    remote = backfill_scan(
        RULES, snapshot=market[1], scheduler=dask_cluster.address, batch=5, progress=False,
        **WINDOW,
    )  # fmt: skip
    assert len(local) > 20 and set(local["rule"]) >= {"gap_up", "volume_spike"}
    assert _plain(remote) == _plain(local)


def test_cli_backfill_on_the_cluster_stores_what_the_local_backfill_stores(
    market: tuple[Path, str], dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: gap2\n    rule: gap_up\n    pct: 2\n"
        "  - name: spike\n    rule: volume_spike\n"
    )
    stores = {}
    for where, extra in (
        ("local", []),
        ("cluster", ["--snapshot", market[1], "--scheduler", dask_cluster.address]),
    ):
        path = tmp_path / f"{where}.duckdb"
        shutil.copy(market[0], path)
        args = ["screen", "run", "--rules", str(rules), "--start", WINDOW["start"]]
        args += ["--end", WINDOW["end"], "--no-deliver", "--store", str(path), "--json", *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["stored"] > 5
        stores[where] = MarketStore(path).sql(
            "SELECT symbol, rule, ts, trigger_price FROM alerts ORDER BY ts, rule, symbol"
        )
    pd.testing.assert_frame_equal(stores["cluster"], stores["local"], check_exact=True)


def test_rules_that_read_the_store_are_refused(market: tuple[Path, str]) -> None:
    with pytest.raises(ValueError, match="need the store's regimes or news"):
        backfill_scan(["regime_change"], snapshot=market[1], **WINDOW)
