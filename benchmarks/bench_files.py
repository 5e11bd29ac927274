"""Reading a bar file with day-first dates beside the same rows with ISO dates.

Two CSV files of the same 300,000 daily bars (120 symbols x 2,500 sessions), written
the way pandas writes them: one with ISO dates (``2014-01-02``), one with day-first
dates (``02/01/2014``, a spreadsheet saved in a European locale).  Both are read with
:func:`quantdesk.data.sources.files.read_bars_file` (inference, validation, rejects);
the ISO file is the peer: a day-first file should cost little more than the format
every parser reads fastest (goal: within 1.5x).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._timing import best_of, row

N_SYMBOLS, N_DAYS = 120, 2_500


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2014-01-02", periods=N_DAYS)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (N_DAYS, N_SYMBOLS)), axis=0))
    frame = pd.DataFrame(
        {
            "date": np.tile(dates, N_SYMBOLS),
            "symbol": np.repeat([f"S{i:03d}" for i in range(N_SYMBOLS)], N_DAYS),
            "close": close.T.ravel().round(4),
        }
    )
    frame["open"] = frame["high"] = frame["low"] = frame["close"]
    frame["volume"] = 1_000_000
    return frame[["date", "symbol", "open", "high", "low", "close", "volume"]]


def run() -> list[dict[str, Any]]:
    """Return the row: a day-first file's read time beside the ISO file's."""
    from quantdesk.data.sources.files import read_bars_file

    frame = _frame()
    with tempfile.TemporaryDirectory() as tmp:
        iso, dmy = Path(tmp) / "iso.csv", Path(tmp) / "dmy.csv"
        frame.to_csv(iso, index=False)  # ISO dates, as pandas writes datetimes
        frame.assign(date=frame["date"].dt.strftime("%d/%m/%Y")).to_csv(dmy, index=False)
        t_dmy, got = best_of(lambda: read_bars_file(dmy))
        t_iso, want = best_of(lambda: read_bars_file(iso))
        # the same bars both ways (a benchmark that reads something else is no benchmark)
        pd.testing.assert_frame_equal(got.good, want.good)
    n = len(frame)
    return [
        row(
            f"read {n / 1e3:.0f}k daily bars, DD/MM/YYYY dates (peer: the same rows, ISO dates)",
            t_dmy,
            t_iso,
            "s",
            "within 1.5x of ISO",
            met=t_dmy <= 1.5 * t_iso,
            note=f"read_bars_file with inference and validation; ISO file {t_iso:.2f} s",
        ),
    ]


if __name__ == "__main__":
    from benchmarks.__main__ import render

    print(render(run()))
