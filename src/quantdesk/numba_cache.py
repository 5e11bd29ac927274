"""Where numba keeps its compiled kernels: one shared on-disk cache for every process.

numba compiles quantdesk's kernels (backtest orders, rolling windows, candles, regime
filters) on first use and, with ``cache=True``, stores them beside the source unless
``NUMBA_CACHE_DIR`` says elsewhere.  A Jupyter kernel, a Voila app or a cron job that
was not started by the Makefile gets no such variable, and a read-only or fresh
install then recompiles everything in every process (about 30 s before the first
backtest).  So ``import quantdesk`` chooses the directory itself when none is set, in
this order:

1. ``NUMBA_CACHE_DIR``, when set, is left as it is;
2. ``$QUANTDESK_HOME/numba_cache`` when ``QUANTDESK_HOME`` is set: a deployment that
   names its data directory keeps its compiled code beside it, and its cron lines and
   kernels (which carry ``QUANTDESK_*``) share it;
3. otherwise the user's cache directory, ``quantdesk/numba`` under ``$XDG_CACHE_HOME``
   or ``~/.cache`` (Linux), ``~/Library/Caches`` (macOS) or ``%LOCALAPPDATA%``
   (Windows).  Not the default ``QUANTDESK_HOME`` (``./data``): that moves with the
   working directory, and every notebook folder would compile its own copy.

The choice is written to ``os.environ``, so subprocesses (papermill kernels, process
pools, Dask workers on this machine) use the same cache.  numba keys each entry on the
source file's path and modification time, so checkouts and versions never collide.
Setting it costs microseconds and imports nothing heavy.

``quantdesk.backtest.warmup.warm_numba_cache`` (run by ``make demo``) compiles the
kernels a first backtest needs into that directory.

Other caches of built artefacts follow the same rule through :func:`quantdesk_cache_dir`
(the ONNX exports of sentiment models: ``$QUANTDESK_HOME/onnx_cache`` or
``quantdesk/onnx`` in the user's cache directory).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["configure_numba_cache", "default_numba_cache_dir", "quantdesk_cache_dir"]

_VARIABLE = "NUMBA_CACHE_DIR"


def _user_cache_root(environ: Mapping[str, str]) -> str:
    """Return the platform's per-user cache directory (the rule platformdirs follows)."""
    home = environ.get("HOME") or os.path.expanduser("~")
    if sys.platform == "win32":
        return environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches")
    xdg = environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative path.
    return xdg if os.path.isabs(xdg) else os.path.join(home, ".cache")


def quantdesk_cache_dir(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Return the directory of quantdesk's ``name`` cache (compiled or exported artefacts).

    ``$QUANTDESK_HOME/<name>_cache`` if ``QUANTDESK_HOME`` is set, else ``quantdesk/<name>``
    under the user's cache directory.

    Examples
    --------
    >>> quantdesk_cache_dir("onnx", {"QUANTDESK_HOME": "/srv/qd"}).replace("\\\\", "/")
    '/srv/qd/onnx_cache'
    """
    env = os.environ if environ is None else environ
    home = env.get("QUANTDESK_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), f"{name}_cache")
    return os.path.join(_user_cache_root(env), "quantdesk", name)


def default_numba_cache_dir(environ: Mapping[str, str] | None = None) -> str:
    """Return the cache directory quantdesk gives numba when ``NUMBA_CACHE_DIR`` is unset.

    ``$QUANTDESK_HOME/numba_cache`` if ``QUANTDESK_HOME`` is set, else ``quantdesk/numba``
    under the user's cache directory.
    """
    return quantdesk_cache_dir("numba", environ)


def configure_numba_cache() -> str:
    """Return numba's cache directory, setting ``NUMBA_CACHE_DIR`` first if it is unset.

    Run by ``import quantdesk``.  If numba is already imported its configuration is
    re-read, so kernels compiled from then on use the directory; kernels that numba
    already set up keep the place they had.
    """
    chosen = os.environ.get(_VARIABLE)
    if chosen:
        return chosen
    chosen = default_numba_cache_dir()
    os.environ[_VARIABLE] = chosen
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.reload_config()
    return chosen
