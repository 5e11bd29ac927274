"""Shared fixtures: every test gets its own QUANTDESK_HOME and a real DuckDB store file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "qd_home"
    monkeypatch.setenv("QUANTDESK_HOME", str(home))
    monkeypatch.setenv("QUANTDESK_REPORTS", str(tmp_path / "reports"))
    monkeypatch.delenv("QUANTDESK_STORE", raising=False)
    yield home


@pytest.fixture
def store(tmp_path: Path):
    from quantdesk.data import MarketStore

    return MarketStore(tmp_path / "store.duckdb")


def make_bars(
    symbols: list[str], days: int, seed: int = 0, start: str = "2020-01-02"
) -> pd.DataFrame:
    """Return valid random daily long bars (a small helper for store tests)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days, tz="UTC").as_unit("ns")
    frames = []
    for sym in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        open_ = close * np.exp(rng.normal(0, 0.003, days))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, days))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, days))
        volume = rng.integers(1_000, 100_000, days).astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "ts": dates,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
