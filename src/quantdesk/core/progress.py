"""The project's progress bars: a widget in a notebook, one line in a terminal or a log.

Every long job (ingest, regime fits and walk-forwards, batches on the parallel runner,
sentiment scoring) makes its bar here, so a bar behaves the same everywhere:

* in a Jupyter kernel (JupyterLab, Notebook 7, papermill): ``tqdm.auto``'s widget, one
  bar updating in place;
* on a terminal: tqdm's text bar, redrawn in place on stderr;
* on a stderr that is not a terminal (a cron line's log, a CLI run piped to a file, a
  subprocess): the bar is written when it starts and when it ends, never once per
  update, so a log holds two states of the bar and no wall of lines.

Examples
--------
>>> import io
>>> out = io.StringIO()
>>> total = 0
>>> for i in progress_bar(range(1000), desc="work", file=out):
...     total += i
>>> out.getvalue().count("\\r") <= 2, out.getvalue().count("\\n")
(True, 1)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

__all__ = ["in_kernel", "progress_bar"]

# No redraw between the first and the last state of a bar written to a log.
_LOG_INTERVAL = float("inf")


def in_kernel() -> bool:
    """Return whether this process is an IPython kernel (a notebook's, or papermill's)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None) is not None


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool = False,
    file: IO[str] | None = None,
    **kwargs: Any,
) -> Any:
    """Return a tqdm bar over ``iterable`` (or of ``total`` steps) that renders where it runs.

    Parameters
    ----------
    iterable, total, desc, unit, disable
        As for :class:`tqdm.tqdm`.
    file
        Where a text bar goes (default stderr); a stream that is not a terminal gets
        the bar's first and last state only.
    **kwargs
        Passed to tqdm.
    """
    if file is None and in_kernel():
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, **kwargs)
    from tqdm import tqdm

    stream = file if file is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()):
        kwargs.setdefault("mininterval", _LOG_INTERVAL)
        kwargs.setdefault("maxinterval", _LOG_INTERVAL)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=stream, **kwargs)
