"""Walk-forward regimes: causal, out of sample, continuous; parallel fits on real pools."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import MarketStore
from quantdesk.data.schemas import REGIME_COLUMNS
from quantdesk.data.sources.simulator import simulate
from quantdesk.regimes.model import STATE_COLUMNS, RegimeModel
from quantdesk.regimes.walkforward import (
    SymbolFits,
    WalkForwardRegimes,
    fit_symbols,
    walk_forward,
)

FAST = {"random_state": 0, "n_init": 2}
WINDOW, REFIT = 500, 100


@pytest.fixture(scope="module")
def market_bars() -> pd.DataFrame:
    return simulate(n_symbols=3, n_days=760, seed=7).bars


@pytest.fixture(scope="module")
def bars(market_bars: pd.DataFrame) -> pd.DataFrame:
    return market_bars[market_bars["symbol"] == "SIM000"].reset_index(drop=True)


@pytest.fixture(scope="module")
def wf(bars: pd.DataFrame) -> WalkForwardRegimes:
    return walk_forward(bars, window=WINDOW, refit=REFIT, model_kwargs=FAST, progress=False)


def test_output_is_the_store_contract_and_out_of_sample(
    wf: WalkForwardRegimes, bars: pd.DataFrame
) -> None:
    regimes, refits = wf.regimes, wf.refits
    assert list(regimes.columns) == list(REGIME_COLUMNS)
    assert tuple(regimes.columns[6:]) == tuple(STATE_COLUMNS)
    ts = bars["ts"]
    # every bar after the first window is labelled exactly once, in order
    pd.testing.assert_series_equal(
        regimes["ts"], ts.iloc[WINDOW:].reset_index(drop=True), check_names=False
    )
    assert (regimes["symbol"] == "SIM000").all()
    np.testing.assert_allclose(regimes[list(STATE_COLUMNS)].sum(axis=1), 1.0, atol=1e-9)
    assert len(refits) == 3  # 260 out-of-sample bars in periods of 100
    assert refits["n_oos"].tolist() == [100, 100, 60]
    assert refits["n_train"].tolist() == [WINDOW] * 3
    # rolling: each training window ends the bar before its period and spans 500 bars
    assert refits["train_end"].tolist() == ts.iloc[[499, 599, 699]].tolist()
    assert refits["train_start"].tolist() == ts.iloc[[0, 100, 200]].tolist()
    # each row comes from the model fitted just before its period, named by its last bar
    joined = regimes.merge(refits[["model_version", "train_end"]], on="model_version")
    assert len(joined) == len(regimes)
    assert (joined["ts"] > joined["train_end"]).all()
    assert refits["model_version"].tolist() == [f"wf-{d:%Y%m%d}" for d in refits["train_end"]]
    assert regimes.groupby("model_version").size().tolist() == [100, 100, 60]
    assert refits["error"].isna().all()
    assert wf.model is not None and wf.model.train_end_ <= refits["train_end"].iloc[-1]


def test_regimes_of_a_period_do_not_depend_on_later_data(
    wf: WalkForwardRegimes, bars: pd.DataFrame
) -> None:
    # cut in the middle of the third period: the first two periods and the start of the
    # third must come out identical, bit for bit
    cut = WINDOW + 2 * REFIT + 37
    short = walk_forward(
        bars.iloc[:cut], window=WINDOW, refit=REFIT, model_kwargs=FAST, progress=False
    )
    n = cut - WINDOW
    assert len(short.regimes) == n
    pd.testing.assert_frame_equal(short.regimes, wf.regimes.iloc[:n], check_exact=True)
    same = ["model_version", "train_start", "train_end", "log_likelihood", "agreement"]
    pd.testing.assert_frame_equal(short.refits[same], wf.refits[same], check_exact=True)


def test_refits_log_agreement_and_warm_starts(wf: WalkForwardRegimes, bars: pd.DataFrame) -> None:
    refits = wf.refits
    assert np.isnan(refits["agreement"].iloc[0]) and refits["overlap"].iloc[0] == 0
    later = refits.iloc[1:]
    assert (later["overlap"] > 0).all()
    for column in ("agreement", "vol_agreement", "trend_agreement"):
        assert later[column].between(0, 1).all()
    warm = "init_from" in inspect.signature(RegimeModel.fit).parameters
    assert refits["warm_start"].tolist() == [False] + [warm] * (len(refits) - 1)
    assert {"log_likelihood", "converged", "n_iter", "kind", "degenerate", "fit_seconds"} <= set(
        refits.columns
    )
    # the logged agreement of refit 1, recomputed by hand: what the first model said
    # (filtering up to the refit) against the second model, on the second's window
    first = RegimeModel(**FAST).fit(bars.iloc[:WINDOW])
    second = RegimeModel(**FAST)
    second.fit(bars.iloc[REFIT : WINDOW + REFIT], **({"init_from": first} if warm else {}))
    said = first.filter(bars.iloc[: WINDOW + REFIT])
    now = second.filter(bars.iloc[REFIT : WINDOW + 2 * REFIT])
    now = now.loc[now.index < bars["ts"].iloc[WINDOW + REFIT]]
    said = said.reindex(now.index)
    assert later["overlap"].iloc[0] == len(now) > 0
    assert later["agreement"].iloc[0] == pytest.approx((said["state"] == now["state"]).mean())
    assert later["vol_agreement"].iloc[0] == pytest.approx(
        (said["vol_label"] == now["vol_label"]).mean()
    )
    assert later["trend_agreement"].iloc[0] == pytest.approx(
        (said["trend_label"] == now["trend_label"]).mean()
    )
    text = wf.summary()
    assert "SIM000 walk-forward: 3 refits (rolling 500, every 100 bars), 260 out-of-sample" in text
    assert "agreement with previous model" in text and "latest" in text


def test_expanding_windows_grow(bars: pd.DataFrame) -> None:
    out = walk_forward(
        bars.iloc[:720],
        window=WINDOW,
        refit=REFIT,
        expanding=True,
        model_kwargs=FAST,
        progress=False,
        version_prefix="exp",
    )
    assert (out.refits["train_start"] == bars["ts"].iloc[0]).all()
    assert out.refits["n_train"].tolist() == [500, 600, 700]
    assert all(re.fullmatch(r"exp-\d{8}", v) for v in out.refits["model_version"])
    assert "expanding" in out.summary()


def test_ts_indexed_ohlcv_gives_the_same_regimes(
    wf: WalkForwardRegimes, bars: pd.DataFrame
) -> None:
    ohlcv = bars.drop(columns="symbol").set_index("ts")
    out = walk_forward(
        ohlcv.iloc[: WINDOW + REFIT],
        window=WINDOW,
        refit=REFIT,
        model_kwargs=FAST,
        progress=False,
        symbol="SIM000",
    )
    pd.testing.assert_frame_equal(out.regimes, wf.regimes.iloc[:REFIT], check_exact=True)


def test_bad_input_is_refused(bars: pd.DataFrame, market_bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="more than window=500 bars, got 300"):
        walk_forward(bars.iloc[:300], window=WINDOW, progress=False)
    with pytest.raises(ValueError, match="one symbol"):
        walk_forward(market_bars, window=WINDOW, progress=False)
    with pytest.raises(ValueError, match="refit >= 1"):
        walk_forward(bars, window=WINDOW, refit=0, progress=False)


def test_walk_forward_regimes_write_to_the_store(
    wf: WalkForwardRegimes, store: MarketStore
) -> None:
    assert store.write_regimes(wf.regimes) == len(wf.regimes)
    assert store.write_regimes(wf.regimes) == 0
    out = store.regimes("SIM000", model_version="wf-*")
    pd.testing.assert_frame_equal(
        out.drop(columns="written_at"), wf.regimes, check_dtype=False, check_exact=True
    )


# Many symbols: a real process pool and a real Dask cluster, failures collected.


def symbol_inputs(market_bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    by_symbol = {str(s): g.reset_index(drop=True) for s, g in market_bars.groupby("symbol")}
    by_symbol["SHORT"] = by_symbol["SIM002"].iloc[:200].assign(symbol="SHORT")
    return by_symbol


def check_fits(fits: SymbolFits, reference: SymbolFits) -> None:
    assert sorted(fits.results) == ["SIM000", "SIM001", "SIM002"]
    assert list(fits.errors) == ["SHORT"]
    assert "more than window=500 bars, got 200" in fits.errors["SHORT"]
    assert not fits.ok and "SHORT" in fits.summary()
    for symbol, result in fits.results.items():
        pd.testing.assert_frame_equal(
            result.regimes, reference.results[symbol].regimes, check_exact=True
        )


@pytest.fixture(scope="module")
def serial_fits(market_bars: pd.DataFrame) -> SymbolFits:
    return fit_symbols(
        symbol_inputs(market_bars),
        walk_forward=True,
        executor="serial",
        progress=False,
        window=WINDOW,
        refit=REFIT,
        model_kwargs=FAST,
    )


def test_serial_walk_forwards_match_the_single_symbol_run(
    serial_fits: SymbolFits, wf: WalkForwardRegimes
) -> None:
    assert serial_fits.executor == "serial"
    pd.testing.assert_frame_equal(serial_fits.results["SIM000"].regimes, wf.regimes)
    regimes = serial_fits.regimes()
    assert sorted(regimes["symbol"].unique()) == ["SIM000", "SIM001", "SIM002"]


def test_process_pool_gives_the_same_results(
    market_bars: pd.DataFrame, serial_fits: SymbolFits
) -> None:
    fits = fit_symbols(
        symbol_inputs(market_bars),
        walk_forward=True,
        executor="process",
        max_workers=2,
        progress=False,
        window=WINDOW,
        refit=REFIT,
        model_kwargs=FAST,
    )
    assert fits.executor == "process x2"
    check_fits(fits, serial_fits)


def test_dask_cluster_gives_the_same_results(
    market_bars: pd.DataFrame, serial_fits: SymbolFits
) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        fits = fit_symbols(
            symbol_inputs(market_bars),
            walk_forward=True,
            executor=cluster.scheduler_address,
            progress=False,
            window=WINDOW,
            refit=REFIT,
            model_kwargs=FAST,
        )
    assert fits.executor.startswith("dask tcp://")
    check_fits(fits, serial_fits)


def test_unknown_executor_is_refused(market_bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="executor must be"):
        fit_symbols(market_bars, executor="threads", progress=False)


def test_plain_fits_from_long_bars(market_bars: pd.DataFrame) -> None:
    fits = fit_symbols(market_bars, executor="serial", progress=False, **FAST)
    assert fits.ok and sorted(fits.results) == ["SIM000", "SIM001", "SIM002"]
    one = market_bars[market_bars["symbol"] == "SIM001"]
    direct = RegimeModel(**FAST).fit(one)
    pd.testing.assert_frame_equal(
        fits.results["SIM001"].filter(one), direct.filter(one), check_exact=True
    )


class _KillsItsWorker:
    """Unpickling this (in the worker, never here) ends the worker process at once."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        import os

        return os._exit, (1,)


def test_a_killed_worker_fails_its_symbol_and_a_fresh_pool_fits_the_rest(
    market_bars: pd.DataFrame,
) -> None:
    # Regression: a dead worker used to break the pool for every symbol still queued.
    inputs = {str(s): g.reset_index(drop=True) for s, g in market_bars.groupby("symbol")}
    killer = inputs["SIM000"].copy()
    killer.attrs["payload"] = _KillsItsWorker()
    inputs = {"KILLER": killer, **inputs}
    fits = fit_symbols(inputs, executor="process", max_workers=2, progress=False, **FAST)
    assert "BrokenProcessPool" in fits.errors["KILLER"]
    # KILLER and at most the one symbol in flight beside it (which one depends on the
    # scheduling) are lost; every other symbol still runs in a fresh pool.
    lost = set(fits.errors) - {"KILLER"}
    assert len(lost) <= 1
    assert set(fits.results) | lost == {"SIM000", "SIM001", "SIM002"}
    assert all("BrokenProcessPool" in fits.errors[s] for s in lost)
    assert all(isinstance(m, RegimeModel) for m in fits.results.values())
