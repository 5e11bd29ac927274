"""Every bad row is rejected with its row number, field and reason; none is lost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.data.validation import ValidationError, validate_bars, validate_ticks

GOOD = {
    "symbol": "A",
    "ts": "2020-01-02",
    "open": 10.0,
    "high": 11.0,
    "low": 9.0,
    "close": 10.5,
    "volume": 100.0,
}


def frame(*overrides: dict) -> pd.DataFrame:
    rows = []
    for i, o in enumerate(overrides):
        row = dict(GOOD, ts=str(pd.Timestamp("2020-01-02") + pd.Timedelta(days=i)))
        row.update(o)
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("override", "field", "reason"),
    [
        ({"close": np.nan}, "close", "missing price"),
        ({"open": 0.0, "low": 0.0}, "open", "non-positive price"),
        ({"low": -1.0}, "low", "non-positive price"),
        ({"high": 8.0}, "high", "high < low"),
        ({"open": 12.0}, "open", "open outside [low, high]"),
        ({"close": 8.5}, "close", "close outside [low, high]"),
        ({"volume": -5.0}, "volume", "negative volume"),
        ({"ts": "2020-13-45"}, "ts", "unparseable timestamp '2020-13-45'"),
        ({"ts": None}, "ts", "missing timestamp"),
        ({"ts": "2020-01-03 15:30"}, "ts", "1d bar must start at 00:00 UTC"),
        ({"symbol": ""}, "symbol", "missing symbol"),
        ({"close": "ten"}, "close", "not a number: 'ten'"),
        ({"high": np.inf}, "high", "inf price"),
    ],
)
def test_each_check_names_row_field_and_reason(override: dict, field: str, reason: str) -> None:
    df = frame({}, override, {})
    result = validate_bars(df, source="prices.csv")
    assert len(result.good) == 2
    assert len(result.rejects) == 1
    reject = result.rejects.iloc[0]
    assert reject["source"] == "prices.csv"
    assert reject["row"] == 2
    assert field in reject["field"].split(",")
    assert reason in reject["reason"]


def test_strict_raises_at_first_bad_row_with_file_row_and_field() -> None:
    df = frame({}, {}, {"volume": -1.0}, {"high": 1.0})
    with pytest.raises(ValidationError) as info:
        validate_bars(df, source="x.csv", strict=True)
    assert info.value.row == 3
    assert str(info.value) == "x.csv, row 3, field 'volume': negative volume"


def test_exact_duplicates_collapse_and_are_counted() -> None:
    df = pd.concat([frame({}, {}), frame({})], ignore_index=True)
    result = validate_bars(df)
    assert len(result.good) == 2
    assert result.duplicates == 1
    assert result.rejects.empty


def test_conflicting_duplicates_are_all_rejected_naming_each_other() -> None:
    df = pd.concat([frame({}, {}), frame({"close": 10.9})], ignore_index=True)
    result = validate_bars(df)
    assert result.good["ts"].tolist() == [pd.Timestamp("2020-01-03", tz="UTC")]
    assert sorted(result.rejects["row"]) == [1, 3]
    assert all("conflicting values (rows 1, 3)" in r for r in result.rejects["reason"])


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match=r"f.csv, field 'volume': missing column"):
        validate_bars(frame({}).drop(columns="volume"), source="f.csv")


def test_intraday_bars_must_align_to_their_timeframe() -> None:
    df = frame({"ts": "2020-01-02 14:31:00"}, {"ts": "2020-01-02 14:35:00"})
    result = validate_bars(df, "5min")
    assert result.rejects["row"].tolist() == [1]
    assert "5min boundary" in result.rejects["reason"].iloc[0]


def test_good_rows_are_canonical() -> None:
    result = validate_bars(frame({}, {"ts": "2020-01-06T00:00:00+00:00"}))
    assert str(result.good["ts"].dtype) == "datetime64[ns, UTC]"
    assert result.good["close"].dtype == np.float64


def test_ticks_validation() -> None:
    ticks = pd.DataFrame(
        {
            "symbol": ["A", "A", "A"],
            "ts": ["2020-01-02 10:00", "x", "2020-01-02 10:01"],
            "price": [1.0, 1.0, -1.0],
            "size": [1, 1, 1],
        }
    )
    result = validate_ticks(ticks, source="t.csv")
    assert len(result.good) == 1
    assert result.rejects["row"].tolist() == [2, 3]
    assert result.rejects["field"].tolist() == ["ts", "price"]


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(["", "abc", "1e3", "-2"]),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "symbol": st.sampled_from(["A", "B", "", None]),
                "ts": st.sampled_from(
                    ["2020-01-02", "2020-01-03", "junk", None, "2020-01-02 12:00"]
                ),
                "open": cells,
                "high": cells,
                "low": cells,
                "close": cells,
                "volume": cells,
            }
        ),
        min_size=1,
        max_size=25,
    )
)
def test_no_row_is_lost(rows: list[dict]) -> None:
    """Property: every input row is accepted, rejected, or counted as an exact duplicate."""
    df = pd.DataFrame(rows).astype(object)
    result = validate_bars(df)
    assert len(result.good) + len(result.rejects) + result.duplicates == len(df)
    assert result.rejects["row"].is_unique
    good = result.good
    assert (good["close"] > 0).all()
    prices = good[["open", "high", "low"]]
    # open, high and low are all there (and positive) or all missing (a close-only bar)
    assert ((prices > 0).all(axis=1) | prices.isna().all(axis=1)).all()
    assert not (good["high"] < good["low"]).any()
    assert not good.duplicated(["symbol", "ts"]).any()
