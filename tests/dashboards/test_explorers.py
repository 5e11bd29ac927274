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


def test_run_strategy_scales_with_the_target_volatility(sample_store: MarketStore) -> None:
    close = sample_store.panel("close", symbols=["SPX", "IXIC"], start="2005-01-01")
    vols = [
        run_strategy(
            close,
            lookbacks=[21, 252],
            target_vol=target,
            rebalance="weekly",
            commission_bps=1.0,
            slippage_bps=2.0,
        ).metrics()["Annual volatility"]
        for target in (0.05, 0.10)
    ]
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
