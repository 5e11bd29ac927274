"""One settings object for quantdesk: paths and tunables, read from the environment.

Where the store is (one rule, wherever a process starts)
--------------------------------------------------------
A notebook kernel starts in the notebook's folder, Voila's kernels in the app's folder,
papermill's in the report's, cron in the user's home: a default relative to the working
directory would give each of them another, empty store.  The home folder (which holds
the store ``quantdesk.duckdb``, the model registry ``models/`` and the scheduler's
state) is chosen by the first of these rules that applies:

1. ``QUANTDESK_HOME`` when set (``QUANTDESK_STORE`` names the store file itself);
2. the project: the nearest folder at or above the working directory whose
   ``pyproject.toml`` has a ``[tool.quantdesk]`` table; home is ``<project>/data``;
3. the checkout of an editable install when it is such a project (a command run from
   outside any project, in development); home is ``<checkout>/data``;
4. the user data directory, ``platformdirs.user_data_dir("quantdesk")``
   (``~/.local/share/quantdesk`` on Linux).

The reports directory follows the same rule with ``QUANTDESK_REPORTS`` first:
``<project>/reports`` (rules 2 and 3), else ``reports`` under the user data directory.
:attr:`Settings.home_source` and :attr:`Settings.store_source` say which rule chose;
``MarketStore()`` and ``quantdesk data info`` show it.  Cron lines carry the home
explicitly (:func:`quantdesk.reports.scheduler.cron_environment`): cron starts outside
any project.

Environment variables
---------------------
QUANTDESK_HOME
    The data folder; overrides the project rule.  The market store lives at
    ``$QUANTDESK_HOME/quantdesk.duckdb``.
QUANTDESK_STORE
    Full path of the DuckDB store file; overrides the default under the home.
QUANTDESK_REPORTS
    Directory where published reports go (default ``<project>/reports``, see above).
QUANTDESK_MODELS
    Directory or fsspec URL of the model registry (default ``<home>/models``).
QUANTDESK_LOCK_TIMEOUT
    Seconds a store operation waits for another process's lock before failing (default 60).
QUANTDESK_LOG_LEVEL
    Logging level for the ``quantdesk`` CLI (default ``INFO``).
QUANTDESK_MONITOR_RULES
    YAML rule set of the market monitor's live scan (default: its short built-in rules).
QUANTDESK_VOILA_STATIC
    Set by ``quantdesk voila`` for its kernels: the folder its server serves chart assets
    from (``/voila/static/``).
VOILA_*
    Set by Voila for the kernels it starts (``VOILA_BASE_URL`` is the server's base URL);
    :attr:`Settings.voila_kernel` says whether this process is one.
NUMBA_CACHE_DIR
    numba's on-disk cache of compiled kernels.  When unset, ``import quantdesk`` sets it
    to ``$QUANTDESK_HOME/numba_cache`` if ``QUANTDESK_HOME`` is set, else to
    ``quantdesk/numba`` in the user's cache directory (``~/.cache`` on Linux), so every
    kernel, report and cron job reuses what one compiled (see :mod:`quantdesk.numba_cache`).

Secrets (API keys for optional online sources) are read from the environment by the
adapter that needs them and are never stored on this object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantdesk.core.paths import find_quantdesk_project, is_quantdesk_project, package_checkout
from quantdesk.numba_cache import default_numba_cache_dir

__all__ = [
    "DEFAULT_COMMISSION_BPS",
    "DEFAULT_SLIPPAGE_BPS",
    "MONITOR_RULES_ENV",
    "VOILA_STATIC_ENV",
    "Settings",
    "project_root",
    "settings",
    "user_data_dir",
]

#: Commission on traded value, in basis points, of every backtest unless told otherwise
#: (``backtest.run``, sweeps, walk-forward and ``quantdesk backtest``).  A backtest
#: without costs flatters every strategy that trades; 1 bp is what a liquid equity, ETF
#: or FX-major order pays a low-cost broker.  Pass 0 for a frictionless run.  Fixed in
#: code, not read from the environment, so a backtest reads the same on every machine.
DEFAULT_COMMISSION_BPS = 1.0
#: Slippage against the close, in basis points: about half a liquid spread plus impact.
DEFAULT_SLIPPAGE_BPS = 2.0
#: The variable naming the market monitor's live-scan rule set (a YAML file).
MONITOR_RULES_ENV = "QUANTDESK_MONITOR_RULES"
#: The variable ``quantdesk voila`` sets for its kernels: where its server serves assets.
VOILA_STATIC_ENV = "QUANTDESK_VOILA_STATIC"


def user_data_dir() -> Path:
    """Return quantdesk's folder in the user data directory (rule 4 of the store rule)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("quantdesk", appauthor=False))


def project_root(cwd: str | Path | None = None) -> tuple[Path, str] | None:
    """Return ``(root, how it was found)`` of the quantdesk project, or None outside one.

    Rules 2 and 3 of the store rule: the nearest folder at or above ``cwd`` whose
    ``pyproject.toml`` has a ``[tool.quantdesk]`` table, else the checkout of an editable
    install when it is such a project.
    """
    found = find_quantdesk_project(cwd)
    if found is not None:
        return found, f"project {found} (pyproject.toml [tool.quantdesk])"
    checkout = package_checkout("pyproject.toml")
    if checkout is not None and is_quantdesk_project(checkout):
        return checkout, f"editable checkout {checkout}"
    return None


def _env_path(environ: Mapping[str, str], name: str, cwd: Path) -> Path | None:
    value = environ.get(name)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else cwd / path


@dataclass(frozen=True)
class Settings:
    """Return the resolved quantdesk settings; build with :meth:`from_env`."""

    home: Path
    store_path: Path
    reports_dir: Path
    models_url: str
    lock_timeout: float = 60.0
    log_level: str = "INFO"
    numba_cache_dir: Path | None = None
    #: Which rule chose :attr:`home` ("QUANTDESK_HOME", "project /x (...)", ...).
    home_source: str = "given"
    #: Which rule chose :attr:`store_path` ("QUANTDESK_STORE", else as home_source).
    store_source: str = "given"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, cwd: str | Path | None = None
    ) -> Settings:
        """Return settings read from ``environ`` (default ``os.environ``) as seen from ``cwd``.

        ``cwd`` (default the working directory) is where the project walk starts and
        what relative paths in the variables are taken against; the store rule is in
        this module's docstring.
        """
        env = os.environ if environ is None else environ
        here = Path(cwd).absolute() if cwd is not None else Path.cwd()
        project = project_root(here)
        home = _env_path(env, "QUANTDESK_HOME", here)
        if home is not None:
            home_source = "QUANTDESK_HOME"
        elif project is not None:
            home, home_source = project[0] / "data", project[1]
        else:
            home, home_source = user_data_dir(), "user data dir"
        store = _env_path(env, "QUANTDESK_STORE", here)
        reports = _env_path(env, "QUANTDESK_REPORTS", here)
        if reports is None:
            reports = project[0] / "reports" if project is not None else user_data_dir() / "reports"
        numba = _env_path(env, "NUMBA_CACHE_DIR", here)
        return cls(
            home=home,
            store_path=store if store is not None else home / "quantdesk.duckdb",
            reports_dir=reports,
            models_url=env.get("QUANTDESK_MODELS") or str(home / "models"),
            lock_timeout=float(env.get("QUANTDESK_LOCK_TIMEOUT", "60")),
            log_level=env.get("QUANTDESK_LOG_LEVEL", "INFO").upper(),
            numba_cache_dir=numba if numba is not None else Path(default_numba_cache_dir(env)),
            home_source=home_source,
            store_source="QUANTDESK_STORE" if store is not None else home_source,
            **_dashboard_settings(env),
        )

    # -- dashboards (issue 22: the monitor's live scan and the Voila apps) -------------
    #: The market monitor's live-scan rule set (``QUANTDESK_MONITOR_RULES``), or None.
    monitor_rules: str | None = None
    #: Where ``quantdesk voila`` serves chart assets from (``QUANTDESK_VOILA_STATIC``).
    voila_static: str | None = None
    #: Whether Voila started this process (it sets ``VOILA_*`` for its kernels).
    voila_kernel: bool = False
    #: The Voila server's base URL (``VOILA_BASE_URL``, default ``/``).
    voila_base_url: str = "/"


def _dashboard_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Return the dashboards' fields of :class:`Settings` read from ``env``."""
    return {
        "monitor_rules": env.get(MONITOR_RULES_ENV) or None,
        "voila_static": env.get(VOILA_STATIC_ENV) or None,
        "voila_kernel": any(name.startswith("VOILA_") for name in env),
        "voila_base_url": env.get("VOILA_BASE_URL") or "/",
    }


def settings() -> Settings:
    """Return settings from the environment as it is now (re-read on every call)."""
    return Settings.from_env()
