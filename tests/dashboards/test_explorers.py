"""The apps' logic as plain objects (no server, no browser): a real store and registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.dashboards.explorers import (
    FIT_NOW,
    metrics_html,
    regime_explorer,
    regime_figure,
    regime_view,
    run_strategy,
    strategy_explorer,
)
from quantdesk.data import MarketStore
from quantdesk.data.schemas import REGIME_CELL_NAMES
from quantdesk.data.sources import samples


@pytest.fixture
def sample_store(tmp_path: Path) -> MarketStore:
    store = MarketStore(tmp_path / "store.duckdb")
    samples.select_symbols(store, None, universe="samples")
    return store


def test_regime_view_fitted_now_and_from_the_registry_agree(
    sample_store: MarketStore, tmp_path: Path
) -> None:
    from quantdesk.regimes.registry import ModelRegistry

    fitted = regime_view(sample_store, "SPX", start="2015-01-01", n_init=1)
    assert fitted.source.startswith("fitted now")
    probabilities = fitted.current_probabilities()
    assert list(probabilities.index) == list(REGIME_CELL_NAMES)
    assert probabilities.sum() == pytest.approx(1.0)
    assert fitted.regimes.index.equals(fitted.close.loc[fitted.regimes.index].index)
    stats = fitted.statistics()
    assert len(stats) == len(REGIME_CELL_NAMES)

    registry = tmp_path / "models"
    ModelRegistry(str(registry)).save(fitted.model, "regimes", "SPX")
    stored = regime_view(
        sample_store, "SPX", model="regimes", models_url=str(registry), start="2015-01-01"
    )
    assert stored.source == "stored model 'regimes'"
    # The same parameters filter the same bars to the same probabilities.
    pd.testing.assert_series_equal(stored.current_probabilities(), probabilities)


def test_regime_figure_is_titled_with_the_symbol(sample_store: MarketStore) -> None:
    import holoviews as hv

    view = regime_view(sample_store, "IXIC", start="2017-01-01", n_init=1)
    figure = regime_figure(view)
    hv.extension("bokeh")
    plot = hv.renderer("bokeh").get_plot(figure)
    assert plot.state.title.text == "IXIC: price by regime"


def test_regime_view_of_an_empty_window_says_so(sample_store: MarketStore) -> None:
    with pytest.raises(ValueError, match="no daily bars for 'SPX'"):
        regime_view(sample_store, "SPX", start="2030-01-01")


def test_regime_explorer_follows_its_symbol_picker(sample_store: MarketStore) -> None:
    app = regime_explorer(sample_store, ["SPX", "IXIC"], start="2017-01-01")
    symbol_pick, model_pick, status, _chart, tables = app.children
    assert model_pick.value == FIT_NOW
    assert status.value.startswith("SPX on ")
    assert "Current regime probabilities" in tables.value
    symbol_pick.value = "IXIC"
    assert status.value.startswith("IXIC on ")
    assert "IXIC" in tables.value


def explorer_growth(close: pd.DataFrame, target_vol: float) -> pd.Series:
    """Return the growth of 1 the strategy explorer shows for ``target_vol`` (its defaults)."""
    equity = explorer_run(close, target_vol).equity
    return equity / equity.iloc[0]


def explorer_run(close: pd.DataFrame, target_vol: float):
    """Return the backtest the strategy explorer runs at ``target_vol`` (other defaults)."""
    return run_strategy(
        close,
        lookbacks=[21, 252],
        target_vol=target_vol,
        rebalance="weekly",
        commission_bps=1.0,
        slippage_bps=2.0,
    )


def test_run_strategy_scales_with_the_target_volatility(sample_store: MarketStore) -> None:
    close = sample_store.panel("close", symbols=["SPX", "IXIC"], start="2005-01-01")
    vols = [explorer_run(close, target).metrics()["Annual volatility"] for target in (0.05, 0.10)]
    assert vols[1] > vols[0] * 1.5


def test_strategy_explorer_redraws_metrics_on_a_slider_change(
    sample_store: MarketStore,
) -> None:
    close = sample_store.panel("close", symbols=["SPX", "IXIC"], start="2010-01-01")
    app = strategy_explorer(close, target_vol=0.05)
    controls, _chart, metrics = app.children
    vol_pick = controls.children[1]
    before = metrics.value
    assert 'data-metric="Annual volatility"' in before
    vol_pick.value = 0.2
    assert metrics.value != before


def test_metrics_html_escapes_names() -> None:
    page = metrics_html(pd.Series({"<b>x</b>": 0.5, "Sharpe": np.nan}))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert 'data-metric="Sharpe"' in page


def _chart_events(chart_box) -> tuple[object, list]:
    """Return the chart's jupyter_bokeh widget and the list its document's changes go to."""
    widget = chart_box.children[0]
    events: list = []
    widget._document.on_change(events.append)
    return widget, events


def _sources(widget, column: str) -> list:
    from bokeh.models import ColumnDataSource

    return [
        m for m in widget._document.models if isinstance(m, ColumnDataSource) and column in m.data
    ]


def test_strategy_explorer_patches_the_equity_in_place(sample_store: MarketStore) -> None:
    from bokeh.document.events import ColumnDataChangedEvent, RootAddedEvent, RootRemovedEvent
    from bokeh.models import Plot

    close = sample_store.panel("close", symbols=["SPX", "IXIC"], start="2010-01-01")
    app = strategy_explorer(close, target_vol=0.05)
    controls, chart, _metrics = app.children
    widget, events = _chart_events(chart)
    bundle = widget.render_bundle
    [source] = _sources(widget, "growth")

    controls.children[1].value = 0.2

    # The same document and data source, patched: nothing rebuilt or re-sent whole.
    assert widget.render_bundle is bundle
    assert not [e for e in events if isinstance(e, RootAddedEvent | RootRemovedEvent)]
    assert any(isinstance(e, ColumnDataChangedEvent) and e.model is source for e in events)
    growth = explorer_growth(close, 0.2).to_numpy()
    np.testing.assert_allclose(np.asarray(source.data["growth"]), growth, rtol=1e-12)
    # The y axis follows the new curve (three times the volatility: a wider range).
    [y_range] = [
        p.y_range
        for p in widget._document.models
        if isinstance(p, Plot) and p.title.text == "Equity (growth of 1)"
    ]
    assert y_range.start <= growth.min() and y_range.end >= growth.max()


def test_regime_explorer_patches_the_price_in_place(sample_store: MarketStore) -> None:
    from bokeh.document.events import RootAddedEvent, RootRemovedEvent
    from bokeh.models import Plot

    app = regime_explorer(sample_store, ["SPX", "IXIC"], start="2017-01-01")
    symbol_pick, _model_pick, _status, chart, _tables = app.children
    widget, events = _chart_events(chart)
    [line] = [s for s in _sources(widget, "close") if "regime" not in s.data]

    symbol_pick.value = "IXIC"

    assert not [e for e in events if isinstance(e, RootAddedEvent | RootRemovedEvent)]
    view = regime_view(sample_store, "IXIC", start="2017-01-01")
    ixic = view.close.loc[view.regimes.index].to_numpy()
    np.testing.assert_allclose(np.asarray(line.data["close"]), ixic)
    titles = {m.text for m in widget._document.models if type(m).__name__ == "Title"}
    assert "IXIC: price by regime" in titles
    [y_range] = [p.y_range for p in widget._document.models if isinstance(p, Plot)]
    assert y_range.start <= ixic.min() and y_range.end >= ixic.max()
