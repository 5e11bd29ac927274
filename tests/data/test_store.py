"""MarketStore on a real DuckDB file: idempotent upserts, atomic writes, aggregation."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import MarketStore, ValidationError
from quantdesk.data.store import locking as store_module
from quantdesk.data.store.market import StoreBusyError

from ..conftest import make_bars


def dump(store: MarketStore) -> dict[str, pd.DataFrame]:
    return {
        t: store.sql(f"SELECT * EXCLUDE (updated_at) FROM {t} ORDER BY ALL")
        if t == "symbols"
        else store.sql(f"SELECT * FROM {t} ORDER BY ALL")
        for t in ("bars", "ticks", "symbols", "rejects")
    }


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for table in a:
        pd.testing.assert_frame_equal(a[table], b[table], obj=table)


def test_roundtrip_returns_contract_types(store: MarketStore) -> None:
    bars = make_bars(["B", "A"], 30)
    report = store.write_bars(bars, "1d", source="unit")
    assert (report.inserted, report.rejected) == (60, 0)
    out = store.bars()
    assert list(out.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    expected = bars.sort_values(["symbol", "ts"], ignore_index=True)
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)
    assert store.symbols() == ["A", "B"]


def test_rewriting_the_same_rows_changes_nothing(store: MarketStore) -> None:
    bars = make_bars(["A", "B"], 50)
    store.write_bars(bars, "1d")
    before = dump(store)
    again = store.write_bars(bars.sample(frac=1, random_state=1), "1d")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 100)
    assert_same(before, dump(store))


def test_corrections_update_and_are_counted(store: MarketStore) -> None:
    bars = make_bars(["A"], 10)
    store.write_bars(bars, "1d")
    fixed = bars.copy()
    fixed.loc[3, ["close", "high"]] = [fixed.loc[3, "high"], fixed.loc[3, "high"] * 1.01]
    report = store.write_bars(fixed, "1d")
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 9)
    assert store.bars("A")["close"].iloc[3] == pytest.approx(fixed.loc[3, "close"])


def test_rejects_are_stored_and_every_row_accounted_for(store: MarketStore) -> None:
    bars = make_bars(["A"], 5).astype({"close": object})
    bars.loc[1, "close"] = "oops"
    bars.loc[3, "volume"] = -3
    bars = pd.concat([bars, bars.iloc[[0]]], ignore_index=True)  # an exact duplicate
    report = store.write_bars(bars, "1d", source="feed.csv")
    assert report.rows_in == 6
    assert (report.inserted, report.rejected, report.duplicates) == (3, 2, 1)
    assert (
        report.rows_in
        == report.inserted + report.updated + report.unchanged + report.rejected + report.duplicates
    )
    rejects = store.rejects(report.ingest_id)
    assert rejects["row"].tolist() == [2, 4]
    assert rejects["source"].unique().tolist() == ["feed.csv"]
    assert "not a number: 'oops'" in rejects["reason"].iloc[0]
    log = store.ingest_log()
    assert log.loc[0, ["inserted", "rejected", "duplicates"]].tolist() == [3, 2, 1]


def test_strict_write_changes_nothing(store: MarketStore) -> None:
    store.write_bars(make_bars(["A"], 5), "1d")
    before = dump(store)
    bad = make_bars(["B"], 5)
    bad.loc[2, "high"] = bad.loc[2, "low"] / 2
    with pytest.raises(ValidationError, match="row 3, field 'high,"):
        store.write_bars(bad, "1d", strict=True)
    assert_same(before, dump(store))
    assert len(store.ingest_log()) == 1


class FailingStore(MarketStore):
    """Fault injection: the ingest log write fails after the bars were upserted."""

    def _log_ingest(self, con, report, result, started):  # type: ignore[no-untyped-def]
        raise OSError("disk full (injected)")


def test_failure_mid_write_leaves_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = MarketStore(path)
    store.write_bars(make_bars(["A"], 20), "1d")
    before = dump(store)
    changed = make_bars(["A", "B"], 30, seed=5)
    with pytest.raises(OSError, match="injected"):
        FailingStore(path).write_bars(changed, "1d")
    assert_same(before, dump(MarketStore(path)))


def test_killed_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    """A writer killed with SIGKILL inside its transaction, after the bars went in."""
    path = tmp_path / "s.duckdb"
    MarketStore(path).write_bars(make_bars(["SEED"], 5), "1d")
    before = dump(MarketStore(path))
    script = textwrap.dedent(
        f"""
        import time, pandas as pd
        from quantdesk.data import MarketStore

        class Slow(MarketStore):
            # Called inside the write transaction, after the bars upsert.
            def _upsert_symbols(self, con, *args):
                n = con.execute("SELECT count(*) FROM bars WHERE symbol = 'BIG'").fetchall()[0][0]
                print("inside transaction", n, flush=True)
                time.sleep(60)

        ts = pd.date_range("2000-01-01", periods=200_000, freq="1min", tz="UTC")
        bars = pd.DataFrame({{"symbol": "BIG", "ts": ts, "open": 1.0, "high": 2.0,
                              "low": 0.5, "close": 1.5, "volume": 1.0}})
        Slow({str(path)!r}).write_bars(bars, "1min")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    # The writer sees its own 200k uncommitted rows...
    assert proc.stdout.readline().split() == ["inside", "transaction", "200000"]
    proc.kill()
    proc.wait()
    # ...and after the kill the store is exactly as before: no partial ingest.
    assert_same(before, dump(MarketStore(path)))


@pytest.mark.timeout(120)  # bounds a hang; the test never depends on how fast anything runs
def test_store_waits_for_a_lock_and_times_out_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder keeps its lock until told, so neither outcome depends on timing."""
    path = tmp_path / "s.duckdb"
    MarketStore(path).write_bars(make_bars(["A"], 5), "1d")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); "
            "print('held', flush=True); sys.stdin.readline(); c.close()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusyError, match="held the lock"):
            MarketStore(path, read_only=True, lock_timeout=0.5).bars()

        # A patient reader gets in once the holder lets go, and sees no error.  The holder
        # is released only after the reader has met the lock and backed off once: the
        # store's back-off wait is the real one, wrapped to say so.
        waiting = threading.Event()

        def back_off(seconds: float) -> None:
            waiting.set()
            time.sleep(seconds)

        monkeypatch.setattr(store_module, "time", types.SimpleNamespace(
            monotonic=time.monotonic, sleep=back_off
        ))  # fmt: skip
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            patient = pool.submit(MarketStore(path, read_only=True, lock_timeout=60).bars)
            assert waiting.wait(60), "the reader never met the lock"
            assert holder.stdin is not None
            holder.stdin.write("release\n")
            holder.stdin.flush()
            assert len(patient.result(timeout=60)) == 5
    finally:
        holder.kill()
        holder.wait()


def test_daily_bars_aggregate_from_intraday_in_the_symbols_timezone(store: MarketStore) -> None:
    rng = np.random.default_rng(3)
    # 1-minute bars spanning NY evenings: 23:00-01:00 UTC crosses the UTC date line but
    # not the New York one, so UTC and NY daily buckets differ.
    ts = pd.date_range("2021-03-01 13:00", "2021-03-05 02:00", freq="1min", tz="UTC")
    close = 50 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(ts))))
    open_ = np.r_[close[0], close[:-1]]
    bars = pd.DataFrame(
        {
            "symbol": "NYX",
            "ts": ts,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.integers(1, 100, len(ts)).astype(float),
        }
    )
    meta = pd.DataFrame(
        [
            {
                "symbol": "NYX",
                "name": "NY",
                "asset_class": "equity",
                "currency": "USD",
                "timezone": "America/New_York",
                "source": "t",
            }
        ]
    )
    store.write_bars(bars, "1min", metadata=meta)

    day = bars.ts.dt.tz_convert("America/New_York").dt.tz_localize(None).dt.normalize()
    ref = bars.groupby(day).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    )
    ref.index = ref.index.tz_localize("UTC")
    got = store.bars("NYX", timeframe="1d").set_index("ts")
    pd.testing.assert_frame_equal(
        got.drop(columns="symbol"), ref, check_names=False, check_freq=False, check_index_type=False
    )

    hourly = store.bars("NYX", timeframe="1h", start="2021-03-02 00:00", end="2021-03-02 02:00")
    assert hourly["ts"].tolist() == list(
        pd.date_range("2021-03-02", periods=3, freq="1h", tz="UTC")
    )
    first_hour = bars[(bars.ts >= "2021-03-02") & (bars.ts < "2021-03-02 01:00")]
    assert hourly["volume"].iloc[0] == first_hour["volume"].sum()
    assert hourly["open"].iloc[0] == first_hour["open"].iloc[0]
    assert hourly["close"].iloc[0] == first_hour["close"].iloc[-1]


def test_panel_is_wide_and_matches_bars(store: MarketStore) -> None:
    bars = make_bars(["A", "B", "C"], 40)
    bars = bars[~((bars.symbol == "C") & (bars.index % 7 == 0))]  # C has holes
    store.write_bars(bars, "1d")
    panel = store.panel("close", symbols=["C", "A"], start="2020-01-10", end="2020-02-03")
    assert list(panel.columns) == ["A", "C"]
    assert panel.index.name == "ts"
    assert panel.index.min() >= pd.Timestamp("2020-01-10", tz="UTC")
    assert panel.index.max() == pd.Timestamp("2020-02-03", tz="UTC")  # end is inclusive
    a = bars[bars.symbol == "A"].set_index("ts")["close"]
    pd.testing.assert_series_equal(
        panel["A"], a.loc[panel.index], check_names=False, check_freq=False
    )
    assert panel["C"].isna().sum() > 0
    with pytest.raises(ValueError, match="unknown field"):
        store.panel("close; DROP TABLE bars")


def test_sql_binds_parameters(store: MarketStore) -> None:
    store.write_bars(make_bars(["A"], 3), "1d")
    hostile = "A' OR '1'='1"
    assert store.sql("SELECT * FROM bars WHERE symbol = ?", [hostile]).empty
    assert len(store.sql("SELECT * FROM bars WHERE symbol = $s", {"s": "A"})) == 3


def test_read_only_store(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="quantdesk ingest sample"):
        MarketStore(tmp_path / "missing.duckdb", read_only=True)
    MarketStore(tmp_path / "s.duckdb").create()  # opening alone creates nothing
    with pytest.raises(PermissionError):
        MarketStore(tmp_path / "s.duckdb", read_only=True).write_bars(make_bars(["A"], 2), "1d")


def test_ticks_roundtrip_idempotent(store: MarketStore) -> None:
    ticks = pd.DataFrame(
        {
            "symbol": ["A", "A", "A", "B"],
            "ts": pd.to_datetime(
                ["2020-01-02 14:30:00"] * 2 + ["2020-01-02 14:30:01"] * 2, utc=True
            ),
            "price": [10.0, 10.1, 10.2, 5.0],
            "size": [1.0, 2.0, 3.0, 4.0],
        }
    )
    assert store.write_ticks(ticks).inserted == 4
    assert store.write_ticks(ticks).inserted == 0
    out = store.ticks("A")
    assert out["price"].tolist() == [10.0, 10.1, 10.2]
