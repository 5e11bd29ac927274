"""Files nobody here wrote, and files in many dialects, read right or refused clearly.

Expected values come from pandas reading the same file on its own, with the options a
careful person would pass by hand (``index_col``, ``dayfirst``, ``sep``, ``decimal``).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data.sources.files import read_bars_file, sniff_dialect
from quantdesk.data.validation import ValidationError


def _package_dir(name: str) -> Path:
    module = pytest.importorskip(name)
    return Path(module.__file__).parent


BACKTESTING = _package_dir("backtesting") / "test"
ARCH_DATA = _package_dir("arch") / "data"


def arch_file(name: str) -> Path:
    return next((ARCH_DATA / name).glob("*.csv.gz"))


def utc_dates(index: pd.Index) -> list[pd.Timestamp]:
    return list(pd.DatetimeIndex(index).tz_localize("UTC").as_unit("ns"))


# -- backtesting.py's CSVs: pandas to_csv output with an unnamed index column ------------


def test_goog_csv_from_backtesting_reads_like_pandas() -> None:
    # bug 5 of issue 10: "field 'ts': no column for ['ts']; columns are ['Unnamed: 0', ...]"
    path = BACKTESTING / "GOOG.csv"
    result = read_bars_file(path, symbol="GOOG")
    expected = pd.read_csv(path, index_col=0, parse_dates=True)
    assert len(result.rejects) == 0 and len(result.good) == len(expected)
    assert result.good["ts"].tolist() == utc_dates(expected.index)
    for field in ("Open", "High", "Low", "Close", "Volume"):
        np.testing.assert_array_equal(result.good[field.lower()], expected[field])
    assert "column 'Unnamed: 0' read as the timestamp" in result.summary()


def test_eurusd_hourly_bars_from_backtesting() -> None:
    path = BACKTESTING / "EURUSD.csv"
    result = read_bars_file(path, symbol="EURUSD", timeframe="1h")
    expected = pd.read_csv(path, index_col=0, parse_dates=True)
    assert len(result.good) == len(expected) and len(result.rejects) == 0
    assert result.good["ts"].tolist() == utc_dates(expected.index)
    np.testing.assert_array_equal(result.good["close"], expected["Close"])


def test_btcusd_month_end_bars_are_labelled_by_month_start() -> None:
    path = BACKTESTING / "BTCUSD.csv"
    result = read_bars_file(path, symbol="BTC", timeframe="1mo")
    expected = pd.read_csv(path, index_col=0, parse_dates=True)
    assert expected.index[0] == pd.Timestamp("2012-01-31")  # the file dates month ends
    assert len(result.good) == len(expected) and len(result.rejects) == 0
    months = expected.index.to_period("M").to_timestamp()  # pandas' own month starts
    assert result.good["ts"].tolist() == utc_dates(months)
    np.testing.assert_array_equal(result.good["close"], expected["Close"])
    assert "labelled by its 1st" in result.summary()


# -- arch's data sets --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sp500", "nasdaq"])
def test_index_files_keep_the_traded_close_and_say_adj_close_is_ignored(name: str) -> None:
    path = arch_file(name)
    result = read_bars_file(path, symbol=name)
    expected = pd.read_csv(path, index_col="Date")
    expected.index = pd.to_datetime(expected.index, format="%m/%d/%Y")
    assert len(result.good) == len(expected) and len(result.rejects) == 0
    assert result.good["ts"].tolist() == utc_dates(expected.index)
    np.testing.assert_array_equal(result.good["close"], expected["Close"])
    assert "'Adj Close' ignored" in result.summary()
    assert "month-first dates (MM/DD/YYYY)" in result.summary()


def test_adjusted_scales_open_high_low_with_adj_close(tmp_path: Path) -> None:
    f = tmp_path / "yahoo.csv"
    f.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-01-02,10,12,9,11,5.5,100\n2020-01-03,11,12,10,12,6,100\n"
    )
    result = read_bars_file(f, symbol="Y", adjusted=True)
    assert result.good[["open", "high", "low", "close"]].to_numpy().tolist() == [
        [5.0, 6.0, 4.5, 5.5],
        [5.5, 6.0, 5.0, 6.0],
    ]
    assert result.good["volume"].tolist() == [100.0, 100.0]
    only_adj = tmp_path / "adj.csv"
    only_adj.write_text("Date,Open,High,Low,Adj Close\n2020-01-02,10,12,9,5.5\n")
    with pytest.raises(ValidationError, match="no Close to go with its open, high and low"):
        read_bars_file(only_adj, symbol="Y")


def test_wti_close_only_with_fred_missing_markers() -> None:
    # bug 4 of issue 10: "no column for ['open', 'high', 'low', 'volume']"
    path = arch_file("wti")
    result = read_bars_file(path, symbol="WTI", columns={"DCOILWTICO": "close", "Date": "ts"})
    expected = pd.read_csv(path, na_values=".", index_col="Date")
    expected.index = pd.to_datetime(expected.index, format="%m/%d/%Y")
    present = expected["DCOILWTICO"].dropna()
    assert len(result.good) == len(present)
    np.testing.assert_array_equal(result.good["close"], present)
    assert result.good[["open", "high", "low", "volume"]].isna().all().all()
    markers = expected["DCOILWTICO"].isna().sum()
    assert markers == 290 and len(result.rejects) == markers
    assert (result.rejects["reason"] == "missing value '.'").all()


@pytest.mark.parametrize(("name", "column"), [("vix", "vix"), ("wti", "DCOILWTICO")])
def test_a_single_value_column_is_the_close_without_a_mapping(name: str, column: str) -> None:
    result = read_bars_file(arch_file(name), symbol=name.upper())
    assert f"column {column!r} read as the close (the only value column)" in result.summary()
    expected = pd.to_numeric(pd.read_csv(arch_file(name))[column], errors="coerce").dropna()
    np.testing.assert_array_equal(result.good["close"], expected)


def test_crude_mid_month_series_needs_a_choice_of_column() -> None:
    path = arch_file("crude")  # starts with a byte-order mark; two value columns
    with pytest.raises(ValidationError, match=r"columns \['Brent', 'WTI'\] could each be it"):
        read_bars_file(path, symbol="CL")
    result = read_bars_file(path, symbol="CL", timeframe="1mo", columns={"WTI": "close"})
    expected = pd.read_csv(path, encoding="utf-8-sig", index_col="Date", parse_dates=True)
    assert expected.index[0].day == 15  # dated mid-month
    assert result.good["ts"].tolist() == utc_dates(expected.index.to_period("M").to_timestamp())
    np.testing.assert_array_equal(result.good["close"], expected["WTI"])


def test_core_cpi_first_of_month_dates_need_an_order() -> None:
    path = arch_file("core_cpi")  # 1/1/1957, 2/1/1957: every date reads both ways
    with pytest.raises(ValidationError, match=r"core-cpi\.csv\.gz, field 'ts'.*--monthfirst"):
        read_bars_file(path, symbol="CPI", timeframe="1mo")
    result = read_bars_file(path, symbol="CPI", timeframe="1mo", dayfirst=False)
    expected = pd.read_csv(path, index_col="Date")
    expected.index = pd.to_datetime(expected.index, format="%m/%d/%Y")
    assert result.good["ts"].tolist() == utc_dates(expected.index)
    np.testing.assert_array_equal(result.good["close"], expected["CPILFESL"])


def test_french_factor_file_yyyymm_dates_and_non_positive_values_are_rejected() -> None:
    path = arch_file("frenchdata")
    result = read_bars_file(path, symbol="RF", timeframe="1mo", columns={"RF": "close"})
    expected = pd.read_csv(path)
    assert result.good["ts"].iloc[0] == pd.Timestamp("1926-07-01", tz="UTC")
    assert len(result.rejects) == int((expected["RF"] <= 0).sum()) > 0
    assert set(result.rejects["reason"]) == {"non-positive price"}
    assert len(result.good) + len(result.rejects) == len(expected)


# -- dialects the tests write ------------------------------------------------------------


def test_spreadsheet_export_semicolons_decimal_comma_dotted_dates(tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_bytes(
        "\ufeffDatum;Eröffnung;Hoch;Tief;Schluss;Volumen\n".replace("Datum", "Date")
        .replace("Eröffnung", "Open")
        .replace("Hoch", "High")
        .replace("Tief", "Low")
        .replace("Schluss", "Close")
        .replace("Volumen", "Vol.")
        .encode()
        + b"03.01.2005;1.234,50;1.240,00;1.230,25;1.238,75;1.500.000\n"
        b"14.01.2005;1.238,75;1.250,00;1.235,00;1.249,10;2.250.500\n"
    )
    assert sniff_dialect(f).sep == ";" and sniff_dialect(f).decimal == ","
    result = read_bars_file(f, symbol="DAX")
    expected = pd.read_csv(
        f, sep=";", decimal=",", thousands=".", encoding="utf-8-sig", dtype={"Date": str}
    ).set_index("Date")
    expected.index = pd.to_datetime(expected.index, format="%d.%m.%Y")
    assert result.good["ts"].tolist() == utc_dates(expected.index)
    np.testing.assert_array_equal(result.good["close"], expected["Close"])
    np.testing.assert_array_equal(result.good["volume"], expected["Vol."])
    assert result.good["close"].tolist() == [1238.75, 1249.10]


def test_pandas_to_csv_round_trip_with_its_index(tmp_path: Path) -> None:
    index = pd.date_range("2021-03-01", periods=5, freq="B")
    frame = pd.DataFrame(
        {"OPEN": 1.0, "HIGH": 2.0, "LOW": 0.5, "CLOSE": [1.0, 1.1, 1.2, 1.3, 1.4]}, index=index
    )
    f = tmp_path / "frame.csv"
    frame.to_csv(f)
    result = read_bars_file(f, symbol="F")
    assert result.good["ts"].tolist() == utc_dates(index)
    assert result.good["close"].tolist() == frame["CLOSE"].tolist()
    assert result.good["volume"].isna().all()  # missing, not zero


@pytest.mark.parametrize("sep", ["\t", "|", ";"])
def test_other_delimiters_and_gzip(tmp_path: Path, sep: str) -> None:
    text = sep.join(["Date", "Time", "Open", "High", "Low", "Close", "Volume"]) + "\n"
    for minute in range(3):
        text += sep.join(["2021.03.09", f"09:3{minute}", "10", "11", "9", "10.5", "5"]) + "\n"
    f = tmp_path / "mt.csv.gz"
    with gzip.open(f, "wt") as handle:
        handle.write(text)
    result = read_bars_file(f, symbol="X", timeframe="1min", tz="America/New_York")
    assert result.good["ts"].tolist() == [
        pd.Timestamp(f"2021-03-09 14:3{m}", tz="UTC") for m in range(3)
    ]
    assert "timestamps joined from columns ['Date', 'Time']" in result.summary()


def test_friday_dated_weekly_series_is_labelled_by_monday(tmp_path: Path) -> None:
    fridays = pd.date_range("2024-01-05", periods=6, freq="W-FRI")
    f = tmp_path / "weekly.csv"
    pd.DataFrame({"Close": np.arange(1.0, 7.0)}, index=fridays.rename("Date")).to_csv(f)
    result = read_bars_file(f, symbol="W", timeframe="1w")
    mondays = fridays.to_period("W-SUN").start_time  # pandas' own Monday-start weeks
    assert result.good["ts"].tolist() == utc_dates(mondays)
    assert "6 1w bars dated inside their week, labelled by its Monday" in result.summary()


def test_two_rows_in_one_month_with_different_values_conflict(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("Date,Close\n2024-01-31,10\n2024-01-15,11\n2024-02-29,12\n")
    result = read_bars_file(f, symbol="M", timeframe="1mo")
    assert result.good["ts"].tolist() == [pd.Timestamp("2024-02-01", tz="UTC")]
    assert result.rejects["row"].tolist() == [1, 2]
    assert (
        "two rows in the same month with different values (rows 1, 2)"
        in (result.rejects["reason"].iloc[0])
    )


def test_weekend_rows_in_a_daily_file_are_counted_not_dropped(tmp_path: Path) -> None:
    f = tmp_path / "btc.csv"
    f.write_text("Date,Close\n2024-01-05,1\n2024-01-06,2\n2024-01-07,3\n2024-01-08,4\n")
    result = read_bars_file(f, symbol="BTC")
    assert len(result.good) == 4 and result.weekend_rows == 2
    assert "2 daily bars fall on a Saturday or Sunday (kept)" in result.summary()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Date,Open,Close\n2020-01-02,1,1\n", r"no column for \['high', 'low'\]"),
        ("Trade Date,Settle Date,Close\n2020-01-02,2020-01-03,1\n", "could each be the timest"),
        ("Date,Close\n", "no data rows"),
        ("Date Close\n2020-01-02 1\n", "cannot tell the delimiter"),
    ],
)
def test_file_level_problems_are_refused_clearly(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(ValidationError, match=rf"bad\.csv.*{match}"):
        read_bars_file(f, symbol="B")


def test_a_row_with_part_of_its_range_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1\n2020-01-03,,2,0.5,1\n")
    result = read_bars_file(f, symbol="P")
    assert len(result.good) == 1
    assert result.rejects["field"].tolist() == ["open"]
    assert "open, high and low come together" in result.rejects["reason"].iloc[0]


@pytest.mark.parametrize(
    ("cell", "sep", "expected"),
    [
        ('"1,234.50"', ",", 1234.5),
        ("1 234,50", ";", 1234.5),
        ("1.234,50", ";", 1234.5),
        ("1234.5", ",", 1234.5),
        ('"1,5"', ",", None),  # a decimal comma in a point-decimal file: refused, not 15
    ],
)
def test_thousands_separators(tmp_path: Path, cell: str, sep: str, expected) -> None:
    f = tmp_path / "t.csv"
    f.write_text(f"Date{sep}Close\n2020-01-02{sep}{cell}\n2020-01-03{sep}2\n")
    result = read_bars_file(f, symbol="T")
    if expected is None:
        assert "not a number: '1,5'" in result.rejects["reason"].iloc[0]
    else:
        assert result.good["close"].iloc[0] == expected


def test_parquet_epoch_milliseconds(tmp_path: Path) -> None:
    f = tmp_path / "e.parquet"
    ms = pd.date_range("2024-01-02 14:30", periods=3, freq="1min", tz="UTC")
    pd.DataFrame({"time": ms.as_unit("ms").asi8, "price": [1.0, 2.0, 3.0]}).to_parquet(f)
    result = read_bars_file(f, symbol="E", timeframe="1min")
    assert result.good["ts"].tolist() == list(ms.as_unit("ns"))
    assert "epoch milliseconds" in result.summary()
