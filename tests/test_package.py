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


# A module with a cached kernel, written by the tests: numba cannot cache code from `-c`.
KERNEL = "import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n"

PROBE = (
    "import json, os, sys; sys.path.insert(0, sys.argv[1]); {first}"
    "import quantdesk; import numba; import kernel_mod; kernel_mod.twice(2.0); "
    "print(json.dumps([os.environ.get('NUMBA_CACHE_DIR'), numba.config.CACHE_DIR]))"
)


def _probe(tmp_path, env_updates: dict[str, str | None], first: str = ""):
    """Run a fresh process that imports quantdesk and compiles a cached kernel."""
    import os

    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "kernel_mod.py").write_text(KERNEL)
    env = {k: v for k, v in os.environ.items() if k not in env_updates}
    env.update({k: v for k, v in env_updates.items() if v is not None})
    code = PROBE.format(first=first)
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "src")],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cached(directory) -> list[str]:
    return sorted(p.name for p in directory.rglob("kernel_mod.twice*.nbi"))


def test_numba_cache_goes_under_quantdesk_home(tmp_path) -> None:
    """Kernels, Voila and cron got no NUMBA_CACHE_DIR and recompiled in every process."""
    home = tmp_path / "home"
    env, directory = _probe(tmp_path, {"NUMBA_CACHE_DIR": None, "QUANTDESK_HOME": str(home)})
    assert env == directory == str(home / "numba_cache")
    assert _cached(home / "numba_cache")


def test_numba_cache_defaults_to_the_user_cache_dir(tmp_path) -> None:
    from pathlib import Path

    from quantdesk.numba_cache import default_numba_cache_dir

    xdg = tmp_path / "xdg"
    # HOME and LOCALAPPDATA too, so that no platform writes into the real user cache
    user = {
        "XDG_CACHE_HOME": str(xdg),
        "HOME": str(tmp_path / "user"),
        "LOCALAPPDATA": str(tmp_path / "local"),
    }
    env, _ = _probe(tmp_path, {"NUMBA_CACHE_DIR": None, "QUANTDESK_HOME": None, **user})
    expected = default_numba_cache_dir(user)
    assert env == expected
    if sys.platform.startswith("linux"):
        assert expected == str(xdg / "quantdesk" / "numba")
    assert _cached(Path(expected))


def test_numba_cache_dir_set_by_the_user_is_kept(tmp_path) -> None:
    mine = tmp_path / "mine"
    env, directory = _probe(
        tmp_path, {"NUMBA_CACHE_DIR": str(mine), "QUANTDESK_HOME": str(tmp_path / "home")}
    )
    assert env == directory == str(mine)
    assert _cached(mine) and not (tmp_path / "home").exists()


def test_numba_imported_before_quantdesk_still_uses_the_cache(tmp_path) -> None:
    home = tmp_path / "home"
    env, directory = _probe(
        tmp_path,
        {"NUMBA_CACHE_DIR": None, "QUANTDESK_HOME": str(home)},
        first="import numba; assert not numba.config.CACHE_DIR; ",
    )
    assert env == directory == str(home / "numba_cache")
    assert _cached(home / "numba_cache")


def test_default_numba_cache_dir_by_platform(monkeypatch) -> None:
    from quantdesk import numba_cache

    assert numba_cache.default_numba_cache_dir({"QUANTDESK_HOME": "/srv/qd"}) == (
        "/srv/qd/numba_cache"
    )
    monkeypatch.setattr(numba_cache.sys, "platform", "linux")
    # a relative XDG_CACHE_HOME is ignored, as the XDG spec says
    assert numba_cache.default_numba_cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/home/u"}) == (
        "/home/u/.cache/quantdesk/numba"
    )
    monkeypatch.setattr(numba_cache.sys, "platform", "darwin")
    assert numba_cache.default_numba_cache_dir({"HOME": "/Users/u"}) == (
        "/Users/u/Library/Caches/quantdesk/numba"
    )
    monkeypatch.setattr(numba_cache.sys, "platform", "win32")
    assert numba_cache.default_numba_cache_dir({"LOCALAPPDATA": "C:/Users/u/AppData/Local"}) == (
        numba_cache.os.path.join("C:/Users/u/AppData/Local", "quantdesk", "numba")
    )


def test_settings_report_the_numba_cache(monkeypatch, tmp_path) -> None:
    from quantdesk.config import settings

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nc"))
    assert settings().numba_cache_dir == tmp_path / "nc"


def test_warm_numba_cache_compiles_the_first_backtest_kernels(tmp_path) -> None:
    """`make demo` runs this so that the first backtest of a new kernel loads, not compiles."""
    import os

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["QUANTDESK_HOME"] = str(home)
    code = "from quantdesk.backtest.warmup import warm_numba_cache; print(warm_numba_cache())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == str(home / "numba_cache")
    cached = {p.name.split("-")[0] for p in (home / "numba_cache").rglob("*.nbi")}
    # (the order kernel writes the equity: a first backtest replays no fills)
    assert {
        "_order_kernel.fill_target_percent",
        "windows._kernels.locals.mean_kernel",
        "kernels._fill_candles",
    } <= cached
    # lots and volume caps have order-kernel specialisations of their own: warmed too
    code = (
        "import numpy as np, pandas as pd; from quantdesk.backtest import run; "
        "from quantdesk.backtest._order_kernel import fill_target_percent as k; "
        "i = pd.date_range('2024-01-01', periods=30, freq='D', tz='UTC'); "
        "c = pd.DataFrame({'A': np.linspace(10, 20, 30), 'B': 5.0}, index=i); "
        "v = c * 0 + 1e3; "
        "[run(c, c * 0 + 0.4, **o).equity for o in ({}, {'lot_size': 2.0}, "
        "{'volume': v, 'max_volume_share': 0.5}, "
        "{'volume': v, 'max_volume_share': 0.5, 'lot_size': 2.0})]; "
        "print(len(k.signatures), sum(k.stats.cache_hits.values()), len(k.stats.cache_misses))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["4", "4", "0"]
