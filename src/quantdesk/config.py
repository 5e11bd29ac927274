"""One settings object for quantdesk: paths and tunables, read from the environment.

Environment variables
---------------------
QUANTDESK_HOME
    Root of the local data directory (default ``./data`` under the current directory).
    The market store lives at ``$QUANTDESK_HOME/quantdesk.duckdb``.
QUANTDESK_STORE
    Full path of the DuckDB store file; overrides the default under ``QUANTDESK_HOME``.
QUANTDESK_REPORTS
    Directory where published reports go (default ``./reports``).
QUANTDESK_MODELS
    Directory or fsspec URL of the model registry (default ``$QUANTDESK_HOME/models``).
QUANTDESK_LOCK_TIMEOUT
    Seconds a store operation waits for another process's lock before failing (default 60).
QUANTDESK_LOG_LEVEL
    Logging level for the ``quantdesk`` CLI (default ``INFO``).
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
from dataclasses import dataclass
from pathlib import Path

from quantdesk.numba_cache import default_numba_cache_dir

__all__ = ["DEFAULT_COMMISSION_BPS", "DEFAULT_SLIPPAGE_BPS", "Settings", "settings"]

#: Commission on traded value, in basis points, of every backtest unless told otherwise
#: (``backtest.run``, sweeps, walk-forward and ``quantdesk backtest``).  A backtest
#: without costs flatters every strategy that trades; 1 bp is what a liquid equity, ETF
#: or FX-major order pays a low-cost broker.  Pass 0 for a frictionless run.  Fixed in
#: code, not read from the environment, so a backtest reads the same on every machine.
DEFAULT_COMMISSION_BPS = 1.0
#: Slippage against the close, in basis points: about half a liquid spread plus impact.
DEFAULT_SLIPPAGE_BPS = 2.0


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


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

    @classmethod
    def from_env(cls) -> Settings:
        """Return settings read from the current environment."""
        home = _env_path("QUANTDESK_HOME", Path.cwd() / "data")
        return cls(
            home=home,
            store_path=_env_path("QUANTDESK_STORE", home / "quantdesk.duckdb"),
            reports_dir=_env_path("QUANTDESK_REPORTS", Path.cwd() / "reports"),
            models_url=os.environ.get("QUANTDESK_MODELS", str(home / "models")),
            lock_timeout=float(os.environ.get("QUANTDESK_LOCK_TIMEOUT", "60")),
            log_level=os.environ.get("QUANTDESK_LOG_LEVEL", "INFO").upper(),
            numba_cache_dir=_env_path("NUMBA_CACHE_DIR", Path(default_numba_cache_dir())),
        )


def settings() -> Settings:
    """Return settings from the environment as it is now (re-read on every call)."""
    return Settings.from_env()
