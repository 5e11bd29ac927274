"""Regime fits on a real Dask cluster reading an S3 snapshot, beside the local process pool.

The cluster is the one the tests use (``tests/cluster_harness.py``): a ``dask
scheduler`` and ``dask worker`` processes started from the CLI, one thread each, and
``moto_server`` as the S3 endpoint holding the snapshot; everything runs on this
machine, so 2 workers are as many as its 2 cores.

Rows (seconds, lower is better; the peer is the same job on a local process pool of 2
reading the DuckDB store):

1. ``fit_regimes`` of every symbol (plain fits, 5 years of daily bars each) on the
   cluster with 1 worker, then with 2, each task reading its symbol from the snapshot;
   the parent saves the models and writes the regimes (the one writer) in both.
2. Per-task overhead: ``run_tasks`` of a task that does nothing (``abs``), on the cluster
   against the local pool, in milliseconds per task.

The universe is ``QD_BENCH_CLUSTER_SYMBOLS`` symbols (default 2,000) x
``QD_BENCH_CLUSTER_DAYS`` bars (default 1,260).  On a 2-core machine 2,000 symbols take
about half an hour per configuration; scale down and say so.  The notes carry what the
projection in docs/scale.md needs: fit seconds per symbol, the parent's save-and-write
seconds per symbol, and the overheads.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._timing import row

N_SYMBOLS = int(os.environ.get("QD_BENCH_CLUSTER_SYMBOLS", "2000"))
N_DAYS = int(os.environ.get("QD_BENCH_CLUSTER_DAYS", "1260"))
N_TRIVIAL = int(os.environ.get("QD_BENCH_CLUSTER_TASKS", "400"))
HARNESS = Path(__file__).resolve().parents[1] / "tests" / "cluster_harness.py"


def _harness() -> Any:
    """Return tests/cluster_harness.py as a module (``tests`` is not importable by name)."""
    spec = importlib.util.spec_from_file_location("quantdesk_cluster_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _fit(store: Any, folder: Path, tag: str, **options: Any) -> tuple[float, Any]:
    from quantdesk.regimes import fit_regimes

    t0 = time.perf_counter()
    run = fit_regimes(store, registry=str(folder / f"models-{tag}"), progress=False, **options)
    return time.perf_counter() - t0, run


def _per_symbol(run: Any) -> tuple[float, float]:
    """Return (mean task seconds, parent seconds per symbol after the fits)."""
    fits = run.fits
    total = fits.wall_seconds
    mean_task = sum(fits.seconds.values()) / max(1, len(fits.seconds))
    return mean_task, total


def run() -> list[dict[str, Any]]:
    """Return the benchmark rows (task, quantdesk, peer, unit, ratio, target, met, note)."""
    import shutil

    from quantdesk.core.parallel import run_tasks
    from quantdesk.data import MarketStore, simulate

    harness = _harness()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        bars = simulate(N_SYMBOLS, N_DAYS, seed=26, regime_scope="symbol").bars
        source = MarketStore(folder / "source.duckdb")
        source.write_bars(bars, "1d", source="bench_cluster")
        del bars
        setup = time.perf_counter() - t0
        with (
            harness.running_object_store() as s3,
            harness.client_environment(s3.env),
        ):
            url = s3.url("bench")
            t0 = time.perf_counter()
            source.snapshot(url)
            snapshot_s = time.perf_counter() - t0

            def store(tag: str) -> MarketStore:
                shutil.copy(source.path, folder / f"{tag}.duckdb")
                return MarketStore(folder / f"{tag}.duckdb")

            timings: dict[str, tuple[float, Any, str]] = {}
            load = _load()
            seconds, local = _fit(store("local"), folder, "local", workers=2)
            timings["local"] = (seconds, local, load)
            for n in (1, 2):
                with harness.running_cluster(s3.env, n_workers=n) as cluster:
                    load = _load()
                    seconds, run_ = _fit(
                        store(f"dask{n}"), folder, f"dask{n}", snapshot=url,
                        scheduler=cluster.address,
                    )  # fmt: skip
                    timings[f"dask{n}"] = (seconds, run_, load)
                    if n == 2:
                        trivial = [(i,) for i in range(N_TRIVIAL)]
                        t0 = time.perf_counter()
                        run_tasks(abs, trivial, executor=cluster.address, progress=False)
                        dask_task = (time.perf_counter() - t0) / N_TRIVIAL
                        t0 = time.perf_counter()
                        run_tasks(abs, trivial, executor="process", max_workers=2, progress=False)
                        pool_task = (time.perf_counter() - t0) / N_TRIVIAL
    local_s, local_run, local_load = timings["local"]
    local_task, local_fit_wall = _per_symbol(local_run)
    failed = {k: len(v[1].errors) for k, v in timings.items()}
    for n in (1, 2):
        seconds, run_, load = timings[f"dask{n}"]
        task_s, fit_wall = _per_symbol(run_)
        writer = (seconds - fit_wall) / N_SYMBOLS
        rows.append(
            row(
                f"regime fits: {N_SYMBOLS} symbols x {N_DAYS} bars, dask {n} worker(s) "
                "from an S3 snapshot vs local pool x2 on the store",
                seconds,
                local_s,
                "s",
                "report scaling",
                note=(
                    f"{load} (local run {local_load}); fit phase {fit_wall:.1f} s, "
                    f"task {task_s * 1e3:.0f} ms/symbol incl. S3 read (local "
                    f"{local_task * 1e3:.0f} ms), client after the last fit (saves, writes) "
                    f"{writer * 1e3:.1f} ms/symbol; local fit phase {local_fit_wall:.1f} s; "
                    f"failed {failed}; setup {setup:.0f} s, snapshot {snapshot_s:.1f} s"
                ),
            )
        )
    rows.append(
        row(
            f"per-task overhead: {N_TRIVIAL} empty tasks, dask 2 workers vs local pool x2",
            dask_task * 1e3,
            pool_task * 1e3,
            "ms",
            "report",
            note=f"{_load()}; pool time includes starting its 2 processes",
        )
    )
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import render

    print(render(run()))
