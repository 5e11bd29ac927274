"""A timestamp column is read one way for all its values, whatever the order of the rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.data.sources.files import read_bars_file
from quantdesk.data.timestamps import parse_timestamp_column
from quantdesk.data.validation import ValidationError


def read(values: list[str], **kwargs) -> pd.Series:
    return parse_timestamp_column(pd.Series(values, dtype="string"), **kwargs).values


def test_day_first_dates_are_never_mixed_with_month_first(tmp_path: Path) -> None:
    # bug 1 of issue 10: read value by value, 03/01 and 04/01 became March and April
    f = tmp_path / "eu.csv"
    f.write_text(
        "Date,Open,High,Low,Close\n03/01/2005,1,2,0.5,1\n04/01/2005,1,2,0.5,1\n"
        "13/01/2005,1,2,0.5,1\n14/01/2005,1,2,0.5,1\n"
    )
    result = read_bars_file(f, symbol="EU")
    assert result.good["ts"].dt.strftime("%Y-%m-%d").tolist() == [
        "2005-01-03",
        "2005-01-04",
        "2005-01-13",
        "2005-01-14",
    ]
    assert result.weekend_rows == 0  # Mon, Tue, Thu, Fri: no weekend "trading days"
    assert "day-first dates (DD/MM/YYYY)" in result.summary()


def test_a_column_that_reads_both_ways_is_refused_with_the_options(tmp_path: Path) -> None:
    f = tmp_path / "amb.csv"
    f.write_text("Date,Close\n03/01/2005,1\n04/01/2005,1\n05/01/2005,1\n")
    with pytest.raises(ValidationError, match=r"amb\.csv, field 'ts'.*--dayfirst / --monthfirst"):
        read_bars_file(f, symbol="A")
    by_day = read_bars_file(f, symbol="A", dayfirst=True).good["ts"]
    by_month = read_bars_file(f, symbol="A", dayfirst=False).good["ts"]
    assert by_day.dt.month.tolist() == [1, 1, 1] and by_day.dt.day.tolist() == [3, 4, 5]
    assert by_month.dt.month.tolist() == [3, 4, 5] and by_month.dt.day.tolist() == [1, 1, 1]


def test_a_column_that_mixes_both_readings_is_refused() -> None:
    with pytest.raises(ValidationError, match="mix day-first and month-first"):
        read(["13/01/2005", "01/13/2005"])


def test_identical_day_and_month_are_not_ambiguous() -> None:
    assert read(["01/01/2020", "02/02/2020"]).dt.strftime("%m-%d").tolist() == ["01-01", "02-02"]


def test_given_order_wins_and_impossible_dates_become_unparsed() -> None:
    out = read(["13/01/2005", "01/02/2005"], dayfirst=False)
    assert out.isna().tolist() == [True, False]
    assert out.iloc[1] == pd.Timestamp("2005-01-02")


@pytest.mark.parametrize(
    ("values", "expected", "reading"),
    [
        (["1577923200", "1577923260"], ["2020-01-02 00:00", "2020-01-02 00:01"], "epoch seconds"),
        (
            ["1577923200000", "1577923200500"],
            ["2020-01-02 00:00", "2020-01-02 00:00:00.5"],
            "milliseconds",
        ),
        (["1577923200000000000"], ["2020-01-02"], "epoch nanoseconds"),
        (["20200102", "20200103"], ["2020-01-02", "2020-01-03"], "YYYYMMDD"),
        (["192607", "192608"], ["1926-07-01", "1926-08-01"], "YYYYMM"),
    ],
)
def test_numbers_are_read_by_their_magnitude(values, expected, reading) -> None:
    parsed = parse_timestamp_column(pd.Series(values, dtype="string"))
    assert reading in parsed.reading
    got = parsed.values
    got = got.dt.tz_localize(None) if got.dt.tz is not None else got
    assert got.tolist() == [pd.Timestamp(e) for e in expected]


def test_numbers_spread_over_two_units_are_refused() -> None:
    with pytest.raises(ValidationError, match="fit no single reading"):
        read(["1577923200", "1577923200000"])


def test_iso_offsets_and_naive_times() -> None:
    out = read(["2020-01-02T09:30:00-05:00", "2020-06-02T09:30:00-04:00"])
    assert out.tolist() == [
        pd.Timestamp("2020-01-02 14:30", tz="UTC"),
        pd.Timestamp("2020-06-02 13:30", tz="UTC"),
    ]
    naive = read(["2020/1/2 09:30", "2020-01-02 9:31 PM"])
    assert naive.tolist() == [pd.Timestamp("2020-01-02 09:30"), pd.Timestamp("2020-01-02 21:31")]


def test_text_months_and_values_of_another_shape() -> None:
    out = read(["Jan 3, 2005", "Jan 13, 2005", "junk"])
    assert out.tolist()[:2] == [pd.Timestamp("2005-01-03"), pd.Timestamp("2005-01-13")]
    assert pd.isna(out.iloc[2])


def test_may_is_a_full_month_name_and_an_abbreviation() -> None:
    # Found by the property test below: a format guessed from "May 1, 2001" (%B) must
    # not leave "Nov 1, 2001" (%b) unread.
    out = read(["May 1, 2001", "Nov 1, 2001", "Jan 13, 2005", "June 2, 2003", "May 30, 2003"])
    assert out.tolist() == [
        pd.Timestamp(x)
        for x in ["2001-05-01", "2001-11-01", "2005-01-13", "2003-06-02", "2003-05-30"]
    ]


def _format(day: pd.Timestamp, style: str) -> str:
    return {
        "dmy": f"{day.day:02d}/{day.month:02d}/{day.year}",
        "mdy": f"{day.month}/{day.day}/{day.year}",
        "dotted": f"{day.day:02d}.{day.month:02d}.{day.year} 10:30",
        "iso": f"{day:%Y-%m-%d}",
        "epoch": str(int(day.timestamp())),
        "text": f"{day:%b} {day.day}, {day.year}",
    }[style]


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(st.integers(0, 3000), min_size=2, max_size=30, unique=True),
    style=st.sampled_from(["dmy", "mdy", "dotted", "iso", "epoch", "text"]),
    order=st.randoms(use_true_random=False),
)
def test_a_files_dates_read_the_same_whatever_the_row_order(days, style, order) -> None:
    """Property: the reading of each value depends on the set of values, not on their order."""
    dates = [pd.Timestamp("2001-01-01") + pd.Timedelta(days=d) for d in days]
    # One date past the 12th makes D/M/Y and M/D/Y decidable, as in a real file.
    dates.append(pd.Timestamp("2005-01-13"))
    text = [_format(d, style) for d in dates]
    shuffled = list(text)
    order.shuffle(shuffled)
    first = dict(zip(text, read(text).tolist(), strict=True))
    second = dict(zip(shuffled, read(shuffled).tolist(), strict=True))
    assert first == second
    expected = [d + pd.Timedelta(hours=10, minutes=30) if style == "dotted" else d for d in dates]
    got = [pd.Timestamp(first[t]).tz_localize(None) for t in text]
    assert got == expected


@settings(max_examples=30, deadline=None)
@given(
    days=st.lists(st.integers(0, 3000), min_size=2, max_size=20, unique=True),
    style=st.sampled_from(["dmy", "mdy", "dotted", "iso", "epoch", "text"]),
    repeats=st.lists(st.integers(1, 5), min_size=22, max_size=22),
    order=st.randoms(use_true_random=False),
)
def test_a_long_files_repeated_dates_read_as_each_date_alone(days, style, repeats, order) -> None:
    """Property: a date repeated on many rows (one per symbol) reads as it does once."""
    dates = [pd.Timestamp("2001-01-01") + pd.Timedelta(days=d) for d in days]
    dates.append(pd.Timestamp("2005-01-13"))
    text = [_format(d, style) for d in dates]
    rows = [t for t, n in zip(text, repeats, strict=False) for _ in range(n)]
    order.shuffle(rows)
    alone = dict(zip(text, read(text).tolist(), strict=True))
    assert read(rows).tolist() == [alone[t] for t in rows]


def test_the_reading_follows_the_rows_not_the_distinct_values() -> None:
    # One ISO date on ten rows (ten symbols) outweighs three day-first dates on a row each:
    # the column is ISO and the three are rejected, as they would be row by row.
    out = read(["2005-01-03"] * 10 + ["13/01/2005", "14/01/2005", "15/01/2005"])
    assert out.iloc[:10].eq(pd.Timestamp("2005-01-03")).all()
    assert out.iloc[10:].isna().all()
