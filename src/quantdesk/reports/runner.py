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
secret-looking parameter name (:class:`SecretParameterError`), a parameter the
notebook does not declare, a bad ``run_id`` or ``timeout``.

Secrets
-------
Secret values reach a notebook through the environment only.  Papermill writes
parameters into the injected cell and into the notebook metadata, so a parameter
whose *name* looks like a secret (it contains ``key``, ``token``, ``secret``,
``password``, ``passwd``, ``credential``, ``apikey`` or ``api_key``, in any case) is
refused before the kernel starts.  As a second line of defence the runner executes
into a private temporary directory, and before anything is written to the report
folder it replaces every value (8 characters or longer) of a secret-looking
environment variable with ``***`` in the notebook, the HTML and the run record,
logging the variable's *name* only.

Kernel environment and working directory
----------------------------------------
The kernel gets this process's environment plus ``env``, and starts in ``cwd``
(default: this process's working directory).  ``QUANTDESK_HOME`` and
``QUANTDESK_STORE`` are pinned to this process's absolute settings unless ``env``
sets them, so a kernel started elsewhere reads the store the run record
fingerprints.  The environment and the directory are handed to the kernel
launcher through a small papermill engine registered as ``"quantdesk"``, instead
of papermill's ``cwd=`` (which calls ``os.chdir``) or a temporary change of
``os.environ``: both of those are process-wide, and the scheduler and batch
executor may run reports from several threads at once.

Examples
--------
>>> record = run_report("regime_report", {"symbol": "SPX"})  # doctest: +SKIP
>>> print(record.summary())  # doctest: +SKIP
>>> record.ok, record.html_path  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import platform
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantdesk.config import settings
from quantdesk.core.jsonable import jsonable
from quantdesk.core.paths import find_project_root, package_checkout
from quantdesk.core.provenance import library_versions
from quantdesk.reports.publish import atomic_write_text, banner_html, render_html, write_index

if TYPE_CHECKING:
    import nbformat

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENGINE_NAME",
    "RunRecord",
    "SecretParameterError",
    "check_parameters",
    "find_project_root",
    "looks_like_secret",
    "resolve_notebook",
    "run_report",
    "store_fingerprint",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT: float = 600.0
"""Seconds one cell may run before the run is stopped and recorded as failed."""

ENGINE_NAME = "quantdesk"
"""The papermill engine that launches the kernel with a given environment and cwd."""

RECORD_NAME = "run.json"
SCHEMA_VERSION = 1

# Substrings that make a parameter or environment variable name look like a secret.
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential", "apikey", "api_key")
_SECRET_NAME = re.compile("|".join(map(re.escape, _SECRET_WORDS)), re.IGNORECASE)
# Shorter values are too likely to occur by chance ("true", "1", a port) to redact.
_MIN_SECRET_LENGTH = 8
_REDACTED = "***"
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
_ENGINE_LOCK = threading.Lock()


class SecretParameterError(ValueError):
    """Raised when a parameter name looks like a secret; secrets go through the environment."""


@dataclass
class RunRecord:
    """The record of one report run, as stored in ``run.json``.

    Attributes
    ----------
    notebook
        Notebook name (the file stem), also the first folder level under ``reports_dir``.
    run_id
        Folder name of the run: a sortable UTC timestamp and a short parameter hash
        unless given.
    parameters
        The parameters injected into the notebook (after a JSON round trip).
    status
        ``"ok"`` or ``"failed"``.
    reason
        ``None`` when ok, else one line: ``"cell error: ValueError: ..."``,
        ``"kernel died ..."``, ``"cell exceeded timeout of N s"``, ...
    error
        ``None`` when ok, else ``{"ename", "evalue", "cell_index"}`` of the failure.
    started_at, finished_at
        ISO 8601 UTC times around the execution (kernel start to kernel stop).
    duration_s
        Seconds from start to the run folder being complete (HTML written).
    input_path
        Absolute path of the source notebook.
    run_dir
        Absolute path of the run folder when the run was written.
    outputs
        File names relative to ``run_dir``: ``ipynb``, ``html``, ``record``.
    kernel_name, timeout
        Execution settings (``timeout`` in seconds per cell, ``None`` for never).
    versions
        Versions of Python and of the installed packages that matter to a report.
    data_fingerprint
        A short hash of the market store's ingest log and table sizes, or
        ``"no store"`` / ``"unavailable"``; equal fingerprints mean the same data.
    data_summary
        What the fingerprint was computed from (store path, counts, last ingest).
    host
        Machine that ran the report.
    redacted
        Names of environment variables whose values were found and redacted.
    job
        The catalog job whose batch made the run; ``None`` for a one-off run
        (``quantdesk report run``, a notebook's own call).  ``quantdesk report list``
        counts only a job's own runs as its last run.
    """

    notebook: str
    run_id: str
    parameters: dict[str, Any]
    status: str
    reason: str | None
    error: dict[str, Any] | None
    started_at: str
    finished_at: str
    duration_s: float
    input_path: str
    run_dir: str
    outputs: dict[str, str]
    kernel_name: str
    timeout: float | None
    versions: dict[str, str] = field(default_factory=dict)
    data_fingerprint: str = "unavailable"
    data_summary: dict[str, Any] = field(default_factory=dict)
    host: str = ""
    redacted: list[str] = field(default_factory=list)
    job: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        """Return whether the run succeeded (the CLI exits non-zero when it did not)."""
        return self.status == "ok"

    @property
    def html_path(self) -> Path:
        """Return the path of the published HTML."""
        return Path(self.run_dir) / self.outputs["html"]

    @property
    def ipynb_path(self) -> Path:
        """Return the path of the executed notebook."""
        return Path(self.run_dir) / self.outputs["ipynb"]

    @property
    def record_path(self) -> Path:
        """Return the path of ``run.json``."""
        return Path(self.run_dir) / self.outputs.get("record", RECORD_NAME)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (the content of ``run.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Return a record from a ``run.json`` dict; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Return the record stored in a ``run.json`` file (or in a run folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / RECORD_NAME
        record = cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        # The folder may have moved since the run; trust where the file is now.
        record.run_dir = str(path.parent.resolve())
        return record

    def summary(self) -> str:
        """Return a few readable lines: what ran, how it ended, where the report is."""
        head = f"{self.notebook} {self.run_id}: {self.status} in {self.duration_s:.1f} s"
        lines = [head]
        if self.reason:
            lines.append(f"  reason:     {self.reason}")
        params = json.dumps(self.parameters, sort_keys=True, default=str)
        lines += [
            f"  parameters: {params}",
            f"  data:       {self.data_fingerprint}",
            f"  html:       {self.html_path}",
            f"  notebook:   {self.ipynb_path}",
        ]
        return "\n".join(lines)


# -- request checks ------------------------------------------------------------------


def looks_like_secret(name: str) -> bool:
    """Return whether a parameter or environment variable name looks like a secret.

    Examples
    --------
    >>> looks_like_secret("POLYGON_API_KEY"), looks_like_secret("symbol")
    (True, False)
    """
    return _SECRET_NAME.search(name) is not None


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Return ``None`` if every parameter name is usable; raise otherwise.

    Raises
    ------
    SecretParameterError
        A name looks like a secret (see :func:`looks_like_secret`).
    ValueError
        A name is not a Python identifier (papermill injects ``name = value``).
    """
    secret = sorted(name for name in parameters if looks_like_secret(str(name)))
    if secret:
        raise SecretParameterError(
            f"parameter name(s) {', '.join(map(repr, secret))} look like secrets; papermill "
            "would write their values into the executed notebook and the report. Pass "
            "secrets through an environment variable instead (set it in the environment "
            "or with run_report(env=...)) and read it in the notebook with os.environ."
        )
    bad = sorted(str(name) for name in parameters if not str(name).isidentifier())
    if bad:
        raise ValueError(f"parameter names must be Python identifiers, got {bad}")


def _check_declared(nb_path: Path, parameters: Mapping[str, Any]) -> None:
    # A misspelt `-p symbl SPX` would otherwise run silently with the default symbol.
    import papermill

    declared = set(papermill.inspect_notebook(str(nb_path)))
    if not declared:
        return  # no (parseable) parameters cell: papermill injects at the top
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise ValueError(
            f"{nb_path.name} does not declare parameter(s) {unknown}; "
            f"it takes: {', '.join(sorted(declared))}"
        )


# -- locating notebooks --------------------------------------------------------------


def resolve_notebook(notebook: str | Path) -> Path:
    """Return the absolute path of a notebook given as a path or as a name.

    A name (``"regime_report"``, ``"dashboards/live"``, with or without ``.ipynb``) is
    looked up under ``notebooks/`` of the project root (the nearest parent of the
    working directory holding a ``pyproject.toml``), then of quantdesk's own checkout.

    Raises
    ------
    FileNotFoundError
        Nothing matches; the message lists the notebooks that exist.

    Examples
    --------
    >>> resolve_notebook("strategy_tearsheet").name  # doctest: +SKIP
    'strategy_tearsheet.ipynb'
    """
    path = Path(notebook).expanduser()
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    relative = path if path.suffix == ".ipynb" else path.with_name(path.name + ".ipynb")
    roots = [r for r in (find_project_root(), package_checkout("notebooks")) if r is not None]
    folders = list(dict.fromkeys(r / "notebooks" for r in roots))
    for folder in folders:
        candidate = folder / relative
        if candidate.is_file():
            return candidate.resolve()
    known = sorted(
        str(p.relative_to(f).with_suffix(""))
        for f in folders
        if f.is_dir()
        for p in f.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )
    where = ", ".join(str(f) for f in folders) or "(no project root found)"
    raise FileNotFoundError(
        f"no notebook {str(notebook)!r}: not a file, and not found under {where}; "
        f"available: {', '.join(known) or 'none'}"
    )


# -- the papermill engine ------------------------------------------------------------


def _register_engine() -> str:
    """Return the engine name after registering it with papermill (once per process)."""
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillException

    with _ENGINE_LOCK:
        try:
            papermill_engines.get_engine(ENGINE_NAME)
            return ENGINE_NAME
        except PapermillException:
            pass  # not registered yet in this process
        from papermill.clientwrap import PapermillNotebookClient
        from papermill.engines import NBClientEngine
        from papermill.utils import merge_kwargs, remove_args

        class KernelLaunchEngine(NBClientEngine):  # type: ignore[misc]
            """papermill's nbclient engine, launching the kernel with an env and a cwd."""

            @classmethod
            def execute_managed_notebook(
                cls,
                nb_man: Any,
                kernel_name: str,
                log_output: bool = False,
                stdout_file: Any = None,
                stderr_file: Any = None,
                start_timeout: int = 60,
                execution_timeout: float | None = None,
                kernel_env: Mapping[str, str] | None = None,
                kernel_cwd: str | None = None,
                **kwargs: Any,
            ) -> Any:
                # Same argument handling as NBClientEngine; the only change is that the
                # launch arguments reach KernelManager.start_kernel (env=, cwd=).
                kwargs = remove_args(["input_path"], **kwargs)
                safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
                final_kwargs = merge_kwargs(
                    safe_kwargs,
                    timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                    startup_timeout=start_timeout,
                    kernel_name=kernel_name,
                    log=logging.getLogger("papermill"),
                    log_output=log_output,
                    stdout_file=stdout_file,
                    stderr_file=stderr_file,
                )
                launch: dict[str, Any] = {}
                if kernel_env is not None:
                    launch["env"] = dict(kernel_env)
                if kernel_cwd is not None:
                    launch["cwd"] = kernel_cwd
                return PapermillNotebookClient(nb_man, **final_kwargs).execute(**launch)

        papermill_engines.register(ENGINE_NAME, KernelLaunchEngine)
    return ENGINE_NAME


# -- provenance ----------------------------------------------------------------------


def store_fingerprint(path: str | Path | None = None) -> tuple[str, dict[str, Any]]:
    """Return ``(fingerprint, summary)`` of the market store a report reads.

    The fingerprint is a 16-hex hash of the ingest log (count, last id, last time),
    the bar and tick counts, the last bar time and the regime rows: it changes with
    every ingest or regime write, and two runs with the same fingerprint saw the same
    data.  It is ``"no store"`` when the store file does not exist and
    ``"unavailable"`` when it cannot be read (the summary then says why); neither
    stops a report.

    Parameters
    ----------
    path
        The store file (default ``settings().store_path``, as the kernel resolves it).
    """
    from quantdesk.data import MarketStore

    path = Path(path) if path is not None else settings().store_path
    try:
        # A short lock timeout: a fingerprint is not worth holding up a report.
        store = MarketStore(path, read_only=True, lock_timeout=5)
    except FileNotFoundError:
        return "no store", {"store": str(path)}
    try:
        row = store.sql(
            "SELECT (SELECT count(*) FROM ingest_log) AS ingests, "
            "(SELECT max(ingest_id) FROM ingest_log) AS last_ingest_id, "
            "(SELECT max(finished_at) FROM ingest_log) AS last_ingest_at, "
            "(SELECT count(*) FROM bars) AS bars, "
            "(SELECT max(ts) FROM bars) AS last_bar, "
            "(SELECT count(*) FROM ticks) AS ticks"
        ).iloc[0]
        summary: dict[str, Any] = {"store": str(path)}
        for name, value in row.items():
            summary[str(name)] = _plain(value)
        try:
            # Regime writes do not go through the ingest log; stores older than the
            # regimes table simply have none.
            regimes = store.sql("SELECT count(*) AS n, max(written_at) AS last FROM regimes").iloc[
                0
            ]
            summary["regimes"] = _plain(regimes["n"])
            summary["last_regime_write"] = _plain(regimes["last"])
        except Exception:
            summary["regimes"] = None
    except Exception as exc:  # a locked or damaged store must not stop a report
        logger.warning("could not fingerprint the market store %s: %s", path, exc)
        return "unavailable", {"store": str(path), "error": f"{type(exc).__name__}: {exc}"}
    payload = json.dumps({k: v for k, v in summary.items() if k != "store"}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16], summary


def _plain(value: Any) -> Any:
    """Return a JSON-ready scalar (ints stay ints, timestamps become ISO strings)."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


# -- secrets -------------------------------------------------------------------------


def _secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Return ``{name: value}`` of environment variables that look like secrets."""
    return {
        name: value
        for name, value in environ.items()
        if looks_like_secret(name) and len(value) >= _MIN_SECRET_LENGTH
    }


def _redact(text: str, secrets: Mapping[str, str], where: str, found: set[str]) -> str:
    """Return ``text`` with every secret value replaced by ``***``; names go into ``found``."""
    for name, value in secrets.items():
        # The value may sit in a file raw or as a Python repr (an execute_result), and
        # either of those JSON-escaped (ipynb, run.json) or HTML-escaped (the HTML).
        forms = (value, repr(value)[1:-1])
        spellings = {
            encode(form)
            for form in forms
            for encode in (
                str,
                lambda t: json.dumps(t)[1:-1],
                lambda t: json.dumps(t, ensure_ascii=False)[1:-1],
                html.escape,
                lambda t: html.escape(t, quote=False),
            )
        }
        hit = False
        for spelling in sorted(spellings, key=len, reverse=True):
            if spelling in text:
                text = text.replace(spelling, _REDACTED)
                hit = True
        if hit:
            found.add(name)
            logger.warning(
                "the value of the secret environment variable %s appeared in the %s; "
                "it was replaced by %r",
                name,
                where,
                _REDACTED,
            )
    return text


# -- running -------------------------------------------------------------------------


def _kernel_data_env(extra_env: Mapping[str, str], kernel_cwd: Path) -> tuple[dict[str, str], Path]:
    """Return ``(variables to pin for the kernel, the store path the kernel will read)``.

    The defaults of ``QUANTDESK_HOME`` and ``QUANTDESK_STORE`` are relative to the
    working directory, so a kernel started in another ``cwd`` would read another store
    than the one this run fingerprints.  Unless ``env`` sets them, both are pinned to
    this process's absolute settings.
    """
    cfg = settings()
    pinned: dict[str, str] = {}
    if "QUANTDESK_HOME" not in extra_env:
        pinned["QUANTDESK_HOME"] = str(cfg.home.absolute())
    if "QUANTDESK_STORE" in extra_env:
        store = Path(extra_env["QUANTDESK_STORE"]).expanduser()
    elif "QUANTDESK_HOME" in extra_env and "QUANTDESK_STORE" not in os.environ:
        # The kernel derives the store from the home it is given, as settings() does.
        store = Path(extra_env["QUANTDESK_HOME"]).expanduser() / cfg.store_path.name
    else:
        store = cfg.store_path.absolute()
        pinned["QUANTDESK_STORE"] = str(store)
    return pinned, store if store.is_absolute() else kernel_cwd / store


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
        An undeclared parameter, a bad ``run_id``, ``timeout`` or ``env``.
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
    _check_declared(nb_path, params)
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
    data_env, store_path = _kernel_data_env(extra_env, kernel_cwd)
    kernel_env = {**os.environ, **data_env, **extra_env}
    secrets = _secret_values(kernel_env)

    root = Path(reports_dir) if reports_dir is not None else settings().reports_dir
    stem = nb_path.stem
    started = _now()
    run_dir, run_id = _make_run_dir(
        root / stem, run_id or _default_run_id(params, started), explicit=run_id is not None
    )
    names = {"ipynb": f"{stem}.ipynb", "html": f"{stem}.html", "record": RECORD_NAME}
    found: set[str] = set()  # names of the variables whose values were redacted
    shown = _redact(json.dumps(params), secrets, "parameters", found)
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
                engine_name=_register_engine(),
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
            reason = _redact(reason, secrets, "failure reason", found)
            error["evalue"] = _redact(str(error["evalue"]), secrets, "error message", found)
        ipynb_path = run_dir / names["ipynb"]
        atomic_write_text(
            ipynb_path, _redact(nbformat.writes(executed), secrets, "executed notebook", found)
        )
        # Rendered in the private folder too, so only the redacted page is published.
        html_path = run_dir / names["html"]
        staged_html = Path(staging) / names["html"]
        banner = None if reason is None else f"Run failed: {reason}"
        try:
            render_html(ipynb_path, staged_html, banner=banner, title=f"{stem} · {run_id}")
            page = staged_html.read_text(encoding="utf-8")
        except Exception as exc:  # a report without its HTML is a failed report
            logger.exception("rendering %s failed", ipynb_path)
            if reason is None:
                reason = f"publishing failed: {type(exc).__name__}: {exc}"
                error = {"ename": type(exc).__name__, "evalue": str(exc), "cell_index": None}
            page = _fallback_html(stem, run_id, f"Run failed: {reason}")
        atomic_write_text(html_path, _redact(page, secrets, "HTML report", found))

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
    )
    text = _redact(json.dumps(record.to_dict(), indent=2), secrets, "run record", found)
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


def _fallback_html(stem: str, run_id: str, banner: str) -> str:
    title = html.escape(f"{stem} · {run_id}")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body>{banner_html(banner)}<h1>{title}</h1></body></html>\n"
    )
