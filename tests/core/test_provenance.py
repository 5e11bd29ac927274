"""Library versions read from installed metadata."""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np

from quantdesk.core.provenance import library_versions


def test_versions_match_the_imported_libraries() -> None:
    out = library_versions(["numpy", "pandas"])
    assert list(out) == ["python", "numpy", "pandas"]
    assert out["python"] == platform.python_version()
    assert out["numpy"] == np.__version__
    assert out["pandas"] == metadata.version("pandas")


def test_missing_distributions_three_ways() -> None:
    names = ["numpy", "no-such-distribution-xyz"]
    assert library_versions(names, python=False)["no-such-distribution-xyz"] is None
    assert library_versions(names, missing="unknown")["no-such-distribution-xyz"] == "unknown"
    assert list(library_versions(names, python=False, skip_missing=True)) == ["numpy"]
