"""Snapshots of the store (issue 26): equality with the store, versions, pruning, failures.

The store is a real DuckDB file; the object store is moto's S3 server run as its own
process (``s3_server`` in conftest), reached over HTTP with credentials from the
environment only.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantdesk.data import MarketStore, SnapshotReader
from quantdesk.data.schemas import REGIME_PROBABILITY_COLUMNS
from quantdesk.data.snapshot import SnapshotError, SnapshotStorageError, collect_garbage
from quantdesk.data.snapshot.layout import symbol_bucket

from ..conftest import S3_KEY_ID, S3_SECRET, make_bars

DAILY = ["AAA", "BBB", "CCC", "DDD", "EEE", "SPX"]
VOL, TREND = ("low", "medium", "high"), ("bearish", "neutral", "bullish")


def minute_bars(symbol: str, start: str, end: str, seed: int) -> pd.DataFrame:
    """Return valid 1-minute bars of ``symbol`` from ``start`` to ``end`` (UTC)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, end, freq="1min", tz="UTC")
    close = 50 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(ts))))
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.integers(1, 100, len(ts)).astype(float),
        }
    )


def regime_rows(symbol: str, days: int, version: str, seed: int) -> pd.DataFrame:
    """Return a valid long regime frame (random probabilities, state = their argmax)."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(9), days)
    states = probs.argmax(axis=1)
    frame = pd.DataFrame(probs, columns=list(REGIME_PROBABILITY_COLUMNS))
    frame.insert(0, "symbol", symbol)
    frame.insert(1, "ts", pd.bdate_range("2020-11-02", periods=days, tz="UTC").as_unit("ns"))
    frame.insert(2, "model_version", version)
    frame.insert(3, "state", states)
    frame.insert(4, "vol_label", [VOL[s // 3] for s in states])
    frame.insert(5, "trend_label", [TREND[s % 3] for s in states])
    return frame


def meta(symbol: str, zone: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "symbol": symbol,
                "name": symbol,
                "asset_class": "equity",
                "currency": "USD",
                "timezone": zone,
                "source": "test",
            }
        ]
    )


def fill(store: MarketStore) -> None:
    """Daily bars over three years, intraday bars in three zones across a new year, an
    hourly-only symbol, and two regime versions."""
    store.write_bars(make_bars(DAILY, 600, start="2019-10-01"), "1d")
    # Minute bars across the turn of 2020 in New York and Tokyo time: a Tokyo day
    # starts in the previous UTC day, so its first 2021 session has bars in 2020 files.
    span = ("2020-12-30 12:00", "2021-01-02 06:00")
    store.write_bars(
        minute_bars("NYX", *span, seed=1), "1min", metadata=meta("NYX", "America/New_York")
    )
    store.write_bars(minute_bars("TKY", *span, seed=2), "1min", metadata=meta("TKY", "Asia/Tokyo"))
    store.write_bars(minute_bars("UTX", *span, seed=3), "1min")
    hourly = minute_bars("HRX", "2020-12-01", "2021-01-31", seed=4).iloc[::60]
    store.write_bars(hourly, "1h")
    store.write_regimes(regime_rows("AAA", 80, "regimes/v1", 5))
    store.write_regimes(regime_rows("BBB", 80, "regimes/v1", 6))
    store.write_regimes(regime_rows("AAA", 40, "regimes-wf/2021", 7))


@pytest.fixture(scope="module")
def snapshotted(tmp_path_factory: pytest.TempPathFactory) -> tuple[MarketStore, SnapshotReader]:
    root = tmp_path_factory.mktemp("snapshot")
    store = MarketStore(root / "store.duckdb")
    fill(store)
    version = store.snapshot(root / "snap", tables="bars,regimes")
    assert version.version == 1 and version.created
    return store, SnapshotReader(root / "snap")


def assert_same_reads(store: Any, reader: SnapshotReader, **query: Any) -> None:
    """Assert the reader answers ``bars`` and ``panels`` as the store does (or fails alike)."""
    try:
        expected = store.bars(**query)
    except Exception as exc:
        with pytest.raises(type(exc)) as raised:
            reader.bars(**query)
        assert str(raised.value) == str(exc)
        return
    got = reader.bars(**query)
    pd.testing.assert_frame_equal(got, expected)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    want_panels, got_panels = store.panels(**query), reader.panels(**query)
    assert list(got_panels) == list(want_panels)
    for field, frame in want_panels.items():
        pd.testing.assert_frame_equal(got_panels[field], frame)
        assert got_panels[field].attrs == frame.attrs


GRID: list[dict[str, Any]] = [
    {},
    {"symbols": ["CCC", "AAA"]},
    {"symbols": "SPX", "start": "2020-06-01", "end": "2021-02-01"},
    {"symbols": DAILY, "start": "2020-12-31 00:00", "end": "2021-01-04 12:30"},
    {"timeframe": "1w"},
    {"symbols": ["BBB", "EEE"], "timeframe": "1mo", "start": "2020-01-01"},
    {"symbols": ["NYX", "TKY", "UTX"], "timeframe": "1d"},
    {
        "symbols": ["NYX", "TKY", "UTX"],
        "timeframe": "1d",
        "start": "2021-01-01",
        "end": "2021-01-01",
    },
    {"symbols": "TKY", "timeframe": "1h", "start": "2020-12-31 23:00", "end": "2021-01-01 02:00"},
    {"symbols": ["NYX"], "timeframe": "1min", "start": "2021-01-01", "end": "2021-01-01"},
    {"symbols": ["TKY", "NYX"], "timeframe": "15min", "end": "2020-12-31"},
    {"timeframe": "1h"},
    {"symbols": ["HRX", "UTX"], "timeframe": "4h", "start": "2021-01-01"},
    {"symbols": ["HRX"], "timeframe": "1w"},
    {"symbols": ["NYX", "TKY"], "timeframe": "1mo"},
    {"symbols": ["AAA"], "start": "2030-01-01"},
    {"symbols": []},
    {"symbols": ["AAA", "NOPE"]},
    {"symbols": ["HRX"], "timeframe": "1min"},
    {"symbols": ["AAA"], "timeframe": "1h"},
]


@pytest.mark.parametrize("query", GRID, ids=[json.dumps(q, sort_keys=True) for q in GRID])
def test_reader_answers_as_the_store_does(
    snapshotted: tuple[MarketStore, SnapshotReader], query: dict[str, Any]
) -> None:
    store, reader = snapshotted
    assert_same_reads(store, reader, **query)


_DAYS = list(pd.date_range("2019-09-25", "2021-06-30", freq="D"))
_BOUND = st.one_of(
    st.none(),
    st.sampled_from(_DAYS).map(lambda d: d.strftime("%Y-%m-%d")),
    st.tuples(st.sampled_from(_DAYS), st.integers(0, 24 * 60 - 1)).map(
        lambda p: (p[0] + pd.Timedelta(minutes=p[1])).strftime("%Y-%m-%d %H:%M")
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    symbols=st.one_of(
        st.none(), st.lists(st.sampled_from([*DAILY, "NYX", "TKY", "UTX", "HRX"]), max_size=4)
    ),
    start=_BOUND,
    end=_BOUND,
    timeframe=st.sampled_from(["1d", "1w", "1mo", "1h", "30min", "1min"]),
)
def test_reader_answers_as_the_store_does_for_any_query(
    snapshotted: tuple[MarketStore, SnapshotReader],
    symbols: list[str] | None,
    start: str | None,
    end: str | None,
    timeframe: str,
) -> None:
    store, reader = snapshotted
    assert_same_reads(store, reader, symbols=symbols, start=start, end=end, timeframe=timeframe)


def test_symbols_metadata_timeframes_and_regimes_match_the_store(
    snapshotted: tuple[MarketStore, SnapshotReader],
) -> None:
    store, reader = snapshotted
    assert reader.symbols() == store.symbols()
    pd.testing.assert_frame_equal(reader.metadata(), store.metadata())
    pd.testing.assert_frame_equal(reader.metadata(["TKY"]), store.metadata(["TKY"]))
    pd.testing.assert_frame_equal(reader.timeframes(), store.timeframes())
    for query in (
        {},
        {"symbols": "AAA"},
        {"symbols": ["BBB", "AAA"], "start": "2020-12-01", "end": "2021-01-15"},
        {"model_version": "regimes/v1"},
        {"model_version": "regimes-wf/*", "symbols": "AAA"},
        {"symbols": "SPX"},
    ):
        pd.testing.assert_frame_equal(reader.regimes(**query), store.regimes(**query))
    assert len(store.regimes()) > 0


def test_a_reader_travels_to_another_process_as_its_url_and_version(
    snapshotted: tuple[MarketStore, SnapshotReader],
) -> None:
    store, reader = snapshotted
    reader.bars("AAA")  # its connection is open here
    copy = pickle.loads(pickle.dumps(reader))
    assert (copy.url, copy.version) == (reader.url, reader.version)
    pd.testing.assert_frame_equal(copy.bars(["BBB", "TKY"]), store.bars(["BBB", "TKY"]))


def test_manifest_records_what_the_version_holds(
    snapshotted: tuple[MarketStore, SnapshotReader],
) -> None:
    store, reader = snapshotted
    doc = reader.manifest
    assert doc["version"] == reader.version == 1 and reader.versions() == [1]
    assert doc["store"]["schema_version"] >= 1
    assert doc["libraries"]["quantdesk"] and doc["libraries"]["duckdb"]
    bars = doc["tables"]["bars"]
    stored = store.sql("SELECT count(*) AS n FROM bars")["n"].iloc[0]
    assert bars["rows"] == sum(f["rows"] for f in bars["files"]) == stored
    root = Path(reader.location.root)
    for entry in bars["files"]:
        table = pq.read_table(root / entry["path"]).to_pandas()
        assert len(table) == entry["rows"]
        assert table["symbol"].min() == entry["min_symbol"]
        assert table["symbol"].max() == entry["max_symbol"]
        assert table["ts"].min() == pd.Timestamp(entry["min_ts"])
        assert table["ts"].max() == pd.Timestamp(entry["max_ts"])
        # Each file holds one partition: one timeframe, one symbol bucket, one UTC year.
        part = entry["partition"]
        assert (table["ts"].dt.year == part["year"]).all()
        # Intraday bars are cut by month as well; days are not.
        if part["timeframe"] in ("1d", "1w", "1mo"):
            assert "month" not in part
        else:
            assert (table["ts"].dt.month == part["month"]).all()
        assert {symbol_bucket(s) for s in table["symbol"]} == {part["bucket"]}
        assert f"timeframe={part['timeframe']}/" in entry["path"]
        assert entry["sha256"][:32] in entry["path"]
        # Rows are sorted by symbol then time inside a file (row groups can be skipped).
        assert table[["symbol", "ts"]].equals(
            table[["symbol", "ts"]].sort_values(["symbol", "ts"], ignore_index=True)
        )


def test_a_narrow_read_opens_only_its_files(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    fill(store)
    store.snapshot(tmp_path / "snap")
    reader = SnapshotReader(tmp_path / "snap")
    files = reader.manifest["tables"]["bars"]["files"]
    got = reader.bars("AAA", start="2020-03-02", end="2020-03-31")
    pd.testing.assert_frame_equal(got, store.bars("AAA", start="2020-03-02", end="2020-03-31"))
    opened = [f for f in files if str(tmp_path / "snap" / f["path"]) in reader.files_read]
    assert len(opened) == 1
    assert opened[0]["partition"] == {
        "timeframe": "1d",
        "bucket": symbol_bucket("AAA"),
        "year": 2020,
    }

    # Deleting every file the narrow read does not need leaves it working...
    for entry in files:
        if entry is not opened[0]:
            os.unlink(tmp_path / "snap" / entry["path"])
    fresh = SnapshotReader(tmp_path / "snap")
    pd.testing.assert_frame_equal(fresh.bars("AAA", start="2020-03-02", end="2020-03-31"), got)
    # ... and a read that needs a deleted file says which snapshot cannot be read.
    with pytest.raises(SnapshotStorageError, match="version 1: a file of the version"):
        fresh.bars("BBB")


def test_second_snapshot_writes_only_changed_partitions_and_old_versions_stay(
    tmp_path: Path,
) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(DAILY, 500, start="2019-01-01"), "1d")
    url = tmp_path / "snap"
    first = store.snapshot(url)
    before = store.bars()
    v1 = {f["path"]: f for f in first.manifest["tables"]["bars"]["files"]}
    stamps = {p: os.stat(url / p).st_mtime_ns for p in v1}

    again = store.snapshot(url)  # nothing changed: no new version
    assert (again.version, again.created) == (1, False)

    # A vendor correction of one 2019 bar of CCC, and five new sessions of AAA in 2020.
    fix = before[(before.symbol == "CCC") & (before.ts == "2019-03-05")].copy()
    fix["close"] *= 1.01
    fix["high"] = np.maximum(fix["high"], fix["close"])
    store.write_bars(fix, "1d")
    more = make_bars(["AAA"], 5, seed=9, start="2020-12-01")
    store.write_bars(more, "1d")
    second = store.snapshot(url)
    assert (second.version, second.created) == (2, True)

    v2 = {f["path"]: f for f in second.manifest["tables"]["bars"]["files"]}
    new = sorted(set(v2) - set(v1))
    gone = sorted(set(v1) - set(v2))
    assert len(new) == len(gone) == 2
    assert {(v2[p]["partition"]["bucket"], v2[p]["partition"]["year"]) for p in new} == {
        (symbol_bucket("CCC"), 2019),
        (symbol_bucket("AAA"), 2020),
    }
    accounts = {t.table: t for t in second.tables}
    assert accounts["bars"].written_files == 2
    assert accounts["bars"].written_rows == sum(v2[p]["rows"] for p in new)
    assert accounts["symbols"].written_files == 0
    # Unchanged partitions keep their files, untouched.
    for path in set(v1) & set(v2):
        assert os.stat(url / path).st_mtime_ns == stamps[path]
        assert v2[path]["version"] == 1

    old, now = SnapshotReader(url, as_of=1), SnapshotReader(url)
    assert (old.version, now.version, now.versions()) == (1, 2, [1, 2])
    pd.testing.assert_frame_equal(old.bars(), before)
    pd.testing.assert_frame_equal(now.bars(), store.bars())
    assert len(now.bars("AAA")) == len(old.bars("AAA")) + 5


def test_a_new_session_of_minute_bars_rewrites_only_its_month(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    for i, symbol in enumerate(["MIN1", "MIN2"]):
        store.write_bars(minute_bars(symbol, "2021-01-04", "2021-03-10", seed=i), "5min")
    url = tmp_path / "snap"
    first = store.snapshot(url)
    months = {f["partition"]["month"] for f in first.manifest["tables"]["bars"]["files"]}
    assert months == {1, 2, 3}
    store.write_bars(minute_bars("MIN1", "2021-03-11 14:30", "2021-03-11 21:00", seed=5), "5min")
    second = store.snapshot(url)
    v1 = {f["path"] for f in first.manifest["tables"]["bars"]["files"]}
    new = [f for f in second.manifest["tables"]["bars"]["files"] if f["path"] not in v1]
    assert [(f["partition"]["month"], f["min_symbol"]) for f in new] == [(3, "MIN1")]
    pd.testing.assert_frame_equal(
        SnapshotReader(url).bars(timeframe="1h"), store.bars(timeframe="1h")
    )


def test_as_of_a_version_that_does_not_exist_says_which_exist(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(["AAA"], 20), "1d")
    with pytest.raises(SnapshotError, match="no snapshot published"):
        SnapshotReader(tmp_path / "snap")
    store.snapshot(tmp_path / "snap")
    with pytest.raises(SnapshotError, match="no version 7; published: 1"):
        SnapshotReader(tmp_path / "snap", as_of=7)
    with pytest.raises(SnapshotError, match="holds no regimes"):
        SnapshotReader(tmp_path / "snap").regimes()
    with pytest.raises(ValueError, match="unknown snapshot table 'ticks'"):
        store.snapshot(tmp_path / "snap", tables="bars,ticks")


def test_a_failed_snapshot_publishes_nothing_and_leaves_no_files(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(["AAA", "BBB", "CCC"], 300, start="2019-06-03"), "1d")
    url = tmp_path / "snap"
    store.snapshot(url)
    files_v1 = sorted(p for p in url.rglob("*") if p.is_file())

    # New sessions of every symbol in 2021, a year the snapshot has no folder for yet;
    # a plain file stands where one symbol's 2021 folder must go, so that partition's
    # upload fails after others may have been placed.
    store.write_bars(make_bars(["AAA", "BBB", "CCC"], 10, seed=2, start="2021-01-04"), "1d")
    blocker = url / "bars" / "timeframe=1d" / f"bucket={symbol_bucket('BBB')}" / "year=2021"
    blocker.write_text("in the way")
    with pytest.raises(SnapshotStorageError, match=f"writing the files of {url}"):
        store.snapshot(url)

    assert SnapshotReader(url).versions() == [1]
    left = sorted(p for p in url.rglob("*") if p.is_file())
    assert left == sorted([*files_v1, blocker])  # what the failed run placed is gone
    assert not (url / "_staging").exists()
    pd.testing.assert_frame_equal(
        SnapshotReader(url).bars(), store.bars(end="2020-12-31")
    )  # version 1 still reads whole

    blocker.unlink()
    assert store.snapshot(url).version == 2


def test_garbage_collection_deletes_only_unreferenced_files(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(["AAA", "BBB"], 300, start="2019-06-03"), "1d")
    url = tmp_path / "snap"
    store.snapshot(url)
    store.write_bars(make_bars(["AAA"], 5, seed=3, start="2020-06-01"), "1d")
    store.snapshot(url)
    # What a killed run leaves: a data file no manifest names, and its staging folder.
    some = next((url / "bars").rglob("*.parquet"))
    orphan = some.with_name("part-0123456789abcdef0123456789abcdef.parquet")
    orphan.write_bytes(some.read_bytes())
    staging = url / "_staging" / "deadbeef"
    (staging / "bars").mkdir(parents=True)
    (staging / "bars" / "part.parquet.tmp").write_bytes(b"partial")

    young = collect_garbage(str(url))  # younger than an hour: maybe a run in progress
    assert young.orphans == () and orphan.exists()
    dry = collect_garbage(str(url), min_age=pd.Timedelta(0).to_pytimedelta(), dry_run=True)
    assert sorted(dry.orphans) == sorted([str(orphan), str(staging)])
    assert orphan.exists() and not dry.deleted
    done = collect_garbage(str(url), min_age=pd.Timedelta(0).to_pytimedelta())
    assert done.deleted and not orphan.exists() and not staging.exists()
    for version in (1, 2):
        reader = SnapshotReader(url, as_of=version)
        assert len(reader.bars()) == reader.manifest["tables"]["bars"]["rows"]


# -- on an S3-compatible object store ---------------------------------------------------


def test_snapshot_on_s3_reads_as_the_store_and_never_shows_the_secret(
    s3_bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, botocore's and s3fs's included
    store = MarketStore(tmp_path / "store.duckdb")
    fill(store)
    url = f"{s3_bucket}/research/snap"
    first = store.snapshot(url, tables="bars,regimes")
    assert first.version == 1

    cache = tmp_path / "worker-cache"
    reader = SnapshotReader(url, cache_dir=cache)
    for query in GRID[:8]:
        assert_same_reads(store, reader, **query)
    pd.testing.assert_frame_equal(reader.regimes(), store.regimes())
    cached = sorted(p for p in cache.rglob("*.parquet"))
    assert cached, "the reader reads a remote snapshot through its cache"

    before = store.bars()
    store.write_bars(make_bars(["AAA"], 5, seed=9, start="2021-03-01"), "1d")
    second = store.snapshot(url, tables="bars,regimes")
    assert (second.version, {t.table: t.written_files for t in second.tables}["bars"]) == (2, 1)
    assert (reader.version, reader.versions()) == (1, [1, 2])  # it still reads version 1
    pd.testing.assert_frame_equal(reader.bars(), before)
    pd.testing.assert_frame_equal(SnapshotReader(url, as_of=1, cache_dir=cache).bars(), before)
    pd.testing.assert_frame_equal(SnapshotReader(url, cache_dir=cache).bars(), store.bars())

    # The secret and the endpoint are in no log record, no object, no cached file.
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(s3_bucket, skip_instance_cache=True)
    objects = fs.find(root)
    assert any(o.endswith("v000002.json") for o in objects)
    blobs = [fs.cat_file(o) for o in objects] + [
        p.read_bytes() for p in cache.rglob("*") if p.is_file()
    ]
    for secret in (S3_SECRET, S3_KEY_ID):
        assert not any(secret.encode() in blob for blob in blobs)
    # botocore's own debug log shows the key id (an account name) in each request's
    # signed Credential; the secret key appears in no record at any level.
    assert caplog.records
    assert not any(
        S3_SECRET in record.getMessage() or S3_SECRET in repr(record.args)
        for record in caplog.records
    )
    manifest = json.loads(fs.cat_file(f"{root}/research/snap/_manifests/v000002.json"))
    assert "127.0.0.1" not in json.dumps(manifest) and "s3://" not in json.dumps(manifest)


def test_an_unreachable_object_store_fails_clearly_and_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(["AAA"], 20), "1d")
    url = "s3://nowhere-bucket/snap"
    with pytest.raises(SnapshotStorageError, match="s3://nowhere-bucket/snap") as raised:
        store.snapshot(url)
    assert "Could not connect" in str(raised.value)
    assert S3_SECRET not in str(raised.value)
    with pytest.raises(SnapshotStorageError, match="s3://nowhere-bucket/snap"):
        SnapshotReader(url)


def test_any_fsspec_url_works_memory_included(tmp_path: Path) -> None:
    import uuid

    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(["AAA", "BBB"], 300, start="2020-06-01"), "1d")
    url = f"memory://qd-{uuid.uuid4().hex}/snap"
    assert store.snapshot(url).version == 1
    for as_of in (None, 1):
        reader = SnapshotReader(url, as_of=as_of, cache_dir=tmp_path / "cache")
        pd.testing.assert_frame_equal(reader.bars(), store.bars())
    file_url = f"file://{tmp_path / 'snap'}"
    store.snapshot(file_url)
    local = SnapshotReader(file_url)
    assert local.location.local  # read in place, no cache
    pd.testing.assert_frame_equal(local.bars("BBB"), store.bars("BBB"))


def test_cli_snapshot_prints_the_version_and_what_changed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from quantdesk.cli import app

    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(["AAA", "BBB"], 30), "1d")
    runner = CliRunner()
    url = str(tmp_path / "snap")
    args = ["data", "snapshot", url, "--store", str(store.path)]
    first = runner.invoke(app, [*args, "--tables", "bars,regimes"])
    assert first.exit_code == 0, first.output
    assert f"snapshot {url}: version 1" in first.output
    assert "bars: 60 rows in 2 files; 2 written" in first.output
    again = runner.invoke(app, [*args, "--tables", "bars,regimes", "--json"])
    doc = json.loads(again.stdout)
    assert (doc["version"], doc["created"]) == (1, False)
    listed = runner.invoke(app, ["data", "snapshots", url])
    assert listed.exit_code == 0 and "v1" in listed.output
    bad = runner.invoke(app, [*args, "--tables", "ticks"])
    assert bad.exit_code == 1 and "unknown snapshot table 'ticks'" in bad.output


def test_news_and_scores_read_as_the_news_store_does(tmp_path: Path) -> None:
    from quantdesk.data.sources.ingest import ingest_synthetic_news
    from quantdesk.data.store.news import NewsStore, ScoreKey

    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(make_bars(["AAA"], 20), "1d")
    url = tmp_path / "snap"
    # A store that has no news tables yet: the version says so, and reads are empty alike.
    store.snapshot(url, tables="bars,news,scores")
    empty = SnapshotReader(url)
    news = NewsStore(MarketStore(store.path, read_only=True))  # read-only: creates nothing
    pd.testing.assert_frame_equal(empty.news(), news.news())
    assert empty.score_keys() == news.score_keys() == []
    pd.testing.assert_frame_equal(empty.scored_news(), news.scored_news())

    ingest_synthetic_news(store, symbols=5, days=400, seed=3, start="2020-06-01")
    news = NewsStore(store)
    stored = news.news()
    rng = np.random.default_rng(0)
    positive = rng.uniform(0, 0.5, len(stored))
    scores = stored[["content_hash"]].assign(
        positive=positive, negative=0.5 - positive, neutral=0.5, score=2 * positive - 0.5
    )
    key = ScoreKey("lexicon", "1")
    news.write_scores(scores.iloc[: len(scores) // 2], key)
    news.write_scores(scores, ScoreKey("finbert", "abc", "int8"))
    version = store.snapshot(url, tables="bars,news,scores")
    assert version.version == 2
    reader = SnapshotReader(url)
    symbol = stored["symbols"].iloc[0][0]
    for query in ({}, {"symbols": symbol}, {"start": "2020-09-01", "end": "2020-12-31 12:00"}):
        pd.testing.assert_frame_equal(reader.news(**query), news.news(**query))
    assert reader.score_keys() == news.score_keys()
    pd.testing.assert_frame_equal(reader.unscored(key), news.unscored(key))
    pd.testing.assert_frame_equal(reader.unscored(None), news.unscored(None))
    assert len(reader.unscored(key)) == len(scores) - len(scores) // 2
    for query in ({}, {"key": key, "symbols": symbol}, {"start": "2021-01-01"}):
        pd.testing.assert_frame_equal(reader.scored_news(**query), news.scored_news(**query))
    # Scores are cut by the year of the story scored.
    years = {f["partition"]["year"] for f in reader.manifest["tables"]["news_scores"]["files"]}
    assert years == set(stored["ts"].dt.year)
