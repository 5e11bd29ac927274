"""Regime walk-forwards over a 50-symbol universe: 2 worker processes against 1.

One row: 50 simulated symbols (one regime path each) x 20 years of daily bars, a
walk-forward per symbol (10-year window, monthly refits, warm-started), run through
:func:`quantdesk.regimes.walkforward.fit_symbols` with a 2-process pool; the peer column is
the same work on one core (``max_workers=1``, in this process), so the ratio is the
speed-up.  This is the slowest benchmark (several minutes); run it alone with
``python -m benchmarks bench_regimes_universe``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks._timing import row

N_SYMBOLS = 50
N_DAYS = 5040
WINDOW, REFIT = 2520, 21


def run() -> list[dict[str, Any]]:
    """Return the benchmark row (task, quantdesk, peer, unit, ratio, target, met, note)."""
    from quantdesk.data import simulate
    from quantdesk.regimes.walkforward import fit_symbols

    bars = simulate(N_SYMBOLS, N_DAYS, seed=50, regime_scope="symbol").bars
    seconds = {}
    fits = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        fits[workers] = fit_symbols(
            bars,
            walk_forward=True,
            max_workers=workers,
            progress=False,
            window=WINDOW,
            refit=REFIT,
        )
        seconds[workers] = time.perf_counter() - t0
    failed = sum(len(f.errors) for f in fits.values())
    refits = sum(len(r.refits) for r in fits[2].results.values())
    return [
        row(
            f"regimes: {N_SYMBOLS} symbols x {N_DAYS // 252}y walk-forward, 2 workers vs 1",
            seconds[2],
            seconds[1],
            "s",
            "report time and speed-up",
            note=f"{refits} refits in all (window {WINDOW}, refit {REFIT}); peer column = one "
            f"core; {os.cpu_count()} CPUs; {failed} failed symbols",
            met=None,
        )
    ]


if __name__ == "__main__":
    from benchmarks.__main__ import render

    print(render(run()))
