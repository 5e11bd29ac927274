"""Hit counts and forward returns after alerts, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantdesk.screener.analysis import forward_return_summary, forward_returns, hit_counts


def test_forward_returns_and_their_summary_by_hand() -> None:
    index = pd.date_range("2024-01-01", periods=5, tz="UTC")
    close = pd.DataFrame({"A": [10.0, 11.0, 12.0, 9.0, 10.0], "B": [5.0, 5.0, np.nan, 6.0, 4.0]},
                         index=index)  # fmt: skip
    alerts = pd.DataFrame(
        {
            "symbol": ["A", "B", "A", "B"],
            "rule": ["gap_up", "gap_up", "volume_spike", "volume_spike"],
            "ts": [index[0], index[0], index[3], index[1]],
        }
    )
    fwd = forward_returns(alerts, close, horizons=(1, 2))
    assert fwd["fwd_1"].tolist()[:3] == pytest.approx([0.1, 0.0, 10 / 9 - 1])
    assert np.isnan(fwd["fwd_1"].iloc[3])  # B has no price on the 3rd
    assert fwd["fwd_2"].iloc[0] == pytest.approx(0.2)
    assert np.isnan(fwd["fwd_2"].iloc[2])  # past the end
    assert fwd["fwd_2"].iloc[3] == pytest.approx(0.2)  # 6 / 5
    summary = forward_return_summary(fwd, horizons=(1, 2))
    assert summary.loc[("gap_up", 1), "alerts"] == 2
    assert summary.loc[("gap_up", 1), "mean"] == pytest.approx(0.05)
    assert summary.loc[("gap_up", 1), "positive"] == pytest.approx(0.5)
    assert summary.loc[("volume_spike", 2), "alerts"] == 1
    with pytest.raises(ValueError, match="not positive"):
        forward_returns(alerts, close, horizons=(0,))


def test_hit_counts() -> None:
    ts = pd.date_range("2024-01-01", periods=3, tz="UTC")
    alerts = pd.DataFrame(
        {"symbol": ["A", "A", "B"], "rule": ["x", "x", "y"], "ts": [ts[0], ts[2], ts[1]]}
    )
    counts = hit_counts(alerts)
    assert counts.index.tolist() == ["x", "y"]
    assert counts.loc["x"].tolist() == [2, 1, ts[0], ts[2]]
    assert hit_counts(alerts.iloc[:0]).empty
