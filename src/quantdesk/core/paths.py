"""Paths: the project root a user works in, and the checkout quantdesk runs from.

A project root is the nearest folder at or above the working directory that holds a
marker file (``pyproject.toml`` for notebooks, ``research/reports.yaml`` for the report
catalog).  An editable install run from elsewhere still finds the checkout it came
from, so ``quantdesk report run`` works from any directory in development.

A quantdesk project (:func:`find_quantdesk_project`) is a folder whose ``pyproject.toml``
has a ``[tool.quantdesk]`` table: the marker :mod:`quantdesk.config` walks up to when it
chooses the store, so a kernel started in any subfolder opens the project's store.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

__all__ = [
    "find_project_root",
    "find_quantdesk_project",
    "is_quantdesk_project",
    "package_checkout",
]

logger = logging.getLogger(__name__)


def find_project_root(
    start: str | Path | None = None, marker: str = "pyproject.toml"
) -> Path | None:
    """Return the nearest folder at or above ``start`` (default: cwd) that holds ``marker``.

    Parameters
    ----------
    start
        Where to begin; the current working directory when None.
    marker
        A file path relative to the folder (``"pyproject.toml"``,
        ``"research/reports.yaml"``).

    Returns
    -------
    Path or None
        The folder, resolved; None when no folder up to the filesystem root has it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = Path(tmp).resolve()
    ...     _ = (root / "pyproject.toml").write_text("")
    ...     (root / "a" / "b").mkdir(parents=True)
    ...     find_project_root(root / "a" / "b") == root
    True
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / marker).is_file():
            return folder
    return None


def package_checkout(marker: str) -> Path | None:
    """Return quantdesk's own source checkout when it holds ``marker``, else None.

    Only an editable install has one: ``src/quantdesk/core/paths.py`` three folders up.

    Parameters
    ----------
    marker
        A file or folder relative to the checkout (``"notebooks"``,
        ``"research/reports.yaml"``).

    Returns
    -------
    Path or None
        The checkout folder, or None for an installed wheel (or a checkout without it).
    """
    checkout = Path(__file__).resolve().parents[3]
    return checkout if (checkout / marker).exists() else None


def is_quantdesk_project(folder: str | Path) -> bool:
    """Return True when ``folder/pyproject.toml`` has a ``[tool.quantdesk]`` table.

    A ``pyproject.toml`` that does not parse is logged and counts as no marker.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "pyproject.toml").write_text("[tool.quantdesk]\\n")
    ...     is_quantdesk_project(tmp)
    True
    """
    pyproject = Path(folder) / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        with pyproject.open("rb") as fh:
            table = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        logger.warning(
            "%s is not readable TOML (%s); not taken as a quantdesk project", pyproject, exc
        )
        return False
    return isinstance(table.get("tool", {}).get("quantdesk"), dict)


def find_quantdesk_project(start: str | Path | None = None) -> Path | None:
    """Return the nearest folder at or above ``start`` (default: cwd) that is a quantdesk project.

    A project is a folder whose ``pyproject.toml`` has a ``[tool.quantdesk]`` table
    (:func:`is_quantdesk_project`); a ``pyproject.toml`` without it (a plain Python
    package inside the project) does not stop the walk.

    Returns
    -------
    Path or None
        The folder, resolved; None when no folder up to the filesystem root is one.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_quantdesk_project(folder):
            return folder
    return None
