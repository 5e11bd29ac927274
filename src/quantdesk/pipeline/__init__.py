"""The evening pipeline: every step once per exchange session, in dependency order, resumable.

Names load on first use::

    from quantdesk.pipeline import run_pipeline, backfill, pipeline_status
    run = run_pipeline(store)                 # the sessions that are due, in order
    print(run.summary())
    backfill(store, start="2024-07-01", end="2024-07-31")

- :mod:`~quantdesk.pipeline.definition`: steps and ``needs`` from the catalog's ``pipeline:``.
- :mod:`~quantdesk.pipeline.steps`: the built-in steps, each an existing library job.
- :mod:`~quantdesk.pipeline.engine`: per-session execution, retries, catch-up, backfill, status.
- :class:`PipelineRecord` (:mod:`quantdesk.data.store.pipeline`): the record of every
  attempt, in the store's file.
- :mod:`~quantdesk.pipeline.lock`: one run at a time per store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantdesk._lazy import lazy_attributes

_EXPORTS = {
    "run_pipeline": "quantdesk.pipeline.engine",
    "backfill": "quantdesk.pipeline.engine",
    "retry_failed": "quantdesk.pipeline.engine",
    "pipeline_status": "quantdesk.pipeline.engine",
    "PipelineRun": "quantdesk.pipeline.engine",
    "PipelineStatus": "quantdesk.pipeline.engine",
    "load_pipeline": "quantdesk.pipeline.definition",
    "PipelineDefinition": "quantdesk.pipeline.definition",
    "PipelineError": "quantdesk.pipeline.definition",
    "PipelineRecord": "quantdesk.data.store.pipeline",
    "PipelineBusyError": "quantdesk.pipeline.lock",
    "RunLock": "quantdesk.pipeline.lock",
}
_SUBMODULES = frozenset({"commands", "definition", "engine", "lock", "steps"})

__all__ = [
    "PipelineBusyError",
    "PipelineDefinition",
    "PipelineError",
    "PipelineRecord",
    "PipelineRun",
    "PipelineStatus",
    "RunLock",
    "backfill",
    "load_pipeline",
    "pipeline_status",
    "retry_failed",
    "run_pipeline",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)

if TYPE_CHECKING:
    from quantdesk.data.store.pipeline import PipelineRecord
    from quantdesk.pipeline.definition import PipelineDefinition, PipelineError, load_pipeline
    from quantdesk.pipeline.engine import (
        PipelineRun,
        PipelineStatus,
        backfill,
        pipeline_status,
        retry_failed,
        run_pipeline,
    )
    from quantdesk.pipeline.lock import PipelineBusyError, RunLock
