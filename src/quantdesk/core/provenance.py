"""Provenance: which Python and which library versions produced a result.

Reports, saved models and the model registry all record this, each with its own list
of libraries; the reading is done once, here.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata
from typing import Any, Literal, overload

__all__ = ["library_versions"]


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
