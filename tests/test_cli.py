"""The quantdesk command line against a real store in a temporary QUANTDESK_HOME."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantdesk.cli import app
from quantdesk.data import MarketStore

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_ingest_sample_then_info_json_is_one_document(_isolated_home: Path) -> None:
    code, out = run("ingest", "sample", "--name", "sp500")
    assert code == 0, out
    assert "5031 inserted" in out
    # a real process: stdout must carry exactly one JSON document, logs go to stderr
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "data", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(proc.stdout)
    assert info["symbols"] == 1
    assert info["bars"] == [
        {
            "timeframe": "1d",
            "symbols": 1,
            "rows": 5031,
            "first": "1999-01-04T00:00:00+00:00",
            "last": "2018-12-31T00:00:00+00:00",
        }
    ]
    assert info["rejects"] == {}


def test_ingest_simulate_is_idempotent(_isolated_home: Path) -> None:
    code, out = run(
        "ingest", "simulate", "--symbols", "3", "--days", "40", "--seed", "4", "--tick-days", "1"
    )
    assert code == 0, out
    assert "120 inserted" in out and "ticks" in out
    code, out = run("ingest", "simulate", "--symbols", "3", "--days", "40", "--seed", "4")
    assert "0 inserted, 0 updated, 120 unchanged" in out
    store = MarketStore(read_only=True)
    assert store.metadata()["source"].unique().tolist() == ["simulator"]
    # ticks of the last day aggregate to exactly that day's daily bars
    from quantdesk.data.candles import aggregate

    day = aggregate(store.ticks(), "1d")
    bars = store.bars(start=day["ts"].min())
    assert day[["open", "high", "low", "close", "volume"]].to_numpy() == pytest.approx(
        bars[["open", "high", "low", "close", "volume"]].to_numpy()
    )


def test_ingest_file_counts_rejects_and_strict_writes_nothing(tmp_path: Path) -> None:
    f = tmp_path / "px.csv"
    f.write_text(
        "Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n"
        "2020-01-03,1,2,0.5,3.0,10\n2020-01-06,1,2,0.5,1.5,10\n"
    )
    code, out = run("ingest", "file", str(f), "--symbol", "PX", "--strict")
    assert code != 0
    assert "px.csv, row 2, field 'close': close outside [low, high]" in out
    assert "nothing written" in out
    assert MarketStore().symbols() == []
    code, out = run("ingest", "file", str(f), "--symbol", "PX")
    assert code == 0, out
    assert "2 inserted" in out and "1 rejected" in out
    code, out = run("data", "rejects")
    assert "px.csv" in out and "close outside [low, high]" in out
    code, out = run("ingest", "file", str(f), "--symbol", "PX")  # same file again
    assert "0 inserted, 0 updated, 2 unchanged" in out


def test_info_on_missing_store_is_a_clear_error() -> None:
    code, out = run("data", "info")
    assert code == 1
    assert "quantdesk ingest sample" in out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["ingest"],
        ["data"],
        ["ingest", "sample"],
        ["ingest", "simulate"],
        ["ingest", "file"],
        ["ingest", "yahoo"],
        ["data", "info"],
        ["data", "rejects"],
        ["backtest"],
    ],
)
def test_help_everywhere(args: list[str]) -> None:
    code, out = run(*args, "--help")
    assert code == 0
    assert "Usage" in out


def test_backtest_command_prints_metrics(_isolated_home: Path) -> None:
    run("ingest", "sample")
    code, out = run(
        "backtest", "--symbols", "SPX,IXIC", "--start", "2005-01-01", "--rebalance", "weekly"
    )
    assert code == 0, out
    assert "Backtest: 2 assets" in out and "Sharpe" in out
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "backtest", "--symbols", "SPX", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    assert doc["symbols"] == ["SPX"]
    assert doc["start"].startswith("1999-01-04")
    assert -1 < doc["metrics"]["Max drawdown"] < 0
    assert doc["final_equity"] > 0
    code, out = run("backtest", "--symbols", "SPX,NOPE")
    assert code == 1 and "unknown symbol(s) ['NOPE']" in out and "IXIC, SPX" in out
    code, out = run("backtest", "--rebalance", "hourly")
    assert code == 1 and "--rebalance" in out
