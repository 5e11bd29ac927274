"""Paths: the project root a user works in, and the checkout quantdesk runs from.

A project root is the nearest folder at or above the working directory that holds a
marker file (``pyproject.toml`` for notebooks, ``research/reports.yaml`` for the report
catalog).  An editable install run from elsewhere still finds the checkout it came
from, so ``quantdesk report run`` works from any directory in development.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["find_project_root", "package_checkout"]


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
