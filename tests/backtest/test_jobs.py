"""The trend backtest job: the store read, the strategy, the run and the files in one call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantdesk.backtest import run
from quantdesk.backtest.jobs import backtest_trend
from quantdesk.data import MarketStore, UnknownSymbolError
from quantdesk.data.sources.ingest import ingest_samples
from quantdesk.strategies import vol_target_trend


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("job") / "s.duckdb"
    ingest_samples(path, progress=False)
    return path


def test_the_job_is_the_strategy_run_on_the_stored_closes(samples: Path) -> None:
    job = backtest_trend(
        samples, ["SPX", "IXIC"], start="2005-01-01", rebalance="weekly", target_vol=0.12
    )
    # the same composition by hand, from the library's parts
    close = MarketStore(samples, read_only=True).panel(
        "close", symbols=["SPX", "IXIC"], start="2005-01-01"
    )
    weights = vol_target_trend(close, target_vol=0.12, rebalance="weekly")
    by_hand = run(close, weights)
    assert job.result.equity.to_numpy() == pytest.approx(by_hand.equity.to_numpy(), rel=1e-12)
    assert job.metrics.to_dict() == pytest.approx(by_hand.metrics().to_dict(), nan_ok=True)
    doc = json.loads(json.dumps(job.to_dict()))  # plain JSON, NaN as null
    assert doc["symbols"] == ["IXIC", "SPX"] and doc["benchmark"] is None  # store order
    assert doc["final_equity"] == pytest.approx(float(by_hand.equity.iloc[-1]))
    assert job.summary() == by_hand.summary()


def test_benchmark_and_files(samples: Path, tmp_path: Path) -> None:
    from quantdesk.backtest.metrics import BENCHMARK_METRICS

    job = backtest_trend(samples, ["IXIC"], start="2010-01-01", benchmark="SPX", out=tmp_path)
    assert set(BENCHMARK_METRICS) <= set(job.metrics.index)
    assert "against SPX:" in job.summary() and f"wrote 9 files to {tmp_path}" in job.summary()
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored == job.to_dict()["metrics"]
    assert sorted(Path(p).name for p in job.to_dict()["files"]) == sorted(
        p.name for p in tmp_path.iterdir()
    )


def test_bad_selections_raise_with_the_reason(samples: Path) -> None:
    with pytest.raises(UnknownSymbolError, match=r"unknown symbol\(s\) \['NOPE'\]"):
        backtest_trend(samples, ["SPX", "NOPE"])
    with pytest.raises(ValueError, match="benchmark 'NOPE'"):
        backtest_trend(samples, ["SPX"], benchmark="NOPE")
    with pytest.raises(ValueError, match="no daily closes for that selection"):
        backtest_trend(samples, ["SPX"], start="2030-01-01")
