"""The dashboards read their environment through ``quantdesk.config``, nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from quantdesk.config import Settings

DASHBOARDS = Path(__file__).resolve().parents[2] / "src" / "quantdesk" / "dashboards"
# The one that stays: voila.py writes the environment its Voila kernels inherit (the
# store it pins, the Jupyter path, the static folder).  Secrets go through
# config.secret, Jupyter's own variables through Settings.
ALLOWED = {"voila.py"}


def test_the_monitor_rules_and_voila_settings_come_from_config() -> None:
    env = {
        "QUANTDESK_MONITOR_RULES": "rules.yaml",
        "QUANTDESK_VOILA_STATIC": "/srv/static",
        "VOILA_BASE_URL": "/apps/",
    }
    read = Settings.from_env(env, cwd="/")
    assert read.monitor_rules == Path("rules.yaml")
    assert read.voila_static_dir == Path("/srv/static")
    assert read.in_voila and read.voila_base_url == "/apps/"
    plain = Settings.from_env({}, cwd="/")
    assert plain.monitor_rules is None and plain.voila_static_dir is None
    assert not plain.in_voila and plain.voila_base_url == "/"


def test_the_hub_takes_its_rules_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantdesk.dashboards.hub import LiveHub

    monkeypatch.setenv("QUANTDESK_MONITOR_RULES", str(tmp_path / "rules.yaml"))
    assert LiveHub(tmp_path / "s.duckdb").rules == str(tmp_path / "rules.yaml")
    assert LiveHub(tmp_path / "s.duckdb", rules=["new_high"]).rules == ["new_high"]


def test_no_other_dashboard_module_reads_the_environment() -> None:
    readers = []
    for path in sorted(DASHBOARDS.glob("*.py")):
        if path.name in ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                readers.append(f"{path.name}:{node.lineno}")
    assert readers == []
