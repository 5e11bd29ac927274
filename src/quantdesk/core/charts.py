"""Chart theme and builders that every quantdesk figure draws with (HoloViews, bokeh).

One place for what makes the figures look alike: sizes, fonts and colours (the
theme), hover text that formats dates, percentages and prices, the colours of the
nine regimes (hue by trend, depth by volatility), the lazy HoloViews loader, small
builders that more than one figure module uses, and :func:`save_figure`.  The
backtest tearsheets, the regime figures, the reports and the dashboards draw
through it; none of them reaches into another's figure module.

HoloViews and bokeh load on the first call that needs them, so importing this
module stays cheap, and the first such call loads HoloViews' bokeh extension unless
something (``hv.extension("bokeh")``, ``import hvplot.pandas``) already has.

Examples
--------
>>> REGIME_COLORS["high/bearish"], VOL_COLORS["low"]
('#8b0000', '#9ecae1')
>>> date_format(pd.DatetimeIndex(["2024-01-02", "2024-01-03"]))
'%F'
>>> hover_tooltips([("close", "Close", "price")], x="ts", x_format="%F")
[('ts', '@{ts}{%F}'), ('Close', '@{close}{0,0.00}')]
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "DIVERGING_CMAP",
    "HEIGHT",
    "LABEL_FONT_SIZE",
    "LINE_WIDTH",
    "LOSS_COLOR",
    "MUTED_COLOR",
    "REFERENCE_COLOR",
    "REGIME_COLORS",
    "TREND_COLORS",
    "VOL_COLORS",
    "WIDTH",
    "ZERO_COLOR",
    "ValueKind",
    "as_series",
    "curve",
    "date_format",
    "heatmap_options",
    "hover_options",
    "hover_tooltips",
    "load_holoviews",
    "percent_formatter",
    "regime_palette",
    "save_figure",
    "x_name",
]

# -- theme -----------------------------------------------------------------------------

WIDTH = 800
HEIGHT = 300
LINE_WIDTH = 1.5
LABEL_FONT_SIZE = "8pt"

LOSS_COLOR = "#d62728"  # drawdowns and other losses
MUTED_COLOR = "#bbbbbb"  # a backdrop line that coloured points sit on
ZERO_COLOR = "grey"
REFERENCE_COLOR = "black"  # a full-sample level drawn across a rolling one
# Red for bad, green for good, centred on zero (returns, Sharpe ratios).
DIVERGING_CMAP = "RdYlGn"

# The nine regime cells by name ``"{vol}/{trend}"``.  Trend picks the hue (red,
# grey-gold, green), volatility its depth: darker is more volatile.
REGIME_COLORS: dict[str, str] = {
    "low/bearish": "#f4a3a3",
    "low/neutral": "#d9d4c0",
    "low/bullish": "#a8dba8",
    "medium/bearish": "#e0524f",
    "medium/neutral": "#b3a878",
    "medium/bullish": "#4caf50",
    "high/bearish": "#8b0000",
    "high/neutral": "#6b5e2e",
    "high/bullish": "#1b5e20",
}
VOL_COLORS: dict[str, str] = {"low": "#9ecae1", "medium": "#fdae6b", "high": "#d62728"}
TREND_COLORS: dict[str, str] = {"bearish": "#d62728", "neutral": "#999999", "bullish": "#2ca02c"}


def regime_palette(color_by: Literal["cell", "vol", "trend"]) -> dict[str, str]:
    """Return the colours of the regimes by name: the nine cells, or three vol or trend labels.

    Parameters
    ----------
    color_by
        ``"cell"`` (keys ``"{vol}/{trend}"``), ``"vol"`` (``low``, ``medium``,
        ``high``) or ``"trend"`` (``bearish``, ``neutral``, ``bullish``).

    Raises
    ------
    ValueError
        For any other ``color_by``.
    """
    palettes = {"cell": REGIME_COLORS, "vol": VOL_COLORS, "trend": TREND_COLORS}
    if color_by not in palettes:
        raise ValueError(f"color_by must be 'cell', 'vol' or 'trend', not {color_by!r}")
    return dict(palettes[color_by])


# -- hover -----------------------------------------------------------------------------

ValueKind = Literal["percent", "price", "number", "integer", "text", "date", "datetime"]

# bokeh's tooltip formats: numbro for numbers, strftime (with the datetime formatter)
# for dates.
_NUMBER_FORMATS: dict[str, str] = {
    "percent": "{0.00%}",
    "price": "{0,0.00}",
    "number": "{0,0.000}",
    "integer": "{0,0}",
    "text": "",
}
_KINDS = frozenset(_NUMBER_FORMATS) | {"date", "datetime"}


def date_format(index: pd.Index) -> str:
    """Return the strftime format that shows ``index``'s timestamps without noise.

    Dates (every timestamp at midnight: daily, weekly and monthly bars) show as
    ``%F``; intraday timestamps as ``%F %H:%M`` (``%F %T`` when some have seconds).
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        return "%F"
    since_midnight = index - index.normalize()
    if not since_midnight.any():
        return "%F"
    if (since_midnight % pd.Timedelta(minutes=1)).any():
        return "%F %T"
    return "%F %H:%M"


def hover_tooltips(
    values: Iterable[tuple[str, str, ValueKind]],
    *,
    x: str | None = None,
    x_format: str | None = None,
) -> list[tuple[str, str]]:
    """Return bokeh tooltips that show each value formatted by its kind.

    Parameters
    ----------
    values
        ``(column, label, kind)`` per value shown, in order.  ``kind`` is one of
        ``percent`` (``12.34%``), ``price`` (``1,234.56``), ``number`` (three
        decimals), ``integer``, ``text``, ``date`` (``%F``) or ``datetime``
        (``%F %H:%M``).
    x
        The x column, shown first; ``None`` shows none.
    x_format
        strftime format of ``x`` when it holds timestamps (see :func:`date_format`);
        ``None`` shows ``x`` as text.
    """
    tips: list[tuple[str, str]] = []
    if x is not None:
        tips.append((x, f"@{{{x}}}" + (f"{{{x_format}}}" if x_format else "")))
    for column, label, kind in values:
        if kind in ("date", "datetime"):
            fmt = "{%F}" if kind == "date" else "{%F %H:%M}"
        elif kind in _NUMBER_FORMATS:
            fmt = _NUMBER_FORMATS[kind]
        else:
            raise ValueError(f"unknown value kind {kind!r}: use one of {sorted(_KINDS)}")
        tips.append((label, f"@{{{column}}}{fmt}"))
    return tips


def hover_options(
    values: Iterable[tuple[str, str, ValueKind]],
    *,
    x: str | None = None,
    index: pd.Index | None = None,
) -> dict[str, Any]:
    """Return HoloViews options for a hover tool whose text is formatted by value kind.

    Parameters
    ----------
    values
        ``(column, label, kind)`` per value, as for :func:`hover_tooltips`.
    x
        The x column, shown first.
    index
        The x values; a DatetimeIndex formats ``x`` as dates (see :func:`date_format`),
        anything else shows it as a number.

    Returns
    -------
    dict
        ``tools``, ``hover_tooltips`` and ``hover_formatters``, to pass to ``.opts``.
    """
    from holoviews.core.util import dimension_sanitizer

    # bokeh's data source names a column by the sanitised dimension name ("Max
    # drawdown" becomes "Max_drawdown"); the tooltips must use the same names.
    values = [(dimension_sanitizer(column), label, kind) for column, label, kind in values]
    x = dimension_sanitizer(x) if x is not None else None
    dated = isinstance(index, pd.DatetimeIndex)
    x_format = date_format(index) if dated and index is not None else None
    formatters = {f"@{{{x}}}": "datetime"} if x is not None and x_format else {}
    formatters.update({f"@{{{c}}}": "datetime" for c, _, k in values if k in ("date", "datetime")})
    return {
        "tools": ["hover"],
        "hover_tooltips": hover_tooltips(values, x=x, x_format=x_format),
        "hover_formatters": formatters,
    }


# -- builders --------------------------------------------------------------------------


def load_holoviews() -> Any:
    """Return the holoviews module with the bokeh plotting extension loaded once."""
    import holoviews as hv

    # Load bokeh only when no one has: in a notebook this emits BokehJS once, where a
    # per-call ``import hvplot.pandas`` would re-emit it with every figure's cell.
    if "bokeh" not in hv.Store.loaded_backends():
        hv.extension("bokeh", logo=False)
    return hv


def x_name(index: pd.Index) -> str:
    """Return the name of the x dimension for a series indexed by ``index``.

    The index's own name, else ``"ts"`` for timestamps and ``"period"`` otherwise.
    """
    if index.name is not None:
        return str(index.name)
    return "ts" if isinstance(index, pd.DatetimeIndex) else "period"


def as_series(values: pd.Series | np.ndarray, name: str) -> pd.Series:
    """Return ``values`` as a float Series named ``name`` (an array gets a RangeIndex)."""
    if isinstance(values, pd.Series):
        series = values.astype("float64")
    else:
        series = pd.Series(np.asarray(values, dtype="float64"))
    series.name = name
    return series


def curve(series: pd.Series, vdim: str, vlabel: str, label: str, kind: ValueKind = "number") -> Any:
    """Return an ``hv.Curve`` of ``series`` against its index, with formatted hover text.

    Parameters
    ----------
    series
        The values, indexed by the x axis (named by :func:`x_name`).
    vdim, vlabel
        Name and axis label of the value dimension.
    label
        The curve's label (its legend entry).
    kind
        How the hover text shows the values (see :func:`hover_tooltips`).
    """
    hv = load_holoviews()
    x = x_name(series.index)
    frame = pd.DataFrame({x: series.index, vdim: series.to_numpy()})
    element = hv.Curve(frame, kdims=[x], vdims=[hv.Dimension(vdim, label=vlabel)], label=label)
    return element.opts(**hover_options([(vdim, vlabel, kind)], x=x, index=series.index))


def percent_formatter() -> Any:
    """Return a bokeh tick formatter that shows fractions as percentages."""
    from bokeh.models import NumeralTickFormatter

    return NumeralTickFormatter(format="0%")


def heatmap_options(
    hover: Iterable[tuple[str, str, ValueKind]] = (),
    *,
    cmap: str = DIVERGING_CMAP,
    **options: Any,
) -> dict[str, Any]:
    """Return the house options of a heatmap (colour map, colour bar, hover), plus ``options``.

    Parameters
    ----------
    hover
        ``(column, label, kind)`` per value the hover text shows (see
        :func:`hover_tooltips`); empty: HoloViews' own hover text.
    cmap
        The colour map; the default runs red (low) to green (high).
    **options
        Further HoloViews options (size, title...), which win over the house ones.
    """
    hover = list(hover)
    tips = hover_options(hover) if hover else {"tools": ["hover"]}
    return {"cmap": cmap, "colorbar": True, **tips, **options}


# -- export ----------------------------------------------------------------------------

_PNG_HELP = (
    "PNG export renders the figure in a headless browser through selenium, and needs "
    "chromium with chromedriver on PATH (Debian packages 'chromium' and "
    "'chromium-driver'; or set BOKEH_CHROMEDRIVER_PATH), or firefox with geckodriver. "
    "Save to .html instead, which needs no browser."
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
    hv = load_holoviews()
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
