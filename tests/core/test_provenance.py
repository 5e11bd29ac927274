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


def test_code_version_reads_the_commit_and_the_file_hash(tmp_path) -> None:
    import hashlib
    import subprocess

    from quantdesk.core.provenance import code_version

    notebook = tmp_path / "report.ipynb"
    notebook.write_text("{}")
    outside = code_version(notebook)
    assert outside == {
        "commit": None,
        "dirty": None,
        "sha256": hashlib.sha256(b"{}").hexdigest(),
    }
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "report.ipynb"], check=True)
    subprocess.run([*git, "commit", "-qm", "report"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert code_version(notebook) == {**outside, "commit": head, "dirty": False}
    notebook.write_text('{"cells": []}')
    edited = code_version(notebook)
    assert edited["commit"] == head and edited["dirty"] is True
    assert edited["sha256"] != outside["sha256"]
