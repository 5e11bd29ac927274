"""The store's regimes table on a real DuckDB file: idempotent upserts, versions, validation."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from quantdesk.data import MarketStore, ValidationError
from quantdesk.data.schemas import REGIME_COLUMNS, REGIME_PROBABILITY_COLUMNS

VOL = ("low", "medium", "high")
TREND = ("bearish", "neutral", "bullish")


def regimes(
    symbol: str = "SPX",
    days: int = 30,
    version: str = "regimes/v1",
    seed: int = 0,
    start: str = "2024-01-02",
) -> pd.DataFrame:
    """Return a valid long regime frame (random probabilities, state = their argmax)."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(9), days)
    states = probs.argmax(axis=1)
    frame = pd.DataFrame(probs, columns=list(REGIME_PROBABILITY_COLUMNS))
    frame.insert(0, "symbol", symbol)
    frame.insert(1, "ts", pd.bdate_range(start, periods=days, tz="UTC").as_unit("ns"))
    frame.insert(2, "model_version", version)
    frame.insert(3, "state", states)
    frame.insert(4, "vol_label", [VOL[s // 3] for s in states])
    frame.insert(5, "trend_label", [TREND[s % 3] for s in states])
    return frame


def test_columns_are_the_regime_contract() -> None:
    assert REGIME_COLUMNS[:6] == (
        "symbol",
        "ts",
        "model_version",
        "state",
        "vol_label",
        "trend_label",
    )
    assert tuple(f"p_{v}_{t}" for v in VOL for t in TREND) == REGIME_PROBABILITY_COLUMNS


def test_roundtrip_and_idempotent_upsert(store: MarketStore) -> None:
    frame = pd.concat([regimes("SPX"), regimes("IXIC", seed=1)], ignore_index=True)
    assert store.write_regimes(frame) == 60
    out = store.regimes()
    assert list(out.columns) == [*REGIME_COLUMNS, "written_at"]
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    expected = frame.sort_values(["symbol", "ts"], ignore_index=True)
    pd.testing.assert_frame_equal(
        out.drop(columns="written_at"), expected, check_dtype=False, check_exact=True
    )
    before = store.sql("SELECT * FROM regimes ORDER BY ALL")
    # the same rows again, shuffled: nothing changes, not even written_at
    assert store.write_regimes(frame.sample(frac=1, random_state=3)) == 0
    pd.testing.assert_frame_equal(store.sql("SELECT * FROM regimes ORDER BY ALL"), before)
    # other filters
    spx = store.regimes("SPX", start="2024-01-10", end="2024-01-12")
    assert spx["ts"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-10", "2024-01-11", "2024-01-12"]
    assert store.regimes(["IXIC"])["symbol"].unique().tolist() == ["IXIC"]


def test_changed_rows_are_updated_and_counted(store: MarketStore) -> None:
    frame = regimes()
    store.write_regimes(frame)
    fixed = frame.copy()
    fixed.loc[4, list(REGIME_PROBABILITY_COLUMNS)] = [1.0] + [0.0] * 8
    fixed.loc[4, ["state", "vol_label", "trend_label"]] = [0, "low", "bearish"]
    assert store.write_regimes(fixed) == 1
    row = store.regimes().iloc[4]
    assert (row["state"], row["p_low_bearish"]) == (0, 1.0)
    assert len(store.regimes()) == 30


def test_counts_by_symbol_of_one_write(store: MarketStore) -> None:
    spx, ixic = regimes("SPX"), regimes("IXIC", seed=1)
    assert store.write_regimes_by_symbol(pd.concat([spx, ixic])) == {"SPX": 30, "IXIC": 30}
    fixed = ixic.copy()
    fixed.loc[4, list(REGIME_PROBABILITY_COLUMNS)] = [1.0] + [0.0] * 8
    fixed.loc[4, ["state", "vol_label", "trend_label"]] = [0, "low", "bearish"]
    more = regimes("DJI", days=5, seed=2)
    counts = store.write_regimes_by_symbol(pd.concat([spx, fixed, more]))
    assert counts == {"SPX": 0, "IXIC": 1, "DJI": 5}
    assert store.write_regimes(pd.concat([spx, fixed, more])) == 0


def test_versions_newest_written_wins_and_globs_select(store: MarketStore) -> None:
    store.write_regimes(regimes(version="regimes/v1"))
    # written_at must differ: wait for the clock itself to pass the stored time (a fixed
    # sleep can be shorter than a coarse clock's tick).
    first = store.regimes()["written_at"].max()
    while pd.Timestamp.now(tz="UTC") <= first:
        pass
    newer = regimes(version="regimes/v2", seed=4).iloc[10:]
    store.write_regimes(newer)
    both = store.regimes("SPX")
    assert len(both) == 30  # one row per day
    assert both["model_version"].tolist() == ["regimes/v1"] * 10 + ["regimes/v2"] * 20
    assert (store.regimes(model_version="regimes/v1")["model_version"] == "regimes/v1").all()
    assert len(store.regimes(model_version="regimes/v1")) == 30
    assert len(store.regimes(model_version="regimes/v2")) == 20
    assert len(store.regimes(model_version="regimes/*")) == 30
    assert store.regimes(model_version="nope").empty
    versions = store.regime_versions()
    assert versions[["model_version", "rows"]].values.tolist() == [
        ["regimes/v1", 30],
        ["regimes/v2", 20],
    ]


def test_walk_forward_versions_stack_into_one_series(store: MarketStore) -> None:
    # per-refit versions (wf-...) cover consecutive periods; a glob reads the whole run
    first = regimes(version="run/v1/wf-20240101", days=10)
    second = regimes(version="run/v1/wf-20240115", days=10, start="2024-01-16", seed=2)
    store.write_regimes(pd.concat([first, second]))
    run = store.regimes("SPX", model_version="run/v1/*")
    assert len(run) == 20 and run["ts"].is_monotonic_increasing
    assert run["model_version"].value_counts().to_dict() == {
        "run/v1/wf-20240101": 10,
        "run/v1/wf-20240115": 10,
    }


@pytest.mark.parametrize(
    ("change", "row", "field", "reason"),
    [
        (lambda f: f.drop(columns="p_high_bullish"), None, "p_high_bullish", "missing column"),
        (
            lambda f: f.assign(vol_label=f["vol_label"].where(f.index != 3, "extreme")),
            4,
            "vol_label",
            "not one of",
        ),
        (
            lambda f: f.assign(p_low_bearish=f["p_low_bearish"].where(f.index != 6, 1.5)),
            7,
            "p_low_bearish",
            r"outside \[0, 1\]",
        ),
        (
            lambda f: f.assign(p_low_bearish=f["p_low_bearish"].where(f.index != 2, -0.01)),
            3,
            "p_low_bearish",
            r"outside \[0, 1\]",
        ),
        (lambda f: f.assign(state=(f["state"] + (f.index == 5)) % 9), 6, "state", "does not match"),
        (lambda f: f.assign(state=f["state"].where(f.index != 1, 9)), 2, "state", "0..8"),
        (lambda f: f.assign(symbol=f["symbol"].where(f.index != 8, None)), 9, "symbol", "missing"),
        (
            lambda f: f.assign(ts=f["ts"].astype(object).where(f.index != 0, "yesterday")),
            1,
            "ts",
            "not a timestamp",
        ),
        (lambda f: pd.concat([f, f.iloc[[3]]], ignore_index=True), 31, "ts", "duplicate"),
    ],
)
def test_bad_rows_raise_naming_row_and_column_and_write_nothing(
    store: MarketStore, change, row, field, reason
) -> None:
    store.write_regimes(regimes(symbol="OLD"))
    before = store.sql("SELECT * FROM regimes ORDER BY ALL")
    with pytest.raises(ValidationError, match=reason) as info:
        store.write_regimes(change(regimes()), source="unit")
    assert (info.value.row, info.value.field) == (row, field)
    assert str(info.value).startswith("unit")
    pd.testing.assert_frame_equal(store.sql("SELECT * FROM regimes ORDER BY ALL"), before)


def test_probabilities_must_sum_to_one(store: MarketStore) -> None:
    frame = regimes()
    frame.loc[12, "p_medium_neutral"] += 0.01
    with pytest.raises(ValidationError, match=r"sum to 1\.01") as info:
        store.write_regimes(frame)
    assert (info.value.row, info.value.field) == (13, "p_*")
    assert store.regimes().empty
    # rounding noise well inside the tolerance is accepted
    frame.loc[12, "p_medium_neutral"] -= 0.01 - 1e-9
    assert store.write_regimes(frame) == 30


def test_naive_times_are_utc(store: MarketStore) -> None:
    frame = regimes(days=3)
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    store.write_regimes(frame)
    assert store.regimes()["ts"].dt.strftime("%Y-%m-%d %z").tolist()[0] == "2024-01-02 +0000"


def test_a_store_file_from_before_regimes_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE bars (symbol VARCHAR, ts TIMESTAMPTZ)")
    con.close()
    old = MarketStore(path, read_only=True)
    out = old.regimes()
    assert out.empty and list(out.columns) == [*REGIME_COLUMNS, "written_at"]
    # opening it read-write brings the schema up to date
    MarketStore(path).write_regimes(regimes(days=2))
    assert len(MarketStore(path, read_only=True).regimes()) == 2


def test_regimes_live_beside_bars(store: MarketStore) -> None:
    from ..conftest import make_bars

    store.write_bars(make_bars(["SPX"], 5), "1d")
    store.write_regimes(regimes(days=5))
    assert store.symbols() == ["SPX"]
    assert len(store.bars()) == 5 and len(store.regimes()) == 5
