"""Screener rules: by hand, against plain pandas on real data, causal, composable, from YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import load_sample, read_bars_file
from quantdesk.data.wide import to_wide
from quantdesk.screener import rules as R
from quantdesk.screener import scan
from quantdesk.screener.rulesets import RuleSetError, load_rules, resolve_rules

from ..signals.causality import assert_causal
from .universe import random_bars

FIELDS = ["open", "high", "low", "close", "volume"]


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=float)[:, None]


# ---------------------------------------------------------------- each rule by hand


def test_gaps_compare_the_open_with_the_previous_close() -> None:
    data = {"open": col(10, 10.3, 9.5, 9.9), "close": col(10, 10.0, 9.8, 9.7)}
    up = R.gap_up(pct=3.0).evaluate(data)
    down = R.gap_down(pct=3.0).evaluate(data)
    assert up.hits[:, 0].tolist() == [False, True, False, False]  # 10.3 / 10 = +3 %
    assert down.hits[:, 0].tolist() == [False, False, True, False]  # 9.5 / 10 = -5 %
    assert up.conditions["prev_close"][1, 0] == 10.0
    assert down.conditions["gap_pct"][2, 0] == pytest.approx(-5.0)
    assert up.trigger[1, 0] == 10.3  # the trigger price of a gap is the open


def test_volume_spike_averages_the_prior_bars_only() -> None:
    volume = col(100, 100, 100, 100, 100, 300, 1000)
    data = {"volume": volume, "close": col(*range(7))}
    out = R.volume_spike(k=3.0, n=5).evaluate(data)
    # bar 5: 300 >= 3 x mean(100 x 5); bar 6: mean(100,100,100,100,300) = 140, 1000 >= 420
    assert out.hits[:, 0].tolist() == [False] * 5 + [True, True]
    assert out.conditions["avg_volume"][6, 0] == pytest.approx(140.0)
    assert np.isnan(out.conditions["avg_volume"][4, 0])  # four prior bars: not enough
    spike = R.volume_spike(k=3.0, n=5).evaluate({**data, "volume": col(1, 1, 1, 1, 1, 2.9, 3)})
    assert spike.hits[:, 0].tolist() == [False] * 5 + [False, False]  # 3 < 3 x 1.38


def test_breakouts_compare_the_close_with_the_prior_extremes() -> None:
    data = {
        "high": col(10, 11, 12, 11.5, 12.5),
        "low": col(9, 10, 11, 8.5, 11),
        "close": col(9.5, 10.5, 11.5, 8.8, 12.2),
    }
    hi = R.new_high(n=3).evaluate(data)
    lo = R.new_low(n=3).evaluate(data)
    assert hi.hits[:, 0].tolist() == [False, False, False, False, True]  # 12.2 > max(11,12,11.5)
    assert hi.conditions["prior_high"][4, 0] == 12.0
    assert lo.hits[:, 0].tolist() == [False, False, False, True, False]  # 8.8 < min(9,10,11)


def test_ma_cross_fires_on_the_crossing_bar_only() -> None:
    close = col(5, 4, 3, 2, 1, 6, 9, 10)
    out = R.ma_cross(fast=2, slow=4).evaluate({"close": close})
    fast = pd.Series(close[:, 0]).rolling(2).mean()
    slow = pd.Series(close[:, 0]).rolling(4).mean()
    diff = fast - slow
    expected = ((diff > 0) & (diff.shift(1) <= 0)).tolist()
    assert out.hits[:, 0].tolist() == expected
    assert sum(expected) == 1
    both = R.ma_cross(fast=2, slow=4, direction="both").evaluate({"close": close})
    assert both.hits.sum() == 1


def test_regime_change_and_its_target_cell() -> None:
    data = {"regime": col(np.nan, 4, 4, 6, 4, 4), "close": col(1, 1, 1, 1, 1, 1)}
    assert R.regime_change().evaluate(data).hits[:, 0].tolist() == [
        False, False, False, True, True, False,
    ]  # fmt: skip
    into = R.regime_change(to="high/bearish").evaluate(data)  # cell 6
    assert into.hits[:, 0].tolist() == [False, False, False, True, False, False]
    assert into.conditions["from_state"][3, 0] == 4.0


def test_sentiment_shock_flags_scores_far_from_their_history() -> None:
    score = col(0.0, 0.1, -0.1, 0.05, np.nan, -0.05, 0.9, 0.0)
    data = {"sentiment": score, "close": np.ones_like(score)}
    out = R.sentiment_shock(k=2.0, window=6, min_periods=4).evaluate(data)
    assert out.hits[:, 0].tolist() == [False] * 6 + [True, False]
    assert out.conditions["shock"][6, 0] == 1.0
    down = R.sentiment_shock(k=2.0, window=6, min_periods=4, direction="down").evaluate(data)
    assert not down.hits.any()


def test_parameters_are_checked_with_the_field_named() -> None:
    with pytest.raises(R.RuleParameterError, match="pct: must be positive"):
        R.gap_up(pct=-1)
    with pytest.raises(R.RuleParameterError, match="n: must be a whole number"):
        R.volume_spike(n=2.5)
    with pytest.raises(R.RuleParameterError, match="fast: must be shorter than slow"):
        R.ma_cross(fast=50, slow=10)
    with pytest.raises(R.RuleParameterError, match="to: must be one of"):
        R.regime_change(to="sideways")


# ------------------------------------------------------- combinators and user rules


def test_and_or_not_combine_hits_and_prefix_conditions() -> None:
    bars = random_bars(20, 80, seed=3)
    data = {f: p.to_numpy() for f, p in to_wide(bars, FIELDS).items()}
    gap, spike = R.gap_up(pct=1.0), R.volume_spike(k=1.5, n=10)
    g, s = gap.evaluate(data).hits, spike.evaluate(data).hits
    both = (gap & spike).evaluate(data)
    either = (gap | spike).evaluate(data)
    neither = (~gap).evaluate(data)
    assert (both.hits == (g & s)).all() and both.hits.any()
    assert (either.hits == (g | s)).all()
    assert (neither.hits == ~g).all()
    assert set(both.conditions) == {
        "gap_up.gap_pct", "gap_up.prev_close",
        "volume_spike.volume", "volume_spike.avg_volume", "volume_spike.ratio",
    }  # fmt: skip
    assert (gap & spike).name == "gap_up&volume_spike"
    assert (gap & spike).lookback == 10
    # an "any" triggers at the price of the first rule that fired
    only_spike = ~g & s
    assert (either.trigger[only_spike] == data["close"][only_spike]).all()
    assert (either.trigger[g] == data["open"][g]).all()


def test_a_user_rule_runs_like_a_builtin() -> None:
    def up_three(d: R.Fields) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        c = d["close"]
        up = np.zeros(c.shape, dtype=bool)
        up[3:] = (c[3:] > c[2:-1]) & (c[2:-1] > c[1:-2]) & (c[1:-2] > c[:-3])
        return up, {
            "three_day_change": np.vstack([np.full((3, c.shape[1]), np.nan), c[3:] - c[:-3]])
        }

    rule = R.rule("up_three", up_three, lookback=3)
    bars = random_bars(10, 60, seed=1)
    alerts = scan(bars, [rule], start="2023-01-01")
    close = bars.pivot(index="ts", columns="symbol", values="close")
    d = close.diff()
    expected = (d > 0) & (d.shift(1) > 0) & (d.shift(2) > 0)
    hits = expected.stack()
    assert len(alerts) == int(hits.sum()) > 0
    row = alerts.iloc[0]
    assert row["conditions"]["three_day_change"] == pytest.approx(
        close.loc[row["ts"], row["symbol"]] - close.shift(3).loc[row["ts"], row["symbol"]]
    )
    with pytest.raises(R.RuleParameterError, match="lookback"):
        R.rule("bad", up_three, lookback=-1)


# ----------------------------------------------------------------- causality


@pytest.mark.parametrize(
    "rule",
    [
        R.gap_up(pct=1.0),
        R.gap_down(pct=1.0),
        R.volume_spike(k=1.5, n=10),
        R.new_high(n=10),
        R.new_low(n=10),
        R.ma_cross(fast=3, slow=8, direction="both"),
        R.gap_up(pct=0.5) & ~R.new_low(n=5),
    ],
    ids=lambda r: r.name,
)
def test_every_rule_is_causal(rule: R.Rule) -> None:
    panels = to_wide(random_bars(15, 90, seed=7), FIELDS)

    def hits(p: dict[str, pd.DataFrame]) -> pd.DataFrame:
        out = rule.evaluate({f: frame.to_numpy() for f, frame in p.items()})
        frame = pd.DataFrame(out.hits.astype(float), p["close"].index, p["close"].columns)
        for name, values in out.conditions.items():  # what the alert records is causal too
            frame[[f"{name}:{c}" for c in p["close"].columns]] = values
        return frame

    assert_causal(hits, panels, cuts=[20, 45, 70])


def test_causal_rules_need_data_that_fires() -> None:
    # the causality test above compares something: each rule fires on those bars
    data = {f: p.to_numpy() for f, p in to_wide(random_bars(15, 90, seed=7), FIELDS).items()}
    for rule in (R.gap_up(pct=1.0), R.volume_spike(k=1.5, n=10), R.new_high(n=10)):
        assert rule.evaluate(data).hits.any(), rule


# ------------------------------------------------------ real data, checked in pandas


def test_gaps_and_spikes_on_the_sp500_sample_match_plain_pandas() -> None:
    bars, _ = load_sample("sp500")
    alerts = scan(
        bars,
        [R.gap_up(pct=1.0), R.gap_down(pct=1.0), R.volume_spike(k=2.0, n=20), R.new_high(n=252)],
        start=bars["ts"].min(),
    )
    b = bars.set_index("ts")
    prev = b["close"].shift(1)
    gap = (b["open"] / prev - 1) * 100
    avg = b["volume"].shift(1).rolling(20).mean()
    prior_high = b["high"].shift(1).rolling(252).max()
    expected = {
        "gap_up": set(b.index[gap >= 1.0]),
        "gap_down": set(b.index[gap <= -1.0]),
        "volume_spike": set(b.index[b["volume"] >= 2.0 * avg]),
        "new_high": set(b.index[b["close"] > prior_high]),
    }
    for name, days in expected.items():
        got = set(alerts.loc[alerts["rule"] == name, "ts"])
        assert got == days, name
        assert len(days) > 0, name
    # hand-checked days: the market reopened on 2001-09-17 on 2.33bn shares against a
    # mean of 1.07bn over the 20 sessions before; 2008-10-13 opened at 912.75 after
    # closing at 899.22 on the 10th, a 1.50 % gap up.
    spike = alerts[(alerts["rule"] == "volume_spike") & (alerts["ts"] == "2001-09-17")]
    assert spike["conditions"].iloc[0]["avg_volume"] == pytest.approx(1_073_535_000.0)
    assert spike["conditions"].iloc[0]["volume"] == 2_330_830_000.0
    gap_day = alerts[(alerts["rule"] == "gap_up") & (alerts["ts"] == "2008-10-13")]
    assert gap_day["conditions"].iloc[0]["gap_pct"] == pytest.approx(1.5046, abs=1e-4)
    assert gap_day["trigger_price"].iloc[0] == pytest.approx(912.75)


def test_gaps_on_backtesting_goog_csv_match_plain_pandas() -> None:
    import backtesting

    path = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
    result = read_bars_file(path, symbol="GOOG", columns={"Unnamed: 0": "ts"})
    bars = result.good
    alerts = scan(bars, [R.gap_up(pct=3.0), R.gap_down(pct=3.0)], start=bars["ts"].min())
    raw = pd.read_csv(path, index_col=0, parse_dates=True)
    gap = (raw["Open"] / raw["Close"].shift(1) - 1) * 100
    up_days = {d.date() for d in raw.index[gap >= 3.0]}
    down_days = {d.date() for d in raw.index[gap <= -3.0]}
    got = alerts.groupby("rule")["ts"].apply(lambda s: {t.date() for t in s})
    assert got["gap_up"] == up_days and len(up_days) > 5
    assert got["gap_down"] == down_days and len(down_days) > 5
    first = alerts[alerts["rule"] == "gap_up"].iloc[0]
    day = raw.index[raw.index.date == first["ts"].date()][0]
    assert first["trigger_price"] == raw.loc[day, "Open"]
    assert first["conditions"]["prev_close"] == raw["Close"].shift(1).loc[day]


# --------------------------------------------------------------------- rule sets


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_a_yaml_rule_set_builds_named_and_combined_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
rules:
  - name: big_gap
    rule: gap_up
    pct: 4
  - name: heavy
    rule: volume_spike
    k: 2.5
    n: 10
  - name: gap_on_volume
    all: [big_gap, heavy]
  - name: either_way
    any: [gap_up, {rule: gap_down, pct: 2}]
  - name: no_breakdown
    not: new_low
""",
    )
    rules = load_rules(path)
    assert [r.name for r in rules] == ["big_gap", "heavy", "gap_on_volume", "either_way",
                                       "no_breakdown"]  # fmt: skip
    assert rules[0].params == {"pct": 4.0}
    assert rules[1].lookback == 10 and rules[2].lookback == 10
    assert resolve_rules(str(path))[2].params == {"all": ["big_gap", "heavy"]}


RULE_A = "rules:\n  - name: a\n"
AT_A = "rule 'a' (#1): "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RULE_A + "    rule: gap_upp\n", AT_A + "field 'rule': unknown rule 'gap_upp'"),
        (RULE_A + "    rule: gap_up\n    pct: -2\n", AT_A + "field 'pct': must be positive"),
        (RULE_A + "    rule: gap_up\n    pct: lots\n", AT_A + "field 'pct': must be a number"),
        (
            RULE_A + "    rule: volume_spike\n    window: 3\n",
            AT_A + "field 'window': unknown parameter",
        ),
        (RULE_A + "    all: [gap_up, nope]\n", AT_A + "field 'all': 'nope' is neither"),
        (
            RULE_A + "    rule: gap_up\n  - name: a\n    rule: gap_down\n",
            "rule 'a' (#2): field 'name': defined twice",
        ),
        ("rules:\n  - rule: gap_up\n", "rule #1: field 'name'"),
        (RULE_A, AT_A + "needs exactly one of"),
        (RULE_A + "    python: no_such_module:f\n", AT_A + "field 'python': cannot import"),
        ("rules: []\n", "field 'rules': must be a non-empty list"),
        ("rules: [\n", "not valid YAML"),
    ],
)
def test_rule_set_errors_name_the_file_rule_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RuleSetError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_a_python_factory_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_rules.py").write_text(
        "from quantdesk.screener.rules import gap_up\n"
        "def strong_gap(pct):\n    return gap_up(pct=pct * 2)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(
        tmp_path,
        "rules:\n  - name: strong\n    python: my_rules:strong_gap\n    params: {pct: 2}\n",
    )
    (rule,) = load_rules(path)
    assert rule.name == "strong" and rule.params == {"pct": 4.0}
    bad = write(
        tmp_path,
        "rules:\n  - name: strong\n    python: my_rules:strong_gap\n    params: {pct: -1}\n",
    )
    with pytest.raises(RuleSetError, match="rule 'strong' \\(#1\\): field 'pct': must be positive"):
        load_rules(bad)


def test_builtin_names_and_duplicates() -> None:
    assert [r.name for r in resolve_rules(["gap_up", "ma_cross"])] == ["gap_up", "ma_cross"]
    with pytest.raises(RuleSetError, match="used by two rules"):
        resolve_rules(["gap_up", R.gap_up(pct=5)])
    with pytest.raises(RuleSetError, match="not a rule"):
        resolve_rules(["gap_sideways"])
