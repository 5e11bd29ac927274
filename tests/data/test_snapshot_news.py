"""SnapshotReader.news answers what NewsStore.news answers, from one snapshot version."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quantdesk.data import MarketStore, simulate
from quantdesk.data.snapshot import SnapshotReader
from quantdesk.data.sources.ingest import ingest_synthetic_news
from quantdesk.data.store.news import NewsStore


def test_news_from_a_snapshot_equal_the_stores(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "market.duckdb")
    store.write_bars(simulate(n_symbols=2, n_days=120, seed=2).bars, "1d")
    ingest_synthetic_news(store, symbols=5, days=800, seed=2)
    url = str(tmp_path / "snapshot")
    store.snapshot(url, ("bars", "news"))
    reader, news = SnapshotReader(url), NewsStore(store)
    everything = news.news()
    assert everything["ts"].dt.year.nunique() >= 3  # several year partitions
    pd.testing.assert_frame_equal(reader.news(), everything)
    start, end = everything["ts"].iloc[10], everything["ts"].iloc[len(everything) // 2]
    window = reader.news(start=start, end=end)
    pd.testing.assert_frame_equal(window, news.news(start=start, end=end))
    assert window["ts"].iloc[0] == start and window["ts"].iloc[-1] == end  # inclusive
    hashes = everything["content_hash"].iloc[[3, 1, 2]].tolist()
    assert sorted(reader.news(content_hashes=hashes)["content_hash"]) == sorted(hashes)
    # Stories written after the snapshot are not in its version.
    later = pd.DataFrame({"ts": ["2031-01-02T14:30:00Z"], "headline": ["x"], "symbols": ["A"]})
    news.write_news(later, source="later")
    assert len(SnapshotReader(url, as_of=1).news()) == len(everything)
