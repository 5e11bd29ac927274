"""The pipeline's definition: its steps and their ``needs``, read from the report catalog.

``research/reports.yaml`` has a ``pipeline:`` section beside ``jobs:``::

    pipeline:
      name: evening                 # the record's key (default "evening")
      exchange: XNYS                # the calendar of its sessions (default XNYS)
      delay_minutes: 30             # a session is due this long after its close
      steps:
        update: {params: {simulated: true, drop_folder: data/drop}}
        screen: {needs: [update], params: {rules: [gap_up, volume_spike]}, retries: 2}
        mine:   {run: "mypackage.steps:my_step", needs: [screen]}    # your own step
        note:   {notebook: my_notebook, needs: [screen]}             # or a notebook

A step is a built-in (:data:`~quantdesk.pipeline.steps.BUILTIN_STEPS`, by its name or
``run: <builtin>``), a Python function ``module:function`` called as
``function(context, **params)``, or a notebook run with papermill with the session as
its ``session`` parameter (plus ``parameters``).  ``retries`` extra attempts follow a
failure after a back-off of ``backoff`` seconds doubling each time.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantdesk.data.sessions import DEFAULT_EXCHANGE

__all__ = [
    "DEFAULT_PIPELINE",
    "PipelineDefinition",
    "PipelineError",
    "StepSpec",
    "load_pipeline",
    "topological_order",
]

_STEP_FIELDS = {"run", "notebook", "parameters", "params", "needs", "retries", "backoff"}
_TOP_FIELDS = {"name", "exchange", "delay_minutes", "steps"}


class PipelineError(ValueError):
    """A pipeline definition is wrong; the message names the file, step and field."""


@dataclass(frozen=True)
class StepSpec:
    """One step: what it runs, its parameters, the steps it needs and its retry policy."""

    name: str
    run: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    needs: tuple[str, ...] = ()
    retries: int = 0
    backoff: float = 1.0
    notebook: str | None = None

    def function(self) -> Callable[..., Any]:
        """Return the callable that runs the step (a built-in or ``module:function``)."""
        from quantdesk.pipeline.steps import BUILTIN_STEPS

        if self.notebook is not None:
            return _notebook_step(self.notebook)
        if self.run in BUILTIN_STEPS:
            return BUILTIN_STEPS[self.run]
        module, _, name = self.run.partition(":")
        try:
            target = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise PipelineError(f"step {self.name!r}: cannot load {self.run!r}: {exc}") from exc
        if not callable(target):
            raise PipelineError(f"step {self.name!r}: {self.run!r} is not callable")
        return target  # type: ignore[no-any-return]


def _notebook_step(notebook: str) -> Callable[..., Any]:
    def run_notebook(context: Any, **parameters: Any) -> Any:
        from quantdesk.pipeline.steps import StepOutput, run_session_report

        run_id = f"{context.pipeline}-{context.session:%Y%m%d}-{Path(notebook).stem}"
        session = f"{context.session:%Y-%m-%d}"
        fresh = run_session_report(notebook, {**parameters, "session": session}, run_id,
                                   store=context.store.path)  # fmt: skip
        return StepOutput({"reports": int(fresh), "already_done": int(not fresh)})

    return run_notebook


@dataclass(frozen=True)
class PipelineDefinition:
    """A pipeline: its name, its exchange, the delay after the close, its steps in order."""

    name: str
    steps: tuple[StepSpec, ...]
    exchange: str = DEFAULT_EXCHANGE
    delay_minutes: float = 30.0
    path: Path | None = None

    def step(self, name: str) -> StepSpec:
        """Return the step called ``name``; KeyError lists the known ones."""
        for spec in self.steps:
            if spec.name == name:
                return spec
        raise KeyError(f"no step {name!r} (steps: {', '.join(s.name for s in self.steps)})")

    def dependents(self, name: str) -> list[str]:
        """Return ``name`` and every step that needs it, directly or not, in run order."""
        wanted = {name}
        for spec in self.steps:  # topological order: needs come first
            if wanted & set(spec.needs):
                wanted.add(spec.name)
        return [s.name for s in self.steps if s.name in wanted]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: Path | None = None) -> PipelineDefinition:
        """Return the definition of a ``pipeline:`` mapping, validated and ordered."""
        where = f"{path}: pipeline" if path else "pipeline"
        if not isinstance(data, Mapping):
            raise PipelineError(f"{where}: must be a mapping with 'steps'")
        unknown = sorted(set(data) - _TOP_FIELDS)
        if unknown:
            raise PipelineError(
                f"{where}: unknown field {unknown[0]!r}; one of {sorted(_TOP_FIELDS)}"
            )
        raw = data.get("steps")
        if not isinstance(raw, Mapping) or not raw:
            raise PipelineError(f"{where}.steps: must be a non-empty mapping of step name to step")
        specs = [_parse_step(where, str(n), s) for n, s in raw.items()]
        delay = data.get("delay_minutes", 30)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise PipelineError(f"{where}.delay_minutes: a number of minutes >= 0, not {delay!r}")
        return cls(
            name=str(data.get("name", "evening")),
            steps=tuple(topological_order(specs, where)),
            exchange=str(data.get("exchange", DEFAULT_EXCHANGE)),
            delay_minutes=float(delay),
            path=path,
        )


def _parse_step(where: str, name: str, spec: Any) -> StepSpec:
    from quantdesk.pipeline.steps import BUILTIN_STEPS

    at = f"{where}.steps.{name}"
    spec = {} if spec is None else spec
    if not isinstance(spec, Mapping):
        raise PipelineError(f"{at}: must be a mapping (run, needs, params, retries, backoff)")
    unknown = sorted(set(spec) - _STEP_FIELDS)
    if unknown:
        raise PipelineError(f"{at}: unknown field {unknown[0]!r}; one of {sorted(_STEP_FIELDS)}")
    notebook = spec.get("notebook")
    run = str(spec.get("run", name if notebook is None else "notebook"))
    if notebook is None and run not in BUILTIN_STEPS and ":" not in run:
        raise PipelineError(
            f"{at}.run: {run!r} is neither a built-in step ({', '.join(BUILTIN_STEPS)}) "
            "nor 'module:function'"
        )
    needs = spec.get("needs", [])
    needs = [needs] if isinstance(needs, str) else needs
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise PipelineError(f"{at}.needs: a list of step names")
    params = spec.get("params", spec.get("parameters", {})) or {}
    if not isinstance(params, Mapping):
        raise PipelineError(f"{at}.params: a mapping of parameter to value")
    retries, backoff = spec.get("retries", 0), spec.get("backoff", 1.0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise PipelineError(f"{at}.retries: a whole number >= 0, not {retries!r}")
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
        raise PipelineError(f"{at}.backoff: seconds >= 0, not {backoff!r}")
    return StepSpec(name, run, dict(params), tuple(needs), retries, float(backoff),
                    None if notebook is None else str(notebook))  # fmt: skip


def topological_order(specs: list[StepSpec], where: str = "pipeline") -> list[StepSpec]:
    """Return the steps ordered so that every step comes after the steps it needs.

    Ties keep the order written (Kahn's algorithm over the written order); an unknown
    need or a cycle raises :class:`PipelineError` naming the steps.

    Examples
    --------
    >>> a, b, c = StepSpec("a", "x:y", needs=("b",)), StepSpec("b", "x:y"), StepSpec("c", "x:y")
    >>> [s.name for s in topological_order([a, b, c])]
    ['b', 'a', 'c']
    """
    names = [s.name for s in specs]
    for spec in specs:
        for need in spec.needs:
            if need not in names:
                raise PipelineError(f"{where}.steps.{spec.name}.needs: no step {need!r}")
    ordered: list[StepSpec] = []
    placed: set[str] = set()
    pending = list(specs)
    while pending:
        ready = next((s for s in pending if set(s.needs) <= placed), None)
        if ready is None:
            cycle = ", ".join(s.name for s in pending)
            raise PipelineError(f"{where}.steps: the needs of {cycle} form a cycle")
        ordered.append(ready)
        placed.add(ready.name)
        pending.remove(ready)
    return ordered


#: The evening pipeline used when the catalog has no ``pipeline:`` section.
DEFAULT_PIPELINE: dict[str, Any] = {
    "name": "evening",
    "steps": {
        "update": {"params": {"simulated": True}},
        "news": {"needs": ["update"]},
        "regimes": {"needs": ["update"]},
        "forecasts": {"needs": ["update"]},
        "screen": {"needs": ["update"]},
        "paper": {"needs": ["update"]},
        "reports": {"needs": ["news", "regimes", "forecasts", "screen", "paper"]},
    },
}


def load_pipeline(path: str | os.PathLike[str] | None = None) -> PipelineDefinition:
    """Return the pipeline of the catalog at ``path`` (default: the report catalog's file).

    Raises
    ------
    PipelineError
        The ``pipeline:`` section is wrong (file, step and field named).
    FileNotFoundError
        No such catalog.
    """
    import yaml

    from quantdesk.reports.catalog import default_catalog_path

    file = Path(path) if path is not None else default_catalog_path()
    if not file.is_file():
        raise FileNotFoundError(f"catalog {file} not found")
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise PipelineError(f"{file}: the top level must be a mapping")
    section = data.get("pipeline")
    return PipelineDefinition.from_mapping(
        section if section is not None else DEFAULT_PIPELINE, file.resolve()
    )
