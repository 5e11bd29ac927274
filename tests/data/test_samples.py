"""Real S&P 500 and NASDAQ daily data from the arch package, offline."""

from __future__ import annotations

import pandas as pd
import pytest

from quantdesk.data.samples import load_sample
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
