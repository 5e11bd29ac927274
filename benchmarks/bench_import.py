"""`import quantdesk` time in a fresh interpreter, beside `import pandas`."""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

from benchmarks._timing import row

CODE = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def _import_time(module: str, repeat: int = 7) -> float:
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", CODE.format(mod=module)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(repeat)
    ]
    return statistics.median(times)


def run() -> list[dict[str, Any]]:
    """Return the import-time row (median of 7 fresh interpreters)."""
    ours = _import_time("quantdesk")
    peer = _import_time("pandas")
    return [
        row(
            "import quantdesk (median of 7)",
            ours,
            peer,
            "s",
            "< 0.5 s",
            met=ours < 0.5,
            note="peer: import pandas",
        )
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
