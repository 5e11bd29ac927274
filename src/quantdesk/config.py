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
explicitly (:func:`quantdesk.reports.timers.cron_environment`): cron starts outside
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
QUANTDESK_SNAPSHOT, QUANTDESK_SNAPSHOT_VERSION
    A Parquet snapshot of the store (an fsspec URL) that notebooks read their bars from
    instead of the store (:func:`quantdesk.data.research.open_research`), at that
    version (default: its newest): :attr:`Settings.snapshot_url`,
    :attr:`Settings.snapshot_version`.  A report run pins both for its kernel and
    records them, so that ``quantdesk report rerun`` reads the same data.
QUANTDESK_SNAPSHOT_CACHE
    Where files of remote snapshots are cached (default ``<home>/snapshot_cache``):
    :attr:`Settings.snapshot_cache`.
QUANTDESK_LOCK_TIMEOUT
    Seconds a store operation waits for another process's lock before failing (default 60).
QUANTDESK_LOG_LEVEL
    Logging level for the ``quantdesk`` CLI (default ``INFO``).
QUANTDESK_CATALOG
    The report catalog file (default ``research/reports.yaml`` of the project):
    :attr:`Settings.catalog_path`.
QUANTDESK_FINBERT_PATH
    A local FinBERT directory used instead of the hub id: :attr:`Settings.finbert_path`.
QUANTDESK_ONNX_CACHE
    Where FinBERT's ONNX exports are kept (:attr:`Settings.onnx_cache_dir`); default
    ``$QUANTDESK_HOME/onnx_cache`` if ``QUANTDESK_HOME`` is set, else ``quantdesk/onnx``
    in the user's cache directory (the rule of ``NUMBA_CACHE_DIR`` below).
QUANTDESK_WEBHOOK_CONFIG
    The alert webhook's YAML file (default ``$QUANTDESK_HOME/webhook.yaml``):
    :attr:`Settings.webhook_config`.
QUANTDESK_MONITOR_RULES
    The rule set of the market monitor's live scan: :attr:`Settings.monitor_rules`.
QUANTDESK_VOILA_STATIC, VOILA_BASE_URL, VOILA_*
    Where a Voila app's static outputs are served from, the server's base URL and
    whether this kernel runs under Voila: :attr:`Settings.voila_static_dir`,
    :attr:`Settings.voila_base_url`, :attr:`Settings.in_voila`.
JUPYTERHUB_SERVICE_PREFIX
    The JupyterHub prefix of this server: :attr:`Settings.jupyterhub_prefix`.
JPY_SESSION_NAME
    Set by a Jupyter server for its sessions' kernels: :attr:`Settings.in_jupyter_session`.
NUMBA_CACHE_DIR
    numba's on-disk cache of compiled kernels.  When unset, ``import quantdesk`` sets it
    to ``$QUANTDESK_HOME/numba_cache`` if ``QUANTDESK_HOME`` is set, else to
    ``quantdesk/numba`` in the user's cache directory (``~/.cache`` on Linux), so every
    kernel, report and cron job reuses what one compiled (see :mod:`quantdesk.numba_cache`).

Secrets (webhook URL and token, API keys, cookie secrets) come from the environment
only, through :func:`secret`, and are never stored on :class:`Settings` (whose repr a
log or a report may show).  Processes that hand the environment on (report kernels,
cron lines, batch workers) read it through :func:`environment`: this module is the
one place quantdesk reads environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quantdesk.core.paths import find_quantdesk_project, is_quantdesk_project, package_checkout
from quantdesk.numba_cache import default_numba_cache_dir, quantdesk_cache_dir

__all__ = [
    "DEFAULT_COMMISSION_BPS",
    "DEFAULT_SLIPPAGE_BPS",
    "MONITOR_RULES_ENV",
    "VOILA_STATIC_ENV",
    "Settings",
    "environment",
    "kernel_settings_env",
    "project_root",
    "secret",
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


#: The variables ``quantdesk voila`` and the monitor set for the processes they start.
def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    """Return a whole-number variable, None when unset; a bad value names the variable."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None


MONITOR_RULES_ENV = "QUANTDESK_MONITOR_RULES"
VOILA_STATIC_ENV = "QUANTDESK_VOILA_STATIC"


def _env_user_path(environ: Mapping[str, str], name: str) -> Path | None:
    """Return the variable ``name`` as a path with ``~`` expanded; None when unset or empty."""
    value = environ.get(name)
    return Path(value).expanduser() if value else None


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
    #: ``QUANTDESK_SNAPSHOT``: the snapshot URL notebooks read bars from instead of the store.
    snapshot_url: str | None = None
    #: ``QUANTDESK_SNAPSHOT_VERSION``: the version of :attr:`snapshot_url` read (None: newest).
    snapshot_version: int | None = None
    #: ``QUANTDESK_CATALOG``: the report catalog file, when set (else the project's).
    catalog_path: Path | None = None
    #: ``QUANTDESK_FINBERT_PATH``: a local FinBERT directory standing in for the hub id.
    finbert_path: Path | None = None
    #: ``QUANTDESK_ONNX_CACHE``: where sentiment models exported to ONNX are kept.
    onnx_cache_dir: Path | None = None
    #: ``QUANTDESK_WEBHOOK_CONFIG``: the webhook's YAML file, when set explicitly.
    webhook_config: Path | None = None
    #: ``QUANTDESK_MONITOR_RULES``: the rule set of the market monitor's live scan.
    monitor_rules: Path | None = None
    #: ``QUANTDESK_VOILA_STATIC``: the folder a Voila app's static outputs are served from.
    voila_static_dir: Path | None = None
    #: ``VOILA_BASE_URL``: the Voila server's base URL ("/" when unset).
    voila_base_url: str = "/"
    #: Whether this process is a kernel started by Voila (any ``VOILA_*`` variable set).
    in_voila: bool = False
    #: Whether a Jupyter server started this process as a session's kernel
    #: (``JPY_SESSION_NAME`` set: JupyterLab, Notebook 7; papermill and Voila do not).
    in_jupyter_session: bool = False
    #: ``JUPYTERHUB_SERVICE_PREFIX``: this Jupyter server's prefix under JupyterHub.
    jupyterhub_prefix: str | None = None
    #: ``QUANTDESK_SNAPSHOT_CACHE``: the local cache of remote snapshots' files (their
    #: names carry their content hash, so a cached file is never stale).
    snapshot_cache_dir: Path | None = None

    @property
    def snapshot_cache(self) -> Path:
        """Return the snapshot cache: :attr:`snapshot_cache_dir`, else ``<home>/snapshot_cache``."""
        return self.snapshot_cache_dir or self.home / "snapshot_cache"

    @property
    def webhook_file(self) -> Path:
        """Return the webhook's YAML file: :attr:`webhook_config`, else ``<home>/webhook.yaml``."""
        return self.webhook_config or self.home / "webhook.yaml"

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
            snapshot_url=env.get("QUANTDESK_SNAPSHOT") or None,
            snapshot_version=_env_int(env, "QUANTDESK_SNAPSHOT_VERSION"),
            catalog_path=_env_user_path(env, "QUANTDESK_CATALOG"),
            finbert_path=_env_user_path(env, "QUANTDESK_FINBERT_PATH"),
            onnx_cache_dir=_env_path(env, "QUANTDESK_ONNX_CACHE", here)
            or Path(quantdesk_cache_dir("onnx", env)),
            webhook_config=_env_user_path(env, "QUANTDESK_WEBHOOK_CONFIG"),
            monitor_rules=_env_user_path(env, MONITOR_RULES_ENV),
            voila_static_dir=_env_user_path(env, VOILA_STATIC_ENV),
            voila_base_url=env.get("VOILA_BASE_URL") or "/",
            in_voila=any(name.startswith("VOILA_") for name in env),
            in_jupyter_session="JPY_SESSION_NAME" in env,
            jupyterhub_prefix=env.get("JUPYTERHUB_SERVICE_PREFIX") or None,
            snapshot_cache_dir=_env_path(env, "QUANTDESK_SNAPSHOT_CACHE", here),
        )


def settings() -> Settings:
    """Return settings from the environment as it is now (re-read on every call)."""
    return Settings.from_env()


def environment() -> Mapping[str, str]:
    """Return this process's environment, for handing on to a process it starts.

    Report kernels, batch workers and cron lines carry settings (and, for kernels, the
    whole environment) to the processes they start; they read it here rather than
    from :data:`os.environ` themselves.
    """
    return os.environ


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the secret environment variable ``name``, or None when unset or empty.

    Secrets (``QUANTDESK_WEBHOOK_URL``, ``QUANTDESK_WEBHOOK_TOKEN``, API keys, cookie
    secrets) are read here, at the moment they are needed, and never kept on
    :class:`Settings`, whose repr may reach a log or a report.
    """
    env = os.environ if environ is None else environ
    return env.get(name) or None


def kernel_settings_env(
    extra_env: Mapping[str, str], cwd: Path, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], Path]:
    """Return ``(variables to pin for a child process, the store path it will read)``.

    A child (a report's kernel, a Voila kernel) started in ``cwd`` with this
    environment plus ``extra_env`` finds its store by the store rule from ``cwd``.
    Where that gives the same store as this process, nothing is pinned; where it would
    give another (a notebook outside the project, a relative ``QUANTDESK_HOME``),
    ``QUANTDESK_HOME`` and ``QUANTDESK_STORE`` are pinned to this process's absolute
    values, unless ``extra_env`` sets them.
    """
    env = os.environ if environ is None else environ
    base = {**env, **extra_env}
    mine = Settings.from_env(env)
    pinned: dict[str, str] = {}
    theirs = Settings.from_env(base, cwd=cwd)
    if "QUANTDESK_HOME" not in extra_env and theirs.home != mine.home:
        pinned["QUANTDESK_HOME"] = str(mine.home.absolute())
    if "QUANTDESK_HOME" not in extra_env and "QUANTDESK_STORE" not in extra_env:
        theirs = Settings.from_env({**base, **pinned}, cwd=cwd)
        if theirs.store_path != mine.store_path:
            pinned["QUANTDESK_STORE"] = str(mine.store_path.absolute())
    return pinned, Settings.from_env({**base, **pinned}, cwd=cwd).store_path
