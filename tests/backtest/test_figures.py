"""Tearsheet figures: the monthly table by hand, figure data against the metrics, export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from quantdesk.backtest.figures import (
    MONTH_NAMES,
    drawdown_figure,
    equity_figure,
    exposure_figure,
    monthly_returns_heatmap,
    monthly_returns_table,
    rolling_sharpe_figure,
)
from quantdesk.backtest.metrics import drawdown_series, rolling_sharpe, sharpe
from quantdesk.core.charts import save_figure


def daily_returns(kind: str = "datetime", n: int = 400, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    index: pd.Index = (
        pd.bdate_range("2022-11-01", periods=n, tz="UTC", name="ts")
        if kind == "datetime"
        else pd.RangeIndex(n)
    )
    return pd.Series(rng.normal(0.0005, 0.01, n), index=index)


def elements(fig: hv.Overlay) -> dict[str, hv.Element]:
    """Return an overlay's layers keyed by their label (or type name when unlabelled)."""
    return {el.label or type(el).__name__: el for el in fig.values()}


def renders(fig: object) -> None:
    from bokeh.models import Model

    assert isinstance(hv.render(fig, backend="bokeh"), Model)


# The monthly table, by hand.


def hand_example(tz: str | None) -> pd.Series:
    index = pd.DatetimeIndex(
        ["2023-01-03", "2023-01-20", "2023-02-15", "2023-02-16", "2023-12-29", "2024-02-01"],
        tz=tz,
    )
    return pd.Series([0.10, -0.10, 0.05, np.nan, 0.02, -0.03], index=index)


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_monthly_returns_table_by_hand(tz: str | None) -> None:
    table = monthly_returns_table(hand_example(tz))
    assert table.columns.tolist() == [*range(1, 13), "Year"]
    assert table.index.tolist() == [2023, 2024]
    assert table.loc[2023, 1] == pytest.approx(1.10 * 0.90 - 1)  # -0.01
    assert table.loc[2023, 2] == pytest.approx(0.05)  # the NaN return is skipped
    assert table.loc[2023, 12] == pytest.approx(0.02)
    assert table.loc[2023, "Year"] == pytest.approx(0.99 * 1.05 * 1.02 - 1)  # 0.06029
    assert table.loc[2024, 2] == pytest.approx(-0.03)
    assert table.loc[2024, "Year"] == pytest.approx(-0.03)
    empty_months = (
        [(2023, m) for m in range(3, 12)] + [(2024, 1)] + [(2024, m) for m in range(3, 13)]
    )
    assert all(np.isnan(table.loc[y, m]) for y, m in empty_months)


def test_monthly_table_year_compounds_its_months() -> None:
    table = monthly_returns_table(daily_returns())
    months = table[list(range(1, 13))]
    compounded = (1 + months.fillna(0)).prod(axis=1) - 1
    np.testing.assert_allclose(table["Year"].to_numpy(), compounded.to_numpy(), rtol=1e-12)


def test_monthly_table_needs_dates() -> None:
    with pytest.raises(TypeError, match="DatetimeIndex"):
        monthly_returns_table(daily_returns("range"))


# Each figure's data is the input (or the metric it shows), and it renders with bokeh.


@pytest.mark.parametrize("kind", ["datetime", "range"])
def test_equity_figure(kind: str) -> None:
    returns = daily_returns(kind)
    equity = 1e6 * (1 + returns).cumprod()
    benchmark = 50 * (1 + daily_returns(kind, seed=9)).cumprod()
    fig = equity_figure(equity, benchmark.iloc[:-10])
    layers = elements(fig)
    assert set(layers) == {"Strategy", "Benchmark"}
    np.testing.assert_allclose(
        layers["Strategy"].dimension_values("growth"), (equity / equity.iloc[0]).to_numpy()
    )
    np.testing.assert_allclose(
        layers["Benchmark"].dimension_values("growth"),
        (benchmark / benchmark.iloc[0]).iloc[:-10].to_numpy(),
    )
    x = "ts" if kind == "datetime" else "period"
    assert pd.Index(layers["Strategy"].data[x]).equals(pd.Index(equity.index, name=x))
    renders(fig)
    renders(equity_figure(equity, logy=True))


def test_equity_benchmark_starts_with_the_strategy() -> None:
    index = pd.bdate_range("2024-01-01", periods=6, tz="UTC")
    equity = pd.Series([np.nan, 200.0, 210.0, 220.0, 200.0, 230.0], index=index)
    benchmark = pd.Series([1.0, 2.0, 4.0, 4.0, 2.0, 8.0], index=index)
    layers = elements(equity_figure(equity, benchmark))
    np.testing.assert_allclose(
        layers["Strategy"].dimension_values("growth"), [1, 1.05, 1.1, 1, 1.15]
    )
    np.testing.assert_allclose(layers["Benchmark"].dimension_values("growth"), [1, 2, 2, 1, 4])


@pytest.mark.parametrize("kind", ["datetime", "range"])
def test_drawdown_figure(kind: str) -> None:
    returns = daily_returns(kind)
    fig = drawdown_figure(returns)
    assert isinstance(fig, hv.Area)
    expected = drawdown_series(returns)
    np.testing.assert_array_equal(fig.dimension_values("drawdown"), expected.to_numpy())
    x = "ts" if kind == "datetime" else "period"
    assert pd.Index(fig.data[x]).equals(pd.Index(expected.index, name=x))
    renders(fig)


@pytest.mark.parametrize("kind", ["datetime", "range"])
def test_rolling_sharpe_figure(kind: str) -> None:
    returns = daily_returns(kind)
    # Undated returns cannot tell their bar length: they need it given.
    ppy = {} if kind == "datetime" else {"periods_per_year": 252}
    fig = rolling_sharpe_figure(returns, window=63, **ppy)
    layers = elements(fig)
    np.testing.assert_array_equal(
        layers["Rolling Sharpe"].dimension_values("sharpe"),
        rolling_sharpe(returns, 63, periods_per_year=252).to_numpy(),
    )
    lines = sorted(el.data for el in fig.values() if isinstance(el, hv.HLine))
    assert lines == sorted([0.0, sharpe(returns, periods_per_year=252)])
    renders(fig)


def test_rolling_sharpe_figure_of_a_short_series() -> None:
    fig = rolling_sharpe_figure(daily_returns(n=1), window=63)  # Sharpe undefined: no line
    assert sum(isinstance(el, hv.HLine) for el in fig.values()) == 1
    renders(fig)


def test_monthly_returns_heatmap() -> None:
    returns = hand_example("UTC")
    fig = monthly_returns_heatmap(returns)
    heatmap = next(el for el in fig.values() if isinstance(el, hv.HeatMap))
    labels = next(el for el in fig.values() if isinstance(el, hv.Labels))
    table = monthly_returns_table(returns)
    cells = heatmap.data.dropna(subset=["return"])
    got = {(int(y), MONTH_NAMES.index(m) + 1): v for m, y, v in cells.itertuples(index=False)}
    expected = table[list(range(1, 13))].stack().dropna().to_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)
    assert sorted(labels.data["text"]) == sorted(["-1.0%", "5.0%", "2.0%", "-3.0%"])
    # Full grid, months in calendar order, earliest year drawn on top (last factor).
    plot = hv.render(fig, backend="bokeh")
    assert list(plot.x_range.factors) == list(MONTH_NAMES)
    assert list(plot.y_range.factors) == ["2024", "2023"]


def test_monthly_returns_heatmap_of_a_long_series() -> None:
    fig = monthly_returns_heatmap(daily_returns(n=800))
    renders(fig)


@pytest.mark.parametrize("kind", ["datetime", "range"])
def test_exposure_figure(kind: str) -> None:
    index = daily_returns(kind, n=50).index
    gross = pd.Series(np.linspace(0.5, 1.5, 50), index=index)
    net = pd.Series(np.linspace(-0.2, 0.4, 50), index=index)
    fig = exposure_figure(gross, net)
    layers = elements(fig)
    np.testing.assert_array_equal(layers["Gross"].dimension_values("exposure"), gross.to_numpy())
    np.testing.assert_array_equal(layers["Net"].dimension_values("exposure"), net.to_numpy())
    renders(fig)
    assert set(elements(exposure_figure(gross))) == {"Gross"}


# Export.


def test_save_html(tmp_path: Path) -> None:
    fig = drawdown_figure(daily_returns())
    inline = save_figure(fig, tmp_path / "sub" / "drawdown.html")
    cdn = save_figure(fig, tmp_path / "drawdown_cdn.html", resources="cdn")
    for path in (inline, cdn):
        text = path.read_text(encoding="utf-8")
        assert "bokeh" in text.lower()
    assert "cdn.bokeh.org" in cdn.read_text(encoding="utf-8")
    assert inline.stat().st_size > 10 * cdn.stat().st_size  # BokehJS embedded: opens offline


def test_save_overlay_html(tmp_path: Path) -> None:
    path = save_figure(monthly_returns_heatmap(daily_returns()), tmp_path / "monthly.HTML")
    assert path.exists() and "bokeh" in path.read_text(encoding="utf-8").lower()
    assert [p.name for p in tmp_path.iterdir()] == ["monthly.HTML"]  # no temporary file left


def test_save_png_without_a_browser_explains_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no chromedriver, no geckodriver
    monkeypatch.delenv("BOKEH_CHROMEDRIVER_PATH", raising=False)
    target = tmp_path / "drawdown.png"
    with pytest.raises(RuntimeError, match=r"chromium.*chromium-driver"):
        save_figure(drawdown_figure(daily_returns()), target)
    assert not target.exists()


def test_save_rejects_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.html or \.png"):
        save_figure(drawdown_figure(daily_returns()), tmp_path / "drawdown.svg")


def test_importing_figures_does_not_load_holoviews() -> None:
    code = (
        "import sys, quantdesk.backtest.figures; "
        "print(sorted(m for m in ('holoviews', 'hvplot', 'bokeh') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The metrics table, and the result's benchmark-relative metrics from a price series.


def test_metrics_table_shows_benchmark_metrics() -> None:
    from quantdesk.backtest.figures import metrics_table
    from quantdesk.backtest.metrics import BENCHMARK_METRICS, summary_metrics

    returns = daily_returns()
    bench = daily_returns(seed=8)
    table = metrics_table(summary_metrics(returns, benchmark=bench))
    assert isinstance(table, hv.Table)
    names = list(table.dimension_values("metric"))
    assert names[-len(BENCHMARK_METRICS) :] == list(BENCHMARK_METRICS)
    values = dict(zip(names, table.dimension_values("value"), strict=True))
    assert values["CAGR"].endswith("%") and not values["Beta"].endswith("%")
    assert values["Costs / gross P&L"] == "n/a"
    renders(table)
    plain = metrics_table(summary_metrics(returns))
    assert "Beta" not in list(plain.dimension_values("metric"))


def test_result_metrics_and_figures_against_a_benchmark_price_series() -> None:
    from quantdesk.backtest import run
    from quantdesk.backtest.metrics import beta, summary_metrics

    rng = np.random.default_rng(2)
    idx = pd.bdate_range("2020-01-01", periods=300, tz="UTC", name="ts")
    close = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 2)), axis=0)), idx, ["A", "B"]
    )
    weights = pd.DataFrame(0.5, index=idx, columns=close.columns)
    result = run(close, weights)
    # The benchmark as prices: an index of its own, missing a few of the backtest's bars.
    index_level = close["A"].drop(idx[[50, 51, 200]]) * 37.0
    m = result.metrics(benchmark=index_level)
    bench_returns = index_level.reindex(idx).pct_change(fill_method=None)
    assert m["Beta"] == pytest.approx(beta(result.returns, bench_returns), rel=1e-12)
    assert 0.3 < m["Beta"] < 0.8  # half the book is the benchmark itself
    no_bench = result.metrics()
    pd.testing.assert_series_equal(m.iloc[: len(no_bench)], no_bench)
    expected = summary_metrics(result.returns, benchmark=bench_returns, periods_per_year=252)
    assert m["Up capture"] == pytest.approx(expected["Up capture"])
    figures = result.figures(benchmark=index_level)
    assert "Beta" in list(figures["metrics"].dimension_values("metric"))
    with pytest.raises(ValueError, match="benchmark has prices on 0"):
        result.metrics(benchmark=index_level.set_axis(index_level.index - pd.Timedelta(days=3650)))
