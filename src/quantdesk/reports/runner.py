"""Run a parameterised notebook with papermill and publish it as a report.

:func:`run_report` is the one entry point; the CLI (``quantdesk report run``), the
catalog's batch executor and the scheduler all call it.  A run writes one folder::

    <reports_dir>/<notebook stem>/<run_id>/
        <stem>.ipynb    the executed notebook (outputs, errors, papermill metadata)
        <stem>.html     the notebook rendered with input cells hidden
        run.json        the :class:`RunRecord` (status, reason, timings, versions, data)

and then rewrites ``<reports_dir>/index.html`` (see :mod:`quantdesk.reports.publish`).

Failures are reports too
------------------------
A failing cell, a dead kernel (the notebook calls ``os._exit``, is killed or runs out
of memory) and a cell over the timeout all produce a run folder with
``status == "failed"``, a ``reason`` and a red banner at the top of the HTML.  Only
errors in the *request* raise before anything runs: an unknown notebook, a
secret-looking parameter name
(:class:`~quantdesk.reports.redaction.SecretParameterError`), a parameter the
notebook does not declare, a bad ``run_id`` or ``timeout``.

The pieces live beside this module: the record in :mod:`~quantdesk.reports.records`,
the secret guards in :mod:`~quantdesk.reports.redaction`, notebook lookup in
:mod:`~quantdesk.reports.notebooks`, the kernel launcher in
:mod:`~quantdesk.reports.engine` and the data fingerprint in
:mod:`~quantdesk.reports.fingerprint`; library versions come from
:mod:`quantdesk.core.provenance`.  The runner executes into a private temporary
directory, and redacts secret values before anything reaches the report folder.

Examples
--------
>>> record = run_report("regime_report", {"symbol": "SPX"})  # doctest: +SKIP
>>> print(record.summary())  # doctest: +SKIP
>>> record.ok, record.html_path  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.config import environment, settings
from quantdesk.core.jsonable import jsonable
from quantdesk.core.provenance import code_version, library_versions
from quantdesk.reports.engine import kernel_data_env, register_engine
from quantdesk.reports.fingerprint import store_fingerprint
from quantdesk.reports.notebooks import check_declared, resolve_notebook
from quantdesk.reports.offline import STATIC_DIR_NAME
from quantdesk.reports.publish import atomic_write_text, banner_html, render_html, write_index
from quantdesk.reports.records import RECORD_NAME, RunRecord
from quantdesk.reports.redaction import check_parameters, redact_secrets, secret_values

if TYPE_CHECKING:
    import nbformat

__all__ = ["DEFAULT_TIMEOUT", "run_report"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT: float = 600.0
"""Seconds one cell may run before the run is stopped and recorded as failed."""

# A run id becomes a folder name: one safe path component, nothing that climbs out.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSIONED_PACKAGES = (
    "quantdesk",
    "pandas",
    "numpy",
    "duckdb",
    "papermill",
    "nbclient",
    "nbconvert",
    "ipykernel",
    "vectorbt",
    "hmmlearn",
    "hvplot",
    "bokeh",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _default_run_id(parameters: Mapping[str, Any], started: datetime) -> str:
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()[:6]
    return f"{started:%Y%m%dT%H%M%SZ}-{digest}"


def _make_run_dir(base: Path, run_id: str, explicit: bool) -> tuple[Path, str]:
    """Return ``(folder, run_id)`` of a new, empty run folder."""
    base.mkdir(parents=True, exist_ok=True)
    candidate, n = run_id, 1
    while True:
        try:
            (base / candidate).mkdir()
            return base / candidate, candidate
        except FileExistsError:
            if explicit:
                raise FileExistsError(
                    f"run folder {base / candidate} exists; choose another run_id"
                ) from None
            # Same notebook, same parameters, same second: keep both runs.
            n += 1
            candidate = f"{run_id}-{n}"


def _started_cell(nb: nbformat.NotebookNode) -> int | None:
    """Return the index of the last cell papermill started (the one running at a failure)."""
    index = None
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            index = i
    return index


def _mark_failure(nb: nbformat.NotebookNode, ename: str, evalue: str) -> int | None:
    """Return the cell index given an error output saying why the run stopped there.

    A timeout or a dead kernel leaves no error output of its own (papermill records
    only cell errors), so a reader of the notebook would not see where it stopped.
    """
    import nbformat

    index = _started_cell(nb)
    if index is not None and nb.cells[index].cell_type == "code":
        nb.cells[index].outputs.append(
            nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])
        )
    return index


def run_report(
    notebook: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    reports_dir: Path | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    kernel_name: str = "python3",
    run_id: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    job: str | None = None,
    snapshot: str | None = None,
    snapshot_version: int | None = None,
    take_snapshot: bool = False,
    rerun_of: str | None = None,
) -> RunRecord:
    """Return the :class:`RunRecord` of executing a notebook with papermill and publishing it.

    Parameters
    ----------
    notebook
        A notebook path, or a name under the project's ``notebooks/``
        (see :func:`resolve_notebook`).
    parameters
        Values for the notebook's ``parameters`` cell.  Names must be declared there
        and must not look like secrets.
    reports_dir
        Root of the published reports (default ``settings().reports_dir``:
        ``$QUANTDESK_REPORTS`` or ``./reports``).
    timeout
        Seconds one cell may run (default 600); ``None`` waits forever.
    kernel_name
        Jupyter kernel to run the notebook in.
    run_id
        Folder name of the run (default: ``<UTC timestamp>-<parameter hash>``, e.g.
        ``20261121T201500Z-3fa2c1``).  An explicit id must be new.
    env
        Environment variables added to (or replacing) this process's environment for
        the kernel only; the way to hand a notebook a secret.
    cwd
        Working directory of the kernel (default: this process's).
    job
        The catalog job this run belongs to, recorded in ``run.json`` (the batch executor
        passes it); ``None`` marks a one-off run.
    snapshot
        A Parquet snapshot URL the kernel reads its bars from instead of the store
        (default ``QUANTDESK_SNAPSHOT`` when set, else none: the store).  The version is
        pinned before the kernel starts and recorded in ``run.json``, so the run can be
        repeated on the same data (:func:`quantdesk.reports.rerun.rerun_report`).
    snapshot_version
        The version to read (default ``QUANTDESK_SNAPSHOT_VERSION``, else the newest).
    take_snapshot
        Publish the store's current bars to ``snapshot`` first (only changed partitions
        are written) and read that new version: the report shows the store as it is
        now and can still be rerun on exactly that data later.
    rerun_of
        The run id this run repeats, recorded in ``run.json``.

    Returns
    -------
    RunRecord
        ``record.ok`` is False when the notebook failed, the kernel died or a cell
        timed out; the folder is written either way.

    Raises
    ------
    SecretParameterError
        A parameter name looks like a secret.  Nothing is run or written.
    FileNotFoundError
        The notebook does not exist.
    ValueError
        An undeclared parameter, a bad ``run_id``, ``timeout``, ``env`` or snapshot
        version, or ``take_snapshot`` without a snapshot URL.
    OSError
        The snapshot cannot be read or written (the message names its URL).
    FileExistsError
        An explicit ``run_id`` whose folder exists.
    NotADirectoryError
        ``cwd`` is not a directory.
    """
    import nbformat
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    params = dict(parameters or {})
    check_parameters(params)
    nb_path = resolve_notebook(notebook)
    check_declared(nb_path, params)
    # Papermill writes values as Python literals and falls back to str(); the same
    # fallback makes the record equal to what the notebook received.
    params = jsonable(params, non_finite="keep", fallback=str)
    if timeout is not None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
        timeout = float(timeout)
    if run_id is not None and not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run_id {run_id!r} must match {_RUN_ID.pattern}")
    extra_env = dict(env or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra_env.items()):
        raise ValueError("env must map str to str")
    kernel_cwd = (Path(cwd) if cwd is not None else Path.cwd()).absolute()
    if not kernel_cwd.is_dir():
        raise NotADirectoryError(f"cwd {kernel_cwd} is not a directory")
    data_env, store_path = kernel_data_env(extra_env, kernel_cwd)
    kernel_env = {**environment(), **data_env, **extra_env}
    pinned = _pin_snapshot(kernel_env, store_path, snapshot, snapshot_version, take_snapshot)
    if pinned is not None:
        kernel_env["QUANTDESK_SNAPSHOT"] = str(pinned["url"])
        kernel_env["QUANTDESK_SNAPSHOT_VERSION"] = str(pinned["version"])
    secrets = secret_values(kernel_env)

    root = Path(reports_dir) if reports_dir is not None else settings().reports_dir
    stem = nb_path.stem
    started = _now()
    run_dir, run_id = _make_run_dir(
        root / stem, run_id or _default_run_id(params, started), explicit=run_id is not None
    )
    names = {"ipynb": f"{stem}.ipynb", "html": f"{stem}.html", "record": RECORD_NAME}
    found: set[str] = set()  # names of the variables whose values were redacted
    shown = redact_secrets(json.dumps(params), secrets, "parameters", found)
    logger.info("running %s %s -> %s", stem, shown, run_dir)

    reason: str | None = None
    error: dict[str, Any] | None = None
    interrupted: BaseException | None = None
    # Papermill saves the notebook while it runs; it saves into a private folder so
    # that nothing unredacted ever exists under reports_dir.
    with tempfile.TemporaryDirectory(prefix="quantdesk-run-") as staging:
        staged = Path(staging) / names["ipynb"]
        try:
            papermill.execute_notebook(
                str(nb_path),
                str(staged),
                parameters=params,
                engine_name=register_engine(),
                kernel_name=kernel_name,
                execution_timeout=timeout,
                progress_bar=False,
                log_output=False,
                kernel_env=kernel_env,
                kernel_cwd=str(kernel_cwd),
            )
        except papermill.PapermillExecutionError as exc:
            # Papermill already put the error output and its own markers in the notebook.
            reason = f"cell error: {exc.ename}: {exc.evalue}"
            error = {"ename": exc.ename, "evalue": exc.evalue, "cell_index": exc.cell_index}
        except DeadKernelError as exc:
            reason = "kernel died (killed, out of memory, or the process exited)"
            error = {"ename": "DeadKernelError", "evalue": str(exc)}
        except (CellTimeoutError, TimeoutError) as exc:
            limit = "none" if timeout is None else f"{timeout:g}"
            reason = f"cell exceeded timeout of {limit} s"
            error = {"ename": type(exc).__name__, "evalue": reason}
        except KeyboardInterrupt as exc:
            reason, interrupted = "interrupted", exc
            error = {"ename": "KeyboardInterrupt", "evalue": ""}
        except Exception as exc:  # a kernel that never started, a broken notebook, ...
            reason = f"execution error: {type(exc).__name__}: {exc}"
            error = {"ename": type(exc).__name__, "evalue": str(exc)}
        finished = _now()

        if staged.is_file():
            executed = nbformat.read(staged, as_version=4)
        else:
            # Papermill stopped before writing anything: publish the input as it was.
            executed = nbformat.read(nb_path, as_version=4)
        if error is not None and "cell_index" not in error:
            error["cell_index"] = _mark_failure(executed, error["ename"], reason or "")

        # The reason quotes the notebook's error message, which may quote a secret; it
        # goes into the banner, the record and the log, so it is cleaned first.
        if reason is not None and error is not None:
            reason = redact_secrets(reason, secrets, "failure reason", found)
            error["evalue"] = redact_secrets(str(error["evalue"]), secrets, "error message", found)
        ipynb_path = run_dir / names["ipynb"]
        atomic_write_text(
            ipynb_path,
            redact_secrets(nbformat.writes(executed), secrets, "executed notebook", found),
        )
        # Rendered in the private folder too, so only the redacted page is published.
        html_path = run_dir / names["html"]
        staged_html = Path(staging) / names["html"]
        banner = None if reason is None else f"Run failed: {reason}"
        try:
            render_html(
                ipynb_path,
                staged_html,
                banner=banner,
                title=f"{stem} · {run_id}",
                static_dir=root / STATIC_DIR_NAME,
                page_dir=run_dir,
            )
            page = staged_html.read_text(encoding="utf-8")
        except Exception as exc:  # a report without its HTML is a failed report
            logger.exception("rendering %s failed", ipynb_path)
            if reason is None:
                reason = f"publishing failed: {type(exc).__name__}: {exc}"
                error = {"ename": type(exc).__name__, "evalue": str(exc), "cell_index": None}
            page = _fallback_html(stem, run_id, f"Run failed: {reason}")
        atomic_write_text(html_path, redact_secrets(page, secrets, "HTML report", found))

    fingerprint, data_summary = store_fingerprint(store_path)
    record = RunRecord(
        notebook=stem,
        run_id=run_id,
        parameters=params,
        status="ok" if reason is None else "failed",
        reason=reason,
        error=error,
        started_at=started.isoformat(),
        finished_at=finished.isoformat(),
        duration_s=round((_now() - started).total_seconds(), 3),
        input_path=str(nb_path),
        run_dir=str(run_dir.resolve()),
        outputs=names,
        kernel_name=kernel_name,
        timeout=timeout,
        versions=library_versions(_VERSIONED_PACKAGES, skip_missing=True),
        data_fingerprint=fingerprint,
        data_summary=data_summary,
        host=platform.node(),
        job=job or None,
        snapshot=pinned,
        code=code_version(nb_path),
        rerun_of=rerun_of,
    )
    text = redact_secrets(json.dumps(record.to_dict(), indent=2), secrets, "run record", found)
    record = RunRecord.from_dict(json.loads(text))
    record.redacted = sorted(found)
    atomic_write_text(run_dir / RECORD_NAME, json.dumps(record.to_dict(), indent=2) + "\n")

    write_index(root)
    if record.ok:
        logger.info("report %s %s ok in %.1f s: %s", stem, run_id, record.duration_s, html_path)
    else:
        # record.reason, not the exception: the record is the redacted copy.
        logger.warning("report %s %s failed: %s (%s)", stem, run_id, record.reason, html_path)
    if interrupted is not None:
        raise interrupted
    return record


def _pin_snapshot(
    kernel_env: Mapping[str, str],
    store_path: Path,
    url: str | None,
    version: int | None,
    take: bool,
) -> dict[str, Any] | None:
    """Return ``{"url", "version"}`` of the snapshot the kernel will read, or None.

    The URL and version come from the arguments, else from the kernel's environment
    (``QUANTDESK_SNAPSHOT``, ``QUANTDESK_SNAPSHOT_VERSION``); an unversioned URL is
    pinned to its newest version now, so that every cell reads the same data.
    """
    from quantdesk.config import Settings

    configured = Settings.from_env(kernel_env)
    url = url or configured.snapshot_url
    if url is None:
        if take:
            raise ValueError("take_snapshot needs a snapshot URL (or QUANTDESK_SNAPSHOT)")
        return None
    if take:
        if version is not None:
            raise ValueError("take_snapshot publishes a new version; do not give one")
        from quantdesk.data.store.market import MarketStore

        version = int(MarketStore(store_path, read_only=True).snapshot(url))
        logger.info("published the store %s to %s as version %d", store_path, url, version)
    else:
        from quantdesk.data.pinned import SnapshotBars

        if version is None and url == configured.snapshot_url:
            version = configured.snapshot_version
        version = SnapshotBars.pin(url, version).version
    return {"url": url, "version": version}


def _fallback_html(stem: str, run_id: str, banner: str) -> str:
    from quantdesk.core.html import element

    title = f"{stem} · {run_id}"
    head = '<!DOCTYPE html>\n<html><head><meta charset="utf-8">' + element("title", title)
    body = element("body", banner_html(banner), element("h1", title))
    return head + "</head>" + body + "</html>\n"
