"""Coverage, event study and information coefficient of news sentiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.sentiment.analysis import coverage, event_study, information_coefficient


def test_coverage_counts_symbols_days_and_sources_in_exchange_time() -> None:
    news = pd.DataFrame(
        {
            "symbol": ["A", "A", "A", "B"],
            "source": ["wire", "wire", "blog", "wire"],
            # 03:00 UTC on the 5th is the evening of the 4th in New York.
            "ts": pd.to_datetime(
                ["2024-03-04 14:00", "2024-03-05 03:00", "2024-03-05 15:00", "2024-03-05 15:00"],
                utc=True,
            ),
        }
    )
    cov = coverage(news)
    assert cov.by_symbol["headlines"].to_dict() == {"A": 3, "B": 1}
    assert cov.by_symbol["days"].to_dict() == {"A": 2, "B": 1}
    assert cov.by_symbol.loc["A", "last"] == pd.Timestamp("2024-03-05 15:00", tz="UTC")
    assert cov.by_day.to_dict() == {pd.Timestamp("2024-03-04"): 2, pd.Timestamp("2024-03-05"): 2}
    assert cov.by_source.to_dict() == {"wire": 3, "blog": 1}


def test_event_study_measures_from_the_event_close_forward() -> None:
    prices = pd.DataFrame({"A": [100.0, 110.0, 121.0, 60.5], "B": [50.0, 50.0, 25.0, 25.0]})
    shocks = pd.DataFrame({"A": [1.0, 0.0, -1.0, np.nan], "B": [0.0, 1.0, 0.0, -1.0]})
    table = event_study(prices, shocks, horizons=[1, 2])
    # h=1: positive events A@0 (+10%) and B@1 (-50%); negative A@2 (-50%); B@3 has no t+1.
    assert table.loc[1, "positive"] == pytest.approx((0.10 - 0.50) / 2)
    assert table.loc[1, "negative"] == pytest.approx(-0.5)
    assert (table.loc[1, "n_positive"], table.loc[1, "n_negative"]) == (2, 1)
    # h=2: A@0 -> 121/100 - 1, B@1 -> 25/50 - 1; no negative event has two sessions left.
    assert table.loc[2, "positive"] == pytest.approx((0.21 - 0.50) / 2)
    assert np.isnan(table.loc[2, "negative"]) and table.loc[2, "n_negative"] == 0
    assert table.loc[1, "spread"] == pytest.approx(-0.2 + 0.5)
    # baseline h=1: every valid forward return (A: .1, .1, -.5; B: 0, -.5, 0).
    assert table.loc[1, "all"] == pytest.approx((0.1 + 0.1 - 0.5 + 0 - 0.5 + 0) / 6)
    with pytest.raises(ValueError, match="horizons"):
        event_study(prices, shocks, horizons=[0])


def test_ic_pairs_the_score_with_the_next_days_return() -> None:
    rng = np.random.default_rng(0)
    index = pd.date_range("2020-01-01", periods=400, freq="D", tz="UTC")
    returns = pd.DataFrame(rng.normal(0, 0.01, (400, 30)), index=index)
    tomorrow = information_coefficient(returns.shift(-1), returns)
    assert tomorrow.iloc[:-1].to_numpy() == pytest.approx(1.0)
    assert np.isnan(tomorrow.iloc[-1])  # no next day for the last session
    today = information_coefficient(returns, returns)
    assert abs(today.mean()) < 0.03  # independent returns: no forecast
    per_symbol = information_coefficient(returns.shift(-1), returns, by="symbol")
    assert list(per_symbol.index) == list(returns.columns)
    assert per_symbol.to_numpy() == pytest.approx(1.0)


def test_ic_is_a_rank_correlation_with_hand_worked_values() -> None:
    returns = pd.DataFrame(
        {"A": [0.0, 0.01], "B": [0.0, 0.05], "C": [0.0, -0.02], "D": [0.0, 0.03]}
    )
    # Next returns rank A=2, B=4, C=1, D=3; scores rank A=1, B=4, C=2, D=3.
    scores = pd.DataFrame({"A": [0.1, 5.0], "B": [9.0, 5.0], "C": [0.2, 5.0], "D": [3.0, np.nan]})
    ic = information_coefficient(scores, returns)
    # Spearman = 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 60 = 0.8
    assert ic.iloc[0] == pytest.approx(0.8)
    assert np.isnan(ic.iloc[1])
    assert np.isnan(information_coefficient(scores, returns, min_observations=5).iloc[0])
    with pytest.raises(ValueError, match="by must be"):
        information_coefficient(scores, returns, by="week")  # type: ignore[arg-type]
