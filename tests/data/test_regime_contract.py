"""The regime columns contract: defined once in quantdesk.data.schemas, used everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import quantdesk.data.sources.simulator as simulator
import quantdesk.data.store.regimes as store
import quantdesk.regimes.features as regime_features
import quantdesk.signals as signals
from quantdesk.data import schemas
from quantdesk.regimes import CELL_NAMES, STATE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
VOL = ("low", "medium", "high")
TREND = ("bearish", "neutral", "bullish")


def test_the_contract_written_out_by_hand() -> None:
    assert schemas.REGIME_PROBABILITY_COLUMNS == (
        "p_low_bearish", "p_low_neutral", "p_low_bullish",
        "p_medium_bearish", "p_medium_neutral", "p_medium_bullish",
        "p_high_bearish", "p_high_neutral", "p_high_bullish",
    )  # fmt: skip
    assert (
        "symbol", "ts", "model_version", "state", "vol_label", "trend_label",
        *schemas.REGIME_PROBABILITY_COLUMNS,
    ) == schemas.REGIME_COLUMNS  # fmt: skip
    assert schemas.REGIME_COLUMNS[3:] == schemas.REGIME_ESTIMATE_COLUMNS
    # cell id = vol_index * 3 + trend_index
    for v, vol in enumerate(VOL):
        for t, trend in enumerate(TREND):
            cell = 3 * v + t
            assert schemas.REGIME_CELL_NAMES[cell] == f"{vol}/{trend}"
            column = schemas.regime_probability_column(vol, trend)
            assert schemas.REGIME_PROBABILITY_COLUMNS[cell] == column == f"p_{vol}_{trend}"


@pytest.mark.parametrize(("vol", "trend"), [("High", "bearish"), ("high", "bear"), ("", "")])
def test_an_unknown_cell_is_refused_not_spelled(vol: str, trend: str) -> None:
    with pytest.raises(ValueError, match="unknown regime cell"):
        schemas.regime_probability_column(vol, trend)


def test_one_definition_shared_by_store_and_regimes() -> None:
    # issue 11: the store, the model and the walk-forward each spelled the contract
    assert store.REGIME_COLUMNS is schemas.REGIME_COLUMNS
    assert STATE_COLUMNS is schemas.REGIME_PROBABILITY_COLUMNS
    assert CELL_NAMES is schemas.REGIME_CELL_NAMES


def test_names_that_meant_two_things_are_now_two_names() -> None:
    # issue 11: REGIME_COLUMNS meant the simulator's ground truth in one module and the
    # stored regimes in another; FEATURE_NAMES meant 14 signals or 3 regime features.
    assert not hasattr(simulator, "REGIME_COLUMNS")
    assert simulator.TRUE_REGIME_COLUMNS[2:4] == ("vol_state", "trend_state")
    assert not hasattr(signals, "FEATURE_NAMES")
    assert not hasattr(regime_features, "FEATURE_NAMES")
    assert len(signals.COMMON_FEATURE_NAMES) == 14
    assert regime_features.REGIME_FEATURE_NAMES == ("log_return", "log_vol", "trend")


def test_no_probability_column_is_spelled_by_hand_outside_the_schema() -> None:
    # issue 11: cli.py, the walk-forward summary and the notebooks rebuilt p_{vol}_{trend}
    spelled = re.compile(r"""f\\?["']p_\{""")
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "notebooks").rglob("*.ipynb")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in files
        if path.name != "schemas.py" and spelled.search(path.read_text(encoding="utf-8"))
    ]
    assert files and offenders == []
