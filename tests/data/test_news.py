"""News import from real-world-shaped files into a real store: fields, dedup, rejects, strict."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data.news_items import content_hash, validate_news
from quantdesk.data.schemas import NEWS_COLUMNS
from quantdesk.data.sources.ingest import ingest_news_file, ingest_synthetic_news
from quantdesk.data.sources.news import read_news_file
from quantdesk.data.sources.simulator import simulate
from quantdesk.data.sources.synthetic_news import TEMPLATES, synthetic_news
from quantdesk.data.store.news import NewsStore
from quantdesk.data.validation import ValidationError


def test_csv_saved_by_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3"],
            "published_at": pd.to_datetime(
                ["2024-03-01 09:30", "2024-03-01 16:05", "2024-03-04 08:00"]
            ).tz_localize("America/New_York"),
            "source": ["Reuters", "Dow Jones", None],
            "title": ["Acme beats estimates", "Acme cuts guidance", "Bolt, Acme agree deal"],
            "summary": ["Quarterly profit rose.", None, "Terms were not disclosed."],
            "tickers": ["ACME", "ACME", "BOLT;ACME"],
        }
    )
    path = tmp_path / "vendor.csv"
    frame.to_csv(path, index=False)
    store = NewsStore(tmp_path / "store.duckdb")
    result = ingest_news_file(path, store)
    assert result.ok, result.summary()
    assert result.reports[0].inserted == 3
    stored = store.news()
    assert list(stored.columns) == list(NEWS_COLUMNS)
    assert stored["ts"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2024-03-01 14:30",
        "2024-03-01 21:05",
        "2024-03-04 13:00",
    ]
    assert str(stored["ts"].dt.tz) == "UTC"
    assert stored["symbols"].tolist() == [["ACME"], ["ACME"], ["ACME", "BOLT"]]
    assert stored["source"].tolist() == ["Reuters", "Dow Jones", "vendor.csv"]
    assert stored["body"].tolist()[:2] == ["Quarterly profit rose.", None]
    assert stored["content_hash"].iloc[0] == content_hash(
        "Acme beats estimates", "Quarterly profit rose."
    )
    assert store.news("BOLT")["id"].tolist() == ["a3"]
    assert len(store.news(start="2024-03-02")) == 1


def test_benzinga_like_jsonl_with_nested_fields(tmp_path: Path) -> None:
    lines = [
        {
            "id": 36291001,
            "author": "Benzinga Newsdesk",
            "created": "Tue, 05 Mar 2024 14:32:11 -0500",
            "title": "Acme Shares Slide After Downgrade",
            "teaser": "An analyst cut the stock to sell.",
            "stocks": [{"name": "ACME"}, {"name": "BOLT"}],
            "channels": [{"name": "Analyst Ratings"}],
        },
        {
            "id": 36291002,
            "author": "Benzinga Newsdesk",
            "created": "Tue, 05 Mar 2024 15:00:00 -0500",
            "title": "Bolt Names New CFO",
            "teaser": "",
            "stocks": [{"name": "BOLT"}],
        },
    ]
    path = tmp_path / "benzinga.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = read_news_file(path)
    good = result.good
    assert good["symbols"].tolist() == [["ACME", "BOLT"], ["BOLT"]]
    assert good["id"].tolist() == ["36291001", "36291002"]
    assert good["source"].tolist() == ["Benzinga Newsdesk"] * 2
    assert good["ts"].iloc[0] == pd.Timestamp("2024-03-05 19:32:11", tz="UTC")
    assert good["body"].tolist() == ["An analyst cut the stock to sell.", None]
    # the offset in the text wins over the timezone given for naive values
    in_new_york = read_news_file(path, tz="America/New_York").good
    pd.testing.assert_series_equal(in_new_york["ts"], good["ts"])


def test_newsapi_like_json_without_symbols_is_market_wide(tmp_path: Path) -> None:
    payload = {
        "status": "ok",
        "totalResults": 1,
        "articles": [
            {
                "source": {"id": "reuters", "name": "Reuters"},
                "title": "Stocks rally as inflation cools",
                "description": "Markets rose broadly.",
                "publishedAt": "2024-03-05T14:32:11Z",
                "url": "https://example.com/a",
            }
        ],
    }
    path = tmp_path / "newsapi.json"
    path.write_text(json.dumps(payload))
    good = read_news_file(path).good
    assert good["source"].tolist() == ["Reuters"]
    assert good["symbols"].tolist() == [[]]
    assert good["id"].tolist() == ["https://example.com/a"]


def test_bad_rows_are_rejected_with_file_row_field_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "ts,headline,symbols\n"
        "2024-03-01T14:30:00Z,Acme beats estimates,ACME\n"
        "not a time,Acme misses,ACME\n"
        "2024-03-01T15:00:00Z,,ACME\n"
        "2024-03-01T16:00:00Z,Bolt rallies,BOLT\n"
    )
    store = NewsStore(tmp_path / "store.duckdb")
    result = ingest_news_file(path, store)
    report = result.reports[0]
    assert (report.inserted, report.rejected) == (2, 2)
    rejects = store.market.rejects(report.ingest_id)
    assert rejects["source"].tolist() == [str(path)] * 2
    assert rejects["row"].tolist() == [2, 3]
    assert rejects["field"].tolist() == ["ts", "headline"]
    assert rejects["reason"].tolist() == ["unparseable timestamp 'not a time'", "missing headline"]
    assert json.loads(rejects["raw"].iloc[0])["headline"] == "Acme misses"


def test_strict_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"ts": "2024-03-01T14:30:00Z", "headline": "Fine", "symbols": ["A"]})
        + "\n"
        + json.dumps({"ts": "2024-03-01T14:31:00Z", "headline": "Odd", "symbols": [1]})
        + "\n"
    )
    store_path = tmp_path / "store.duckdb"
    with pytest.raises(ValidationError, match=r"row 2, field 'symbols'"):
        ingest_news_file(path, store_path, strict=True)
    assert not store_path.exists()  # the file is read before the store is opened
    store = NewsStore(store_path)
    with pytest.raises(ValidationError):
        store.write_news(pd.read_json(path, lines=True), strict=True)
    assert not store_path.exists()  # a refused write creates nothing, not even the file


def test_copies_of_a_story_collapse_to_the_earliest(tmp_path: Path) -> None:
    items = pd.DataFrame(
        {
            "id": ["late", "early", "other"],
            "ts": ["2024-03-01T15:00:00Z", "2024-03-01T14:00:00Z", "2024-03-01T14:30:00Z"],
            "headline": ["ACME beats  estimates", "Acme beats estimates", "Acme misses"],
            "source": ["wire-b", "wire-a", "wire-a"],
            "symbols": ["ACME", "ACME", "ACME"],
        }
    )
    result = validate_news(items)
    assert result.duplicates == 1
    assert result.good["id"].tolist() == ["early", "other"]
    store = NewsStore(tmp_path / "store.duckdb")
    first = store.write_news(items)
    again = store.write_news(items)
    assert (first.inserted, first.duplicates) == (2, 1)
    assert (again.inserted, again.unchanged) == (0, 2)
    assert len(store.news()) == 2


def test_missing_headline_column_names_what_was_looked_for(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("ts,text_only\n2024-01-01,hello\n")
    with pytest.raises(ValidationError, match="no headline column"):
        read_news_file(path)


def test_synthetic_news_follows_the_true_trend_and_is_labelled(tmp_path: Path) -> None:
    market = simulate(n_symbols=4, n_days=400, seed=3)
    items = synthetic_news(market, rate=0.5, seed=3)
    assert (items["source"] == "synthetic").all()
    assert items["body"].str.contains("Synthetic").all()
    pd.testing.assert_frame_equal(items, synthetic_news(market, rate=0.5, seed=3))
    regimes = market.regimes.set_index(["ts", "symbol"])["trend_state"]
    local_day = items["ts"].dt.tz_convert("America/New_York").dt.normalize()
    session = local_day.dt.tz_localize(None).dt.tz_localize("UTC")
    state = regimes.reindex(pd.MultiIndex.from_arrays([session, items["symbols"].str[0]]))
    kind = [
        next(t for t, templates in TEMPLATES.items() if any(_same(h, x) for x in templates))
        for h in items["headline"]
    ]
    frame = pd.DataFrame({"state": state.to_numpy(), "kind": kind})
    share = pd.crosstab(frame["state"], frame["kind"], normalize="index")
    assert share.loc[2, "positive"] > share.loc[0, "positive"] + 0.2
    assert share.loc[0, "negative"] > share.loc[2, "negative"] + 0.2
    report = ingest_synthetic_news(tmp_path / "s.duckdb", symbols=4, days=400, seed=3, rate=0.5)
    assert report.reports[0].inserted == len(items)


def _same(headline: str, template: str) -> bool:
    import re

    pattern = re.escape(template).replace(r"\{s\}", r"\S+").replace(r"\{p\}", r"\d+")
    return re.fullmatch(pattern, headline) is not None


def test_a_failed_write_changes_nothing(tmp_path: Path) -> None:
    from dataclasses import replace

    store = NewsStore(tmp_path / "store.duckdb")
    store.write_news(pd.DataFrame({"ts": ["2024-03-01"], "headline": ["First story"]}))
    result = validate_news(
        pd.DataFrame({"ts": ["2024-03-02", "2024-03-03"], "headline": ["Second", "Third"]})
    )
    broken = result.good.copy()
    broken.loc[1, "id"] = None  # the news table refuses a story without an id
    with pytest.raises(Exception, match=r"(?i)null"):
        store.write_news(broken, validation=replace(result, good=broken))
    assert store.news()["headline"].tolist() == ["First story"]
    assert len(store.market.ingest_log()) == 1


def test_naive_times_are_read_in_the_given_timezone(tmp_path: Path) -> None:
    path = tmp_path / "naive.csv"
    path.write_text("date,headline\n2024-03-01 09:30,Open\n2024-07-01 16:30,After close\n")
    ts = read_news_file(path, tz="America/New_York").good["ts"]
    assert ts.dt.strftime("%Y-%m-%d %H:%M").tolist() == ["2024-03-01 14:30", "2024-07-01 20:30"]


def _vendor_jsonl(path: Path) -> Path:
    """Write a JSONL file the way exports and hand edits leave them (issue 20, item 12).

    A byte-order mark, Windows line ends, a blank line and one of spaces, a timestamp
    that is no time, a line cut short by an interrupted export, a second byte-order
    mark where two files were joined with ``cat``, and a headline holding U+2028.
    """
    good = [
        {"ts": "2024-03-11T13:30:00Z", "headline": "Acme beats estimates", "symbols": ["ACME"]},
        {"ts": "2024-03-11T14:00:00-04:00", "headline": "Bolt names CFO", "symbols": "BOLT"},
        {"ts": "2024-03-12T15:00:00Z", "headline": "Acme wins\u2028contract", "tickers": "ACME"},
    ]
    lines = [
        "\ufeff" + json.dumps(good[0]),  # line 1
        "",  # line 2
        json.dumps(good[1]) + "\r",  # line 3
        json.dumps({"ts": "11 March 2024 25:61", "headline": "Bad time", "symbols": ["ACME"]}),
        '{"ts": "2024-03-11T15:00:00Z", "headline": "Acme cuts gui',  # line 5, truncated
        "   ",  # line 6
        "\ufeff" + json.dumps(good[2], ensure_ascii=False),  # line 7
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_malformed_jsonl_lines_are_rejected_once_and_the_rest_imported(tmp_path: Path) -> None:
    path = _vendor_jsonl(tmp_path / "vendor.jsonl")
    store = NewsStore(tmp_path / "store.duckdb")
    first = ingest_news_file(path, store)
    assert first.ok, first.summary()
    report = first.reports[0]
    assert (report.rows_in, report.inserted, report.rejected) == (5, 3, 2)
    assert "2 blank line(s) skipped" in report.notes
    stored = store.news()
    assert stored["headline"].tolist() == [
        "Acme beats estimates",
        "Bolt names CFO",
        "Acme wins\u2028contract",
    ]
    rejects = store.market.rejects()
    assert rejects["source"].tolist() == [str(path)] * 2
    assert rejects["row"].tolist() == [4, 5]  # file lines, blank ones counted
    assert rejects["field"].tolist() == ["ts", "line"]
    assert rejects["reason"].iloc[0] == "unparseable timestamp '11 March 2024 25:61'"
    assert rejects["reason"].iloc[1].startswith("not JSON: Unterminated string")
    assert "truncated" in rejects["reason"].iloc[1]
    assert rejects["raw"].iloc[1] == '{"ts": "2024-03-11T15:00:00Z", "headline": "Acme cuts gui'

    again = ingest_news_file(path, store).reports[0]
    assert (again.inserted, again.unchanged, again.rejected) == (0, 3, 0)
    assert any(f"--ingest {report.ingest_id}" in note for note in again.notes)
    assert len(store.news()) == 3
    assert len(store.market.rejects()) == 2


def test_strict_refuses_a_jsonl_file_with_a_malformed_line(tmp_path: Path) -> None:
    path = _vendor_jsonl(tmp_path / "vendor.jsonl")
    store_path = tmp_path / "store.duckdb"
    with pytest.raises(ValidationError, match=r"row 4, field 'ts'"):
        ingest_news_file(path, store_path, strict=True)
    assert not store_path.exists()
    path.write_text(
        json.dumps({"ts": "2024-03-11T13:30:00Z", "headline": "Fine"}) + '\n{"ts": "2024\n'
    )
    with pytest.raises(ValidationError, match=r"row 2, field 'line': not JSON"):
        ingest_news_file(path, store_path, strict=True)
    assert not store_path.exists()


def test_a_jsonl_file_of_only_broken_lines_stores_its_rejects(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"ts": "2024-03-11", "headline": "cut\n[1, 2]\n')
    store = NewsStore(tmp_path / "store.duckdb")
    result = ingest_news_file(path, store)
    assert not result.ok and "all 2 rows rejected" in str(result.problem)
    rejects = store.market.rejects()
    assert rejects["row"].tolist() == [1, 2]
    assert rejects["reason"].iloc[1] == "a line is not a JSON object (found list)"


def test_a_news_file_of_bad_rows_says_why_like_a_bars_file(tmp_path: Path) -> None:
    """News and bars ingests explain "nothing stored" one way: the commonest reasons."""
    from quantdesk.data.sources.ingest import ingest_file

    news = tmp_path / "broken.jsonl"
    news.write_text("[1, 2]\n[3]\n")
    bars = tmp_path / "bad.csv"
    bars.write_text("symbol,ts,open,high,low,close,volume\nA,2024-01-02,1,1,1,-1,5\n")
    store = tmp_path / "store.duckdb"
    news_problem = str(ingest_news_file(news, store).problem)
    bars_problem = str(ingest_file(bars, store).problem)
    assert news_problem == (
        f"{news}: nothing stored, all 2 rows rejected: "
        "a line is not a JSON object (found list) (2 rows)"
    )
    assert bars_problem == (
        "bad.csv: nothing stored, all 1 rows rejected: "
        "non-positive price (1 rows); close outside [low, high] (1 rows)"
    )
