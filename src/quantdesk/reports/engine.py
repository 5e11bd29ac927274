"""The papermill engine that starts a report's kernel with its own environment and folder.

The kernel gets this process's environment plus the run's ``env``, and starts in the
run's ``cwd``.  Both are handed to the kernel launcher through a small papermill engine
registered as ``"quantdesk"``, instead of papermill's ``cwd=`` (which calls
``os.chdir``) or a temporary change of ``os.environ``: both of those are process-wide,
and the scheduler and batch executor may run reports from several threads at once.
``QUANTDESK_HOME`` and ``QUANTDESK_STORE`` are pinned to this process's absolute
settings where the store rule would give the kernel another store, unless ``env`` sets
them (:func:`kernel_data_env`), so the kernel reads the store the run record fingerprints.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantdesk.config import kernel_settings_env

__all__ = ["ENGINE_NAME", "kernel_data_env", "register_engine"]

ENGINE_NAME = "quantdesk"
"""The papermill engine that launches the kernel with a given environment and cwd."""

_ENGINE_LOCK = threading.Lock()


def register_engine() -> str:
    """Return the engine name after registering it with papermill (once per process)."""
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillException

    with _ENGINE_LOCK:
        try:
            papermill_engines.get_engine(ENGINE_NAME)
            return ENGINE_NAME
        except PapermillException:
            pass  # not registered yet in this process
        from papermill.clientwrap import PapermillNotebookClient
        from papermill.engines import NBClientEngine
        from papermill.utils import merge_kwargs, remove_args

        class KernelLaunchEngine(NBClientEngine):  # type: ignore[misc]
            """papermill's nbclient engine, launching the kernel with an env and a cwd."""

            @classmethod
            def execute_managed_notebook(
                cls,
                nb_man: Any,
                kernel_name: str,
                log_output: bool = False,
                stdout_file: Any = None,
                stderr_file: Any = None,
                start_timeout: int = 60,
                execution_timeout: float | None = None,
                kernel_env: Mapping[str, str] | None = None,
                kernel_cwd: str | None = None,
                **kwargs: Any,
            ) -> Any:
                # Same argument handling as NBClientEngine; the only change is that the
                # launch arguments reach KernelManager.start_kernel (env=, cwd=).
                kwargs = remove_args(["input_path"], **kwargs)
                safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
                final_kwargs = merge_kwargs(
                    safe_kwargs,
                    timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                    startup_timeout=start_timeout,
                    kernel_name=kernel_name,
                    log=logging.getLogger("papermill"),
                    log_output=log_output,
                    stdout_file=stdout_file,
                    stderr_file=stderr_file,
                )
                launch: dict[str, Any] = {}
                if kernel_env is not None:
                    launch["env"] = dict(kernel_env)
                if kernel_cwd is not None:
                    launch["cwd"] = kernel_cwd
                return PapermillNotebookClient(nb_man, **final_kwargs).execute(**launch)

        papermill_engines.register(ENGINE_NAME, KernelLaunchEngine)
    return ENGINE_NAME


def kernel_data_env(extra_env: Mapping[str, str], kernel_cwd: Path) -> tuple[dict[str, str], Path]:
    """Return ``(variables to pin for the kernel, the store path the kernel will read)``.

    The kernel finds its store by the store rule (:mod:`quantdesk.config`) from its own
    folder; :func:`quantdesk.config.kernel_settings_env` decides what to pin.
    """
    return kernel_settings_env(extra_env, kernel_cwd)
