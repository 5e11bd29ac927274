"""The ``quantdesk`` command: ingest data, inspect the store, backtest, fit regimes, ...

Human-readable output goes to stdout, logs and progress bars to stderr; with
``--json`` stdout carries exactly one JSON document.  One module per command group
(:mod:`~quantdesk.cli.data`, :mod:`~quantdesk.cli.backtest`,
:mod:`~quantdesk.cli.regimes`, :mod:`~quantdesk.cli.forecast`,
:mod:`~quantdesk.cli.paper`, :mod:`~quantdesk.cli.news`,
:mod:`~quantdesk.cli.screener`, :mod:`~quantdesk.cli.reports`,
:mod:`~quantdesk.cli.pipeline`, :mod:`~quantdesk.cli.serve`), the shared option types
and helpers in :mod:`~quantdesk.cli.options`, assembled by :mod:`~quantdesk.cli.app`.
Each command parses its options, calls one library job and prints its ``.summary()``.
"""

from __future__ import annotations

from quantdesk.cli.app import app, main

__all__ = ["app", "main"]
