"""Vectorised rolling windows agree with pandas' rolling (the reference) and are causal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quantdesk.signals.windows import rolling_mean, rolling_std


def frame(seed: int = 0, rows: int = 300, cols: int = 6, level: float = 100.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = level * np.exp(np.cumsum(rng.normal(0, 0.02, (rows, cols)), axis=0))
    values[rng.random((rows, cols)) < 0.05] = np.nan  # scattered holes
    values[:40, 0] = np.nan  # a late listing
    return pd.DataFrame(values)


def exact(df: pd.DataFrame, window: int, stat: str) -> pd.DataFrame:
    """Two-pass statistics of every full window: the reference, slow and exact."""
    values = df.to_numpy()
    out = np.full(values.shape, np.nan)
    for i in range(window - 1, len(values)):
        block = values[i - window + 1 : i + 1]
        ok = ~np.isnan(block).any(axis=0)
        if stat == "mean":
            out[i, ok] = block[:, ok].mean(axis=0)
        else:
            out[i, ok] = block[:, ok].std(axis=0, ddof=1)
    return pd.DataFrame(out, index=df.index, columns=df.columns)


@pytest.mark.parametrize("window", [1, 2, 5, 20, 60])
@pytest.mark.parametrize("level", [1e-3, 1.0, 1e5])
def test_matches_exact_reference_and_pandas(window: int, level: float) -> None:
    df = frame(window, level=level)
    mean = rolling_mean(df, window)
    pd.testing.assert_frame_equal(mean, exact(df, window, "mean"), rtol=1e-12)
    pd.testing.assert_frame_equal(mean, df.rolling(window).mean(), rtol=1e-9)
    if window > 1:
        std = rolling_std(df, window)
        pd.testing.assert_frame_equal(std, exact(df, window, "std"), rtol=1e-6)
        pd.testing.assert_frame_equal(std, df.rolling(window).std(), rtol=1e-6)


@settings(max_examples=80, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 3)),
        elements=st.one_of(st.just(np.nan), st.floats(-1e3, 1e3)),
    ),
    st.integers(2, 10),
)
def test_property_matches_pandas(values: np.ndarray, window: int) -> None:
    df = pd.DataFrame(values)
    # Near-zero variances amplify rounding: allow sqrt(eps)-sized absolute error on std.
    pd.testing.assert_frame_equal(
        rolling_mean(df, window), exact(df, window, "mean"), rtol=1e-9, atol=1e-9
    )
    pd.testing.assert_frame_equal(
        rolling_std(df, window), exact(df, window, "std"), rtol=1e-6, atol=1e-5
    )


def test_constant_window_has_zero_std() -> None:
    df = pd.DataFrame({"a": [3.3] * 6 + [1e9, 3.3, 3.3, 3.3]})
    std = rolling_std(df, 3)["a"]
    assert std.iloc[2:6].tolist() == [0.0] * 4
    assert std.iloc[9] == 0.0


def test_causal() -> None:
    df = frame(3)
    for fn in (rolling_mean, rolling_std):
        full = fn(df, 20)
        pd.testing.assert_frame_equal(fn(df.iloc[:150], 20), full.iloc[:150])


def test_bad_window() -> None:
    with pytest.raises(ValueError):
        rolling_mean(frame(), 0)
    with pytest.raises(ValueError):
        rolling_std(frame(), 1)
