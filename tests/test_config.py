"""The store rule: one store wherever a process starts (quantdesk.config).

Every process here is a real one started with no ``QUANTDESK_*`` variables, the way a
notebook kernel, a report's kernel or a user's shell starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import quantdesk
from quantdesk.config import Settings, secret
from quantdesk.data.store.market import MarketStore
from quantdesk.errors import StoreNotFoundError

from .conftest import make_bars

SRC = Path(quantdesk.__file__).resolve().parents[1]
SHOW = (
    "import json; from quantdesk.data.store.market import MarketStore; "
    "from quantdesk.config import settings; s = MarketStore(); c = settings(); "
    "print(json.dumps({'store': str(s.path), 'source': s.source, 'repr': repr(s), "
    "'reports': str(c.reports_dir), 'models': c.models_url}))"
)


def clean_env(**extra: str) -> dict[str, str]:
    """Return this environment without any QUANTDESK_* variable, quantdesk from ``SRC``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}
    return {**env, "PYTHONPATH": str(SRC), **extra}


def show(cwd: Path, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, str] = json.loads(out.stdout)
    return result


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("QUANTDESK_HOME")
    monkeypatch.delenv("QUANTDESK_REPORTS")
    root = tmp_path / "proj"
    (root / "notebooks" / "deep").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.quantdesk]\n')
    return root


def test_a_process_in_a_subfolder_opens_the_projects_store(project: Path) -> None:
    """Issue 21: a kernel started in notebooks/ opened (and created) notebooks/data."""
    env = clean_env()
    at_root = show(project, env)
    below = show(project / "notebooks" / "deep", env)
    assert below == at_root
    assert at_root["store"] == str(project / "data" / "quantdesk.duckdb")
    assert at_root["reports"] == str(project / "reports")
    assert at_root["models"] == str(project / "data" / "models")
    assert at_root["source"] == f"project {project} (pyproject.toml [tool.quantdesk])"
    assert "pyproject.toml [tool.quantdesk]" in at_root["repr"]
    assert not (project / "notebooks" / "deep" / "data").exists()
    # A pyproject.toml without the table (a package inside the project) is walked past.
    (project / "notebooks" / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    assert show(project / "notebooks" / "deep", env)["store"] == at_root["store"]
    # QUANTDESK_HOME, when set, wins over the project.
    pinned = show(project / "notebooks", clean_env(QUANTDESK_HOME=str(project / "elsewhere")))
    assert pinned["store"] == str(project / "elsewhere" / "quantdesk.duckdb")
    assert pinned["source"] == "QUANTDESK_HOME"


def test_outside_any_project_the_store_is_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed as a wheel (no checkout) and started outside a project: platformdirs."""
    monkeypatch.delenv("QUANTDESK_HOME")
    site = tmp_path / "site"
    shutil.copytree(SRC / "quantdesk", site / "quantdesk", ignore=shutil.ignore_patterns("*.pyc"))
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    data = tmp_path / "xdg"
    seen = show(elsewhere, {**clean_env(XDG_DATA_HOME=str(data)), "PYTHONPATH": str(site)})
    assert seen["store"] == str(data / "quantdesk" / "quantdesk.duckdb")
    assert seen["reports"] == str(data / "quantdesk" / "reports")
    assert seen["source"] == "user data dir"


def test_an_editable_checkout_is_the_project_of_a_command_run_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUANTDESK_HOME")
    checkout = SRC.parent
    cfg = Settings.from_env({}, cwd=tmp_path)
    assert cfg.home == checkout / "data"
    assert cfg.home_source == f"editable checkout {checkout}"


@pytest.mark.parametrize(
    "read",
    [
        lambda s: s.bars("SPX"),
        lambda s: s.panel("close"),
        lambda s: s.symbols(),
        lambda s: s.info(),
        lambda s: s.sql("SELECT 1"),
        lambda s: s.regimes(),
        lambda s: s.ingest_log(),
    ],
)
def test_reading_a_missing_store_fails_and_creates_nothing(tmp_path: Path, read) -> None:
    path = tmp_path / "nowhere" / "quantdesk.duckdb"
    store = MarketStore(path)
    with pytest.raises(StoreNotFoundError, match="quantdesk ingest sample") as info:
        read(store)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert not path.parent.exists()
    # The first write creates it, as before.
    assert store.write_bars(make_bars(["SPX"], 3), "1d").stored == 3
    assert store.symbols() == ["SPX"]


def test_data_info_names_the_store_and_the_rule(project: Path) -> None:
    cmd = [sys.executable, "-m", "quantdesk", "data", "info"]
    env = clean_env()
    missing = subprocess.run(
        cmd, cwd=project / "notebooks", env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1
    store = project / "data" / "quantdesk.duckdb"
    assert f"no market store at {store}" in missing.stderr
    assert "quantdesk ingest sample" in missing.stderr and not store.exists()
    MarketStore(store).write_bars(make_bars(["SPX"], 3), "1d")
    out = subprocess.run(cmd, cwd=project / "notebooks", env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"store: {store}" in out.stdout
    assert f"chosen by: project {project} (pyproject.toml [tool.quantdesk])" in out.stdout


# Modules that still read the environment themselves, each with who moves it onto
# config (issue 22).  An entry leaves when its read goes; a new one needs an owner.
ENVIRONMENT_READS_PENDING = {
    "quantdesk": "JPY_SESSION_NAME at import (root package; not this change's file)",
    "quantdesk.numba_cache": "sets NUMBA_CACHE_DIR before numba loads (below config)",
    "quantdesk.core.charts": "BOKEH_CHROMEDRIVER_PATH (core; not this change's file)",
    "quantdesk.pipeline.engine": "redaction of the kernel env: to config.environment",
    "quantdesk.dashboards.voila": "writes the environment its Voila kernels inherit (no reads)",
}


def _environment_readers() -> set[str]:
    """Return the modules of src/quantdesk that touch os.environ or call getenv."""
    import ast

    package = SRC / "quantdesk"
    found = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            touches = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(a.name in ("environ", "getenv") for a in node.names)
            )
            if touches:
                parts = list(path.relative_to(SRC).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                found.add(".".join(parts))
    return found


def test_environment_variables_are_read_only_in_config() -> None:
    """Issue 22: webhooks, the catalog, FinBERT and the report engine read os.environ."""
    readers = _environment_readers() - {"quantdesk.config"}
    assert readers - set(ENVIRONMENT_READS_PENDING) == set()
    # an entry whose read is gone leaves the list, so it cannot hide a new read later
    assert set(ENVIRONMENT_READS_PENDING) - readers == set()


def test_settings_carry_the_variables_the_modules_read(tmp_path: Path) -> None:
    env = {
        "QUANTDESK_HOME": str(tmp_path),
        "QUANTDESK_CATALOG": "~/cat.yaml",
        "QUANTDESK_FINBERT_PATH": str(tmp_path / "finbert"),
        "QUANTDESK_WEBHOOK_CONFIG": str(tmp_path / "hook.yaml"),
        "QUANTDESK_MONITOR_RULES": str(tmp_path / "rules.yaml"),
        "QUANTDESK_VOILA_STATIC": str(tmp_path / "static"),
        "VOILA_BASE_URL": "/voila/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/",
        "QUANTDESK_WEBHOOK_URL": "https://hooks.example.com/T0/s3cr3t",
        "QUANTDESK_WEBHOOK_TOKEN": "tok-s3cr3t",
        "QUANTDESK_SNAPSHOT_CACHE": "cache",
    }
    cfg = Settings.from_env(env, cwd=tmp_path)
    assert cfg.snapshot_cache == tmp_path / "cache"  # relative to the working directory
    assert cfg.catalog_path == Path("~/cat.yaml").expanduser()
    assert cfg.finbert_path == tmp_path / "finbert"
    assert cfg.webhook_config == cfg.webhook_file == tmp_path / "hook.yaml"
    assert cfg.monitor_rules == tmp_path / "rules.yaml"
    assert cfg.voila_static_dir == tmp_path / "static"
    assert (cfg.voila_base_url, cfg.in_voila) == ("/voila/", True)
    assert cfg.jupyterhub_prefix == "/user/ann/"
    # Secrets come from config.secret at the moment they are needed, never the object.
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in str(vars(cfg))
    assert secret("QUANTDESK_WEBHOOK_TOKEN", env) == "tok-s3cr3t"
    assert secret("QUANTDESK_WEBHOOK_TOKEN", {"QUANTDESK_WEBHOOK_TOKEN": ""}) is None
    bare = Settings.from_env({"QUANTDESK_HOME": str(tmp_path)}, cwd=tmp_path)
    assert bare.webhook_file == tmp_path / "webhook.yaml"
    assert bare.snapshot_cache == tmp_path / "snapshot_cache"
    assert (bare.catalog_path, bare.finbert_path, bare.monitor_rules) == (None, None, None)
    assert (bare.voila_base_url, bare.in_voila, bare.jupyterhub_prefix) == ("/", False, None)


def test_the_onnx_cache_follows_the_numba_cache_rule(tmp_path: Path) -> None:
    """Exports of sentiment models live beside compiled kernels, never in the store."""
    home = Settings.from_env({"QUANTDESK_HOME": str(tmp_path / "home")}, cwd=tmp_path)
    assert home.onnx_cache_dir == tmp_path / "home" / "onnx_cache"
    assert home.onnx_cache_dir.parent == home.numba_cache_dir.parent == home.store_path.parent
    user = Settings.from_env({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, cwd=tmp_path)
    assert user.onnx_cache_dir == tmp_path / "xdg" / "quantdesk" / "onnx"
    given = Settings.from_env(
        {"QUANTDESK_HOME": str(tmp_path), "QUANTDESK_ONNX_CACHE": "exports"}, cwd=tmp_path
    )
    assert given.onnx_cache_dir == tmp_path / "exports"
