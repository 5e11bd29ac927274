"""The package's docstring examples run in ``make test`` (pytest's doctest collector)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pytest_collects_the_package_docstrings() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "src/quantdesk" in options["ini_options"]["testpaths"]
    # A real collection with the project's settings: the examples of one module are
    # test items, so a broken example fails `make test`.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "src/quantdesk/data/frequency.py"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "frequency.py::quantdesk.data.frequency.periods_per_year" in proc.stdout
