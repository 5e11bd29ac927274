"""Sentiment scoring of news batches on a real Dask cluster reading an S3 snapshot.

The cluster of tests/cluster_harness.py (CLI-started scheduler and two workers that
cannot reach the store, moto's S3 server): each task reads its batch of stories from
the snapshot, scores it with the finance lexicon and sends back only the scores,
which this process writes; the stored scores equal a local run's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data import MarketStore, simulate
from quantdesk.data.sources.ingest import ingest_synthetic_news
from quantdesk.data.store.news import NewsStore
from quantdesk.sentiment.jobs import score_news

from ..cluster_harness import DaskCluster, ObjectStore

pytestmark = pytest.mark.slow


def _scores(path: Path) -> pd.DataFrame:
    return MarketStore(path).sql(
        "SELECT * EXCLUDE (scored_at) FROM news_scores ORDER BY content_hash, model_id"
    )


def test_scores_from_the_cluster_equal_the_local_scores(
    object_store: ObjectStore, dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    store = MarketStore(tmp_path / "market.duckdb")
    store.write_bars(simulate(n_symbols=3, n_days=200, seed=4).bars, "1d")
    news = ingest_synthetic_news(store, days=200, seed=4)
    assert sum(r.inserted for r in news.reports) > 2048  # several batches
    url = object_store.url("news")
    assert int(store.snapshot(url, ("bars", "news"))) == 1
    # Stories arriving after the snapshot are not in it: left for the next run.
    late = pd.DataFrame(
        {"ts": ["2031-01-02T14:30:00Z"], "headline": ["SIM000 profits improve"],
         "symbols": ["SIM000"]}
    )  # fmt: skip
    assert NewsStore(store).write_news(late, source="late").inserted == 1
    shutil.copy(store.path, tmp_path / "local.duckdb")
    local = score_news(tmp_path / "local.duckdb", "lexicon", progress=False)
    remote = score_news(
        store, "lexicon", snapshot=url, scheduler=dask_cluster.address, progress=False
    )
    assert remote.failed == 0 and remote.missing == 1
    assert remote.snapshot == {"url": url, "version": 1}
    assert remote.scored == local.scored - 1
    assert "1 not in snapshot version 1" in remote.summary()
    ours, theirs = _scores(store.path), _scores(tmp_path / "local.duckdb")
    late_hash = NewsStore(store).news(start="2031-01-01")["content_hash"].iloc[0]
    theirs = theirs[theirs["content_hash"] != late_hash].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    # A second run finds everything in the snapshot already scored.
    again = score_news(store, "lexicon", snapshot=url, scheduler=dask_cluster.address,
                       progress=False)  # fmt: skip
    assert again.scored == 0 and again.missing == 1
