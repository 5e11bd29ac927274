"""User steps for the pipeline tests (``module:function`` steps, as a user writes them).

The tests put this folder on the path of the processes they start.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from quantdesk.pipeline.steps import BUILTIN_STEPS, StepOutput


def log_step(ctx: Any, *, log: str, name: str, fail_while: str | None = None) -> StepOutput:
    """Append ``name session`` to ``log``; raise while the file ``fail_while`` exists."""
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{name} {ctx.session:%Y-%m-%d}\n")
    if fail_while and Path(fail_while).exists():
        raise RuntimeError(f"{name} told to fail")
    return StepOutput({"logged": 1})


def screen_paper_then_block(ctx: Any, *, rules: str, block_file: str) -> StepOutput:
    """Store the session's alerts and paper trades, then, while ``block_file`` exists,
    say so in ``block_file + '.reached'`` (with this pid) and wait until killed."""
    alerts = BUILTIN_STEPS["screen"](ctx, rules=rules, deliver_alerts=False)
    trades = BUILTIN_STEPS["paper"](ctx, ledgers=["paper"])
    if Path(block_file).exists():
        Path(block_file + ".reached").write_text(str(os.getpid()), encoding="utf-8")
        threading.Event().wait()  # until SIGKILL
    return StepOutput({**alerts.counts, **trades.counts})


def fail_with(ctx: Any, *, message: str) -> StepOutput:
    """Raise ``RuntimeError(message)`` (a message of several lines, as tracebacks are)."""
    raise RuntimeError(message)


def read_when_held(ctx: Any, *, reached: str, held: str) -> StepOutput:
    """Say the step is running (``reached``), wait until ``held`` exists (another process
    then holds the store), then read the store's bars."""
    Path(reached).write_text(str(os.getpid()), encoding="utf-8")
    seen = threading.Event()
    while not Path(held).exists():
        seen.wait(0.02)
    bars = ctx.store.bars("SIM000")
    return StepOutput({"bars_read": len(bars)})
