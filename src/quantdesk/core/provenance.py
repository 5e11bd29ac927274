"""Provenance: which Python, library versions and code commit produced a result.

Reports, saved models and the model registry all record this, each with its own list
of libraries; the reading is done once, here.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, overload

__all__ = ["code_version", "library_versions"]

logger = logging.getLogger(__name__)


@overload
def library_versions(
    names: Iterable[str], *, python: bool = ..., missing: str, skip_missing: bool = ...
) -> dict[str, str]: ...
@overload
def library_versions(
    names: Iterable[str], *, python: bool = ..., missing: None = ..., skip_missing: Literal[True]
) -> dict[str, str]: ...
@overload
def library_versions(
    names: Iterable[str],
    *,
    python: bool = ...,
    missing: str | None = ...,
    skip_missing: bool = ...,
) -> dict[str, str | None]: ...


def library_versions(
    names: Iterable[str],
    *,
    python: bool = True,
    missing: str | None = None,
    skip_missing: bool = False,
) -> dict[str, Any]:
    """Return ``{name: version}`` for Python and the named installed distributions.

    Versions are read from the installed distributions' metadata, so no package is
    imported.

    Parameters
    ----------
    names
        Distribution names (``"numpy"``, ``"scikit-learn"``), in the order wanted.
    python
        Put ``"python": platform.python_version()`` first.
    missing
        The value recorded for a distribution that is not installed.
    skip_missing
        Leave a distribution that is not installed out instead of recording ``missing``.

    Returns
    -------
    dict
        Name to version string, in the order given (Python first).

    Examples
    --------
    >>> versions = library_versions(["numpy", "not-a-distribution"], missing="unknown")
    >>> list(versions), versions["not-a-distribution"]
    (['python', 'numpy', 'not-a-distribution'], 'unknown')
    >>> library_versions(["not-a-distribution"], python=False, skip_missing=True)
    {}
    """
    versions: dict[str, Any] = {}
    if python:
        versions["python"] = platform.python_version()
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if not skip_missing:
                versions[name] = missing
    return versions


def _git(folder: Path, *args: str) -> str | None:
    """Return the stripped output of ``git -C folder ARGS``, or None when git cannot say."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("git %s in %s: %s", args, folder, exc)
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(path: str | Path) -> dict[str, Any]:
    """Return the code a result came from: the git commit holding ``path`` and its hash.

    Parameters
    ----------
    path
        A file (a notebook, a script) or a folder.

    Returns
    -------
    dict
        ``commit``: the ``HEAD`` commit of the git work tree holding ``path`` (None
        outside one, or without git); ``dirty``: whether that tree has uncommitted
        changes (None outside one); ``sha256``: the file's own content hash (None for a
        folder), which tells an edited notebook apart even outside git.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("x")
    >>> code_version(folder / "a.txt")["sha256"][:12]
    '2d711642b726'
    """
    path = Path(path).absolute()
    folder = path if path.is_dir() else path.parent
    commit = _git(folder, "rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(folder, "status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"commit": commit, "dirty": dirty, "sha256": digest}
