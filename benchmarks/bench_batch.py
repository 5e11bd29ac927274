"""A 20-run report grid on a local process pool: 2 workers against 1 worker.

Each run is a whole report: a fresh papermill kernel, a small numpy/pandas notebook,
the executed notebook, its HTML and its run record written, and the index updated.
``quantdesk`` is the wall time with 2 workers, ``peer`` the same grid with 1 worker;
the ratio is the speed-up (target at least 1.7x), best of two interleaved attempts.
It can only reach 2x on a machine with two free cores: each run's kernel and its
worker process share them.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._timing import row

N_RUNS = 20
REPEAT = 2
TARGET = 1.7

_CELLS = [
    ("markdown", "# Random walk\nA small report: simulate, summarise, show."),
    ("parameters", "seed = 0\nn_days = 2520"),
    (
        "code",
        "import numpy as np\nimport pandas as pd\n"
        "rng = np.random.default_rng(seed)\n"
        "returns = pd.Series(rng.normal(0, 0.01, n_days))\n"
        "prices = 100 * np.exp(returns.cumsum())",
    ),
    ("markdown", "## Summary"),
    ("code", "returns.describe().to_frame('daily return')"),
    ("code", "prices.groupby(prices.index // 21).last().tail()"),
]


def _write_notebook(path: Path) -> Path:
    import nbformat

    cells = []
    for kind, source in _CELLS:
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source))
            continue
        cell = nbformat.v4.new_code_cell(source)
        if kind == "parameters":
            cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["kernelspec"]["language"] = "python"
    nbformat.write(nb, path)
    return path


def _grid(notebook: Path) -> list[Any]:
    from quantdesk.reports.catalog import RunSpec

    return [RunSpec("bench", str(notebook), {"seed": i}) for i in range(N_RUNS)]


def _timed_batch(notebook: Path, workers: int, reports: Path) -> float:
    from quantdesk.reports.batch import run_batch

    t0 = time.perf_counter()
    result = run_batch(
        _grid(notebook),
        executor="process",
        max_workers=workers,
        reports_dir=reports,
        progress=False,
    )
    elapsed = time.perf_counter() - t0
    if not result.ok:
        raise RuntimeError(f"benchmark batch failed:\n{result.summary()}")
    return elapsed


def run() -> list[dict[str, Any]]:
    """Return one row: the 20-run grid's wall time on 2 workers and on 1 worker."""
    from quantdesk.reports.batch import run_batch

    if hasattr(os, "sched_setaffinity"):
        # bench_store pins this process to one core, and workers inherit the pinning.
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="qd-bench-batch-") as tmp:
        root = Path(tmp)
        previous = os.environ.get("QUANTDESK_HOME")
        # An empty home: the run record's data fingerprint does not read a real store.
        os.environ["QUANTDESK_HOME"] = str(root / "home")
        try:
            notebook = _write_notebook(root / "random_walk.ipynb")
            # Other processes on the machine take cores from the 2-worker side only.
            busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            # Warm the disk cache and the kernel's imports once, outside the timings.
            run_batch(
                _grid(notebook)[:1], executor="serial", reports_dir=root / "warm", progress=False
            )
            # Interleaved, best of REPEAT each: a busy moment on the machine hurts one
            # attempt of each, not one side of the comparison.
            ones, twos = [], []
            for i in range(REPEAT):
                ones.append(_timed_batch(notebook, 1, root / f"one{i}"))
                twos.append(_timed_batch(notebook, 2, root / f"two{i}"))
            one, two = min(ones), min(twos)
        finally:
            if previous is None:
                os.environ.pop("QUANTDESK_HOME", None)
            else:
                os.environ["QUANTDESK_HOME"] = previous
    ratio = one / two
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        row(
            f"report grid, {N_RUNS} runs: 2 workers vs 1",
            two,
            one,
            "s",
            f">= {TARGET}x",
            note=f"{one / N_RUNS:.2f} s/report on 1 worker; {cores} cores, load {busy:.1f} before",
            met=ratio >= TARGET,
        )
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
