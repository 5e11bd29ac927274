"""Timing helpers shared by the benchmark modules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Return the best wall time in seconds over ``repeat`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def row(
    task: str,
    quantdesk: float,
    peer: float,
    unit: str,
    target: str,
    note: str = "",
    higher_is_better: bool = False,
    met: bool | None = None,
) -> dict[str, Any]:
    """Return one table row; ``ratio`` is how many times better quantdesk is than the peer."""
    ratio = (
        (quantdesk / peer if higher_is_better else peer / quantdesk)
        if quantdesk and peer
        else float("nan")
    )
    return {
        "task": task,
        "quantdesk": quantdesk,
        "peer": peer,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "met": met,
        "note": note,
    }
