"""CSV and Parquet import: column mapping, date parsing, timezones, row-level errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data.sources.files import read_bars_file
from quantdesk.data.validation import ValidationError


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def test_yahoo_style_csv_with_symbol_argument(tmp_path: Path) -> None:
    f = write(
        tmp_path / "spy.csv",
        """
Date,Open,High,Low,Close,Adj Close,Volume
2020-01-02,1,2,0.5,1.5,1.4,100
2020-01-03,1,0.5,0.7,1.5,1.4,100
not-a-date,1,2,0.5,1.5,1.4,100
2020-01-07,abc,2,0.5,1.5,1.4,100
""",
    )
    result = read_bars_file(f, symbol="SPY")
    assert result.good["ts"].tolist() == [pd.Timestamp("2020-01-02", tz="UTC")]
    assert result.rejects["row"].tolist() == [2, 3, 4]
    assert result.rejects["source"].unique().tolist() == ["spy.csv"]
    assert "unparseable timestamp 'not-a-date'" in result.rejects["reason"].iloc[1]
    assert "not a number: 'abc'" in result.rejects["reason"].iloc[2]
    # the raw row is kept as the file had it, under the file's own headers
    assert '"Adj Close": "1.4"' in result.rejects["raw"].iloc[0]


def test_mapping_format_and_timezone(tmp_path: Path) -> None:
    f = write(
        tmp_path / "x.csv",
        """
Trade Time;Px Open;Px High;Px Low;Px Last;Qty
03/09/2021 09:30;10;11;9;10.5;5
03/09/2021 09:31;10.5;11;10;10.8;7
""".replace(";", ","),
    )
    mapping = {
        "Trade Time": "ts",
        "Px Open": "open",
        "Px High": "high",
        "Px Low": "low",
        "Px Last": "close",
        "Qty": "volume",
    }
    result = read_bars_file(
        f,
        symbol="X",
        timeframe="1min",
        columns=mapping,
        ts_format="%m/%d/%Y %H:%M",
        tz="America/New_York",
    )
    # 09:30 New York in March 2021 (EST, before the DST switch on the 14th) is 14:30 UTC
    assert result.good["ts"].tolist() == [
        pd.Timestamp("2021-03-09 14:30", tz="UTC"),
        pd.Timestamp("2021-03-09 14:31", tz="UTC"),
    ]
    assert result.good["volume"].tolist() == [5.0, 7.0]


def test_daily_bars_keep_the_exchange_date(tmp_path: Path) -> None:
    # Offsets in the file: 2021-06-01 20:00 in New York is already June 2 in UTC.
    f = write(
        tmp_path / "d.csv",
        """
symbol,date,open,high,low,close,volume
A,2021-06-01T20:00:00-04:00,1,2,0.5,1.5,10
A,2021-06-02T20:00:00-04:00,1,2,0.5,1.5,10
""",
    )
    result = read_bars_file(f, tz="America/New_York")
    assert [str(t.date()) for t in result.good["ts"]] == ["2021-06-01", "2021-06-02"]
    assert (result.good["ts"].dt.hour == 0).all()


def test_dst_gap_is_rejected_with_an_explanation(tmp_path: Path) -> None:
    f = write(
        tmp_path / "g.csv",
        """
ticker,timestamp,o,h,l,c,v
A,2020-03-08 01:30,1,2,0.5,1.5,10
A,2020-03-08 02:30,1,2,0.5,1.5,10
""",
    )
    result = read_bars_file(f, timeframe="1min", tz="America/New_York")
    assert len(result.good) == 1
    assert "no such wall-clock time in America/New_York" in result.rejects["reason"].iloc[0]


def test_parquet_and_missing_volume(tmp_path: Path) -> None:
    f = tmp_path / "p.parquet"
    pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=3),
            "Open": 1.0,
            "High": 3.0,
            "Low": 1.0,
            "Close": [1.0, 2.0, 3.0],
        }
    ).to_parquet(f)
    result = read_bars_file(f, symbol="P")
    assert len(result.good) == 3
    assert result.good["volume"].isna().all()


@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("Date,Open\n2020-01-01,1\n", {"symbol": "A"}, r"a\.csv, field 'high': no column"),
        (
            "symbol,Date,Open,High,Low,Close\nA,2020-01-01,1,1,1,1\n",
            {"symbol": "A"},
            "drop --symbol",
        ),
        ("Date,Open,High,Low,Close\n2020-01-01,1,1,1,1\n", {}, "no symbol column"),
        (
            "Date,Open,High,Low,Close\n2020-01-01,1,1,1,1\n",
            {"symbol": "A", "columns": {"Px": "close"}},
            "mapped column not in file",
        ),
    ],
)
def test_file_level_errors_name_the_file_and_field(tmp_path: Path, text, kwargs, match) -> None:
    with pytest.raises(ValidationError, match=match):
        read_bars_file(write(tmp_path / "a.csv", text), **kwargs)


def test_strict_names_first_bad_row(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.csv",
        "Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,1\n2020-01-03,1,2,0.5,1.5,-1\n",
    )
    with pytest.raises(ValidationError, match=r"s\.csv, row 2, field 'volume': negative volume"):
        read_bars_file(f, symbol="S", strict=True)
