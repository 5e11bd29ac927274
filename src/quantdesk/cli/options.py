"""What every ``quantdesk`` command shares: option types, failing, opening the store, printing.

A command parses its options with these types, calls one library job and prints the
job's ``.summary()`` (or, with ``--json``, exactly one JSON document) with
:func:`echo_result`; a bad option or a refused job ends in :func:`fail`, which says
why on stderr and exits non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

__all__ = [
    "CatalogOption",
    "JsonOption",
    "ModelsOption",
    "SchedulerOption",
    "SnapshotOption",
    "StoreOption",
    "echo_result",
    "fail",
    "int_list",
    "open_store",
    "print_ingest",
]

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="DuckDB store file (default: <project>/data/quantdesk.duckdb, see `data info`).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ModelsOption = Annotated[
    str | None,
    typer.Option(
        "--models", help="Model registry directory or fsspec URL (default $QUANTDESK_MODELS)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Dask scheduler address tcp://HOST:PORT to run on (default: local processes).",
    ),
]
SnapshotOption = Annotated[
    str | None,
    typer.Option(
        "--snapshot",
        help="Read the bars from this Parquet snapshot URL (`quantdesk data snapshot`) "
        "instead of the store, its newest version pinned when the command starts.",
    ),
]
CatalogOption = Annotated[
    Path | None, typer.Option("--catalog", help="Catalog file (default research/reports.yaml).")
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def open_store(path: Path | None, read_only: bool = False) -> Any:
    """Return the market store at ``path`` (None: the store rule's file), or fail saying why."""
    from quantdesk.data.store.market import as_store

    try:
        return as_store(path, read_only=read_only)
    except FileNotFoundError as exc:
        fail(str(exc))


def echo_result(result: Any, as_json: bool) -> None:
    """Print a job's result: its ``.summary()``, or its ``.to_dict()`` as one JSON document."""
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.summary())


def print_ingest(result: Any) -> None:
    """Print an ingest's account; exit non-zero, saying why, when it stored nothing."""
    typer.echo(result.summary())
    if result.problem:
        fail(result.problem)


def int_list(text: str) -> list[int]:
    """Return the integers of a comma-separated option value, or fail saying so.

    The one parser of integer lists on the command line (``--lookbacks 21,63,126``).
    """
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        fail(f"expected comma-separated integers, got {text!r}")
