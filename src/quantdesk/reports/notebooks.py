"""Notebook lookup: a notebook given by path or by name, and the parameters it declares."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantdesk.core.paths import find_project_root, package_checkout

__all__ = ["check_declared", "resolve_notebook"]


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


def check_declared(nb_path: Path, parameters: Mapping[str, Any]) -> None:
    """Return ``None`` if the notebook declares every parameter; raise ValueError otherwise."""
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
