"""Tearsheet figures of a backtest, as HoloViews objects that render inline in Jupyter.

Each function draws one figure from numbers computed elsewhere (by
:mod:`quantdesk.backtest.metrics`, or by :func:`monthly_returns_table` here) and
returns a HoloViews element or overlay with the bokeh backend's options set.
HoloViews loads on the first call, so importing this module stays cheap, and the
first call loads its bokeh extension unless something (``hv.extension("bokeh")``,
``import hvplot.pandas``) already has: a notebook displays the figures inline
without further setup.

The look (sizes, colours, hover text) comes from :mod:`quantdesk.core.charts`, whose
:func:`~quantdesk.core.charts.save_figure` writes any figure to a static HTML file
(self-contained by default, so it opens offline) or, where a headless browser is
installed, to PNG.

Examples
--------
>>> r = pd.Series([0.01, -0.02, 0.015], index=pd.date_range("2024-01-31", periods=3, freq="ME"))
>>> monthly_returns_table(r).loc[2024, [1, 2, 3]].round(4).tolist()
[0.01, -0.02, 0.015]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantdesk.backtest.metrics import (
    BENCHMARK_METRICS,
    ReturnsLike,
    drawdown_series,
    rolling_sharpe,
    sharpe,
)
from quantdesk.core import charts

__all__ = [
    "drawdown_figure",
    "equity_figure",
    "exposure_figure",
    "metrics_table",
    "monthly_returns_heatmap",
    "monthly_returns_table",
    "rolling_sharpe_figure",
]

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _normalised(series: pd.Series) -> pd.Series:
    """Return ``series`` divided by its first present value, so that it starts at 1."""
    present = np.flatnonzero(series.notna().to_numpy())
    if present.size == 0:
        return series
    first = int(present[0])
    scaled: pd.Series = series.iloc[first:] / series.iloc[first]
    return scaled


def equity_figure(
    equity: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    logy: bool = False,
) -> Any:
    """Return the growth of 1 of the strategy (and a benchmark) as an overlay of curves.

    Parameters
    ----------
    equity
        Portfolio value per period (any scale: it is divided by its first value).
    benchmark
        Benchmark prices or equity on a comparable index; cut to start where ``equity``
        starts and divided by its first value there.
    logy
        Draw the y axis on a log scale.

    Returns
    -------
    holoviews.Overlay
        Curve ``"Strategy"`` (and ``"Benchmark"``) with value dimension ``growth``.
    """
    hv = charts.load_holoviews()
    strategy = _normalised(charts.as_series(equity, "growth"))
    curves = [charts.curve(strategy, "growth", "Growth of 1", "Strategy")]
    if benchmark is not None:
        bench = charts.as_series(benchmark, "growth")
        present = strategy.dropna()
        if not present.empty:
            bench = bench.loc[bench.index >= present.index[0]]
        curves.append(charts.curve(_normalised(bench), "growth", "Growth of 1", "Benchmark"))
    return hv.Overlay(curves).opts(
        hv.opts.Curve(line_width=charts.LINE_WIDTH),
        hv.opts.Overlay(
            title="Equity",
            width=charts.WIDTH,
            height=charts.HEIGHT,
            logy=logy,
            legend_position="top_left",
        ),
    )


def drawdown_figure(returns: ReturnsLike) -> Any:
    """Return the drawdown from the running peak as a filled area (an "underwater" plot).

    Parameters
    ----------
    returns
        Simple per-period returns.

    Returns
    -------
    holoviews.Area
        :func:`~quantdesk.backtest.metrics.drawdown_series` against its index, value
        dimension ``drawdown``.
    """
    hv = charts.load_holoviews()
    drawdown = drawdown_series(returns)
    x = charts.x_name(drawdown.index)
    frame = pd.DataFrame({x: drawdown.index, "drawdown": drawdown.to_numpy()})
    area = hv.Area(
        frame, kdims=[x], vdims=[hv.Dimension("drawdown", label="Drawdown")], label="Drawdown"
    )
    return area.opts(
        title="Drawdown",
        color=charts.LOSS_COLOR,
        alpha=0.5,
        line_width=0.5,
        tools=["hover"],
        width=charts.WIDTH,
        height=charts.HEIGHT // 2 + 50,
        yformatter=charts.percent_formatter(),
    )


def rolling_sharpe_figure(
    returns: ReturnsLike,
    window: int = 126,
    periods_per_year: float | None = None,
) -> Any:
    """Return the trailing-window Sharpe ratio as a curve, with the full-sample Sharpe.

    Parameters
    ----------
    returns
        Simple per-period returns.
    window
        Number of periods in each window (126 is about six months of daily bars).
    periods_per_year
        Number of periods in a year; ``None`` reads it from the returns' timeframe or index.

    Returns
    -------
    holoviews.Overlay
        Curve ``"Rolling Sharpe"`` of :func:`~quantdesk.backtest.metrics.rolling_sharpe`
        (value dimension ``sharpe``), a zero line, and a dashed line at the
        full-sample Sharpe when it is defined.
    """
    hv = charts.load_holoviews()
    rolling = rolling_sharpe(returns, window, periods_per_year=periods_per_year)
    layers = [
        charts.curve(rolling, "sharpe", f"Sharpe ({window} periods)", "Rolling Sharpe"),
        hv.HLine(0.0).opts(color=charts.ZERO_COLOR, line_width=1),
    ]
    full = sharpe(returns, periods_per_year=periods_per_year)
    if np.isfinite(full):
        layers.append(
            hv.HLine(full).opts(color=charts.REFERENCE_COLOR, line_dash="dashed", line_width=1)
        )
    return hv.Overlay(layers).opts(
        hv.opts.Curve(line_width=charts.LINE_WIDTH),
        hv.opts.Overlay(
            title=f"Rolling Sharpe ({window} periods)", width=charts.WIDTH, height=charts.HEIGHT
        ),
    )


# Metrics shown as percentages in the table; the others are ratios or counts.
_PERCENT_METRICS = frozenset(
    {
        "CAGR", "Annual volatility", "Max drawdown", "Average gross exposure", "Hit rate",
        "Costs / gross P&L", "Excess return (annual)", "Alpha (annual)", "Tracking error",
    }
)  # fmt: skip


def metrics_table(metrics: pd.Series) -> Any:
    """Return the metrics of a run as a two-column table (benchmark-relative ones last).

    Parameters
    ----------
    metrics
        A Series of metric values by name, as from
        :func:`~quantdesk.backtest.metrics.summary_metrics` (with a benchmark it carries
        excess return, beta, alpha, tracking error, information ratio and capture).

    Returns
    -------
    holoviews.Table
        Key dimension ``metric``, value dimension ``value`` (text: percentages for
        returns, volatilities, drawdowns and shares; ``n/a`` where undefined).
    """
    hv = charts.load_holoviews()
    rows = [(str(name), _format_metric(str(name), float(value))) for name, value in metrics.items()]
    relative = any(name in BENCHMARK_METRICS for name, _ in rows)
    table = hv.Table(rows, kdims=["metric"], vdims=["value"])
    title = "Metrics against the benchmark" if relative else "Metrics"
    return table.opts(title=title, width=charts.WIDTH // 2, height=25 * (len(rows) + 2))


def _format_metric(name: str, value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.2%}" if name in _PERCENT_METRICS else f"{value:,.3f}"


def monthly_returns_table(returns: pd.Series) -> pd.DataFrame:
    """Return compounded returns per calendar month (columns 1-12) and year (``"Year"``).

    Parameters
    ----------
    returns
        Simple per-period returns indexed by a DatetimeIndex; months are calendar months
        in the index's time zone.  NaN returns are dropped.

    Returns
    -------
    pandas.DataFrame
        One row per year (index ``year``), columns ``1`` to ``12`` (``prod(1 + r) - 1``
        over the month's periods; NaN for a month without returns) and ``"Year"`` (the
        same over the year's periods, so over the observed months of a partial year).

    Raises
    ------
    TypeError
        If ``returns`` is not indexed by a DatetimeIndex.

    Examples
    --------
    >>> idx = pd.to_datetime(["2024-01-10", "2024-01-20", "2024-03-05"])
    >>> table = monthly_returns_table(pd.Series([0.1, 0.1, -0.5], index=idx))
    >>> table.loc[2024, [1, 3, "Year"]].round(4).tolist()
    [0.21, -0.5, -0.395]
    """
    if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
        raise TypeError("monthly_returns_table needs a Series of returns with a DatetimeIndex")
    r = returns.astype("float64").dropna()
    index = pd.DatetimeIndex(r.index)
    growth = 1.0 + r
    months = growth.groupby([index.year, index.month]).prod() - 1.0
    table = months.unstack().reindex(columns=range(1, 13))
    table["Year"] = growth.groupby(index.year).prod() - 1.0
    table.index.name = "year"
    table.columns.name = "month"
    return table.astype("float64")


def monthly_returns_heatmap(returns: pd.Series) -> Any:
    """Return a year x month heatmap of compounded monthly returns, labelled with values.

    Parameters
    ----------
    returns
        Simple per-period returns indexed by a DatetimeIndex.

    Returns
    -------
    holoviews.Overlay
        ``hv.HeatMap`` over ``month`` (``"Jan"``...) and ``year`` (as text, earliest on
        top) with value dimension ``return`` from :func:`monthly_returns_table`, and
        ``hv.Labels`` with each month's return in percent.  Months without returns
        are blank.
    """
    hv = charts.load_holoviews()
    table = monthly_returns_table(returns)[list(range(1, 13))]
    # Latest year first: bokeh stacks categorical factors bottom-up, so the earliest
    # year lands on top.  The full grid (NaN included) fixes the order of the axes.
    grid = table.iloc[::-1].stack(future_stack=True)
    frame = pd.DataFrame(
        {
            "month": [MONTH_NAMES[month - 1] for month in grid.index.get_level_values(1)],
            "year": [str(year) for year in grid.index.get_level_values(0)],
            "return": grid.to_numpy(dtype="float64"),
        }
    )
    present = frame.dropna(subset=["return"])
    labels = present.assign(text=[f"{value:.1%}" for value in present["return"]])
    heatmap = hv.HeatMap(
        frame,
        kdims=["month", "year"],
        vdims=[hv.Dimension("return", label="Monthly return")],
    ).opts(
        **charts.heatmap_options(
            [("month", "Month", "text"), ("year", "Year", "text"), ("return", "Return", "percent")],
            symmetric=True,
            xlabel="",
            ylabel="",
        )
    )
    text = hv.Labels(labels, kdims=["month", "year"], vdims=["text"]).opts(
        text_font_size=charts.LABEL_FONT_SIZE, text_color=charts.REFERENCE_COLOR
    )
    height = max(150, 40 + 30 * len(table))
    return (heatmap * text).opts(title="Monthly returns", width=charts.WIDTH, height=height)


def exposure_figure(gross_exposure: pd.Series, net_exposure: pd.Series | None = None) -> Any:
    """Return gross (and net) exposure over time as an overlay of curves.

    Parameters
    ----------
    gross_exposure
        Gross exposure per period, as from :func:`~quantdesk.backtest.metrics.exposure`.
    net_exposure
        Net exposure per period, as from :func:`~quantdesk.backtest.metrics.net_exposure`.

    Returns
    -------
    holoviews.Overlay
        Curves ``"Gross"`` (and ``"Net"``) with value dimension ``exposure``.
    """
    hv = charts.load_holoviews()
    gross = charts.as_series(gross_exposure, "exposure")
    curves = [charts.curve(gross, "exposure", "Exposure", "Gross", "percent")]
    if net_exposure is not None:
        net = charts.as_series(net_exposure, "exposure")
        curves.append(charts.curve(net, "exposure", "Exposure", "Net", "percent"))
    return hv.Overlay(curves).opts(
        hv.opts.Curve(line_width=charts.LINE_WIDTH),
        hv.opts.Overlay(
            title="Exposure",
            width=charts.WIDTH,
            height=charts.HEIGHT,
            legend_position="top_left",
            yformatter=charts.percent_formatter(),
        ),
    )
