"""The quantdesk command line against a real store in a temporary QUANTDESK_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
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
    from quantdesk.data.candles.batch import aggregate

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
    assert not MarketStore().path.exists()  # a refused ingest creates no store
    code, out = run("ingest", "file", str(f), "--symbol", "PX")
    assert code == 0, out
    assert "2 inserted" in out and "1 rejected" in out
    code, out = run("data", "rejects")
    assert "px.csv" in out and "close outside [low, high]" in out
    code, out = run("ingest", "file", str(f), "--symbol", "PX")  # same file again
    assert "0 inserted, 0 updated, 2 unchanged" in out


def _data_file(package: str, *parts: str) -> Path:
    module = pytest.importorskip(package)
    return Path(module.__file__).parent.joinpath(*parts)


def test_ingest_file_reads_pandas_csv_and_calendar_bars_end_to_end() -> None:
    # bugs 2 and 5 of issue 10: GOOG.csv's unnamed index column, and weekly/monthly bars
    code, out = run("ingest", "file", str(_data_file("backtesting", "test", "GOOG.csv")),
                    "--symbol", "GOOG")  # fmt: skip
    assert code == 0, out
    assert "2148 inserted" in out and "read as the timestamp" in out
    btc = _data_file("backtesting", "test", "BTCUSD.csv")
    code, out = run("ingest", "file", str(btc), "--symbol", "BTC", "--timeframe", "1mo")
    assert code == 0, out
    assert "156 inserted" in out and "labelled by its 1st" in out
    code, out = run("ingest", "file", str(btc), "--symbol", "BTCW", "--timeframe", "1w")
    assert code == 0, out  # month-end dates as weeks: each labelled by its Monday
    store = MarketStore(read_only=True)
    assert store.bars("BTC", timeframe="1mo")["ts"].dt.day.eq(1).all()
    assert store.bars("BTCW", timeframe="1w")["ts"].dt.day_of_week.eq(0).all()
    assert store.bars("GOOG", timeframe="1w")["ts"].dt.day_of_week.eq(0).all()


def test_capital_m_timeframe_is_refused_without_a_traceback(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("Date,Close\n2020-01-31,1\n")
    result = runner.invoke(app, ["ingest", "file", str(f), "--symbol", "M", "--timeframe", "1M"])
    assert result.exit_code == 1  # a clean exit, not an uncaught ValueError
    assert "ambiguous timeframe '1M'" in result.output and "'1mo'" in result.output
    assert "Traceback" not in result.output
    assert not (Path(os.environ["QUANTDESK_HOME"]) / "quantdesk.duckdb").exists()


def test_close_only_file_with_a_mapping_is_ingested() -> None:
    # bug 4 of issue 10: "no column for ['open', 'high', 'low', 'volume']"
    wti = _data_file("arch", "data", "wti", "wti.csv.gz")
    code, out = run("ingest", "file", str(wti), "--symbol", "WTI",
                    "--map", "DCOILWTICO=close", "--map", "Date=ts")  # fmt: skip
    assert code == 0, out
    assert "8321 inserted" in out and "290 rejected" in out
    code, out = run("data", "rejects", "--limit", "1")
    assert "missing value '.'" in out


def test_an_ingest_that_stores_nothing_exits_non_zero(tmp_path: Path) -> None:
    # bug 6 of issue 10: every row rejected, exit code 0
    f = tmp_path / "bad.csv"
    f.write_text("Date,Close\n2020-01-02,-1\n2020-01-03,abc\n")
    code, out = run("ingest", "file", str(f), "--symbol", "BAD")
    assert code == 1
    assert "nothing stored, all 2 rows rejected" in out and "non-positive price (1 rows)" in out
    code, out = run("data", "rejects")  # the reasons are kept
    assert "bad.csv" in out


def test_ambiguous_dates_need_dayfirst_on_the_command_line(tmp_path: Path) -> None:
    f = tmp_path / "eu.csv"
    f.write_text("Date;Close\n03/01/2005;1,5\n04/01/2005;1,6\n")
    code, out = run("ingest", "file", str(f), "--symbol", "EU")
    assert code == 1 and "--dayfirst / --monthfirst" in out
    code, out = run("ingest", "file", str(f), "--symbol", "EU", "--dayfirst")
    assert code == 0, out
    close = MarketStore(read_only=True).panel("close", symbols=["EU"])["EU"]
    assert close.to_dict() == {
        pd.Timestamp("2005-01-03", tz="UTC"): 1.5,
        pd.Timestamp("2005-01-04", tz="UTC"): 1.6,
    }


def test_data_info_lists_each_symbol(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("Date,Close\n2020-01-02,1\n2020-01-03,2\n")
    assert run("ingest", "file", str(f), "--symbol", "XYZ")[0] == 0
    assert run("ingest", "simulate", "--symbols", "2", "--days", "5")[0] == 0
    code, out = run("data", "info")
    assert code == 0
    line = next(x for x in out.splitlines() if x.strip().startswith("XYZ"))
    assert line.split() == ["XYZ", "1d", "2", "2020-01-02", "..", "2020-01-03", "x.csv"]
    code, out = run("data", "info", "--json")
    series = json.loads(out)["series"]
    assert len(series) == 3 and series[-1]["symbol"] == "XYZ" and series[-1]["rows"] == 2


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
        ["paper"],
        ["paper", "buy"],
        ["paper", "rebalance"],
        ["paper", "watch"],
        ["pipeline"],
        ["pipeline", "run"],
        ["pipeline", "backfill"],
        ["pipeline", "status"],
        ["pipeline", "retry"],
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


def test_backtest_out_writes_tables_and_benchmark_metrics(
    _isolated_home: Path, tmp_path: Path
) -> None:
    import pandas as pd

    from quantdesk.backtest import metrics as m

    run("ingest", "sample")
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "quantdesk", "backtest", "--symbols", "IXIC", "--start",
         "2010-01-01", "--benchmark", "SPX", "--out", str(out), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = json.loads(proc.stdout)
    assert doc["benchmark"] == "SPX"
    names = {
        f"{t}.{ext}"
        for t in ("equity", "weights", "trades", "metrics")
        for ext in ("parquet", "csv")
    }
    assert {p.name for p in out.iterdir()} == names | {"metrics.json"}  # no temporary left
    # Parquet and CSV hold the same tables.
    for table in ("equity", "weights", "trades", "metrics"):
        parquet = pd.read_parquet(out / f"{table}.parquet")
        csv = pd.read_csv(out / f"{table}.csv")
        assert list(parquet.columns) == list(csv.columns) and len(parquet) == len(csv) > 0
    equity = pd.read_parquet(out / "equity.parquet")
    assert str(equity["ts"].dt.tz) == "UTC" and equity["ts"].iloc[0] >= pd.Timestamp(
        "2010-01-01", tz="UTC"
    )
    assert equity["equity"].iloc[-1] == pytest.approx(doc["final_equity"])
    assert list(pd.read_parquet(out / "weights.parquet").columns) == ["ts", "IXIC"]
    stored = json.loads((out / "metrics.json").read_text())
    assert stored == doc["metrics"]
    assert set(m.BENCHMARK_METRICS) <= set(stored)
    # The written figures agree with the metrics recomputed from the written equity and the
    # benchmark's stored closes.
    spx = MarketStore(read_only=True).panel("close", symbols=["SPX"], start="2010-01-01")["SPX"]
    returns = equity.set_index("ts")["returns"]
    bench = spx.reindex(returns.index).pct_change(fill_method=None)
    assert stored["Beta"] == pytest.approx(m.beta(returns, bench), rel=1e-9)
    assert stored["Annual volatility"] == pytest.approx(m.annual_volatility(returns), rel=1e-9)
    trades = pd.read_parquet(out / "trades.parquet")
    assert set(trades["side"]) <= {"buy", "sell"} and (trades["symbol"] == "IXIC").all()
    code, text = run("backtest", "--symbols", "IXIC", "--benchmark", "NOPE")
    assert code == 1 and "benchmark 'NOPE'" in text
    code, text = run("backtest", "--symbols", "IXIC", "--benchmark", "SPX")
    assert code == 0 and "against SPX:" in text and "Information ratio" in text


def test_paper_commands_trade_show_watch_and_reject_with_the_reason(tmp_path: Path) -> None:
    store = tmp_path / "paper.duckdb"
    today = pd.Timestamp.now(tz="UTC").normalize()
    days = pd.bdate_range(end=today, periods=80, tz="UTC", name="ts")
    rows = [
        {"symbol": s, "ts": ts, "open": p, "high": p, "low": p, "close": p, "volume": 1e6}
        for s, drift in (("AAA", 1.0), ("BBB", -0.2))
        for i, ts in enumerate(days)
        for p in [100.0 + drift * i + (i % 3)]
    ]
    MarketStore(store).write_bars(pd.DataFrame(rows), "1d")
    opts = ["--store", str(store), "--ledger", "cli"]
    code, out = run("paper", "buy", "AAA", "10", "--price", "150", "--cash", "5000", *opts)
    assert code == 0 and "buy 10 AAA" in out and "explicit" in out
    code, out = run("paper", "buy", "AAA", "100", *opts)
    assert code == 1 and "rejected (insufficient_cash)" in out
    code, out = run("paper", "sell", "BBB", "1", *opts)
    assert code == 1 and "rejected (insufficient_position)" in out
    code, out = run("paper", "sell", "AAA", "4", "--json", *opts)
    assert code == 0
    sold = json.loads(out)
    assert sold["side"] == "sell" and sold["price_source"] == "store_bar"
    code, out = run("paper", "watch", "add", "BBB", *opts)
    assert code == 0 and out.split() == ["BBB"]
    code, out = run("paper", "watch", "add", "NOPE", *opts)
    assert code == 1 and "unknown_symbol" in out
    code, out = run("paper", "watch", "list", "--json", *opts)
    assert json.loads(out) == {"ledger": "cli", "watchlist": ["BBB"]}
    code, out = run(
        "paper", "rebalance", "--strategy", "vol_target_trend", "--symbols", "AAA,BBB",
        "--lookbacks", "5,20", "--target-vol", "0.5", *opts,
    )  # fmt: skip
    assert code == 0, out
    assert "rebalanced" in out and " 0 fills" not in out
    code, out = run("paper", "show", "--json", *opts)
    assert code == 0
    shown = json.loads(out)
    assert shown["ledger"] == "cli"
    assert shown["equity"] == pytest.approx(shown["initial_cash"] + shown["total_pnl"])
    assert {p["symbol"] for p in shown["positions"]} >= {"AAA"}
    code, out = run("paper", "rebalance", "--strategy", "momentum", *opts)
    assert code == 1 and "unknown strategy" in out


def test_typer_and_the_shared_options_live_once_on_the_cli_floor() -> None:
    """Issue 22: cli.py held every group, and forecast/, reports/ and pipeline/ each
    carried their own typer app with a copy of ``_fail``, ``--store`` and ``--json``.

    Only quantdesk.cli imports typer, and the failing helper, the store opener and the
    shared options are defined once, in quantdesk.cli.options.
    """
    import ast

    import quantdesk

    package = Path(quantdesk.__file__).parent
    typer_users, definitions = set(), {}
    shared = {"fail", "_fail", "open_store", "_store", "StoreOption", "JsonOption", "int_list"}
    for path in package.rglob("*.py"):
        name = path.relative_to(package).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                modules += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(m.split(".")[0] == "typer" for m in modules):
                    typer_users.add(name.split("/")[0])
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level
            if isinstance(node, ast.FunctionDef) and node.name in shared:
                definitions.setdefault(node.name, []).append(name)
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in shared:
                        definitions.setdefault(target.id, []).append(name)
    assert typer_users == {"cli"}
    assert definitions == {
        "fail": ["cli/options.py"],
        "open_store": ["cli/options.py"],
        "StoreOption": ["cli/options.py"],
        "JsonOption": ["cli/options.py"],
        "int_list": ["cli/options.py"],
    }
