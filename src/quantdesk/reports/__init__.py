"""Reports: run parameterised notebooks with papermill and publish them as HTML.

:func:`run_report` executes a notebook into ``reports/<notebook>/<run_id>/`` (the
executed ``.ipynb``, an HTML page with input cells hidden, and ``run.json``) and
keeps ``reports/index.html`` current; :func:`list_runs` reads the runs back.

Names load on first use, so importing :mod:`quantdesk.reports` stays cheap
(papermill and nbconvert load when a report runs).

Examples
--------
>>> from quantdesk.reports import run_report
>>> record = run_report("regime_report", {"symbol": "SPX"})  # doctest: +SKIP
>>> record.ok  # doctest: +SKIP
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "run_report": "quantdesk.reports.runner",
    "rerun_report": "quantdesk.reports.rerun",
    "RunRecord": "quantdesk.reports.records",
    "SecretParameterError": "quantdesk.reports.redaction",
    "check_parameters": "quantdesk.reports.redaction",
    "resolve_notebook": "quantdesk.reports.notebooks",
    "render_html": "quantdesk.reports.publish",
    "write_index": "quantdesk.reports.publish",
    "list_runs": "quantdesk.reports.publish",
}
_SUBMODULES = frozenset(
    {"engine", "fingerprint", "notebooks", "publish", "records", "redaction", "rerun", "runner"}
)

__all__ = [
    "RunRecord",
    "SecretParameterError",
    "check_parameters",
    "list_runs",
    "render_html",
    "rerun_report",
    "resolve_notebook",
    "run_report",
    "write_index",
]

if TYPE_CHECKING:
    from quantdesk.reports.notebooks import resolve_notebook
    from quantdesk.reports.publish import list_runs, render_html, write_index
    from quantdesk.reports.records import RunRecord
    from quantdesk.reports.redaction import SecretParameterError, check_parameters
    from quantdesk.reports.rerun import rerun_report
    from quantdesk.reports.runner import run_report


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
