"""Tearsheet figures of a backtest, as HoloViews objects that render inline in Jupyter.

Each function draws one figure from numbers computed elsewhere (by
:mod:`quantdesk.backtest.metrics`, or by :func:`monthly_returns_table` here) and
returns a HoloViews element or overlay with the bokeh backend's options set.
HoloViews loads on the first call, so importing this module stays cheap, and the
first call loads its bokeh extension unless something (``hv.extension("bokeh")``,
``import hvplot.pandas``) already has: a notebook displays the figures inline
without further setup.

:func:`save_figure` writes a figure to a static HTML file (self-contained by default,
so it opens offline) or, where a headless browser is installed, to PNG.

Examples
--------
>>> r = pd.Series([0.01, -0.02, 0.015], index=pd.date_range("2024-01-31", periods=3, freq="ME"))
>>> monthly_returns_table(r).loc[2024, [1, 2, 3]].round(4).tolist()
[0.01, -0.02, 0.015]
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantdesk.backtest.metrics import (
    BENCHMARK_METRICS,
    ReturnsLike,
    drawdown_series,
    rolling_sharpe,
    sharpe,
)

__all__ = [
    "drawdown_figure",
    "equity_figure",
    "exposure_figure",
    "metrics_table",
    "monthly_returns_heatmap",
    "monthly_returns_table",
    "rolling_sharpe_figure",
    "save_figure",
]

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_WIDTH = 800
_HEIGHT = 300
_PNG_HELP = (
    "PNG export renders the figure in a headless browser through selenium, and needs "
    "chromium with chromedriver on PATH (Debian packages 'chromium' and "
    "'chromium-driver'; or set BOKEH_CHROMEDRIVER_PATH), or firefox with geckodriver. "
    "Save to .html instead, which needs no browser."
)


def _holoviews() -> Any:
    """Return the holoviews module with the bokeh plotting extension loaded once."""
    import holoviews as hv

    # Load bokeh only when no one has: in a notebook this emits BokehJS once, where a
    # per-call ``import hvplot.pandas`` would re-emit it with every figure's cell.
    if "bokeh" not in hv.Store.loaded_backends():
        hv.extension("bokeh", logo=False)
    return hv


def _x_name(index: pd.Index) -> str:
    """Return the name of the x dimension for a series indexed by ``index``."""
    if index.name is not None:
        return str(index.name)
    return "ts" if isinstance(index, pd.DatetimeIndex) else "period"


def _as_series(values: pd.Series | np.ndarray, name: str) -> pd.Series:
    """Return ``values`` as a float Series named ``name`` (an array gets a RangeIndex)."""
    if isinstance(values, pd.Series):
        series = values.astype("float64")
    else:
        series = pd.Series(np.asarray(values, dtype="float64"))
    series.name = name
    return series


def _curve(series: pd.Series, vdim: str, vlabel: str, label: str) -> Any:
    """Return an ``hv.Curve`` of ``series`` against its index."""
    hv = _holoviews()
    x = _x_name(series.index)
    frame = pd.DataFrame({x: series.index, vdim: series.to_numpy()})
    return hv.Curve(frame, kdims=[x], vdims=[hv.Dimension(vdim, label=vlabel)], label=label)


def _percent_formatter() -> Any:
    """Return a bokeh tick formatter that shows fractions as percentages."""
    from bokeh.models import NumeralTickFormatter

    return NumeralTickFormatter(format="0%")


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
    hv = _holoviews()
    strategy = _normalised(_as_series(equity, "growth"))
    curves = [_curve(strategy, "growth", "Growth of 1", "Strategy")]
    if benchmark is not None:
        bench = _as_series(benchmark, "growth")
        present = strategy.dropna()
        if not present.empty:
            bench = bench.loc[bench.index >= present.index[0]]
        curves.append(_curve(_normalised(bench), "growth", "Growth of 1", "Benchmark"))
    return hv.Overlay(curves).opts(
        hv.opts.Curve(tools=["hover"], line_width=1.5),
        hv.opts.Overlay(
            title="Equity", width=_WIDTH, height=_HEIGHT, logy=logy, legend_position="top_left"
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
    hv = _holoviews()
    drawdown = drawdown_series(returns)
    x = _x_name(drawdown.index)
    frame = pd.DataFrame({x: drawdown.index, "drawdown": drawdown.to_numpy()})
    area = hv.Area(
        frame, kdims=[x], vdims=[hv.Dimension("drawdown", label="Drawdown")], label="Drawdown"
    )
    return area.opts(
        title="Drawdown",
        color="#d62728",
        alpha=0.5,
        line_width=0.5,
        tools=["hover"],
        width=_WIDTH,
        height=_HEIGHT // 2 + 50,
        yformatter=_percent_formatter(),
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
    hv = _holoviews()
    rolling = rolling_sharpe(returns, window, periods_per_year=periods_per_year)
    layers = [
        _curve(rolling, "sharpe", f"Sharpe ({window} periods)", "Rolling Sharpe"),
        hv.HLine(0.0).opts(color="grey", line_width=1),
    ]
    full = sharpe(returns, periods_per_year=periods_per_year)
    if np.isfinite(full):
        layers.append(hv.HLine(full).opts(color="black", line_dash="dashed", line_width=1))
    return hv.Overlay(layers).opts(
        hv.opts.Curve(tools=["hover"], line_width=1.5),
        hv.opts.Overlay(title=f"Rolling Sharpe ({window} periods)", width=_WIDTH, height=_HEIGHT),
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
    hv = _holoviews()
    rows = [(str(name), _format_metric(str(name), float(value))) for name, value in metrics.items()]
    relative = any(name in BENCHMARK_METRICS for name, _ in rows)
    table = hv.Table(rows, kdims=["metric"], vdims=["value"])
    title = "Metrics against the benchmark" if relative else "Metrics"
    return table.opts(title=title, width=_WIDTH // 2, height=25 * (len(rows) + 2))


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
    hv = _holoviews()
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
        cmap="RdYlGn",
        symmetric=True,
        colorbar=True,
        tools=["hover"],
        xlabel="",
        ylabel="",
    )
    text = hv.Labels(labels, kdims=["month", "year"], vdims=["text"]).opts(
        text_font_size="8pt", text_color="black"
    )
    height = max(150, 40 + 30 * len(table))
    return (heatmap * text).opts(title="Monthly returns", width=_WIDTH, height=height)


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
    hv = _holoviews()
    curves = [_curve(_as_series(gross_exposure, "exposure"), "exposure", "Exposure", "Gross")]
    if net_exposure is not None:
        net = _as_series(net_exposure, "exposure")
        curves.append(_curve(net, "exposure", "Exposure", "Net"))
    return hv.Overlay(curves).opts(
        hv.opts.Curve(tools=["hover"], line_width=1.5),
        hv.opts.Overlay(
            title="Exposure",
            width=_WIDTH,
            height=_HEIGHT,
            legend_position="top_left",
            yformatter=_percent_formatter(),
        ),
    )


def _png_driver_available() -> bool:
    """Return whether bokeh can find a browser and its driver for PNG export."""
    chromedriver = os.environ.get("BOKEH_CHROMEDRIVER_PATH") or any(
        shutil.which(name) for name in ("chromedriver", "chromium.chromedriver")
    )
    firefox = shutil.which("firefox") and shutil.which("geckodriver")
    return bool(chromedriver or firefox)


def save_figure(
    fig: Any,
    path: str | os.PathLike[str],
    *,
    resources: Literal["inline", "cdn"] = "inline",
) -> Path:
    """Return the path of the file that a figure was saved to, as HTML or PNG by suffix.

    Parameters
    ----------
    fig
        A HoloViews object (element, overlay or layout).
    path
        Target file; its suffix picks the format: ``.html`` or ``.png``.  Missing
        parent folders are created.
    resources
        For HTML: ``"inline"`` embeds BokehJS (a few MB; opens offline), ``"cdn"``
        links it from the CDN (small; needs the network to display).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If the suffix is neither ``.html`` nor ``.png``.
    RuntimeError
        For PNG, when no headless browser with a driver is installed (PNG export needs
        selenium and chromium + chromedriver, or firefox + geckodriver).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".html", ".png"):
        raise ValueError(f"cannot save a figure as {target.name!r}: use a .html or .png path")
    hv = _holoviews()
    if suffix == ".png":
        try:
            import selenium  # noqa: F401
        except ImportError as err:
            raise RuntimeError(
                f"cannot save {target}: selenium is not installed. {_PNG_HELP}"
            ) from err
        if not _png_driver_available():
            raise RuntimeError(f"cannot save {target}: no browser driver found. {_PNG_HELP}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and move into place: a failed export leaves any previous
    # file untouched, and holoviews sees the lower-case suffix it expects (it would
    # append ".html" to "report.HTML").
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex}{suffix}")
    tmp_name = str(tmp)
    try:
        if suffix == ".html":
            hv.save(fig, tmp_name, fmt="html", backend="bokeh", resources=resources)
        else:
            try:
                hv.save(fig, tmp_name, fmt="png", backend="bokeh")
            except Exception as err:  # selenium's WebDriverException, bokeh's RuntimeError
                raise RuntimeError(
                    f"cannot save {target}: PNG export failed ({err}). {_PNG_HELP}"
                ) from err
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
