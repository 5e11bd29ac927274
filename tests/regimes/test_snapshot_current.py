"""One reading of "the current regime": the CLI's snapshot, the monitor's pane and the
regime explorer all show :func:`current_regime`, checked against pandas by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantdesk.data import MarketStore, simulate
from quantdesk.data.schemas import REGIME_CELL_NAMES, REGIME_PROBABILITY_COLUMNS
from quantdesk.regimes import RegimeModel
from quantdesk.regimes.snapshot import current_regime, regime_snapshot


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[MarketStore, str, pd.DataFrame]:
    bars = simulate(n_symbols=1, n_days=600, seed=3).bars
    symbol = str(bars["symbol"].iat[0])
    store = MarketStore(tmp_path_factory.mktemp("cur") / "store.duckdb")
    store.write_bars(bars, "1d")
    filtered = RegimeModel(random_state=0).fit(bars).filter(bars)
    rows = filtered.reset_index().assign(symbol=symbol, model_version="regimes/v1")
    store.write_regimes(rows)
    return store, symbol, filtered


def _by_hand(frame: pd.DataFrame) -> dict[str, object]:
    """The current regime read with pandas: the last row, and where its run started."""
    runs = (frame["state"] != frame["state"].shift()).cumsum()
    last = frame.iloc[-1]
    column = f"p_{last['vol_label']}_{last['trend_label']}"
    return {
        "state": int(last["state"]),
        "label": f"{last['vol_label']} volatility, {last['trend_label']} trend",
        "probability": float(last[column]),
        "since": pd.Timestamp(frame.index[runs == runs.iloc[-1]][0]),
        "as_of": pd.Timestamp(frame.index[-1]),
    }


def _fields(now: object) -> dict[str, object]:
    return {k: getattr(now, k) for k in ("state", "label", "probability", "since", "as_of")}


def test_current_regime_is_the_last_row_and_the_start_of_its_run(
    fitted: tuple[MarketStore, str, pd.DataFrame],
) -> None:
    store, symbol, filtered = fitted
    expected = _by_hand(filtered)
    assert _fields(current_regime(filtered, symbol)) == expected
    # The stored rows read back give the same regime, from a store or its path.
    assert _fields(current_regime(store, symbol)) == expected
    assert _fields(current_regime(store.path, symbol)) == expected
    now = current_regime(store, symbol)
    assert now.source == "regimes/v1"
    assert list(now.probabilities) == list(REGIME_CELL_NAMES)
    last = filtered.iloc[-1]
    assert list(now.probabilities.values()) == [float(last[c]) for c in REGIME_PROBABILITY_COLUMNS]
    assert sum(now.probabilities.values()) == pytest.approx(1.0)


def test_the_snapshot_the_monitor_and_the_explorer_show_the_one_current_regime(
    fitted: tuple[MarketStore, str, pd.DataFrame],
) -> None:
    from quantdesk.dashboards.explorers import FilteredRegimes
    from quantdesk.dashboards.panes import RegimePane

    store, symbol, filtered = fitted
    expected = _by_hand(filtered)
    snapshot = regime_snapshot(store, symbol)
    assert _fields(snapshot.now) == expected
    assert expected["label"] in snapshot.summary() and expected["label"] in repr(snapshot)

    pane = RegimePane(store=store, models=str(Path(store.path).parent / "no-models"))
    pane.bind(symbol)  # no saved model: the stored rows
    assert pane.current is not None and _fields(pane.current) == expected
    assert pane.label == expected["label"]
    assert str(expected["label"]) in pane.pane.object

    close = store.bars(symbol).set_index("ts")["close"]
    view = FilteredRegimes(symbol, close, filtered, model=None, source="fitted")  # type: ignore[arg-type]
    assert _fields(view.current) == expected
    probs = view.current_probabilities()
    last = filtered.iloc[-1][list(REGIME_PROBABILITY_COLUMNS)].astype(float)
    assert np.allclose(probs.to_numpy(), last.to_numpy())


def test_no_regimes_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="quantdesk regimes fit --symbols AAA"):
        current_regime(tmp_path / "none.duckdb", "AAA")  # no store file: nothing stored
    with pytest.raises(LookupError, match="no regimes stored"):
        current_regime(pd.DataFrame(), "AAA")
