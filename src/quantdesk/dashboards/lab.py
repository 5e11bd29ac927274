"""JupyterLab at the project root with the project's environment (``quantdesk lab``).

What :func:`lab_launch` prepares, and why:

* ``--ServerApp.root_dir``: the project root the store rule finds
  (:func:`quantdesk.config.project_root`), else the working directory; every notebook
  under it opens the project's store, whichever folder its kernel starts in.
* ``--ServerApp.ip=127.0.0.1`` and ``--ServerApp.port_retries=0``: loopback only, and
  the port asked for or a clear failure, so the printed URL is the one served.
* This Python's JupyterLab (``python -m jupyterlab``) with this environment's ``bin``
  first on ``PATH``: the kernels, terminals and ``!quantdesk`` of the lab are the
  project's, not whatever ``jupyter`` the shell finds first.
* ``--LabApp.news_url=None`` and ``NeverCheckForUpdate``: the lab asks no outside host
  for news or a newer version (the machine may be offline, and the question is noise).
* The token travels in ``JUPYTER_TOKEN`` (never on a command line ``ps`` shows); the
  URL with it is what the command prints.

Extra arguments are passed to JupyterLab after these, so they win (``--no-browser``,
``--ServerApp.ip=...`` with JupyterLab's own token still required).

Examples
--------
>>> launch = lab_launch(port=8899, extra=["--no-browser"])  # doctest: +SKIP
>>> print(launch.summary())  # doctest: +SKIP
>>> launch.run()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from quantdesk.config import environment, project_root, settings

__all__ = ["LabLaunch", "lab_launch"]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8888


@dataclass(frozen=True)
class LabLaunch:
    """A JupyterLab server ready to start: its command, environment, folder and URL."""

    argv: list[str]
    env: dict[str, str] = field(repr=False)
    root: Path
    url: str
    store: Path
    store_source: str

    def summary(self) -> str:
        """Return what the command prints: the folder, the store and the URL to open."""
        return "\n".join(
            [
                f"JupyterLab in {self.root}",
                f"store: {self.store} (chosen by: {self.store_source})",
                f"open: {self.url}",
            ]
        )

    def run(self) -> NoReturn:
        """Replace this process with JupyterLab (never returns).

        An exec, not a child process: a signal sent to ``quantdesk lab`` (Ctrl-C, a
        service manager's or a test's SIGTERM) reaches JupyterLab itself, so no orphan
        server outlives the command.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        os.chdir(self.root)
        os.execve(self.argv[0], self.argv, self.env)


def lab_launch(
    *,
    port: int = DEFAULT_PORT,
    extra: Sequence[str] = (),
    cwd: str | Path | None = None,
    token: str | None = None,
) -> LabLaunch:
    """Return the JupyterLab launch for the project at or above ``cwd``.

    Parameters
    ----------
    port
        The port to serve on (127.0.0.1).
    extra
        Arguments passed to JupyterLab after quantdesk's own.
    cwd
        Where to look for the project (default the working directory).
    token
        The token visitors present; a random one when None.
    """
    found = project_root(cwd)
    root = found[0] if found is not None else Path(cwd or Path.cwd()).resolve()
    cfg = settings()
    token = token or secrets.token_hex(24)
    env = dict(environment())
    env["JUPYTER_TOKEN"] = token
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *filter(None, env.get("PATH", "").split(os.pathsep))])
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *extra,
    ]
    return LabLaunch(
        argv=argv,
        env=env,
        root=root,
        url=f"http://127.0.0.1:{port}/lab?token={token}",
        store=cfg.store_path,
        store_source=cfg.store_source,
    )
