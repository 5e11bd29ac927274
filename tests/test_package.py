"""The package imports fast: heavy libraries load only when used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["pandas", "numpy", "duckdb", "numba", "torch", "transformers", "vectorbt", "panel"]


def test_import_quantdesk_loads_no_heavy_library() -> None:
    code = (
        "import sys, json, quantdesk; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_submodules_load_on_attribute_access() -> None:
    import quantdesk

    assert quantdesk.data.MarketStore.__name__ == "MarketStore"
    assert "data" in dir(quantdesk)
    try:
        quantdesk.not_a_module  # noqa: B018
    except AttributeError as exc:
        assert "not_a_module" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unknown attribute must raise")


def test_settings_follow_environment(monkeypatch, tmp_path) -> None:
    from quantdesk.config import settings

    monkeypatch.setenv("QUANTDESK_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("QUANTDESK_LOCK_TIMEOUT", "7.5")
    cfg = settings()
    assert cfg.store_path == tmp_path / "h" / "quantdesk.duckdb"
    assert cfg.lock_timeout == 7.5
    monkeypatch.setenv("QUANTDESK_STORE", str(tmp_path / "other.duckdb"))
    assert settings().store_path == tmp_path / "other.duckdb"
