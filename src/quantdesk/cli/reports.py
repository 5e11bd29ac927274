"""The ``quantdesk report`` and ``quantdesk schedule`` commands.

``report run`` executes one notebook into ``reports/``; ``report rerun`` runs a past
report again on the snapshot version it read; ``report batch`` runs a catalog
job's grid; ``report list`` shows the catalog's jobs and their last runs; ``schedule
run`` fires catalog jobs at their times; ``schedule crontab`` prints cron lines.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from quantdesk.cli.options import CatalogOption, JsonOption, SnapshotOption, echo_result, fail

__all__ = ["report_app", "schedule_app"]

report_app = typer.Typer(
    help="Run notebooks as reports and batches.", no_args_is_help=True, rich_markup_mode=None
)
schedule_app = typer.Typer(
    help="Run catalog jobs on their schedules.", no_args_is_help=True, rich_markup_mode=None
)

ReportsOption = Annotated[
    Path | None,
    typer.Option(
        "--reports-dir", help="Where reports go (default $QUANTDESK_REPORTS or ./reports)."
    ),
]


def _value(text: str) -> Any:
    """Return a -p value parsed as YAML (numbers, lists, booleans), else the text itself."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _catalog(path: Path | None) -> Any:
    from quantdesk.reports.catalog import Catalog, CatalogError

    try:
        return Catalog.load(path)
    except (CatalogError, FileNotFoundError) as exc:
        fail(str(exc))


def _parameters(args: list[str]) -> dict[str, Any]:
    """Return ``-p NAME VALUE`` pairs (papermill's convention) as a parameter dict."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        if args[i] not in ("-p", "--parameter"):
            fail(f"unexpected argument {args[i]!r}; parameters are given as -p NAME VALUE")
        if i + 2 >= len(args):
            fail(f"{args[i]} needs a name and a value: -p symbol SPX")
        out[args[i + 1]] = _value(args[i + 2])
        i += 3
    return out


@report_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def report_run(
    ctx: typer.Context,
    notebook: Annotated[str, typer.Argument(help="A notebook name under notebooks/ or a path.")],
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per cell.")] = 600.0,
    reports_dir: ReportsOption = None,
    snapshot: SnapshotOption = None,
    snapshot_version: Annotated[
        int | None,
        typer.Option("--snapshot-version", help="The snapshot version read (default: newest)."),
    ] = None,
    take_snapshot: Annotated[
        bool,
        typer.Option(
            "--take-snapshot",
            help="Publish the store to --snapshot first and read that new version.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
) -> None:
    """Execute a notebook with papermill and publish it under reports/.

    Parameters follow the notebook name as -p NAME VALUE (repeat); VALUE is read as YAML:
    21, 0.1, [SPX, IXIC], true.  Secrets are never parameters: pass them in the
    environment.  With --snapshot URL (or QUANTDESK_SNAPSHOT) the notebook reads its
    bars from that snapshot version, recorded in run.json: `quantdesk report rerun
    RUN_ID` repeats the run on the same data.
    """
    from quantdesk.data.snapshot import SnapshotError
    from quantdesk.reports.redaction import SecretParameterError
    from quantdesk.reports.runner import run_report

    parameters = _parameters(list(ctx.args))
    try:
        record = run_report(
            notebook,
            parameters,
            reports_dir=reports_dir,
            timeout=timeout,
            snapshot=snapshot,
            snapshot_version=snapshot_version,
            take_snapshot=take_snapshot,
        )
    except (SecretParameterError, OSError, ValueError, SnapshotError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(record.to_dict(), indent=2, default=str))
    else:
        typer.echo(record.summary())
        typer.echo(f"html: {record.html_path}")
        typer.echo(f"index: {Path(record.run_dir).parents[1] / 'index.html'}")
    if not record.ok:
        raise typer.Exit(1)


@report_app.command("rerun")
def report_rerun(
    run_id: Annotated[str, typer.Argument(help="The id of a past run (its folder name).")],
    reports_dir: ReportsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a past report again on the snapshot version it read; say if code or libraries differ.

    The same notebook, parameters and kernel, reading the data the original run read
    (whatever was ingested since), into a new run folder whose run.json names the
    original.  Exits non-zero when the rerun fails.
    """
    from quantdesk.data.snapshot import SnapshotError
    from quantdesk.reports.rerun import rerun_report

    try:
        rerun = rerun_report(run_id, reports_dir=reports_dir)
    except (LookupError, OSError, ValueError, SnapshotError) as exc:
        fail(str(exc))
    echo_result(rerun, as_json)
    if not rerun.ok:
        raise typer.Exit(1)


@report_app.command("batch")
def report_batch(
    job: Annotated[str, typer.Argument(help="A job name from the catalog.")],
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Dask scheduler address tcp://HOST:PORT (default: local)."
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local processes.")] = None,
    catalog: CatalogOption = None,
    reports_dir: ReportsOption = None,
) -> None:
    """Run every parameter set of a catalog job; one failure does not stop the others."""
    from quantdesk.reports.batch import run_batch

    cat = _catalog(catalog)
    try:
        spec = cat.job(job)
    except KeyError as exc:
        fail(exc.args[0])
    result = run_batch(spec, executor=scheduler, max_workers=workers, reports_dir=reports_dir)
    typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


@report_app.command("list")
def report_list(
    catalog: CatalogOption = None,
    reports_dir: ReportsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Show the catalog's jobs, their schedules and each notebook's last run by the job."""
    from quantdesk.reports.status import catalog_status

    status = catalog_status(_catalog(catalog), reports_dir)
    typer.echo(json.dumps(status.jobs, indent=2, default=str) if as_json else status.summary())


@schedule_app.command("run")
def schedule_run(catalog: CatalogOption = None) -> None:
    """Fire catalog jobs, and the evening pipeline on sessions, at their times until stopped."""
    from quantdesk.reports.scheduler import Scheduler

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    Scheduler(_catalog(catalog)).run_forever(stop)


@schedule_app.command("crontab")
def schedule_crontab(catalog: CatalogOption = None) -> None:
    """Print crontab lines equivalent to the catalog's schedules."""
    from quantdesk.reports.timers import crontab_lines

    for line in crontab_lines(_catalog(catalog)):
        typer.echo(line)


@schedule_app.command("systemd")
def schedule_systemd(catalog: CatalogOption = None) -> None:
    """Print a systemd service and timer that run the evening pipeline after the close."""
    from quantdesk.reports.timers import systemd_units

    try:
        units = systemd_units(_catalog(catalog))
    except ValueError as exc:
        fail(str(exc))
    for name, text in units.items():
        typer.echo(f"# ~/.config/systemd/user/{name}\n{text}")
