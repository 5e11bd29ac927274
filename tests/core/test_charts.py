"""The shared chart module: theme, regime colours, hover text, and that figures use it."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from quantdesk.core import charts
from quantdesk.regimes.model import CELL_NAMES, TREND_LABELS, VOL_LABELS


def test_doctests() -> None:
    assert doctest.testmod(charts, raise_on_error=False).failed == 0


# Regime colours follow the regime contract: one colour per cell, per vol and trend label.


def test_regime_colours_cover_the_regime_contract() -> None:
    assert list(charts.REGIME_COLORS) == list(CELL_NAMES)
    assert len(set(charts.REGIME_COLORS.values())) == len(CELL_NAMES)
    assert list(charts.VOL_COLORS) == list(VOL_LABELS)
    assert list(charts.TREND_COLORS) == list(TREND_LABELS)
    assert charts.regime_palette("cell") == charts.REGIME_COLORS
    assert charts.regime_palette("vol") == charts.VOL_COLORS
    assert charts.regime_palette("trend") == charts.TREND_COLORS


def test_regime_colours_darken_with_volatility() -> None:
    def lightness(colour: str) -> int:
        return sum(int(colour[i : i + 2], 16) for i in (1, 3, 5))

    for trend in TREND_LABELS:
        shades = [lightness(charts.REGIME_COLORS[f"{vol}/{trend}"]) for vol in VOL_LABELS]
        assert shades == sorted(shades, reverse=True), trend


def test_regime_palette_is_a_copy_and_refuses_other_groupings() -> None:
    palette = charts.regime_palette("vol")
    palette["low"] = "#000000"
    assert charts.VOL_COLORS["low"] != "#000000"
    with pytest.raises(ValueError, match="color_by must be 'cell', 'vol' or 'trend'"):
        charts.regime_palette("sector")  # type: ignore[arg-type]


# Hover text.


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2024-01-01", periods=5, tz="UTC"), "%F"),
        (pd.date_range("2024-01-01", periods=5, freq="MS"), "%F"),
        (pd.date_range("2024-01-01 09:30", periods=5, freq="h", tz="America/New_York"), "%F %H:%M"),
        (pd.date_range("2024-01-01", periods=5, freq="15s", tz="UTC"), "%F %T"),
        (pd.DatetimeIndex([], tz="UTC"), "%F"),
        (pd.RangeIndex(5), "%F"),
    ],
)
def test_date_format_shows_times_only_when_the_index_has_them(
    index: pd.Index, expected: str
) -> None:
    assert charts.date_format(index) == expected


def test_hover_tooltips_format_each_kind() -> None:
    tips = charts.hover_tooltips(
        [
            ("r", "Return", "percent"),
            ("close", "Close", "price"),
            ("sharpe", "Sharpe", "number"),
            ("n", "Count", "integer"),
            ("regime", "Regime", "text"),
            ("day", "Day", "date"),
        ],
        x="ts",
        x_format="%F %H:%M",
    )
    assert tips == [
        ("ts", "@{ts}{%F %H:%M}"),
        ("Return", "@{r}{0.00%}"),
        ("Close", "@{close}{0,0.00}"),
        ("Sharpe", "@{sharpe}{0,0.000}"),
        ("Count", "@{n}{0,0}"),
        ("Regime", "@{regime}"),
        ("Day", "@{day}{%F}"),
    ]
    with pytest.raises(ValueError, match="unknown value kind 'money'"):
        charts.hover_tooltips([("x", "X", "money")])  # type: ignore[list-item]


def test_hover_options_format_dates_only_for_a_datetime_x() -> None:
    dated = charts.hover_options(
        [("close", "Close", "price")], x="ts", index=pd.bdate_range("2024-01-01", periods=3)
    )
    assert dated["hover_formatters"] == {"@{ts}": "datetime"}
    assert dated["hover_tooltips"][0] == ("ts", "@{ts}{%F}")
    undated = charts.hover_options(
        [("close", "Close", "price")], x="period", index=pd.RangeIndex(3)
    )
    assert undated["hover_formatters"] == {}
    assert undated["hover_tooltips"][0] == ("period", "@{period}")


def rendered_hovers(fig: object) -> list[tuple[list[tuple[str, str]], set[str]]]:
    """Return each custom hover tool's tooltips with the columns its renderers' data hold."""
    from bokeh.models import ColumnDataSource, GlyphRenderer, HoverTool

    plot = hv.render(fig, backend="bokeh")
    columns: set[str] = set()
    for renderer in plot.select({"type": GlyphRenderer}):
        if isinstance(renderer.data_source, ColumnDataSource):
            columns |= set(renderer.data_source.data)
    return [
        (list(tool.tooltips), columns)
        for tool in plot.select({"type": HoverTool})
        if isinstance(tool.tooltips, list) and tool.tooltips
    ]


def referenced(tooltips: list[tuple[str, str]]) -> set[str]:
    return {name for _, spec in tooltips for name in re.findall(r"@\{([^}]+)\}", spec)}


def test_figures_hover_over_columns_their_data_hold() -> None:
    from quantdesk.backtest.figures import equity_figure, exposure_figure, monthly_returns_heatmap
    from quantdesk.backtest.sweeps import SweepResult
    from quantdesk.regimes.analysis import price_by_regime_figure

    index = pd.bdate_range("2024-01-01", periods=60, tz="UTC", name="ts")
    rng = np.random.default_rng(1)
    returns = pd.Series(rng.normal(0, 0.01, 60), index=index)
    states = rng.integers(0, 9, 60)
    regimes = pd.DataFrame(
        {
            "state": states,
            "vol_label": [VOL_LABELS[s // 3] for s in states],
            "trend_label": [TREND_LABELS[s % 3] for s in states],
        },
        index=index,
    )
    sweep = SweepResult(
        table=pd.DataFrame(
            {"lookback": [21, 63], "target_vol": [0.1, 0.1], "Max drawdown": [-0.2, -0.1]}
        ),
        returns=pd.DataFrame(),
        equity=pd.DataFrame(),
    )
    figures = {
        "equity": equity_figure((1 + returns).cumprod()),
        "exposure": exposure_figure(returns.abs(), returns),
        "monthly": monthly_returns_heatmap(returns),
        "regimes": price_by_regime_figure(100 * (1 + returns).cumprod(), regimes),
        "sweep": sweep.heatmap("Max drawdown"),
    }
    for name, fig in figures.items():
        hovers = rendered_hovers(fig)
        assert hovers, name
        for tooltips, columns in hovers:
            assert referenced(tooltips) <= columns, (name, tooltips, columns)
    equity_tips = rendered_hovers(figures["equity"])[0][0]
    assert equity_tips[0] == ("ts", "@{ts}{%F}")
    exposure_tips = {label: spec for label, spec in rendered_hovers(figures["exposure"])[0][0]}
    assert exposure_tips["Exposure"].endswith("{0.00%}")


# Layers: charts sit at the bottom floor, and the regime figures no longer reach up
# into the backtest package (issue 11: analytics imported a private helper of decisions).


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_charts_loads_neither_holoviews_nor_the_rest_of_quantdesk() -> None:
    code = (
        "import sys, quantdesk.core.charts; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('holoviews', 'hvplot', 'bokeh') or m.startswith(('quantdesk.data', "
        "'quantdesk.regimes', 'quantdesk.backtest', 'quantdesk.reports'))))"
    )
    assert run_python(code) == "[]"


def test_regime_figures_do_not_import_the_backtest_package() -> None:
    code = """
import sys
import pandas as pd
from quantdesk.regimes.analysis import price_by_regime_figure
index = pd.bdate_range("2024-01-01", periods=3, tz="UTC", name="ts")
regimes = pd.DataFrame({"state": [0, 4, 8], "vol_label": ["low", "medium", "high"],
                        "trend_label": ["bearish", "neutral", "bullish"]}, index=index)
price_by_regime_figure(pd.Series([1.0, 2.0, 3.0], index=index), regimes)
print(sorted(m for m in sys.modules if m.startswith("quantdesk.backtest")))
"""
    assert run_python(code) == "[]"


def test_save_a_regime_figure_without_the_backtest_package(tmp_path: Path) -> None:
    from quantdesk.regimes.analysis import regime_probability_figure

    index = pd.bdate_range("2024-01-01", periods=3, tz="UTC", name="ts")
    probs = np.full((3, 9), 1 / 9)
    frame = pd.DataFrame(
        probs, index=index, columns=[f"p_{c.replace('/', '_')}" for c in CELL_NAMES]
    )
    path = charts.save_figure(regime_probability_figure(frame), tmp_path / "probs.html")
    text = path.read_text(encoding="utf-8")
    assert "Filtered regime probabilities" in text
    assert [p.name for p in tmp_path.iterdir()] == ["probs.html"]
