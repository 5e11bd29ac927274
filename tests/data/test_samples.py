"""Real S&P 500 and NASDAQ daily data from the arch package, offline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from quantdesk.data import MarketStore, UnknownSymbolError, read_bars_file
from quantdesk.data.sources.bundled import load_sample
from quantdesk.data.sources.samples import ensure_samples, select_symbols
from quantdesk.data.validation import validate_bars


def test_sp500_sample_is_real_and_valid() -> None:
    bars, meta = load_sample("sp500")
    assert meta.loc[0, "symbol"] == "SPX" and meta.loc[0, "timezone"] == "America/New_York"
    assert len(bars) == 5031
    assert bars["ts"].iloc[0] == pd.Timestamp("1999-01-04", tz="UTC")
    assert bars["ts"].iloc[-1] == pd.Timestamp("2018-12-31", tz="UTC")
    close = bars.set_index("ts")["close"]
    # Published closes (independent of the package): Lehman week and the 2018 year-end.
    assert close[pd.Timestamp("2008-10-15", tz="UTC")] == pytest.approx(907.84, abs=0.01)
    assert close[pd.Timestamp("2018-12-31", tz="UTC")] == pytest.approx(2506.85, abs=0.01)
    assert validate_bars(bars).rejects.empty


def test_unknown_sample() -> None:
    with pytest.raises(ValueError, match="available"):
        load_sample("ftse")


# ---------------------------------------------------------------- the symbols a notebook uses


def goog_csv() -> Path:
    """backtesting.py's own daily GOOG bars: a file nobody here wrote."""
    import backtesting

    return Path(backtesting.__file__).parent / "test" / "GOOG.csv"


@pytest.fixture
def user_store(store: MarketStore) -> MarketStore:
    """A store holding the researcher's own series only: GOOG from a CSV file."""
    # The CSV's date column has no header (pandas' to_csv of an indexed frame).
    result = read_bars_file(goog_csv(), symbol="GOOG", columns={"Unnamed: 0": "ts"})
    store.write_bars(result.good, "1d", source="GOOG.csv", validation=result)
    return store


def contents(store: MarketStore) -> dict[str, pd.DataFrame]:
    return {
        t: store.sql(f"SELECT * FROM {t} ORDER BY ALL")
        for t in ("bars", "ticks", "symbols", "ingest_log", "rejects")
    }


def assert_unchanged(before: dict[str, pd.DataFrame], store: MarketStore) -> None:
    after = contents(store)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, obj=table)


def test_unknown_symbols_name_what_is_stored_and_write_nothing(user_store: MarketStore) -> None:
    before = contents(user_store)
    with pytest.raises(UnknownSymbolError) as info:
        select_symbols(user_store, "GOOG,WTI,SPX")
    message = str(info.value)
    assert info.value.unknown == ["WTI", "SPX"] and info.value.stored == ["GOOG"]
    assert "['WTI', 'SPX']" in message and "holds 1: GOOG" in message
    assert str(user_store.path) in message and "universe='samples'" in message
    # A sample universe adds SPX and IXIC, not a typo; the samples are not written either.
    with pytest.raises(UnknownSymbolError, match=r"\['WTI'\] in .* or the bundled samples"):
        select_symbols(user_store, "SPX,WTI", universe="samples")
    with pytest.raises(UnknownSymbolError, match=r"\['SIM005'\] in .* or simulated"):
        select_symbols(user_store, "SIM000,SIM005", universe="simulated", n_symbols=5)
    assert_unchanged(before, user_store)


def test_an_unknown_universe_is_refused_not_simulated(user_store: MarketStore) -> None:
    """Bug 7: `-p universe WTI` wrote five simulated symbols and reported ok."""
    before = contents(user_store)
    with pytest.raises(ValueError, match=r"unknown universe 'WTI'.*'samples', 'simulated'"):
        select_symbols(user_store, universe="WTI", n_symbols=5)
    assert_unchanged(before, user_store)


def test_store_universe_is_the_users_own_data(user_store: MarketStore) -> None:
    before = contents(user_store)
    assert select_symbols(user_store, "GOOG") == ["GOOG"]
    assert select_symbols(user_store) == ["GOOG"]  # every stored symbol
    assert_unchanged(before, user_store)


def test_an_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"holds no symbols: ingest your data"):
        select_symbols(MarketStore(tmp_path / "empty.duckdb").create())


def test_samples_are_written_only_when_asked_and_only_once(user_store: MarketStore) -> None:
    assert select_symbols(user_store, "SPX,GOOG", universe="samples") == ["SPX", "GOOG"]
    assert user_store.symbols() == ["GOOG", "SPX"]  # IXIC was not asked for
    spx = user_store.bars("SPX")
    assert len(spx) == 5031 and spx["close"].iloc[-1] == pytest.approx(2506.85, abs=0.01)
    ingests = len(user_store.ingest_log())
    assert select_symbols(user_store, universe="samples") == ["SPX", "IXIC"]
    assert len(user_store.ingest_log()) == ingests + 1  # IXIC only; SPX is not rewritten
    assert ensure_samples(user_store, ["nasdaq", "SPX"]) == ["IXIC", "SPX"]
    assert len(user_store.ingest_log()) == ingests + 1
    with pytest.raises(ValueError, match="not bundled samples: 'GOOG'"):
        ensure_samples(user_store, ["GOOG"])


def test_simulated_universe_is_created_once_and_reused(store: MarketStore) -> None:
    assert select_symbols(store, universe="simulated", n_symbols=3) == [
        "SIM000",
        "SIM001",
        "SIM002",
    ]
    first = store.bars("SIM001")
    # Asking for more later reuses the stored universe instead of overwriting its prices.
    assert select_symbols(store, universe="simulated", n_symbols=5) == [
        "SIM000",
        "SIM001",
        "SIM002",
    ]
    pd.testing.assert_frame_equal(store.bars("SIM001"), first)
    assert select_symbols(store, "SIM002", universe="simulated") == ["SIM002"]


def test_a_simulated_universe_fills_a_store_with_no_file_yet(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "new.duckdb")  # opening creates nothing
    assert not store.path.exists()
    assert select_symbols(store, universe="simulated", n_symbols=2) == ["SIM000", "SIM001"]
    assert store.symbols() == ["SIM000", "SIM001"]


def test_docstring_examples_run() -> None:
    import doctest

    from quantdesk.data.sources import samples

    assert doctest.testmod(samples, raise_on_error=False).failed == 0


def _ingest_user_file(store: MarketStore, tmp_path: Path, symbols: list[str]) -> None:
    from quantdesk.data.sources.ingest import ingest_file

    from ..conftest import make_bars

    path = tmp_path / "mine.csv"
    make_bars(symbols, 30, seed=5).to_csv(path, index=False)
    ingest_file(path, store, strict=True)


def test_a_users_sim_named_symbols_are_not_the_simulated_universe(
    store: MarketStore, tmp_path: Path
) -> None:
    """Issue 20 item 8: the simulated universe is told by its source, not a SIM prefix."""
    _ingest_user_file(store, tmp_path, ["SIMPLY", "SIMX"])
    # Live candles the monitor's simulator recorded (asked for with --record-to-store).
    live = make_live_candles(["SIM000"])
    store.write_bars(live, "5s", source="live:simulator")
    chosen = select_symbols(store, universe="simulated", n_symbols=3)
    assert chosen == ["SIM000", "SIM001", "SIM002"]  # the daily universe was written

    from quantdesk.data.sources.samples import simulated_symbols

    assert simulated_symbols(store) == ["SIM000", "SIM001", "SIM002"]
    assert len(store.bars("SIM001")) == 2520
    # The user's symbols stay theirs: untouched, and never picked as simulated.
    assert len(store.bars("SIMPLY")) == len(store.bars("SIMX")) == 30
    assert select_symbols(store, universe="simulated", n_symbols=10) == chosen


def test_a_simulated_universe_never_overwrites_a_users_symbol_of_the_same_name(
    store: MarketStore, tmp_path: Path
) -> None:
    _ingest_user_file(store, tmp_path, ["SIM001"])
    before = contents(store)
    with pytest.raises(ValueError, match=r"holds SIM001 from another source"):
        select_symbols(store, universe="simulated", n_symbols=3)
    assert_unchanged(before, store)


def make_live_candles(symbols: list[str]) -> pd.DataFrame:
    """Return two 5 s candles per symbol, as the live recorder writes them."""
    ts = pd.to_datetime(["2024-03-08 14:30:00", "2024-03-08 14:30:05"], utc=True)
    return pd.DataFrame(
        [
            {
                "symbol": s,
                "ts": t,
                "open": 10.0,
                "high": 10.5,
                "low": 9.5,
                "close": 10.2,
                "volume": 100.0,
            }
            for s in symbols
            for t in ts
        ]
    )


def test_a_simulated_universe_is_written_the_way_ingest_simulated_writes_it(
    tmp_path: Path,
) -> None:
    """One write path: the notebooks' simulated universe equals `quantdesk ingest simulate`'s."""
    from quantdesk.data.sources.ingest import ingest_simulated
    from quantdesk.data.sources.samples import SIMULATED_DAYS, SIMULATED_SEED

    chosen = MarketStore(tmp_path / "chosen.duckdb")
    ingested = MarketStore(tmp_path / "ingested.duckdb")
    assert select_symbols(chosen, universe="simulated", n_symbols=3) == [
        "SIM000",
        "SIM001",
        "SIM002",
    ]
    ingest_simulated(ingested, symbols=3, days=SIMULATED_DAYS, seed=SIMULATED_SEED, progress=False)
    pd.testing.assert_frame_equal(chosen.bars(), ingested.bars())
    pd.testing.assert_frame_equal(chosen.metadata(), ingested.metadata())


def test_the_bundled_samples_are_written_the_way_ingest_samples_writes_them(
    tmp_path: Path,
) -> None:
    from quantdesk.data.sources.ingest import ingest_samples

    chosen = MarketStore(tmp_path / "chosen.duckdb")
    ingested = MarketStore(tmp_path / "ingested.duckdb")
    assert ensure_samples(chosen, ["IXIC"]) == ["IXIC"]
    ingest_samples(ingested, ["nasdaq"], progress=False)
    pd.testing.assert_frame_equal(chosen.bars(), ingested.bars())
    pd.testing.assert_frame_equal(chosen.metadata(), ingested.metadata())
    assert chosen.ingest_log()["source"].tolist() == ingested.ingest_log()["source"].tolist()
