"""The ``quantdesk`` Typer app: the root callback and every command group, registered.

Each group lives in its own module of :mod:`quantdesk.cli`; this module only assembles
them, in the order ``quantdesk --help`` lists them.  Command modules import their
library jobs inside the commands, so ``quantdesk --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from quantdesk.cli.backtest import backtest, sweep
from quantdesk.cli.data import data_app, ingest_app
from quantdesk.cli.forecast import forecast_app
from quantdesk.cli.news import news_app, sentiment_app
from quantdesk.cli.paper import paper_app
from quantdesk.cli.pipeline import pipeline_app
from quantdesk.cli.regimes import regimes_app
from quantdesk.cli.reports import report_app, schedule_app
from quantdesk.cli.screener import alerts_app, screen_app
from quantdesk.cli.serve import dashboard, lab, voila
from quantdesk.config import settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="quantdesk: a Jupyter-first research environment for quantitative trading research.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

for group, name in (
    (ingest_app, "ingest"),
    (data_app, "data"),
    (report_app, "report"),
    (schedule_app, "schedule"),
    (pipeline_app, "pipeline"),
    (regimes_app, "regimes"),
    (forecast_app, "forecast"),
    (paper_app, "paper"),
    (news_app, "news"),
    (sentiment_app, "sentiment"),
    (screen_app, "screen"),
    (alerts_app, "alerts"),
):
    app.add_typer(group, name=name)
app.command("backtest")(backtest)
app.command("sweep")(sweep)
app.command("dashboard")(dashboard)
app.command("voila")(voila)
app.command("lab", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(lab)


@app.callback()
def _main(
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING (default from env).")
    ] = None,
) -> None:
    level = (log_level or settings().log_level).upper()
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Run the ``quantdesk`` command line."""
    from quantdesk.errors import StoreNotFoundError

    try:
        app()
    except StoreNotFoundError as exc:
        # Any command that reads a store that is not there: say which file and how to fill it.
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
