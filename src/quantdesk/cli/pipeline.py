"""The ``quantdesk pipeline`` commands: run, backfill, status, retry.

Each parses its options, calls one job of :mod:`quantdesk.pipeline.engine` and prints
its ``.summary()`` (or ``--json``).  A run with a failed step exits 1; a start refused
because another run holds the store exits 3, naming the holder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from quantdesk.cli.options import JsonOption, StoreOption, echo_result, fail

__all__ = ["pipeline_app"]

pipeline_app = typer.Typer(
    help="The evening pipeline: each exchange session's steps once, in order, resumable.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: Exit status of a start refused because another run holds the store.
BUSY_EXIT = 3

CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog", help="Catalog with the pipeline: section (default research/reports.yaml)."
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Decide what is due as if it were this time (ISO 8601, with zone)."),
]


def _call(job: Callable[..., Any], **kwargs: Any) -> Any:
    """Return ``job(**kwargs)``; a busy store or bad input exits with the reason."""
    from quantdesk.data.store.locking import StoreBusyError
    from quantdesk.pipeline.definition import PipelineError
    from quantdesk.pipeline.lock import PipelineBusyError

    try:
        return job(**kwargs)
    except PipelineBusyError as exc:
        fail(str(exc), BUSY_EXIT)
    except StoreBusyError as exc:  # held past QUANTDESK_LOCK_TIMEOUT by another process
        first = str(exc).strip().splitlines()[0]
        fail(f"{first}; the run stopped where it was (what it finished is recorded): "
             "run it again when the store is free, it resumes there")  # fmt: skip
    except (PipelineError, ValueError, KeyError, FileNotFoundError) as exc:
        fail(str(exc).strip("'\""))


def _print(result: Any, as_json: bool) -> None:
    echo_result(result, as_json)
    if hasattr(result, "ok") and not result.ok:
        raise typer.Exit(1)


def _now(text: str | None) -> Any:
    if text is None:
        return None
    import pandas as pd

    stamp = pd.Timestamp(text)
    if stamp.tzinfo is None:
        fail(f"--now {text!r} needs a time zone (e.g. 2024-07-08T23:00+00:00)")
    return stamp


@pipeline_app.command("run")
def pipeline_run(
    session: Annotated[
        str | None, typer.Option("--session", help="Run this session (default: every one due).")
    ] = None,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="Run this step again, with the steps that need it."),
    ] = None,
    now: NowOption = None,
    store: StoreOption = None,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the pipeline on one session, or on every session due (catch-up, in order)."""
    from quantdesk.pipeline.engine import run_pipeline

    result = _call(run_pipeline, store=store, session=session, force=tuple(force or ()),
                   definition=catalog, now=_now(now))  # fmt: skip
    _print(result, as_json)


@pipeline_app.command("backfill")
def pipeline_backfill(
    start: Annotated[str, typer.Option("--from", help="First session (inclusive).")],
    end: Annotated[str, typer.Option("--to", help="Last session (inclusive).")],
    store: StoreOption = None,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run every session from --from to --to in order, skipping what is done."""
    from quantdesk.pipeline.engine import backfill

    _print(_call(backfill, store=store, start=start, end=end, definition=catalog), as_json)


@pipeline_app.command("retry")
def pipeline_retry(
    store: StoreOption = None, catalog: CatalogOption = None, as_json: JsonOption = False
) -> None:
    """Run again the failed steps of every session (and the steps they blocked)."""
    from quantdesk.pipeline.engine import retry_failed

    _print(_call(retry_failed, store=store, definition=catalog), as_json)


@pipeline_app.command("status")
def pipeline_status_command(
    now: NowOption = None,
    store: StoreOption = None,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the last session's steps, the failed sessions and the next session due."""
    from quantdesk.pipeline.engine import pipeline_status

    status = _call(pipeline_status, store=store, definition=catalog, now=_now(now))
    echo_result(status, as_json)
