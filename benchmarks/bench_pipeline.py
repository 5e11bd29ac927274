"""The evening pipeline: whole evenings, a rerun, and the engine's own overhead.

Two stores are built, each in its own temporary ``QUANTDESK_HOME`` with its own
reports folder (untimed):

- the demo store as ``make demo`` builds it: the two bundled index samples plus 50
  simulated symbols of 2520 days (seed 7) with their synthetic headlines, scored;
- a large one: ``QUANTDESK_BENCH_PIPELINE_SYMBOLS`` simulated symbols (default 500)
  of ``QUANTDESK_BENCH_PIPELINE_DAYS`` days (default 2520) with headlines, plus the two
  index samples (the catalog's daily reports read them).

Each history ends on 2024-07-08, so the timed evenings are the sessions 2024-07-09 and
2024-07-10 (XNYS).  The pipeline is the catalog's (``research/reports.yaml``: update,
news, regimes, forecasts, screen, paper, reports with the ``daily`` job), except
that the ``regimes`` step covers every symbol (the catalog names SPX and IXIC only)
on ``QUANTDESK_BENCH_PIPELINE_WORKERS`` processes (default 2).  The first evening
fits every regime model (none is saved yet); the second only filters the new session
with the saved models (the steady state: a refit every 63 sessions).  The large store
runs the reports too unless ``QUANTDESK_BENCH_PIPELINE_REPORTS=0``.

Rows: each evening's wall time; the engine's own time (the run's total minus its
steps' durations: records, fingerprints, the lock) beside the steps' time; a rerun of
the finished session (target under 2 s).  No peer: nothing else runs this evening.
``QUANTDESK_BENCH_PIPELINE_DEMO=0`` skips the demo store.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._timing import row

_FIRST_DAY_NOW = "2024-07-09T18:00-04:00"  # so the stored history ends on 2024-07-08
SESSIONS = ("2024-07-09", "2024-07-10")
_CATALOG = Path(__file__).resolve().parents[1] / "research" / "reports.yaml"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _build(store_path: Path, symbols: int, days: int) -> None:
    import pandas as pd

    from quantdesk.data.sources.ingest import (
        ingest_samples,
        ingest_simulated,
        ingest_synthetic_news,
    )
    from quantdesk.data.store.market import MarketStore
    from quantdesk.pipeline.steps import demo_start
    from quantdesk.sentiment.jobs import score_news

    start = demo_start(days, now=pd.Timestamp(_FIRST_DAY_NOW), store=store_path)
    store = MarketStore(store_path)
    ingest_samples(store, progress=False)  # the catalog's daily reports read SPX and IXIC
    ingest_simulated(store, symbols=symbols, days=days, seed=7, start=f"{start:%Y-%m-%d}",
                     progress=False)  # fmt: skip
    ingest_synthetic_news(store, symbols=symbols, days=days, seed=7, start=f"{start:%Y-%m-%d}")
    score_news(store, "lexicon", progress=False)


def _definition(workers: int, reports: bool) -> Any:
    import yaml

    from quantdesk.pipeline.definition import PipelineDefinition

    section = yaml.safe_load(_CATALOG.read_text(encoding="utf-8"))["pipeline"]
    steps = section["steps"]
    steps["update"]["params"].pop("drop_folder", None)
    steps["regimes"]["params"] = {"refit_every": 63, "workers": workers}
    if not reports:
        steps.pop("reports")
    return PipelineDefinition.from_mapping(section, _CATALOG)


def _evening(label: str, store_path: Path, definition: Any) -> list[dict[str, Any]]:
    from quantdesk.pipeline import run_pipeline

    rows = []
    for i, session in enumerate(SESSIONS):
        began = time.perf_counter()
        run = run_pipeline(store_path, session=session, definition=definition)
        total = time.perf_counter() - began
        if not run.ok:
            raise RuntimeError(run.summary())
        steps = run.sessions[0].steps
        own = sum(s.duration_s for s in steps)
        detail = ", ".join(f"{s.step} {s.duration_s:.1f}" for s in steps)
        what = "first evening (fits every regime model)" if i == 0 else "next evening"
        rows.append(row(f"pipeline: {label}, {what}", total, float("nan"), "s", "-",
                        f"session {session}; steps s: {detail}"))  # fmt: skip
        rows.append(row(f"pipeline: {label}, engine's own time ({what})", total - own,
                        float("nan"), "s", "-",
                        f"total {total:.2f} s minus the steps' {own:.2f} s"))  # fmt: skip
    began = time.perf_counter()
    again = run_pipeline(store_path, session=SESSIONS[-1], definition=definition)
    rerun = time.perf_counter() - began
    assert again.sessions[0].did_nothing, again.summary()
    rows.append(row(f"pipeline: {label}, rerun of a finished session", rerun, float("nan"),
                    "s", "< 2 s", "every step done earlier: nothing runs",
                    met=rerun < 2.0))  # fmt: skip
    return rows


def run() -> list[dict[str, Any]]:
    """Return the rows: the demo store's and the large store's evenings, reruns, overhead."""
    workers = _env_int("QUANTDESK_BENCH_PIPELINE_WORKERS", 2)
    symbols = _env_int("QUANTDESK_BENCH_PIPELINE_SYMBOLS", 500)
    days = _env_int("QUANTDESK_BENCH_PIPELINE_DAYS", 2520)
    big_reports = os.environ.get("QUANTDESK_BENCH_PIPELINE_REPORTS", "1") != "0"
    rows: list[dict[str, Any]] = []
    saved = {k: os.environ.get(k) for k in ("QUANTDESK_HOME", "QUANTDESK_CATALOG",
                                             "QUANTDESK_REPORTS")}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.environ["QUANTDESK_CATALOG"] = str(_CATALOG)
            stores = []
            if os.environ.get("QUANTDESK_BENCH_PIPELINE_DEMO", "1") != "0":
                stores.append(("demo store (52 symbols)", 50, 2520, True))
            stores.append((f"{symbols} simulated symbols + 2 samples", symbols, days, big_reports))
            for label, n, length, reports in stores:
                home = Path(tmp) / f"home-{n}"
                home.mkdir()
                os.environ["QUANTDESK_HOME"] = str(home)
                # each store its own reports: never the project's, never the other store's
                os.environ["QUANTDESK_REPORTS"] = str(home / "reports")
                store_path = home / "quantdesk.duckdb"
                began = time.perf_counter()
                _build(store_path, n, length)
                built = time.perf_counter() - began
                tag = f"{label}, {length} days" + ("" if reports else ", no reports")
                part = _evening(tag, store_path, _definition(workers, reports))
                part[0]["note"] += f"; store built in {built:.0f} s (untimed)"
                rows += part
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import render

    print(render(run()))
