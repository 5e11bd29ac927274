"""The forecast record: append-only, live rows refused once their outcome may be known."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from quantdesk.data.sources.simulator import simulate
from quantdesk.data.store.forecasts import ForecastStore
from quantdesk.data.store.market import MarketStore


def _rows(as_of, origin="backfill", version="1", value=0.2):
    return pd.DataFrame(
        {
            "model": ["har"],
            "version": [version],
            "symbol": ["SIM000"],
            "target": ["vol_1d"],
            "horizon": [1],
            "as_of": [pd.to_datetime(as_of, utc=True)],
            "value": [value],
            "data_fingerprint": ["sha256:d"],
            "code_fingerprint": ["sha256:c"],
            "origin": [origin],
        }
    )


@pytest.fixture
def store(tmp_path):
    market = MarketStore(tmp_path / "store.duckdb")
    market.write_bars(simulate(n_symbols=1, n_days=10, seed=0).bars)
    return market


def test_forecasts_are_appended_never_overwritten(store):
    record = ForecastStore(store)
    assert record.append(_rows("2010-01-05")) == 1
    with pytest.raises(ValueError, match="append-only"):
        record.append(_rows("2010-01-05", value=0.9))
    # a failed write changes nothing, and a re-forecast under a new version is a new row
    assert record.forecasts()["value"].tolist() == [0.2]
    record.append(_rows("2010-01-05", version="2", value=0.9))
    assert record.forecasts()["version"].tolist() == ["1", "2"]


def test_live_forecast_refused_when_later_bars_exist(store):
    record = ForecastStore(store)
    last = store.bars()["ts"].max()
    with pytest.raises(ValueError, match=r"live forecast .* refused"):
        record.append(_rows("2010-01-05", origin="live"))
    assert record.append(_rows(last, origin="live")) == 1
    with pytest.raises(ValueError, match="origin"):
        record.append(_rows(last, origin="guess", version="3"))


def test_outcomes_are_joined_when_recorded(store):
    record = ForecastStore(store)
    record.append(_rows("2010-01-05"))
    record.append(_rows("2010-01-06"))
    assert len(record.pending()) == 2
    outcome = pd.DataFrame(
        {
            "symbol": ["SIM000"],
            "target": ["vol_1d"],
            "as_of": [pd.Timestamp("2010-01-05", tz="UTC")],
            "value": [0.25],
        }
    )
    assert record.record_outcomes(outcome) == 1
    assert record.record_outcomes(outcome.assign(value=9.0)) == 0  # outcomes written once
    got = record.forecasts(target="vol_1d")
    assert got["outcome"].tolist()[0] == 0.25 and pd.isna(got["outcome"].tolist()[1])
    assert len(record.pending()) == 1


def test_regime_probabilities_are_stored_as_json(store):
    record = ForecastStore(store)
    probs = json.dumps({"p_low_bearish": 1.0})
    rows = _rows("2010-01-05").assign(value=None, probs=probs, target="regime_1d")
    record.append(rows)
    assert json.loads(record.forecasts()["probs"].iloc[0]) == {"p_low_bearish": 1.0}
