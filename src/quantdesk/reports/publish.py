"""Publish executed notebooks: static HTML with inputs hidden, and the index of all runs.

The index is built from the run folders alone: every ``<reports_dir>/<notebook>/
<run_id>/run.json`` (see :class:`quantdesk.reports.records.RunRecord`) is one run.
This module reads the keys ``job``, ``status``, ``reason``, ``started_at``,
``finished_at``, ``duration_s``, ``parameters``, ``data_fingerprint`` and ``outputs`` of a
record, and
takes the notebook name and run id from the folder names so that links always point
where the files are.  A folder without a readable ``run.json`` (a run in progress, a
damaged file) is skipped with a warning.

Examples
--------
>>> render_html("reports/regime_report/X/regime_report.ipynb", "out.html")  # doctest: +SKIP
>>> write_index("reports")  # doctest: +SKIP
>>> list_runs("reports").head()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from quantdesk.config import settings
from quantdesk.reports.offline import OFFLINE_TEMPLATE, localise_assets, markdown_has_tex

if TYPE_CHECKING:
    import pandas as pd

    from quantdesk.core.html import Html

__all__ = [
    "INDEX_NAME",
    "PIPELINE_STATUS_NAME",
    "RUN_COLUMNS",
    "atomic_write_text",
    "banner_html",
    "list_runs",
    "render_html",
    "write_index",
]

logger = logging.getLogger(__name__)

INDEX_NAME = "index.html"
RUN_COLUMNS = (
    "notebook",
    "run_id",
    "job",
    "status",
    "reason",
    "started_at",
    "finished_at",
    "duration_s",
    "parameters",
    "data_fingerprint",
    "html",
    "ipynb",
    "run_dir",
)
"""Columns of :func:`list_runs`."""

_FAILED_COLOUR = "#b00020"
_OK_COLOUR = "#1b7f3b"
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_EPOCH = datetime.min.replace(tzinfo=UTC)
_EXPORTER: Any = None
_EXPORTER_LOCK = threading.Lock()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Return ``path`` after writing ``text`` to it atomically (temp file + ``os.replace``).

    A reader (a browser, a web server, another run's index) sees the old file or the
    new one, never a half-written one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        # mkstemp creates the file 0600; a published report must stay readable by the
        # web server or colleague that serves it.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def banner_html(text: str) -> Html:
    """Return a red, full-width alert ``<div>`` carrying ``text`` (HTML-escaped)."""
    from quantdesk.core.html import element

    style = (
        f"background:{_FAILED_COLOUR};color:#ffffff;padding:14px 20px;margin:0 0 12px 0;"
        "font:600 18px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;"
        "white-space:pre-wrap"
    )
    return element("div", text, id="quantdesk-run-banner", role="alert", style=style)


def _inject_after_body(page: str, snippet: str) -> str:
    match = _BODY_TAG.search(page)
    if match is None:
        return snippet + page
    return page[: match.end()] + "\n" + snippet + page[match.end() :]


def render_html(
    executed_nb_path: str | Path,
    html_path: str | Path,
    *,
    banner: str | None = None,
    title: str | None = None,
    static_dir: str | Path | None = None,
    page_dir: str | Path | None = None,
) -> Path:
    """Return ``html_path`` after rendering a notebook to static HTML with inputs hidden.

    Code cells show their outputs only (no source, no prompts); markdown cells show as
    text.  Rich outputs stay live: nbconvert keeps ``text/html`` and
    ``application/javascript`` outputs, so hvplot/bokeh plots (their loader script and
    the embedded document) work in the page as they did in JupyterLab.

    Parameters
    ----------
    executed_nb_path
        The executed ``.ipynb``.
    html_path
        Where to write the page (written atomically).
    banner
        If given, a red alert with this text is put at the top of the page (used for
        failed runs: "Run failed: cell error: ValueError: ...").
    title
        The page ``<title>`` (default: the notebook's file stem).
    static_dir
        The shared asset folder (``<reports_dir>/_static``).  When given, the bokeh
        and Panel files the charts load from CDNs are copied there once and the page
        points at them by relative paths, so it renders with no network (see
        :mod:`quantdesk.reports.offline`).  Without it the page keeps the CDN URLs.
    page_dir
        The folder the page will finally be published in, when ``html_path`` is a
        staging path (default: ``html_path``'s folder); relative asset paths start there.

    The page never loads require.js, MathJax or mermaid (none is installed locally and
    the charts do not need them).
    """
    import nbformat

    executed_nb_path, html_path = Path(executed_nb_path), Path(html_path)
    nb = nbformat.read(executed_nb_path, as_version=4)
    if markdown_has_tex([c.source for c in nb.cells if c.cell_type == "markdown"]):
        logger.warning(
            "%s has TeX in its markdown: no local MathJax, shown as source", executed_nb_path.name
        )
    for cell in nb.cells:
        if cell.cell_type == "code":
            # An empty display_data (holoviews emits one) has nothing to show, and
            # nbconvert would warn that it cannot represent it.
            cell.outputs = [
                o for o in cell.outputs if o.get("output_type") != "display_data" or o.get("data")
            ]
    resources = {"metadata": {"name": title or executed_nb_path.stem}}
    with _EXPORTER_LOCK:
        # One exporter per process: building one compiles its Jinja templates, about
        # 0.3 s that a batch of reports would otherwise pay per run.  The lock is there
        # because an exporter is not documented as safe to share between threads.
        global _EXPORTER
        if _EXPORTER is None:
            _EXPORTER = _offline_exporter()
        body, _ = _EXPORTER.from_notebook_node(nb, resources=resources)
    if static_dir is not None:
        body = localise_assets(body, static_dir, page_dir or html_path.parent)
    if banner:
        body = _inject_after_body(body, banner_html(banner))
    html_path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(html_path, body)


def _offline_exporter() -> Any:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        extra_loaders=[DictLoader({"quantdesk_offline.html.j2": OFFLINE_TEMPLATE})],
        template_file="quantdesk_offline.html.j2",
    )


# -- the index -----------------------------------------------------------------------


def _parse_time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _scan_runs(reports_dir: Path) -> list[dict[str, Any]]:
    """Return one dict per readable ``run.json`` under ``reports_dir``, newest first."""
    runs = []
    for record_path in reports_dir.glob("*/*/run.json"):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            logger.warning("skipping unreadable run record %s: %s", record_path, exc)
            continue
        run_dir = record_path.parent
        outputs = record.get("outputs")
        if not isinstance(outputs, dict):
            outputs = {}
        stem = run_dir.parent.name
        html_file = run_dir / str(outputs.get("html", f"{stem}.html"))
        ipynb_file = run_dir / str(outputs.get("ipynb", f"{stem}.ipynb"))
        params = record.get("parameters")
        runs.append(
            {
                "notebook": stem,
                "run_id": run_dir.name,
                "job": record.get("job") or None,
                "status": str(record.get("status", "unknown")),
                "reason": record.get("reason"),
                "started_at": record.get("started_at"),
                "finished_at": record.get("finished_at"),
                "duration_s": record.get("duration_s"),
                "parameters": params if isinstance(params, dict) else {},
                "data_fingerprint": record.get("data_fingerprint"),
                "html": str(html_file) if html_file.is_file() else None,
                "ipynb": str(ipynb_file) if ipynb_file.is_file() else None,
                "run_dir": str(run_dir),
            }
        )
    runs.sort(key=lambda r: (_parse_time(r["started_at"]), r["run_id"]), reverse=True)
    return runs


def list_runs(reports_dir: str | Path | None = None) -> pd.DataFrame:
    """Return every published run as a frame, newest first (columns :data:`RUN_COLUMNS`).

    ``job`` is the catalog job whose batch made the run (``None`` for a one-off run);
    ``started_at`` and ``finished_at`` are UTC timestamps; ``parameters`` holds dicts;
    ``html`` and ``ipynb`` are absolute paths (``None`` where the file is missing).

    Examples
    --------
    >>> runs = list_runs()  # doctest: +SKIP
    >>> runs[runs["status"] == "failed"][["notebook", "run_id", "reason"]]  # doctest: +SKIP
    """
    import pandas as pd

    root = Path(reports_dir) if reports_dir is not None else settings().reports_dir
    frame = pd.DataFrame(_scan_runs(root) if root.is_dir() else [], columns=list(RUN_COLUMNS))
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
    frame["duration_s"] = pd.to_numeric(frame["duration_s"], errors="coerce")
    return frame


@contextlib.contextmanager
def _index_lock(root: Path) -> Iterator[None]:
    # Runs finishing together each rescan and rewrite the index; serialising
    # scan+write means the last writer saw every run.json written before it.
    try:
        import fcntl
    except ImportError:  # Windows: the atomic replace alone still prevents torn files
        yield
        return
    with open(root / ".index.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _link(root: Path, target: str | None, label: str) -> Html | None:
    from quantdesk.core.html import element

    if target is None:
        return None
    return element("a", label, href=quote(Path(target).relative_to(root).as_posix()))


def _joined(parts: list[Html], separator: str = " · ") -> list[Html]:
    """Return ``parts`` with ``separator`` (escaped text) between each two."""
    from quantdesk.core.html import escape

    out: list[Html] = []
    for part in parts:
        out += [escape(separator), part] if out else [part]
    return out


def _table(header: tuple[str, ...], rows: list[Html]) -> Html:
    """Return a table: ``header`` as its ``<thead>`` row, then ``rows`` in its body."""
    from quantdesk.core.html import element

    head = element("thead", element("tr", *(element("th", h) for h in header)))
    return element("table", head, element("tbody", *rows))


def _row_html(root: Path, run: dict[str, Any]) -> Html:
    from quantdesk.core.html import element

    ok = run["status"] == "ok"
    colour = _OK_COLOUR if ok else _FAILED_COLOUR
    status = [element("span", run["status"], cls="status", style=f"background:{colour}")]
    if run["reason"]:
        status.append(element("div", str(run["reason"]), cls="reason"))
    started = _parse_time(run["started_at"])
    started_text = "" if started == _EPOCH else f"{started:%Y-%m-%d %H:%M:%S} UTC"
    duration = run["duration_s"]
    duration_text = f"{duration:.1f} s" if isinstance(duration, int | float) else ""
    params = json.dumps(run["parameters"], sort_keys=True, default=str)
    record = str(Path(run["run_dir"]) / "run.json")
    links = [
        link
        for link in (
            _link(root, run["html"], "report"),
            _link(root, run["ipynb"], "notebook"),
            _link(root, record, "run.json"),
        )
        if link is not None
    ]
    cells = [
        element("td", run["notebook"]),
        element("td", element("code", run["run_id"])),
        element("td", *status),
        element("td", started_text),
        element("td", duration_text),
        element("td", element("code", params)),
        element("td", *_joined(links)),
    ]
    return element("tr", *cells, cls="ok" if ok else "failed")


#: The pipeline's status, as ``quantdesk pipeline status --json`` gives it, written into
#: the reports directory after each pipeline run; the index shows it in its own section.
PIPELINE_STATUS_NAME = "pipeline.json"


def _pipeline_html(root: Path) -> list[Html]:
    """Return the index's ``pipeline`` section from ``pipeline.json`` (empty when absent)."""
    from quantdesk.core.html import element

    path = root / PIPELINE_STATUS_NAME
    if not path.is_file():
        return []
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
        steps = list(status.get("steps") or [])
    except (OSError, ValueError, AttributeError) as exc:
        logger.warning("%s: cannot read the pipeline status (%s)", path, type(exc).__name__)
        return [element("h2", "pipeline"), element("p", f"{path.name}: unreadable", cls="reason")]
    last = status.get("last_session") or "never run"
    meta = f"{status.get('pipeline', '')} ({status.get('exchange', '')}) · last session {last}"
    if status.get("next_due"):
        meta += f" · next due {status['next_due']}"
    parts = [element("h2", "pipeline", id="pipeline"), element("p", meta, cls="meta")]
    if steps:
        rows = []
        for step in steps:
            state = str(step.get("status", ""))
            took = step.get("duration_s")
            took_text = "" if took is None else f"{float(took):.1f} s"
            error = element("span", str(step.get("error") or ""), cls="reason")
            cells = [str(step.get("step", "")), state, str(step.get("attempt", "")), took_text]
            css = "failed" if state == "failed" else "ok"
            tds = [*(element("td", c) for c in cells), element("td", error)]
            rows.append(element("tr", *tds, cls=css))
        parts.append(_table(("Step", "State", "Attempt", "Duration", "Error"), rows))
    failed = [str(d) for d in status.get("failed_sessions") or []]
    if failed:
        text = f"failed sessions (quantdesk pipeline retry): {', '.join(failed)}"
        parts.append(element("p", text, cls="reason"))
    return [*parts, element("h2", "reports")]


_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quantdesk reports</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 24px; color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; vertical-align: top; padding: 6px 10px;
         border-bottom: 1px solid #d0d7de; }}
th {{ background: #f6f8fa; }}
code {{ font-size: 12px; word-break: break-all; }}
.status {{ color: #fff; border-radius: 4px; padding: 1px 8px; font-weight: 600; }}
.reason {{ color: {failed}; font-size: 12px; margin-top: 4px; max-width: 32em; }}
.meta {{ color: #59636e; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def write_index(reports_dir: str | Path | None = None) -> Path:
    """Return the path of ``<reports_dir>/index.html`` after rewriting it from the run folders.

    Every run is one row, newest first: notebook, run id, status (green ok / red
    failed, with the reason), start time, duration, parameters (HTML-escaped) and
    relative links to the HTML report, the executed notebook and ``run.json``.  Above
    them, when the evening pipeline has run, a ``pipeline`` section from
    ``pipeline.json``: its last session, each step's state, attempt, duration and error,
    and the failed sessions (every value HTML-escaped).  The
    file is replaced atomically under a lock, so concurrent runs keep it whole and
    complete.
    """
    from quantdesk.core.html import element

    root = Path(reports_dir) if reports_dir is not None else settings().reports_dir
    root.mkdir(parents=True, exist_ok=True)
    with _index_lock(root):
        runs = _scan_runs(root)
        header = ("Notebook", "Run", "Status", "Started", "Duration", "Parameters", "")
        rows = [_row_html(root, run) for run in runs]
        table = _table(header, rows) if runs else element("p", "No runs yet.")
        failed = sum(run["status"] != "ok" for run in runs)
        updated = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
        summary = f"{len(runs)} runs, {failed} failed · updated {updated} UTC · newest first"
        body = [
            element("h1", "quantdesk reports"),
            element("p", summary, cls="meta"),
            *_pipeline_html(root),
            table,
        ]
        page = _INDEX_TEMPLATE.format(failed=_FAILED_COLOUR, body="\n".join(body))
        return atomic_write_text(root / INDEX_NAME, page)
