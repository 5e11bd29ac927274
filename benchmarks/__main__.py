"""`make bench`: run every benchmark module and print one table.

Usage: python -m benchmarks [MODULE ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import sys
from typing import Any

MODULES = (
    "bench_import",
    "bench_candles",
    "bench_store",
    "bench_files",
    "bench_backtest",
    "bench_first_run",
    "bench_regimes",
    "bench_regimes_universe",
    "bench_reports",
    "bench_batch",
    "bench_sentiment",
    "bench_live",
    "bench_ledger",
    "bench_voila",
    "bench_dashboard",
    "bench_screener",
    "bench_panes",
    "bench_forecast",
    "bench_pipeline",
    "bench_snapshot",
    "bench_cluster",
)


def _fmt(value: float, unit: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if unit.endswith("/s"):
        return f"{value / 1e6:,.2f}M" if value >= 1e6 else f"{value:,.0f}"
    return f"{value:.3f}"


def render(rows: list[dict[str, Any]]) -> str:
    """Return the rows as one aligned text table."""
    header = ["task", "quantdesk", "peer", "unit", "x peer", "target", "met", "note"]
    body = [
        [
            r["task"],
            _fmt(r["quantdesk"], r["unit"]),
            _fmt(r["peer"], r["unit"]),
            r["unit"],
            "-" if math.isnan(r["ratio"]) else f"{r['ratio']:.1f}x",
            r["target"],
            {True: "yes", False: "NO", None: "-"}[r["met"]],
            r["note"],
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False))
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for name in args.modules:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(importlib.import_module(f"benchmarks.{name}").run())
    print(
        f"quantdesk benchmarks on {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(render(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
