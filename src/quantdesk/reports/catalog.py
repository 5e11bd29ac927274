"""The report catalog: named jobs of parameterised notebooks, their grids and schedules.

The catalog is one YAML file, ``research/reports.yaml`` at the project root by default;
the ``QUANTDESK_CATALOG`` environment variable names another file.  Its layout::

    jobs:
      daily:                              # the job's name: `quantdesk report batch daily`
        description: After-the-close reports
        schedule: "15 17 * * 1-5"         # cron: minute hour day-of-month month day-of-week
        timezone: America/New_York        # IANA name; required with a schedule
        timeout: 900                      # seconds per cell (default 600)
        retries: 1                        # extra attempts for a failed run (default 0)
        scheduler: tcp://10.0.0.5:8786    # optional Dask scheduler; default a local pool
        notebook: regime_report           # a name in notebooks/ or a path to an .ipynb
        parameters: {start: "2015-01-01"} # fixed parameters of every run
        grid: {symbol: [SPX, IXIC]}       # one run per combination, merged over parameters

A job that runs several notebooks lists them under ``reports`` instead, each entry with
its own ``notebook``, ``parameters`` and ``grid``; the job's schedule, timeout and
retries apply to all of them.  A job without a ``schedule`` runs only on demand.

Loading checks every field and names the file, the job and the field of a problem:
a bad cron expression, an unknown timezone, a grid value that is not a list, a
notebook that does not exist, a parameter the notebook does not declare in its
``parameters`` cell, and a parameter name that looks like a secret (the runner's own
rule: secrets travel through the environment, never as parameters).  A relative
``.ipynb`` path is read from the project root (the folder holding ``research/``).
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import os
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from quantdesk.config import settings
from quantdesk.core.paths import find_project_root, package_checkout

__all__ = [
    "Catalog",
    "CatalogError",
    "Job",
    "Report",
    "RunSpec",
    "default_catalog_path",
    "load_catalog",
]

logger = logging.getLogger(__name__)

CATALOG_ENV = "QUANTDESK_CATALOG"
_CATALOG_FILE = "research/reports.yaml"
DEFAULT_TIMEOUT = 600.0
# Cron's own five fields only: croniter also takes seconds and years, which crontab
# lines (see quantdesk.reports.timers.crontab_lines) could not express.
CRON_FIELDS = 5
# A scheduler that was down for months must not enumerate millions of minutely times.
MAX_DUE_TIMES = 10_000

_JOB_FIELDS = frozenset(
    {
        "notebook",
        "parameters",
        "grid",
        "reports",
        "schedule",
        "timezone",
        "timeout",
        "retries",
        "scheduler",
        "description",
    }
)
_REPORT_FIELDS = frozenset({"notebook", "parameters", "grid"})
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message names the file, job and field."""

    def __init__(
        self, path: Path | str, message: str, *, job: str | None = None, field: str | None = None
    ) -> None:
        self.path = Path(path)
        self.job = job
        self.field = field
        where = str(path)
        if job is not None:
            where += f": job {job!r}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")


def _looks_secret(name: str) -> bool:
    """Return True when a parameter name looks like a secret, by the runner's own rule."""
    from quantdesk.reports.redaction import looks_like_secret

    return looks_like_secret(name)


def _root_of(catalog_file: Path) -> Path:
    """Return the project root of a catalog file: the folder holding ``research/``."""
    folder = catalog_file.resolve().parent
    return folder.parent if folder.name == "research" else folder


def _declared_parameters(path: Path) -> set[str] | None:
    """Return the names the notebook's ``parameters`` cell assigns (``None``: no such cell).

    Read with :mod:`ast` rather than papermill, whose import alone takes over a second,
    to keep loading the catalog quick.
    """
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.get("source", "")
        try:
            tree = ast.parse("".join(source) if isinstance(source, list) else source)
        except SyntaxError:
            return None  # magics or odd syntax: leave the check to the runner
        names: set[str] = set()
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        return names
    return None


def _locate_notebook(notebook: str, root: Path, check: bool) -> tuple[str, Path | None]:
    """Return the notebook as the runs will name it, and its file when ``check``.

    A relative ``.ipynb`` path is taken from the project root (the folder holding
    ``research/``) and made absolute, so that the catalog means the same whatever the
    working directory.  A name is looked up in that root's ``notebooks/`` first, then
    the way the runner looks it up.
    """
    path = Path(notebook).expanduser()
    if path.suffix == ".ipynb":
        path = path if path.is_absolute() else root / path
        if check and not path.is_file():
            raise FileNotFoundError(f"no notebook file {path}")
        return str(path), path
    local = root / "notebooks" / f"{notebook}.ipynb"
    if local.is_file():
        from quantdesk.reports.notebooks import resolve_notebook

        try:
            same = resolve_notebook(notebook) == local.resolve()
        except FileNotFoundError:
            same = False
        # Keep the plain name when the runner finds the same file: runs read better.
        return (notebook if same else str(local.resolve())), local
    if not check:
        return notebook, None
    from quantdesk.reports.notebooks import resolve_notebook

    return notebook, resolve_notebook(notebook)


def default_catalog_path() -> Path:
    """Return the catalog file: ``$QUANTDESK_CATALOG`` or ``research/reports.yaml``.

    Returns
    -------
    Path
        ``$QUANTDESK_CATALOG`` when set, else ``research/reports.yaml`` in the nearest
        folder up from the current directory that has one (the project root).
    """
    chosen = settings().catalog_path
    if chosen is not None:
        return chosen
    root = (
        find_project_root(marker=_CATALOG_FILE)
        or package_checkout(_CATALOG_FILE)
        or Path.cwd().resolve()
    )
    return root / _CATALOG_FILE


@dataclass(frozen=True)
class RunSpec:
    """One run of a job: a notebook with one parameter set, and how to run it.

    Attributes
    ----------
    job
        Name of the job the run belongs to (empty for an ad-hoc run).
    notebook
        Notebook name (resolved in ``notebooks/``) or path to an ``.ipynb``.
    parameters
        Parameters papermill injects into the notebook.
    timeout
        Seconds a cell may run before the run is recorded as failed.
    retries
        Extra attempts after a failed one.
    """

    job: str
    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 0

    @property
    def label(self) -> str:
        """Return a short ``notebook(name=value, ...)`` label for tables and logs."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        return f"{Path(self.notebook).stem}({args})"


@dataclass(frozen=True)
class Report:
    """One notebook of a job with its fixed parameters and its grid."""

    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict, hash=False)

    def parameter_sets(self) -> list[dict[str, Any]]:
        """Return the grid's cartesian product, each merged over the fixed parameters."""
        if not self.grid:
            return [dict(self.parameters)]
        keys = list(self.grid)
        return [
            {**self.parameters, **dict(zip(keys, combo, strict=True))}
            for combo in itertools.product(*(self.grid[k] for k in keys))
        ]


@dataclass(frozen=True)
class Job:
    """A named catalog job: notebooks, parameter grids, schedule, timeout and retries.

    Build jobs with :meth:`Catalog.load`; the constructor does not validate.
    """

    name: str
    reports: tuple[Report, ...]
    schedule: str | None = None
    timezone: str = "UTC"
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 0
    scheduler: str | None = None
    description: str = ""

    @property
    def notebook(self) -> str:
        """Return the job's notebook; a job of several notebooks returns the first."""
        return self.reports[0].notebook

    @property
    def notebooks(self) -> list[str]:
        """Return every notebook the job runs, in catalog order."""
        return [r.notebook for r in self.reports]

    @property
    def tz(self) -> ZoneInfo:
        """Return the job's timezone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)

    def runs(self) -> list[RunSpec]:
        """Return every run of the job: one per notebook and grid combination.

        Returns
        -------
        list of RunSpec
            In catalog order; each carries its notebook, merged parameters, timeout
            and retries.  ``[r.parameters for r in job.runs()]`` are the parameter sets.

        Examples
        --------
        >>> job = Job("j", (Report("nb", {"start": "2020"}, {"symbol": ("A", "B")}),))
        >>> [dict(r.parameters) for r in job.runs()]
        [{'start': '2020', 'symbol': 'A'}, {'start': '2020', 'symbol': 'B'}]
        """
        return [
            RunSpec(self.name, report.notebook, params, self.timeout, self.retries)
            for report in self.reports
            for params in report.parameter_sets()
        ]

    def next_run(self, after: datetime) -> datetime:
        """Return the first scheduled time strictly after ``after``, in the job's timezone.

        Parameters
        ----------
        after
            A timezone-aware instant.

        Returns
        -------
        datetime
            Timezone-aware, in the job's timezone; the cron fields are read as wall-clock
            times there, so ``15 17 * * 1-5`` in America/New_York is 21:15 UTC in summer
            and 22:15 UTC in winter.

        Raises
        ------
        ValueError
            If the job has no schedule or ``after`` is naive.
        """
        from croniter import croniter

        if self.schedule is None:
            raise ValueError(f"job {self.name!r} has no schedule")
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("after must be timezone-aware")
        tz = self.tz
        nxt: datetime = croniter(self.schedule, after.astimezone(tz)).get_next(datetime)
        # croniter keeps the zone it was given; normalise in case a DST gap shifted it.
        return nxt.astimezone(tz)

    def due_times(self, after: datetime, until: datetime) -> list[datetime]:
        """Return the scheduled times in ``(after, until]``, oldest first.

        Parameters
        ----------
        after, until
            Timezone-aware instants bounding the window (``after`` excluded).

        Returns
        -------
        list of datetime
            The newest ``MAX_DUE_TIMES`` at most, in the job's timezone.
        """
        # A deque keeps the newest times only: after months of downtime a minutely job
        # must not hold millions of datetimes just to report how many were missed.
        times: deque[datetime] = deque(maxlen=MAX_DUE_TIMES)
        t = after
        while (t := self.next_run(t)) <= until:
            times.append(t)
        return list(times)


@dataclass(frozen=True)
class Catalog:
    """A loaded report catalog: jobs by name and the file they came from."""

    path: Path
    jobs: Mapping[str, Job] = field(hash=False)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, *, check_notebooks: bool = True
    ) -> Catalog:
        """Return the catalog read from ``path`` and validated.

        Parameters
        ----------
        path
            The YAML file; default :func:`default_catalog_path`.
        check_notebooks
            Also check that every notebook exists and declares every parameter the
            job gives it (a misspelt grid key would otherwise fail every run later).

        Returns
        -------
        Catalog

        Raises
        ------
        CatalogError
            Naming the file, job and field of the first problem found.
        FileNotFoundError
            If the file does not exist.
        """
        import yaml

        file = Path(path) if path is not None else default_catalog_path()
        if not file.is_file():
            raise FileNotFoundError(
                f"report catalog {file} not found "
                f"(set {CATALOG_ENV} or create research/reports.yaml)"
            )
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CatalogError(file, f"not valid YAML: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise CatalogError(file, "the top level must be a mapping with a 'jobs' key")
        # ``pipeline:`` is the evening pipeline's definition (quantdesk.pipeline.definition).
        unknown = sorted(set(data) - {"jobs", "pipeline"})
        if unknown:
            raise CatalogError(
                file, f"unknown top-level keys {unknown}; expected 'jobs' (and 'pipeline')"
            )
        raw_jobs = data.get("jobs") or {}
        if not isinstance(raw_jobs, dict):
            raise CatalogError(file, "'jobs' must be a mapping of job name to job")
        root = _root_of(file)
        jobs = {
            str(name): _parse_job(file, str(name), spec, root, check_notebooks)
            for name, spec in raw_jobs.items()
        }
        logger.debug("loaded %d jobs from %s", len(jobs), file)
        return cls(file.resolve(), jobs)

    @property
    def root(self) -> Path:
        """Return the project root: the folder holding ``research/`` (else the file's)."""
        return _root_of(self.path)

    def job(self, name: str) -> Job:
        """Return the job called ``name``; a ``KeyError`` lists the known names."""
        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise KeyError(f"no job {name!r} in {self.path} (jobs: {known})") from None

    def scheduled(self) -> list[Job]:
        """Return the jobs that have a schedule, in catalog order."""
        return [j for j in self.jobs.values() if j.schedule is not None]

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs.values())

    def __len__(self) -> int:
        return len(self.jobs)


def load_catalog(
    path: str | os.PathLike[str] | None = None, *, check_notebooks: bool = True
) -> Catalog:
    """Return :meth:`Catalog.load` of ``path`` (default :func:`default_catalog_path`)."""
    return Catalog.load(path, check_notebooks=check_notebooks)


def _parse_job(file: Path, name: str, spec: Any, root: Path, check: bool) -> Job:
    def fail(message: str, fld: str | None = None) -> CatalogError:
        return CatalogError(file, message, job=name, field=fld)

    if not _JOB_NAME.match(name):
        raise fail("a job name is letters, digits, '_', '-' or '.', starting with a letter/digit")
    if not isinstance(spec, dict):
        raise fail("a job must be a mapping of fields")
    unknown = sorted(set(spec) - _JOB_FIELDS)
    if unknown:
        raise fail(f"unknown field; expected one of {sorted(_JOB_FIELDS)}", unknown[0])

    if "reports" in spec:
        clash = sorted(set(spec) & _REPORT_FIELDS)
        if clash:
            raise fail("give either 'reports' or notebook/parameters/grid, not both", clash[0])
        entries = spec["reports"]
        if not isinstance(entries, list) or not entries:
            raise fail("must be a non-empty list of {notebook, parameters, grid}", "reports")
        reports = tuple(
            _parse_report(entry, f"reports[{i}]", fail, root, check)
            for i, entry in enumerate(entries)
        )
    elif "notebook" in spec:
        fields = {k: spec[k] for k in _REPORT_FIELDS if k in spec}
        reports = (_parse_report(fields, "", fail, root, check),)
    else:
        raise fail("a job needs a notebook (or a list of reports)", "notebook")

    schedule = spec.get("schedule")
    timezone = spec.get("timezone")
    if schedule is not None:
        schedule = _parse_schedule(schedule, fail)
        if timezone is None:
            # A cron time means nothing without its zone; UTC by accident is a classic bug.
            raise fail("a scheduled job needs a timezone (IANA, e.g. America/New_York)", "timezone")
    if timezone is not None:
        if not isinstance(timezone, str):
            raise fail(f"must be an IANA timezone name, got {timezone!r}", "timezone")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(f"unknown timezone {timezone!r}", "timezone") from None

    timeout = spec.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise fail(f"must be a positive number of seconds, got {timeout!r}", "timeout")
    retries = spec.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise fail(f"must be a whole number >= 0, got {retries!r}", "retries")
    scheduler = spec.get("scheduler")
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise fail(
            f"must be a Dask address such as tcp://host:8786, got {scheduler!r}", "scheduler"
        )
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise fail("must be text", "description")

    return Job(
        name=name,
        reports=reports,
        schedule=schedule,
        timezone=timezone or "UTC",
        timeout=float(timeout),
        retries=retries,
        scheduler=scheduler,
        description=description.strip(),
    )


def _parse_schedule(schedule: Any, fail: Any) -> str:
    from croniter import croniter

    if not isinstance(schedule, str):
        raise fail(f"must be a cron expression in quotes, got {schedule!r}", "schedule")
    expr = " ".join(schedule.split())
    if len(expr.split()) != CRON_FIELDS or not croniter.is_valid(expr):
        raise fail(
            f"bad cron expression {schedule!r}: expected 5 fields "
            "'minute hour day-of-month month day-of-week', e.g. '15 17 * * 1-5'",
            "schedule",
        )
    return expr


def _parse_report(entry: Any, prefix: str, fail: Any, root: Path, check: bool) -> Report:
    def name(fld: str) -> str:
        return f"{prefix}.{fld}" if prefix else fld

    if not isinstance(entry, dict):
        raise fail("must be a mapping with notebook, parameters, grid", prefix or None)
    unknown = sorted(set(entry) - _REPORT_FIELDS)
    if unknown:
        raise fail(f"unknown field; expected one of {sorted(_REPORT_FIELDS)}", name(unknown[0]))
    notebook = entry.get("notebook")
    if not isinstance(notebook, str) or not notebook.strip():
        raise fail("must name a notebook (e.g. regime_report) or a path", name("notebook"))
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise fail("must be a mapping of parameter name to value", name("parameters"))
    grid = entry.get("grid") or {}
    if not isinstance(grid, dict):
        raise fail("must be a mapping of parameter name to a list of values", name("grid"))
    for key in [*parameters, *grid]:
        where = name(f"{'grid' if key in grid else 'parameters'}.{key}")
        if not isinstance(key, str) or not key.isidentifier():
            raise fail(f"parameter name {key!r} is not a Python identifier", where)
        if _looks_secret(key):
            raise fail(
                f"parameter {key!r} looks like a secret; secrets come from the environment, "
                "never from parameters (they would be written into the report)",
                where,
            )
    frozen_grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid.items():
        if not isinstance(values, list):
            raise fail(f"grid values must be a list, got {values!r}", name(f"grid.{key}"))
        if not values:
            raise fail("grid list is empty: the job would have no runs", name(f"grid.{key}"))
        frozen_grid[key] = tuple(values)
    try:
        located, nb_file = _locate_notebook(notebook.strip(), root, check)
    except FileNotFoundError as exc:
        raise fail(str(exc), name("notebook")) from None
    declared = _declared_parameters(nb_file) if nb_file is not None and check else None
    if nb_file is not None and declared is not None:
        for key in [*parameters, *grid]:
            if key not in declared:
                where = name(f"{'grid' if key in grid else 'parameters'}.{key}")
                raise fail(
                    f"{nb_file.name} declares no parameter {key!r}; "
                    f"it takes: {', '.join(sorted(declared))}",
                    where,
                )
    return Report(located, dict(parameters), frozen_grid)
