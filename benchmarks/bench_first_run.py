"""The first backtest in a freshly started process: what a new kernel, report or cron job pays.

Each measurement is a new Python process that imports what it needs, builds a 50-symbol
x 2520-day close panel from a saved array, computes the vol-targeted trend weights,
backtests them with costs and reads equity and metrics; the time runs from the first
line of the script to the last (interpreter start-up excluded).  Rows:

- quantdesk's engine (compiled order kernel), numba cache warm (median of 5) and cold
  (an empty ``NUMBA_CACHE_DIR``, so numba compiles every kernel);
- peer: the previous engine path, ``vectorbt.Portfolio.from_orders`` on the same
  orders (``import vectorbt`` included), warm and cold alike;
- the floor: ``import pandas`` alone in a fresh process (median of 5).

The cold row's note lists what numba compiled in one more cold run (not the timed one),
each function with its compile time, callees inside their caller's time: a kernel
that starts compiling more shows there beside the time it costs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._timing import row

N_DAYS, N_SYMBOLS = 2520, 50

SCRIPT = """
import time
t0 = time.perf_counter()
import json, sys
import numpy as np
import pandas as pd
from quantdesk.strategies import vol_target_trend
values = np.load({path!r})
index = pd.bdate_range("2010-01-04", periods=len(values), tz="UTC")
close = pd.DataFrame(values, index=index, columns=[f"S{{i:02d}}" for i in range(values.shape[1])])
weights = vol_target_trend(close)
{engine}
print(json.dumps({{"seconds": time.perf_counter() - t0, "equity": equity,
                  "vectorbt": "vectorbt" in sys.modules}}))
"""

OURS = """
from quantdesk.backtest import run
result = run(close, weights, commission_bps=1, slippage_bps=2)
equity = float(result.equity.iloc[-1])
result.metrics()
"""

# The engine as it was: every bar with an order sent to vectorbt, fills replayed.
VECTORBT = """
from quantdesk.backtest.engine import simulate_orders
from quantdesk.backtest.metrics import summary_metrics
valuation = close.to_numpy()
_, fills = simulate_orders(valuation, weights.to_numpy(), group_size=close.shape[1],
                           commission_bps=1, slippage_bps=2, init_cash=1e6)
value = pd.Series(fills.equity(valuation, 1, 1e6)[:, 0], index=close.index)
equity = float(value.iloc[-1])
summary_metrics(value.pct_change().fillna(value.iloc[0] / 1e6 - 1))
"""


# Prepended to the script for the compile profile: a numba event listener that records
# every compile (start to end, so a caller's time includes its callees').
COMPILES = """
import json as _json, time as _time
from numba.core import event as _event

class _Compiles(_event.Listener):
    def __init__(self):
        self.open, self.done = [], []

    def on_start(self, ev):
        self.open.append(_time.perf_counter())

    def on_end(self, ev):
        seconds = _time.perf_counter() - self.open.pop()
        func = getattr(ev.data.get("dispatcher"), "py_func", None)
        name = func.__qualname__.replace(".<locals>", "") if func else "?"
        self.done.append((len(self.open), name, seconds))

_compiles = _Compiles()
_event.register("numba:compile", _compiles)
"""


def _compile_note(code: str, cache: str) -> str:
    """Return what numba compiles running ``code`` cold: name and seconds, callees in []."""
    tail = "\nprint(_json.dumps(_compiles.done))\n"
    done = _fresh(COMPILES + code + tail, cache)
    parts: list[str] = []
    callees: list[str] = []  # a caller's compile ends after its callees' (depth 1)
    for depth, name, seconds in done:
        if depth == 1:
            callees.append(f"{name} {seconds:.2f}")
        elif depth == 0:
            parts.append(f"{name} {seconds:.2f}" + (f" [{', '.join(callees)}]" if callees else ""))
            callees = []
    return "; ".join(parts)


def _fresh(code: str, cache: str) -> Any:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _import_pandas() -> float:
    code = "import time; t = time.perf_counter(); import pandas; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(5)
    ]  # fmt: skip
    return statistics.median(times)


def run(repeat: int = 5) -> list[dict[str, Any]]:
    """Return the warm and cold first-backtest rows and the ``import pandas`` floor."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "close.npy"
        rng = np.random.default_rng(11)
        steps = rng.normal(0.0002, 0.012, (N_DAYS, N_SYMBOLS))
        np.save(path, 100 * np.exp(np.cumsum(steps, axis=0)))
        ours = textwrap.dedent(SCRIPT).format(path=str(path), engine=OURS)
        peer = textwrap.dedent(SCRIPT).format(path=str(path), engine=VECTORBT)
        cold_cache, warm_cache = Path(tmp) / "cold", Path(tmp) / "warm"
        cold = _fresh(ours, str(cold_cache))
        compiled = _compile_note(ours, str(Path(tmp) / "cold_profile"))
        cold_peer = _fresh(peer, str(Path(tmp) / "cold_peer"))
        _fresh(peer, str(warm_cache))  # fill the warm cache for both engines
        _fresh(ours, str(warm_cache))
        warm = [_fresh(ours, str(warm_cache)) for _ in range(repeat)]
        warm_peer = [_fresh(peer, str(warm_cache)) for _ in range(repeat)]
    t_warm = statistics.median(r["seconds"] for r in warm)
    t_peer = statistics.median(r["seconds"] for r in warm_peer)
    gap = abs(warm[0]["equity"] / warm_peer[0]["equity"] - 1)
    if any(r["vectorbt"] for r in warm):
        raise AssertionError("the engine imported vectorbt")
    shape = f"{N_SYMBOLS} x {N_DAYS}"
    return [
        row(f"first backtest in a fresh process, {shape}, warm", t_warm, t_peer, "s", "< 2 s",
            met=t_warm < 2.0,
            note=f"imports+vol_target_trend+run+metrics, median of {repeat}; peer: vectorbt "
                 f"from_orders path; final equity gap {gap:.1e}"),
        row(f"first backtest in a fresh process, {shape}, cold", cold["seconds"],
            cold_peer["seconds"], "s", "report", met=None,
            note=f"empty NUMBA_CACHE_DIR; compiles (s): {compiled}"),
        row("import pandas in a fresh process (the floor)", _import_pandas(), float("nan"),
            "s", "report", met=None, note=f"median of {repeat}"),
    ]  # fmt: skip


if __name__ == "__main__":
    for r in run():
        print(r)
