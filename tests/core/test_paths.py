"""Project-root lookup on real folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdesk.core.paths import find_project_root, package_checkout


def test_nearest_folder_with_the_marker_wins(tmp_path: Path) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    (inner / "deep" / "er").mkdir(parents=True)
    (outer / "pyproject.toml").write_text("")
    (inner / "pyproject.toml").write_text("")
    assert find_project_root(inner / "deep" / "er") == inner.resolve()
    assert find_project_root(outer) == outer.resolve()


def test_marker_may_be_a_nested_file(tmp_path: Path) -> None:
    (tmp_path / "research").mkdir()
    (tmp_path / "research" / "reports.yaml").write_text("reports: {}\n")
    (tmp_path / "sub").mkdir()
    assert find_project_root(tmp_path / "sub", marker="research/reports.yaml") == tmp_path
    # A folder named like the marker is not the marker.
    (tmp_path / "sub" / "pyproject.toml").mkdir()
    assert find_project_root(tmp_path / "sub") != (tmp_path / "sub").resolve()


def test_default_start_is_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert find_project_root() == tmp_path.resolve()


def test_package_checkout_is_this_repository() -> None:
    here = Path(__file__).resolve().parents[2]
    assert package_checkout("notebooks") == here
    assert package_checkout("no-such-folder-in-the-checkout") is None
