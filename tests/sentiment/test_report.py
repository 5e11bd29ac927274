"""sentiment_report: what the sentiment notebook computed in its cells, as one package call."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data import MarketStore, NewsStore, simulate
from quantdesk.data.research import open_research
from quantdesk.sentiment.report import SentimentReport, sentiment_report

from ..data.test_samples import assert_unchanged, contents


@pytest.fixture(scope="module")
def simulated_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SentimentReport]:
    path = tmp_path_factory.mktemp("sentiment") / "store.duckdb"
    research = open_research(universe="simulated", n_symbols=3, store=path)
    report = sentiment_report(
        research.store, research.symbols, universe="simulated", start="2016-01-01",
        horizons=[1, 5],
    )  # fmt: skip
    return path, report


def test_the_simulated_universe_gets_its_news_stored_and_scored_once(
    simulated_report: tuple[Path, SentimentReport],
) -> None:
    path, first = simulated_report
    assert any("scored" in note for note in first.notes), first.notes
    store = MarketStore(path)
    stored = len(NewsStore(store).news())
    assert stored > 0 and len(first.scored) > 0
    again = sentiment_report(store, first.symbols, universe="simulated", start="2016-01-01",
                             horizons=[1, 5])  # fmt: skip
    assert again.notes == ()  # nothing written the second time
    assert len(NewsStore(store).news()) == stored
    pd.testing.assert_series_equal(again.ic, first.ic)
    pd.testing.assert_frame_equal(again.event_study, first.event_study)


def test_the_score_follows_the_simulators_true_trend(
    simulated_report: tuple[Path, SentimentReport],
) -> None:
    """The synthetic headlines' tone is set by the true trend regime: they must agree."""
    _, report = simulated_report
    assert report.focus in report.symbols
    assert list(report.trend_correlation.index) == ["true trend", "filtered trend"]
    assert report.trend_correlation["true trend"] > 0.2
    frame = report.focus_frame
    assert set(frame["true trend"].dropna().unique()) <= {-1, 0, 1}
    # a daily score at t uses news before t's close: the frame is on the price calendar
    assert frame.index.equals(report.prices.index)
    assert report.prices.index[0] >= pd.Timestamp("2016-01-01", tz="UTC")


def test_it_shows_itself(simulated_report: tuple[Path, SentimentReport]) -> None:
    _, report = simulated_report
    text = report.summary()
    assert f"{len(report.scored):,}" in text and "mean daily IC" in text
    page = report._repr_html_()
    assert "Sentiment report" in page and "returns after shocks" in page


def test_no_scored_news_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(simulate(n_symbols=1, n_days=60, seed=3).bars, "1d", source="mine.csv")
    before = contents(store)
    with pytest.raises(ValueError, match=r"no scored news for SIM000 in .*quantdesk news import"):
        sentiment_report(store, ["SIM000"])
    assert_unchanged(before, store)


def test_a_focus_symbol_outside_the_symbols_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="focus_symbol 'SPX' is not among the symbols"):
        sentiment_report(tmp_path / "store.duckdb", ["SIM000"], focus_symbol="SPX")
