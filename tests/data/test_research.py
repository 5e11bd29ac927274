"""open_research: the store, symbols and window every notebook opens with."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data import MarketStore, UnknownSymbolError, simulate
from quantdesk.data.research import Research, open_research, span_text
from quantdesk.errors import StoreNotFoundError

from .test_samples import assert_unchanged, contents


@pytest.fixture
def filled(tmp_path: Path) -> MarketStore:
    store = MarketStore(tmp_path / "store.duckdb")
    store.write_bars(simulate(n_symbols=3, n_days=40, seed=2).bars, "1d")
    return store


def test_symbols_as_text_or_list_and_a_store_or_its_path(filled: MarketStore) -> None:
    by_text = open_research("SIM002 SIM000", store=filled.path)
    by_list = open_research(["SIM002", "SIM000"], store=filled)
    assert by_text.symbols == by_list.symbols == ["SIM002", "SIM000"]
    assert by_list.store is filled and by_text.store.path == filled.path
    # empty means "not given": every stored symbol
    assert open_research("", store=filled).symbols == ["SIM000", "SIM001", "SIM002"]
    assert open_research(None, store=filled, n_symbols=2).symbols == ["SIM000", "SIM001"]


def test_panels_are_the_stored_bars_over_the_window(filled: MarketStore) -> None:
    research = open_research("SIM000,SIM001", store=filled, start="2010-01-11", end="2010-01-29")
    close = research.panel("close")
    # independently: the long bars pivoted by pandas
    bars = filled.bars(["SIM000", "SIM001"])
    bars = bars[(bars["ts"] >= "2010-01-11") & (bars["ts"] <= "2010-01-29")]
    expected = bars.pivot(index="ts", columns="symbol", values="close")
    pd.testing.assert_frame_equal(close, expected, check_names=False, check_freq=False)
    assert research.panels(["close", "volume"])["volume"].shape == close.shape
    assert research.bars("SIM001")["ts"].between("2010-01-11", "2010-01-29").all()


def test_an_empty_window_names_the_symbols_the_window_and_the_file(filled: MarketStore) -> None:
    research = open_research("SIM000", store=filled, start="2031-01-01")
    with pytest.raises(ValueError, match="no daily closes for SIM000 between 2031-01-01") as err:
        research.panel("close")
    assert str(filled.path) in str(err.value)
    with pytest.raises(ValueError, match="no daily bars for 'SIM000' between 2031-01-01"):
        research.bars("SIM000")


def test_a_missing_store_says_how_to_fill_it_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.duckdb"
    with pytest.raises(StoreNotFoundError, match="quantdesk ingest sample"):
        open_research("SPX", store=path)
    assert not path.exists()


def test_unknown_symbols_fail_before_anything_is_written(filled: MarketStore) -> None:
    before = contents(filled)
    with pytest.raises(UnknownSymbolError, match=r"unknown symbol\(s\) \['WTI'\]"):
        open_research("SIM000,WTI", universe="samples", store=filled)
    assert_unchanged(before, filled)


def test_the_default_store_is_the_one_every_process_finds() -> None:
    store = MarketStore()  # under the test's QUANTDESK_HOME
    store.write_bars(simulate(n_symbols=1, n_days=30, seed=1).bars, "1d")
    research = open_research()
    assert research.store.path == store.path and research.symbols == ["SIM000"]


def test_it_shows_itself(filled: MarketStore) -> None:
    research = open_research("SIM000", store=filled, start="2010-01-11")
    assert isinstance(research, Research)
    text = repr(research)
    assert "SIM000" in text and "2010-01-11" in text and str(filled.path) in text
    assert "<script" not in research._repr_html_()
    assert span_text(research.panel("close")).startswith("SIM000: 1 symbols x ")
