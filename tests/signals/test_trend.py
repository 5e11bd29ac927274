"""Trend signals: hand-worked examples, loop references, flips at the right bar, held
breakout states, and causality of every public function."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from quantdesk.signals import trend
from quantdesk.signals.trend import blended_tsmom, donchian_breakout, ma_crossover, tsmom

from .causality import assert_causal

Panels = dict[str, pd.DataFrame]
nan = np.nan


@pytest.fixture(scope="module")
def panels() -> Panels:
    rng = np.random.default_rng(7)
    idx = pd.bdate_range("2021-01-04", periods=320, tz="UTC", name="ts")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, (320, 4)), axis=0))
    high = close * np.exp(rng.uniform(0, 0.01, close.shape))
    low = close * np.exp(-rng.uniform(0, 0.01, close.shape))
    out = {
        k: pd.DataFrame(v, index=idx, columns=["A", "B", "C", "D"])
        for k, v in {"close": close, "high": high, "low": low}.items()
    }
    for frame in out.values():
        frame.iloc[:25, 2] = nan  # C lists later
        frame.iloc[150, 3] = nan  # D misses a day
    return out


def column(values: list[float]) -> pd.DataFrame:
    idx = pd.bdate_range("2024-01-01", periods=len(values), tz="UTC", name="ts")
    return pd.DataFrame({"X": np.asarray(values, dtype=float)}, index=idx)


def values(frame: pd.DataFrame) -> list[float]:
    return frame["X"].tolist()


# ---------------------------------------------------------------- ma_crossover


def test_sma_crossover_flips_on_the_crossing_bar() -> None:
    close = column([10, 9, 8, 7, 6, 7, 8, 9, 10, 11, 10, 8, 6])
    # by hand, (mean of last 2) - (mean of last 4):
    # t=3: 7.5-8.5  t=4: 6.5-7.5  t=5: 6.5-7  t=6: 7.5-7  t=7: 8.5-7.5  t=8: 9.5-8.5
    # t=9: 10.5-9.5  t=10: 10.5-10  t=11: 9-9.75  t=12: 7-8.75
    expected = [nan, nan, nan, -1, -1, -1, 1, 1, 1, 1, 1, -1, -1]
    assert values(ma_crossover(close, 2, 4)) == pytest.approx(expected, nan_ok=True)


def test_equal_averages_give_zero() -> None:
    assert values(ma_crossover(column([5.0] * 6), 2, 3)) == pytest.approx(
        [nan, nan, 0, 0, 0, 0], nan_ok=True
    )


def ema_loop(x: np.ndarray, span: int) -> np.ndarray:
    a = 2.0 / (span + 1)
    out = np.empty_like(x)
    out[0] = x[0]
    for t in range(1, len(x)):
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    out[: span - 1] = nan
    return out


def test_ema_crossover_matches_loop(panels: Panels) -> None:
    close = panels["close"]["A"].to_numpy()
    diff = ema_loop(close, 5) - ema_loop(close, 30)
    got = ma_crossover(panels["close"], 5, 30, kind="ema")["A"].to_numpy()
    np.testing.assert_array_equal(got, np.sign(diff))
    assert np.isnan(got[:29]).all() and np.isfinite(got[29:]).all()


def test_ema_crossover_flips_on_the_crossing_bar() -> None:
    close = column([10, 10, 10, 12, 9, 9])
    # span 1 is the close itself; span 3 (a = 1/2): 10, 10, 10, 11, 10, 9.5
    got = values(ma_crossover(close, 1, 3, kind="ema"))
    assert got == pytest.approx([nan, nan, 0, 1, -1, -1], nan_ok=True)


def test_sma_crossover_matches_pandas_rolling(panels: Panels) -> None:
    close = panels["close"]
    expected = np.sign(close.rolling(10).mean() - close.rolling(50).mean())
    pd.testing.assert_frame_equal(ma_crossover(close, 10, 50), expected)


@pytest.mark.parametrize(("fast", "slow"), [(20, 20), (50, 20), (0, 5)])
def test_crossover_rejects_bad_windows(fast: int, slow: int) -> None:
    with pytest.raises(ValueError, match="fast < slow"):
        ma_crossover(column([1.0, 2.0]), fast, slow)


def test_crossover_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        ma_crossover(column([1.0, 2.0]), 1, 2, kind="wma")  # type: ignore[arg-type]


# ---------------------------------------------------------------- tsmom


def test_tsmom_hand_calculation() -> None:
    close = column([10, 11, 12, 11, 12, 13, 12])
    # lookback 3: t=3: 11 vs 10  t=4: 12 vs 11  t=5: 13 vs 12  t=6: 12 vs 11
    assert values(tsmom(close, 3)) == pytest.approx([nan, nan, nan, 1, 1, 1, 1], nan_ok=True)
    # lookback 2: t=2: 12 vs 10  t=3: 11 vs 11  t=4: 12 vs 12  t=5: 13 vs 11  t=6: 12 vs 12
    assert values(tsmom(close, 2)) == pytest.approx([nan, nan, 1, 0, 0, 1, 0], nan_ok=True)
    falling = column([5, 4, 3])
    assert values(tsmom(falling, 1)) == pytest.approx([nan, -1, -1], nan_ok=True)


def test_tsmom_is_the_sign_of_the_log_return(panels: Panels) -> None:
    close = panels["close"]
    log_ret = np.log(close) - np.log(close).shift(60)
    pd.testing.assert_frame_equal(tsmom(close, 60), np.sign(log_ret))
    assert set(np.unique(tsmom(close, 60).stack().dropna().to_numpy())) <= {-1.0, 0.0, 1.0}


def test_blended_tsmom_averages_and_waits_for_the_longest() -> None:
    close = column([10, 11, 12, 11, 12, 13, 9])
    # t=3: lb1 -1, lb3 +1 -> 0;  t=4: +1, +1 -> 1;  t=5: +1, +1;  t=6: lb1 -1, lb3 9<11 -1
    got = values(blended_tsmom(close, (1, 3)))
    assert got == pytest.approx([nan, nan, nan, 0, 1, 1, -1], nan_ok=True)
    weighted = values(blended_tsmom(close, (1, 3), weights=(3, 1)))
    assert weighted == pytest.approx([nan, nan, nan, -0.5, 1, 1, -1], nan_ok=True)


def test_blended_tsmom_matches_the_mean_of_its_parts(panels: Panels) -> None:
    close = panels["close"]
    lookbacks = (5, 21, 63)
    parts = [tsmom(close, lb) for lb in lookbacks]
    expected = (parts[0] + parts[1] + parts[2]) / 3
    got = blended_tsmom(close, lookbacks)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-12)
    assert got["A"].iloc[:63].isna().all() and got["A"].iloc[63:].notna().all()
    finite = got.stack().dropna()
    assert finite.between(-1, 1).all()
    assert set(np.round(finite.unique() * 3)) <= {-3, -1, 1, 3}


@pytest.mark.parametrize(
    ("lookbacks", "weights", "match"),
    [((), None, "empty"), ((1, 2), (1.0,), "one weight"), ((1, 2), (1.0, -1.0), "negative")],
)
def test_blended_tsmom_argument_checks(
    lookbacks: tuple[int, ...], weights: tuple[float, ...] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        blended_tsmom(column([1.0, 2.0, 3.0]), lookbacks, weights=weights)


def test_tsmom_rejects_bad_lookback() -> None:
    with pytest.raises(ValueError, match="lookback"):
        tsmom(column([1.0, 2.0]), 0)


# ---------------------------------------------------------------- donchian


def test_donchian_breaks_out_and_holds_its_state() -> None:
    close = column([10, 11, 10.5, 10.8, 11.5, 11.2, 10.9, 10.0, 9.8, 10.5, 12.0, 10.6])
    # window 3: channel over the 3 bars before t
    # t=3: [10, 11, 10.5] 10.8 inside -> 0 (no breakout yet)
    # t=4: [11, 10.5, 10.8] 11.5 > 11 -> +1
    # t=5: [10.5, 10.8, 11.5] 11.2 inside -> hold +1;  t=6: 10.9 inside -> +1
    # t=7: [11.5, 11.2, 10.9] 10.0 < 10.9 -> -1
    # t=8: [11.2, 10.9, 10.0] 9.8 < 10 -> -1;  t=9: [10.9, 10, 9.8] 10.5 inside -> hold -1
    # t=10: [10, 9.8, 10.5] 12 > 10.5 -> +1;  t=11: [9.8, 10.5, 12] 10.6 inside -> +1
    expected = [nan, nan, nan, 0, 1, 1, 1, -1, -1, -1, 1, 1]
    assert values(donchian_breakout(close, 3)) == pytest.approx(expected, nan_ok=True)


def test_donchian_uses_high_low_channel() -> None:
    close = column([10, 10, 10, 10.5, 9.5, 9.0])
    high = column([11, 11, 11, 10.6, 10.0, 9.2])
    low = column([9, 9, 9, 10.1, 9.4, 8.8])
    # closes alone: t=3 breaks out up (10.5 > 10); the highs (11) hold it in the channel.
    by_close = values(donchian_breakout(close, 3))
    assert by_close == pytest.approx([nan, nan, nan, 1, -1, -1], nan_ok=True)
    # t=3: [11,11,11]/[9,9,9] -> 0;  t=4: low [9,9,10.1] -> 9.5 inside -> 0
    # t=5: low [9, 10.1, 9.4] -> 9.0 inside (not strictly below 9) -> 0
    got = values(donchian_breakout(close, 3, high=high, low=low))
    assert got == pytest.approx([nan, nan, nan, 0, 0, 0], nan_ok=True)
    only_low = values(donchian_breakout(close, 2, low=low))
    # window 2, top from closes, bottom from lows: t=2: [10,10]/[9,9] -> 0
    # t=3: 10.5 > 10 -> +1;  t=4: top 10.5, bottom min(9, 10.1)=9 -> hold;  t=5: 9 < 9.4 -> -1
    assert only_low == pytest.approx([nan, nan, 0, 1, 1, -1], nan_ok=True)


def donchian_loop(close: np.ndarray, high: np.ndarray, low: np.ndarray, window: int) -> np.ndarray:
    out = np.full(close.shape, nan)
    for j in range(close.shape[1]):
        state, seen = nan, False
        for t in range(window, close.shape[0]):
            top = high[t - window : t, j].max()
            bottom = low[t - window : t, j].min()
            if np.isnan(top) or np.isnan(bottom):
                if seen and not np.isnan(close[t, j]):
                    out[t, j] = state
                continue
            if not seen:
                seen, state = True, 0.0
            if close[t, j] > top:
                state = 1.0
            elif close[t, j] < bottom:
                state = -1.0
            if not np.isnan(close[t, j]):
                out[t, j] = state
    return out


@pytest.mark.parametrize("window", [5, 20])
def test_donchian_matches_loop(panels: Panels, window: int) -> None:
    got = donchian_breakout(
        panels["close"], window, high=panels["high"], low=panels["low"]
    ).to_numpy()
    expected = donchian_loop(
        panels["close"].to_numpy(), panels["high"].to_numpy(), panels["low"].to_numpy(), window
    )
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[:window]).all()
    assert np.isnan(got[: 25 + window, 2]).all() and not np.isnan(got[25 + window, 2])
    assert np.isnan(got[150, 3]) and not np.isnan(got[151, 3])


def test_donchian_checks_alignment(panels: Panels) -> None:
    with pytest.raises(ValueError, match="aligned"):
        donchian_breakout(panels["close"], 5, high=panels["high"].iloc[:-1])
    with pytest.raises(ValueError, match="window"):
        donchian_breakout(panels["close"], 0)


# ---------------------------------------------------------------- causality


SIGNALS: dict[str, Callable[[Panels], pd.DataFrame]] = {
    "ma_crossover": lambda p: ma_crossover(p["close"], 5, 40),
    "ma_crossover_ema": lambda p: ma_crossover(p["close"], 5, 40, kind="ema"),
    "tsmom": lambda p: tsmom(p["close"], 30),
    "blended_tsmom": lambda p: blended_tsmom(p["close"], (5, 20, 60)),
    "donchian_breakout": lambda p: donchian_breakout(p["close"], 20),
    "donchian_breakout_hl": lambda p: donchian_breakout(
        p["close"], 20, high=p["high"], low=p["low"]
    ),
}


def test_every_public_function_has_a_causality_case() -> None:
    covered = {name.removesuffix("_ema").removesuffix("_hl") for name in SIGNALS}
    assert covered == set(trend.__all__)


@pytest.mark.parametrize("name", list(SIGNALS))
def test_causal(panels: Panels, name: str) -> None:
    """Values up to t are the same whether or not the rows after t exist."""
    assert_causal(SIGNALS[name], panels, [70, 151, 240])


def test_causality_check_catches_a_look_ahead(panels: Panels) -> None:
    leaky = lambda p: tsmom(p["close"], 30).shift(-1)  # noqa: E731
    with pytest.raises(AssertionError):
        assert_causal(leaky, panels, [100])


def test_docstring_examples() -> None:
    result = doctest.testmod(trend)
    assert result.attempted > 0 and result.failed == 0
