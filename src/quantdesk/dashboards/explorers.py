"""The Voila apps' logic: the regime explorer and the strategy explorer, as ipywidgets.

The notebooks in ``notebooks/dashboards/`` only assemble: they read their parameters,
pick symbols from the store and display :func:`regime_explorer` or
:func:`strategy_explorer`.  The numbers come from the regimes and backtest packages
(:class:`~quantdesk.regimes.model.RegimeModel`, :mod:`quantdesk.regimes.analysis`,
:func:`quantdesk.strategies.vol_target_trend`, :func:`quantdesk.backtest.run`) and the
figures from their figure modules; a widget change re-runs the computation and
redraws the chart inside an ``ipywidgets.Output``.

Charts need BokehJS in the browser.  Served by ``quantdesk voila``, :func:`load_bokeh`
points every output at files the Voila server serves itself (``/voila/static/``); in
JupyterLab ``import quantdesk`` points them at the Jupyter server
(:mod:`quantdesk.dashboards.jupyter`); run by papermill it keeps the CDN loader, which
publishing rewrites to ``reports/_static`` (:mod:`quantdesk.reports.offline`).

Examples
--------
>>> from quantdesk.data import MarketStore
>>> app = regime_explorer(MarketStore(), ["SPX", "IXIC"])  # doctest: +SKIP
>>> app.children[0].value = "IXIC"  # the chart redraws for IXIC  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from quantdesk.config import settings
from quantdesk.core.html import Html, element, escape

if TYPE_CHECKING:
    from quantdesk.backtest.engine import BacktestResult
    from quantdesk.data.store.market import MarketStore
    from quantdesk.regimes.model import RegimeModel
    from quantdesk.regimes.snapshot import CurrentRegime

__all__ = [
    "FIT_NOW",
    "FilteredRegimes",
    "LiveChart",
    "load_bokeh",
    "metrics_html",
    "regime_explorer",
    "regime_figure",
    "regime_view",
    "run_strategy",
    "served_by_voila",
    "strategy_explorer",
    "strategy_figure",
]

logger = logging.getLogger(__name__)

_BOKEH_CDN = "https://cdn.bokeh.org/"

FIT_NOW = "fit now"
"""The model choice that fits a fresh model on the symbol's bars."""


def served_by_voila() -> bool:
    """Return whether this kernel was started by a Voila server (it sets ``VOILA_*``)."""
    return settings().in_voila


def load_bokeh() -> Any:
    """Return ``holoviews`` with its bokeh backend loaded, after sending BokehJS to the page.

    The explorers' charts are plain Bokeh documents in ``jupyter_bokeh`` widgets
    (:class:`LiveChart`), drawn on a canvas, so the page needs BokehJS alone
    (``bokeh.min.js``), not Panel's or HoloViews' notebook extensions, which would add
    BokehJS's widget, table and WebGL bundles and Panel's own (2.9 MB of JavaScript
    instead of 1.3 MB).

    Served by ``quantdesk voila``, the page loads BokehJS itself, from files the Voila
    server serves (:attr:`~quantdesk.config.Settings.voila_static_dir`): the output is
    :func:`~quantdesk.dashboards.voila.page_scripts`, so the browser fetches and runs
    BokehJS while Voila's own code loads, before the chart widgets render (which need
    it), and the app needs no network; every other output's CDN URLs are rewritten to
    that folder too.  Elsewhere (JupyterLab, papermill) it displays Bokeh's notebook
    loader with CDN URLs, which :mod:`quantdesk.dashboards.jupyter` points at the
    Jupyter server and publishing localises.  Call it before anything draws.
    """
    import holoviews as hv
    import holoviews.plotting.bokeh
    from IPython.display import display

    hv.Store.set_current_backend("bokeh")
    # Canvas, not HoloViews' default WebGL: the charts draw a few thousand points, which
    # a canvas draws in milliseconds, without bokeh-gl.min.js or a WebGL context (which
    # a browser without a GPU emulates in software, slowly).
    hv.renderer("bokeh").webgl = False
    urls = _bokehjs_urls()
    current = settings()
    if current.in_voila and current.voila_static_dir is not None:
        from quantdesk.dashboards.voila import page_scripts
        from quantdesk.reports.offline import localise_assets

        static_dir, prefix = str(current.voila_static_dir), _static_prefix(current.voila_base_url)
        _rewrite_outputs(static_dir, prefix)
        local = [localise_assets(url, static_dir, url_prefix=prefix) for url in urls]
        display(page_scripts(local), raw=True)
    else:
        _send_loader(urls)
    return hv


def _bokehjs_urls() -> list[str]:
    from bokeh.resources import Resources

    # js_files also lists the __javascript__ of every registered model class (Panel's
    # es-module-shims, at a path only a Panel server serves): keep BokehJS's own file.
    files = Resources(mode="cdn", components=["bokeh"]).js_files
    return [url for url in files if url.startswith(_BOKEH_CDN)]


def _send_loader(urls: list[str]) -> None:
    # bokeh.io.output_notebook's loader for ``urls`` alone: output_notebook's would also
    # load the extensions of every imported package with Bokeh models (Panel's, from
    # unpkg.com), which the charts do not use.
    from bokeh.core.templates import AUTOLOAD_NB_JS
    from bokeh.embed.bundle import URL, Bundle
    from bokeh.io.notebook import JS_MIME_TYPE, LOAD_MIME_TYPE, publish_display_data

    bundle = Bundle(js_files=[URL(url) for url in urls])

    def loader(register_mime: bool) -> str:
        return str(
            AUTOLOAD_NB_JS.render(
                bundle=bundle, elementid=None, force=True, timeout=5000, register_mime=register_mime
            )
        )

    publish_display_data({JS_MIME_TYPE: loader(True), LOAD_MIME_TYPE: loader(False)})


def _static_prefix(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/voila/static"


def _rewrite_outputs(static_dir: str, prefix: str) -> None:
    from IPython import get_ipython

    from quantdesk.dashboards.jupyter import rewrite_outputs
    from quantdesk.reports.offline import localise_assets

    rewrite_outputs(
        get_ipython(), lambda text: localise_assets(text, static_dir, url_prefix=prefix)
    )


def _figure_html(figure: Any) -> str:
    """Return a static HTML embed of ``figure`` that draws once BokehJS is on the page.

    Bokeh's own embed script expects BokehJS loaded before it runs; in a published
    notebook BokehJS arrives through the loader output, which adds its script tag
    without holding the page back, so the embed waits for it (up to 30 s).
    """
    import holoviews as hv
    from bokeh.embed import components

    script, div = components(hv.renderer("bokeh").get_plot(figure).state, wrap_script=False)
    wait = (
        "(function embed(tries) {\n"
        "  if (window.Bokeh !== undefined) {\n" + script + "\n  }\n"
        "  else if (tries > 0) { setTimeout(function () { embed(tries - 1); }, 50); }\n"
        '  else { console.warn("quantdesk: BokehJS did not load; a chart cannot draw"); }\n'
        "})(600);"
    )
    return f'{div}\n<script type="text/javascript">\n{wait}\n</script>'


def _with_snapshot(box: Any, snapshot: Callable[[], str]) -> Any:
    """Return ``box``, whose display also carries a static HTML snapshot of what it shows.

    A frontend with a widget manager (JupyterLab, Voila) shows the live widget; a page
    published by :mod:`quantdesk.reports` has none, and its template shows the
    ``text/html`` snapshot instead, so an app notebook run by papermill still publishes
    its charts and tables.  Under Voila the snapshot is left out: the page always has a
    widget manager and is never saved, and the copy would only add a rendering to the
    kernel's start and its bytes to every page.
    """
    if served_by_voila():
        return box  # a Voila page always has a widget manager, and nothing saves it
    widget_bundle = box._repr_mimebundle_

    def _repr_mimebundle_(**kwargs: Any) -> dict[str, Any]:
        data = dict(widget_bundle(**kwargs) or {})
        try:
            data["text/html"] = snapshot()
        except Exception:  # the live widget still shows; only the static copy is lost
            logger.exception("could not render the explorer's static snapshot")
        return data

    box._repr_mimebundle_ = _repr_mimebundle_
    return box


def _guarded(action: Callable[[], None], out: Any) -> Callable[..., None]:
    # An exception inside a widget callback would vanish into the kernel log and the
    # app would just stop reacting: show it in the app and log it instead.
    def callback(*_: Any) -> None:
        try:
            action()
        except Exception as exc:
            logger.exception("dashboard update failed")
            with out:
                out.clear_output(wait=True)
                print(f"could not update: {type(exc).__name__}: {exc}")

    return callback


# -- the regime explorer ------------------------------------------------------------------


@dataclass
class FilteredRegimes:
    """One symbol's closes, the model used, and its filtered regimes (indexed by ts)."""

    symbol: str
    close: pd.Series
    regimes: pd.DataFrame
    model: RegimeModel
    source: str

    @property
    def current(self) -> CurrentRegime:
        """Return the current regime (:func:`~quantdesk.regimes.snapshot.current_regime`)."""
        from quantdesk.regimes.snapshot import current_regime

        return current_regime(self.regimes, self.symbol, source=self.source)

    def current_probabilities(self) -> pd.Series:
        """Return the nine filtered regime probabilities of the last bar, by cell name."""
        return pd.Series(self.current.probabilities, name=self.symbol, dtype=float)

    def statistics(self) -> pd.DataFrame:
        """Return the per-regime statistics of the next bar's return (annualised)."""
        from quantdesk.regimes import analysis

        nxt = self.close.pct_change().shift(-1).rename("next_return")
        return analysis.regime_stats(nxt, self.regimes)


def regime_view(
    store: MarketStore,
    symbol: str,
    *,
    model: str = FIT_NOW,
    models_url: str | None = None,
    start: str | None = None,
    end: str | None = None,
    n_init: int = 1,
    random_state: int = 0,
) -> FilteredRegimes:
    """Return a symbol's regimes filtered by a stored model or one fitted now.

    Parameters
    ----------
    store
        The market store with the symbol's daily bars.
    symbol
        The symbol.
    model
        :data:`FIT_NOW`, or the name of a model saved in the registry for this symbol
        (its latest version is used).
    models_url
        The model registry (default: ``settings().models_url``).
    start, end
        The bars to filter (and to fit on).
    n_init, random_state
        For a fit: EM restarts and seed.

    Raises
    ------
    ValueError
        The store has no daily bars for ``symbol`` in the window.
    """
    from quantdesk.regimes.model import RegimeModel
    from quantdesk.regimes.registry import ModelRegistry

    bars = store.bars(symbol, start=start, end=end)
    if bars.empty:
        raise ValueError(f"no daily bars for {symbol!r} between {start} and {end}")
    if model == FIT_NOW:
        fitted = RegimeModel(random_state=random_state, n_init=n_init).fit(bars)
        source = f"fitted now on {len(bars)} bars"
    else:
        fitted = ModelRegistry(models_url).load(model, symbol)
        source = f"stored model {model!r}"
    regimes = fitted.filter(bars)
    close = bars.set_index("ts")["close"]
    return FilteredRegimes(symbol=symbol, close=close, regimes=regimes, model=fitted, source=source)


def regime_figure(view: FilteredRegimes) -> Any:
    """Return the price coloured by filtered regime, titled with the symbol."""
    from quantdesk.regimes import analysis

    close = view.close.loc[view.regimes.index]
    return analysis.price_by_regime_figure(close, view.regimes).opts(
        title=f"{view.symbol}: price by regime"
    )


def stored_models(symbol: str, models_url: str | None = None) -> list[str]:
    """Return the names of registry models saved for ``symbol`` (none if no registry)."""
    from quantdesk.regimes.registry import ModelRegistry

    try:
        frame = ModelRegistry(models_url).list()
    except (ImportError, ValueError, OSError) as exc:
        logger.warning("no model registry: %s", exc)
        return []
    if frame.empty:
        return []
    return sorted(set(frame.loc[frame["symbol"] == symbol, "name"].astype(str)))


def _frame_html(frame: pd.DataFrame | pd.Series, percent: bool = False) -> Html:
    shown = frame.to_frame() if isinstance(frame, pd.Series) else frame
    formatter = "{:.1%}".format if percent else "{:.3f}".format
    # pandas escapes every label and cell (escape=True): its table is HTML already.
    return Html(shown.to_html(float_format=formatter, escape=True, border=0))


def regime_explorer(
    store: MarketStore,
    symbols: Sequence[str],
    *,
    models_url: str | None = None,
    start: str | None = None,
    end: str | None = None,
    n_init: int = 1,
) -> Any:
    """Return the regime explorer: symbol and model pickers, the chart, probabilities, stats.

    The returned ``ipywidgets.VBox`` holds, in order: the symbol ``Dropdown``, the
    model ``Dropdown`` (:data:`FIT_NOW` and the symbol's stored models), a status
    ``HTML``, the chart ``Output`` and the tables ``HTML``.  Changing either picker
    redraws the chart and tables.
    """
    import ipywidgets as widgets

    if not symbols:
        raise ValueError("the regime explorer needs at least one symbol")
    symbol_pick = widgets.Dropdown(options=list(symbols), value=symbols[0], description="Symbol")
    model_pick = widgets.Dropdown(
        options=[FIT_NOW, *stored_models(symbols[0], models_url)], description="Model"
    )
    status = widgets.HTML()
    tables = widgets.HTML()

    def view_now() -> FilteredRegimes:
        return regime_view(
            store,
            symbol_pick.value,
            model=model_pick.value,
            models_url=models_url,
            start=start,
            end=end,
            n_init=n_init,
        )

    def show_text(view: FilteredRegimes) -> None:
        now = view.current
        status.value = escape(f"{view.symbol} on {now.as_of:%Y-%m-%d}: {now.label} ({now.source})")
        tables.value = "".join(
            [
                element("h4", "Current regime probabilities"),
                _frame_html(view.current_probabilities(), percent=True),
                element("h4", "What each regime has meant (next bar's return, annualised)"),
                _frame_html(view.statistics()),
            ]
        )

    chart = LiveChart([regime_figure])

    def draw() -> None:
        view = view_now()
        chart.update(view)
        show_text(view)

    def on_symbol(*_: Any) -> None:
        choices = [FIT_NOW, *stored_models(symbol_pick.value, models_url)]
        if list(model_pick.options) != choices:
            model_pick.options = choices  # resets the value, which redraws
            if model_pick.value == FIT_NOW:
                return
        draw()

    symbol_pick.observe(_guarded(on_symbol, chart.errors), "value")
    model_pick.observe(_guarded(draw, chart.errors), "value")
    _guarded(draw, chart.errors)()

    def snapshot() -> str:
        return "".join([element("p", Html(status.value)), chart.snapshot(), str(tables.value)])

    box = widgets.VBox([symbol_pick, model_pick, status, chart.widget, tables])
    return _with_snapshot(box, snapshot)


# -- the strategy explorer ----------------------------------------------------------------


def run_strategy(
    close: pd.DataFrame,
    *,
    lookbacks: Sequence[int],
    target_vol: float,
    rebalance: str,
    commission_bps: float,
    slippage_bps: float,
) -> BacktestResult:
    """Return the backtest of the vol-targeted trend strategy on ``close``."""
    import quantdesk.backtest as backtest
    from quantdesk.strategies import vol_target_trend

    weights = vol_target_trend(
        close,
        lookbacks=list(lookbacks),
        target_vol=target_vol,
        rebalance=rebalance,  # type: ignore[arg-type]
    )
    result: BacktestResult = backtest.run(
        close, weights, commission_bps=commission_bps, slippage_bps=slippage_bps
    )
    return result


def _equity_panel(result: BacktestResult) -> Any:
    from quantdesk.backtest import figures

    return figures.equity_figure(result.equity).opts(title="Equity (growth of 1)")


def _drawdown_panel(result: BacktestResult) -> Any:
    from quantdesk.backtest import figures

    return figures.drawdown_figure(result.returns)


def strategy_figure(result: BacktestResult) -> Any:
    """Return the equity curve above the drawdown, one column."""
    return _column([_equity_panel(result), _drawdown_panel(result)])


def _column(figures: list[Any]) -> Any:
    import holoviews as hv

    return hv.Layout(figures).cols(1) if len(figures) > 1 else figures[0]


class LiveChart:
    """A HoloViews chart inside a widget that redraws in place when given new data.

    The first :meth:`update` draws the chart: each of ``panels`` (a function of the
    data returning a HoloViews element or overlay) becomes a ``DynamicMap`` fed by one
    ``Pipe`` stream, shown in a ``jupyter_bokeh`` widget.  Later updates send the data
    through the pipe: HoloViews refreshes the figure's data sources and axis ranges, and
    the widget sends the browser only those changes, so BokehJS redraws the canvases it
    already has instead of building a new document.

    ``widget`` is an ``ipywidgets.VBox``: the chart once drawn, then ``errors``, an
    ``Output`` where a failed update says why (the chart keeps its last data).
    """

    def __init__(self, panels: Sequence[Callable[[Any], Any]]) -> None:
        import ipywidgets as widgets

        self.panels = list(panels)
        self.figure: Any = None
        self.errors = widgets.Output()
        self.widget = widgets.VBox([self.errors])
        self._plot: Any = None
        self._pipe: Any = None
        self._data: Any = None

    def update(self, data: Any) -> None:
        """Redraw the chart for ``data`` (the first call draws it)."""
        if self._pipe is None:
            self._draw(data)
        else:
            self._pipe.send(data)
        self._data = data
        self.errors.clear_output()

    def _draw(self, data: Any) -> None:
        import holoviews as hv
        from bokeh.document import Document
        from jupyter_bokeh.widgets import BokehModel

        pipe = hv.streams.Pipe(data=data)

        def framewise(figure: Any) -> Any:
            # On every element (an overlay's own option does not reach its curves): the
            # axes follow each update's data, not the first one's.
            return figure.map(lambda element: element.opts(framewise=True), hv.Element)

        def live(panel: Callable[[Any], Any]) -> Any:
            return hv.DynamicMap(lambda data: framewise(panel(data)), streams=[pipe])

        figure = _column([live(panel) for panel in self.panels])
        # A plain Bokeh document of its own (no Panel layout around it; HoloViews would
        # otherwise attach the plot to curdoc(), which every chart of the kernel shares):
        # the plot subscribes to the pipe and changes the document's models, which the
        # widget forwards.
        renderer = hv.renderer("bokeh")
        plot = renderer.get_plot(figure)
        plot.document = Document(theme=renderer.theme) if renderer.theme else Document()
        plot.document.add_root(plot.state)
        chart = BokehModel(plot.state, combine_events=True)
        self.figure, self._plot, self._pipe = figure, plot, pipe
        self.widget.children = [chart, self.errors]

    def snapshot(self) -> str:
        """Return a static HTML embed of the chart as drawn now ("" before it is drawn)."""
        if self._pipe is None:
            return ""
        # Built afresh, not from the live figure: a Bokeh model in its options (a tick
        # formatter) can belong to one document only, the widget's.
        return _figure_html(_column([panel(self._data) for panel in self.panels]))


def metrics_html(metrics: pd.Series) -> Html:
    """Return the metrics as an HTML table; each row carries ``data-metric="<name>"``."""
    rows = (
        element(
            "tr",
            element("th", name),
            element("td", f"{float(value):.4f}", cls="value"),
            data_metric=name,
        )
        for name, value in metrics.items()
    )
    return element("table", *rows, cls="quantdesk-metrics")


def strategy_explorer(
    close: pd.DataFrame,
    *,
    lookbacks: Sequence[int] = (21, 252),
    target_vol: float = 0.10,
    rebalance: str = "weekly",
    commission_bps: float = 1.0,
    slippage_bps: float = 2.0,
) -> Any:
    """Return the strategy explorer: sliders, the equity and drawdown chart, the metrics.

    The ``ipywidgets.VBox`` holds the controls (lookback range, target volatility,
    rebalance, commission, slippage; each re-runs the backtest when released), the
    chart ``Output`` and the metrics ``HTML`` (:func:`metrics_html`).
    """
    import ipywidgets as widgets

    if close.empty:
        raise ValueError("the strategy explorer needs closes")
    layout = {"width": "520px"}
    style = {"description_width": "160px"}
    lookback_pick = widgets.IntRangeSlider(
        value=(min(lookbacks), max(lookbacks)),
        min=5,
        max=504,
        step=1,
        description="Lookbacks (bars)",
        continuous_update=False,
        layout=layout,
        style=style,
    )
    vol_pick = widgets.FloatSlider(
        value=target_vol,
        min=0.02,
        max=0.40,
        step=0.01,
        description="Target volatility",
        readout_format=".2f",
        continuous_update=False,
        layout=layout,
        style=style,
    )
    rebalance_pick = widgets.Dropdown(
        options=["daily", "weekly", "monthly"], value=rebalance, description="Rebalance"
    )
    commission_pick = widgets.FloatSlider(
        value=commission_bps,
        min=0.0,
        max=20.0,
        step=0.5,
        description="Commission (bps)",
        continuous_update=False,
        layout=layout,
        style=style,
    )
    slippage_pick = widgets.FloatSlider(
        value=slippage_bps,
        min=0.0,
        max=20.0,
        step=0.5,
        description="Slippage (bps)",
        continuous_update=False,
        layout=layout,
        style=style,
    )
    metrics = widgets.HTML()
    chart = LiveChart([_equity_panel, _drawdown_panel])

    def draw() -> None:
        low, high = lookback_pick.value
        result = run_strategy(
            close,
            lookbacks=sorted({int(low), int(high)}),
            target_vol=float(vol_pick.value),
            rebalance=str(rebalance_pick.value),
            commission_bps=float(commission_pick.value),
            slippage_bps=float(slippage_pick.value),
        )
        chart.update(result)
        metrics.value = metrics_html(result.metrics())

    controls = [lookback_pick, vol_pick, rebalance_pick, commission_pick, slippage_pick]
    callback = _guarded(draw, chart.errors)
    for control in controls:
        control.observe(callback, "value")
    callback()

    def snapshot() -> str:
        return chart.snapshot() + str(metrics.value)

    box = widgets.VBox([widgets.VBox(controls), chart.widget, metrics])
    return _with_snapshot(box, snapshot)
