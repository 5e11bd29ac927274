"""The schedule written for the system's own timers: crontab lines and systemd units.

``quantdesk schedule crontab`` and ``quantdesk schedule systemd`` print, for cron or
systemd, the same schedule the long-running :class:`~quantdesk.reports.scheduler.Scheduler`
keeps: every catalog job at its times, and the evening pipeline's entry
(:func:`~quantdesk.reports.scheduler.pipeline_entry`).  Cron and systemd start jobs
outside the project's environment, so each line carries the variables it needs
(:func:`cron_environment`).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from quantdesk.reports.catalog import Catalog, Job
from quantdesk.reports.scheduler import pipeline_entry

__all__ = ["cron_environment", "crontab_lines", "systemd_units"]

logger = logging.getLogger(__name__)


def _cron_escape(command: str) -> str:
    # In a crontab line an unescaped % ends the command (it becomes stdin).
    return command.replace("%", r"\%")


# Settings whose value is a path: a relative one is made absolute, because cron runs the
# command from the project root, not from the directory of the shell that printed it.
_PATH_VARIABLES = frozenset(
    {
        "QUANTDESK_HOME",
        "QUANTDESK_STORE",
        "QUANTDESK_REPORTS",
        "QUANTDESK_MODELS",
        "QUANTDESK_CATALOG",
        "NUMBA_CACHE_DIR",
    }
)


# Carried besides the QUANTDESK_* settings: the compiled-kernel cache, so that cron's runs
# reuse the kernels the shell's runs compiled.
_CARRIED_VARIABLES = frozenset({"NUMBA_CACHE_DIR"})


def cron_environment(
    catalog: Catalog,
    environ: Mapping[str, str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Return ``(variables, secret_names)``: the settings a cron line must carry.

    Cron starts jobs with an almost empty environment in the user's home directory, so
    a job would read another store than the shell that scheduled it.  The variables are
    every ``QUANTDESK_*`` variable of ``environ`` and ``NUMBA_CACHE_DIR`` when set, with
    relative paths made absolute against ``cwd``; ``QUANTDESK_HOME`` and
    ``QUANTDESK_REPORTS`` are set to what the store rule gives this shell when unset
    (cron starts outside any project); ``QUANTDESK_CATALOG`` is the catalog's path
    unless it is the project's default.  Names that look like secrets
    (:func:`quantdesk.reports.redaction.looks_like_secret`) are never carried: they are
    returned in ``secret_names`` so the caller can say what was left out.

    Parameters
    ----------
    catalog
        The catalog the lines run.
    environ
        The environment to read (default ``os.environ``).
    cwd
        Directory relative paths are taken from (default the current one).

    Raises
    ------
    ValueError
        A value holds a line break or a NUL, which a crontab line cannot carry.
    """
    from quantdesk.config import Settings, environment
    from quantdesk.reports.redaction import looks_like_secret

    env = environment() if environ is None else environ
    base = Path(cwd) if cwd is not None else Path.cwd()
    wanted = sorted(k for k in env if k.startswith("QUANTDESK_") or k in _CARRIED_VARIABLES)
    secrets = [k for k in wanted if looks_like_secret(k)]
    variables = {k: env[k] for k in wanted if k not in secrets}
    # Cron starts in the user's home, outside any project: carry what the store rule
    # gives this shell, explicitly.
    chosen = Settings.from_env(env, cwd=base)
    variables.setdefault("QUANTDESK_HOME", str(chosen.home))
    variables.setdefault("QUANTDESK_REPORTS", str(chosen.reports_dir))
    variables.pop("QUANTDESK_CATALOG", None)
    if catalog.path != (catalog.root / "research" / "reports.yaml").resolve():
        variables["QUANTDESK_CATALOG"] = str(catalog.path)
    for name, value in variables.items():
        if any(c in value for c in "\n\r\0"):
            raise ValueError(f"{name} holds a line break or NUL; a crontab line cannot carry it")
        if name in _PATH_VARIABLES and "://" not in value:
            path = Path(value).expanduser()
            variables[name] = str(path if path.is_absolute() else (base / path).absolute())
    return dict(sorted(variables.items())), secrets


def _quantdesk_command(command: str | None, python: str | None) -> str:
    if python is not None:
        return f"{shlex.quote(python)} -m quantdesk"
    if command is not None:
        return command
    beside = Path(sys.executable).parent / "quantdesk"
    return shlex.quote(str(beside)) if beside.exists() else "quantdesk"


def _pipeline_arguments(catalog: Catalog) -> str:
    default = (catalog.root / "research" / "reports.yaml").resolve()
    extra = "" if catalog.path == default else f" --catalog {shlex.quote(str(catalog.path))}"
    return f"pipeline run{extra}"


def systemd_units(
    catalog: Catalog,
    *,
    command: str | None = None,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return ``{file name: text}`` of a systemd service and timer for the evening pipeline.

    The service runs ``quantdesk pipeline run`` from the project root with the settings
    :func:`cron_environment` carries (never a secret: put those in an
    ``EnvironmentFile=`` yourself); the timer fires it at :func:`pipeline_entry`'s time,
    ``Persistent=true`` so a machine that was off runs it at boot (the run catches up
    the missed sessions).  Install as user units: copy both to
    ``~/.config/systemd/user/`` and ``systemctl --user enable --now quantdesk-pipeline.timer``.

    Raises
    ------
    ValueError
        The catalog has no ``pipeline:`` section.
    """
    entry = pipeline_entry(catalog)
    if entry is None:
        raise ValueError(f"{catalog.path}: no pipeline: section to schedule")
    variables, secrets = cron_environment(catalog, environ)
    cmd = _quantdesk_command(command, python)
    env_lines = [f'Environment="{k}={v}"' for k, v in variables.items()]
    left_out = (
        [f"# left out, their names look like secrets: {', '.join(secrets)}"] if secrets else []
    )
    service = [
        "[Unit]",
        f"Description=quantdesk {entry.pipeline} pipeline ({entry.exchange} sessions)",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={catalog.root}",
        *left_out,
        *env_lines,
        f"ExecStart=/bin/sh -c {shlex.quote(f'{cmd} {_pipeline_arguments(catalog)}')}",
    ]
    timer = [
        "[Unit]",
        f"Description=quantdesk {entry.pipeline} pipeline after the {entry.exchange} close",
        "",
        "[Timer]",
        f"OnCalendar={entry.on_calendar}",
        "Persistent=true",
        "Unit=quantdesk-pipeline.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return {
        "quantdesk-pipeline.service": "\n".join(service) + "\n",
        "quantdesk-pipeline.timer": "\n".join(timer) + "\n",
    }


def crontab_lines(
    catalog: Catalog,
    *,
    command: str | None = None,
    python: str | None = None,
    log: str | None = None,
    jobs: Iterable[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Return crontab lines equivalent to the catalog's schedules.

    Parameters
    ----------
    catalog
        The jobs; those without a schedule are left out.
    command
        The ``quantdesk`` command to call (default: the one installed beside this
        Python, else ``quantdesk`` on the ``PATH``).
    python
        Call ``PYTHON -m quantdesk`` instead of ``command``.
    log
        Where each run's output is appended (a relative path is taken from the project
        root); default ``cron.log`` in the reports directory of the settings the lines
        carry (``QUANTDESK_REPORTS``, else this shell's ``./reports``), never the
        checkout's own ``reports/`` unless that is the reports directory.  The line
        creates the log's directory first.
    jobs
        Only these jobs (default all scheduled jobs).
    environ
        The environment whose settings every line carries (default ``os.environ``; see
        :func:`cron_environment`).

    Returns
    -------
    list of str
        Header comments (the catalog; which variables the lines carry and which were left
        out because their names look like secrets), then per timezone a ``CRON_TZ=`` line
        followed by one line per job: ``15 17 * * 1-5 cd /path && mkdir -p /srv/reports &&
        QUANTDESK_HOME=/path/data ... quantdesk report batch daily >> /srv/reports/cron.log
        2>&1``, every value shell-quoted.  ``CRON_TZ`` is honoured by cronie (Fedora, RHEL,
        Arch) and systemd-cron; crons that ignore it read the times in the system timezone.
    """
    cmd = _quantdesk_command(command, python)
    root = shlex.quote(str(catalog.root))
    variables, secrets = cron_environment(catalog, environ)
    env = "".join(f"{name}={shlex.quote(value)} " for name, value in variables.items())
    log_file = Path(variables["QUANTDESK_REPORTS"]) / "cron.log" if log is None else Path(log)
    mkdir = f"mkdir -p {shlex.quote(str(log_file.parent))} && " if log_file.parent.name else ""
    wanted = None if jobs is None else set(jobs)
    by_zone: dict[str, list[Job]] = {}
    for job in catalog.scheduled():
        if wanted is None or job.name in wanted:
            by_zone.setdefault(job.timezone, []).append(job)
    lines = [
        f"# quantdesk report jobs from {catalog.path} (quantdesk schedule crontab)",
        f"# settings of the shell that printed these lines: {', '.join(variables)}",
    ]
    if secrets:
        lines.append(f"# left out, their names look like secrets: {', '.join(secrets)}")
    for zone, zone_jobs in by_zone.items():
        lines.append(f"CRON_TZ={zone}")
        for job in zone_jobs:
            if job.description:
                lines.append(f"# {job.name}: {' '.join(job.description.split())}")
            run = f"{env}{cmd} report batch {shlex.quote(job.name)}"
            target = shlex.quote(str(log_file))
            lines.append(_cron_escape(f"{job.schedule} cd {root} && {mkdir}{run} >> {target} 2>&1"))
    entry = pipeline_entry(catalog) if jobs is None else None
    if entry is not None:
        lines.append(f"CRON_TZ={entry.timezone}")
        lines.append(f"# the {entry.pipeline} pipeline: every step of each {entry.exchange} "
                     "session due, in order (quantdesk pipeline status)")  # fmt: skip
        run = f"{env}{cmd} {_pipeline_arguments(catalog)}"
        target = shlex.quote(str(log_file))
        lines.append(_cron_escape(f"{entry.schedule} cd {root} && {mkdir}{run} >> {target} 2>&1"))
    return lines
