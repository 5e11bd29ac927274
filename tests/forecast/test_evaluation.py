"""walk_forward: the score table, the splits, and regime forecasts scored against the truth."""

from __future__ import annotations

import numpy as np
import pytest

from quantdesk.data.sources.simulator import simulate
from quantdesk.data.wide import panels_from_bars
from quantdesk.forecast import walk_forward
from quantdesk.forecast.baselines import EWMAVol
from quantdesk.forecast.evaluation import SCORE_COLUMNS

FIELDS = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def market():
    return simulate(n_symbols=5, n_days=900, seed=11)


@pytest.fixture(scope="module")
def panels(market):
    return panels_from_bars(market.bars, FIELDS, "1d")


def test_scores_table_has_the_interface_columns_and_every_model(panels):
    wf = walk_forward(panels, None, "vol_5d", min_train=500, refit=100)
    table = wf.scores()
    assert tuple(table.columns) == SCORE_COLUMNS
    assert set(table["model"]) == {"previous", "ewma", "har", "garch"}
    assert set(table["baseline"]) == {"previous", "ewma"}
    assert set(table["metric"]) == {"mse", "qlike"}
    finite = table.dropna()
    assert (finite["lo"] <= finite["skill"]).all() and (finite["skill"] <= finite["hi"]).all()
    # Refits every 100 sessions from session 500, each fitted on data up to its date only.
    index = panels["close"].index
    assert list(wf.refits["refit"]) == list(index[500::100])
    assert wf.forecasts["ts"].min() == index[500]
    assert "vol_5d" in wf.summary() and "<table" in wf._repr_html_()


def test_baselines_are_added_and_models_are_scored_on_common_rows(panels):
    wf = walk_forward(panels, [EWMAVol("vol_1d")], "vol_1d", min_train=500, refit=200)
    assert wf.baselines == ["previous", "ewma"]
    row = wf.scores().query("model == 'ewma' and metric == 'mse'").iloc[0]
    fc = wf.forecasts.pivot_table(index=["ts", "symbol"], columns="model", values="value")
    y = wf.outcomes["realised"].set_index(["ts", "symbol"])["value"]
    both = fc.join(y).dropna()
    loss = ((both["ewma"] ** 2 - both["value"] ** 2) ** 2).groupby(level="ts").mean()
    assert np.isclose(row["value"], loss.mean())


def test_return_forecasts_have_ic_and_hit_rate(panels):
    wf = walk_forward(panels, None, "return_1d", min_train=600, refit=150)
    table = wf.scores()
    lgb = table.query("model == 'lightgbm' and baseline == 'last_return'")
    assert set(lgb["metric"]) == {"ic", "icir", "rank_ic", "hit_rate", "mse"}
    assert lgb["value"].notna().all()


def test_regime_forecasts_are_scored_against_the_filter_and_the_truth(market, panels):
    wf = walk_forward(
        panels, None, "regime_1d", min_train=600, refit=300, true_regimes=market.regimes
    )
    table = wf.scores()
    assert {"log_loss", "brier", "log_loss_truth", "brier_truth"} <= set(table["metric"])
    hmm = table.query("model == 'hmm' and baseline == 'stationary'").set_index("metric")
    # The filter knows far more about tomorrow than the long-run shares do.
    assert hmm.loc["log_loss", "skill"] > 0 and hmm.loc["log_loss", "lo"] > 0
    calib = wf.calibration("hmm")
    assert calib["n"].sum() == 9 * len(
        wf.forecasts.query("model == 'hmm'").merge(wf.outcomes["filter"], on=["ts", "symbol"])
    )


def test_refit_must_be_positive_and_start_inside_the_data(panels):
    with pytest.raises(ValueError, match="refit"):
        walk_forward(panels, None, "vol_1d", refit=0)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        walk_forward(panels, None, "vol_1d", min_train=5000)
    with pytest.raises(ValueError, match="unknown target"):
        walk_forward(panels, None, "vol_2d")


def test_daily_ic_is_the_cross_sectional_correlation_that_the_scores_average(panels):
    import pandas as pd

    wf = walk_forward(panels, None, "return_1d", min_train=500, refit=200)
    ic, rank_ic = wf.daily_ic(), wf.daily_ic(rank=True)
    assert list(ic.columns) == wf.models
    # One session by hand: pandas' Pearson and Spearman correlations across symbols.
    fc, y = wf.forecasts, wf.outcomes["realised"]
    ts = fc["ts"].sort_values().iloc[len(fc) // 2]
    f = fc.loc[(fc["model"] == "lightgbm") & (fc["ts"] == ts)].set_index("symbol")["value"]
    o = y.loc[y["ts"] == ts].set_index("symbol")["value"].reindex(f.index)
    assert ic.loc[ts, "lightgbm"] == pytest.approx(f.corr(o))
    assert rank_ic.loc[ts, "lightgbm"] == pytest.approx(f.corr(o, method="spearman"))
    # The scores' IC of a model is the mean of its daily IC on the sessions both forecast.
    scores = wf.scores().set_index(["model", "metric", "baseline"])
    assert scores.loc[("lightgbm", "ic", "zero"), "value"] == pytest.approx(ic["lightgbm"].mean())
    assert isinstance(ic.index, pd.DatetimeIndex)
    with pytest.raises(ValueError, match="return_1d"):
        walk_forward(panels, None, "vol_1d", min_train=500, refit=200).daily_ic()


def test_versus_outcome_puts_one_symbols_forecasts_beside_the_realised_value(panels):
    wf = walk_forward(panels, None, "vol_1d", min_train=500, refit=200)
    frame = wf.versus_outcome("SIM001")
    assert list(frame.columns) == [*wf.models, "realised"]
    fc = wf.forecasts.query("symbol == 'SIM001' and model == 'har'").set_index("ts")["value"]
    np.testing.assert_allclose(frame["har"].to_numpy(), fc.reindex(frame.index).to_numpy())
    y = wf.outcomes["realised"].query("symbol == 'SIM001'").set_index("ts")["value"]
    np.testing.assert_allclose(
        frame["realised"].dropna().to_numpy(), y.reindex(frame.index).dropna().to_numpy()
    )
    with pytest.raises(ValueError, match="'ZZZ' was not forecast"):
        wf.versus_outcome("ZZZ")
