"""Serve one notebook as a Voila app with quantdesk's settings (``quantdesk voila``).

What :func:`voila_argv` asks Voila 0.5 for, and why:

* ``--preheat_kernel=True --pool_size=N``: Voila starts N kernels ahead and runs the
  notebook in them before anyone asks, so a request is answered with a page whose
  charts are already computed (the first paint costs the page, not the notebook).
  Progressive rendering stays off (Voila refuses it with preheated kernels).
* ``--Voila.ip``: 127.0.0.1 unless the user asks otherwise; any other address needs a
  token (:func:`quantdesk.dashboards.security.check_bind`).  The token is handed to
  Voila in-process, never on a command line that ``ps`` shows, and never logged.
* ``--Voila.root_dir``: the notebook's own folder.  Only that notebook is rendered (no
  tree, no other notebooks), and ``/voila/files/`` serves images under that folder
  alone; notebooks and ``.py`` files are refused (Voila's deny list).
* ``--no-browser``: a server started from a terminal on a research box has no browser.
* ``--VoilaConfiguration.extension_denylist``: the lab extensions that cannot load in
  Voila's JupyterLab core, and those the notebook's metadata says its page does not use
  (``"quantdesk": {"skip_lab_extensions": [...]}``).  Voila loads every installed lab
  extension into every page before it shows a cell; vectorbt's dependencies install
  plotly's (a 4.8 MB renderer) and anywidget's, which an app that draws with Bokeh
  only pays for at every visit.  Other notebooks keep them all.
* ``--template=quantdesk``: Voila's lab page without its Font Awesome stylesheets from
  a CDN (shipped in ``jupyter_data/``, copied into a temporary Jupyter data folder put
  first on ``JUPYTER_PATH``), and the ``@pyviz/jupyterlab_pyviz`` lab extension left
  out (built for a newer JupyterLab than Voila's, it fails to load and logs an error;
  HoloViews output renders without it).  The template's ``static/`` folder, served at
  ``/voila/static/``, receives BokehJS from the kernels
  (:func:`quantdesk.dashboards.explorers.load_bokeh` copies it there, and rewrites the
  CDN URLs of every other output to it), so an app needs no network and the browser
  caches BokehJS instead of parsing megabytes of inline script on every visit.  An
  output of :func:`page_scripts` becomes ``<script defer>`` tags of the page itself:
  the browser loads BokehJS alongside Voila's own code, not after it, and before any
  chart widget needs it.

Examples
--------
>>> argv = voila_argv("notebooks/dashboards/regime_explorer.ipynb")  # doctest: +SKIP
>>> [a for a in argv if a.startswith("--Voila.ip")]  # doctest: +SKIP
['--Voila.ip=127.0.0.1']
>>> serve_voila("notebooks/dashboards/regime_explorer.ipynb")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from quantdesk.dashboards.security import DEFAULT_ADDRESS, check_bind

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_PORT",
    "JUPYTER_DATA",
    "PAGE_SCRIPTS_MIME",
    "SKIP_EXTENSIONS",
    "TEMPLATE",
    "TOKEN_ENV",
    "page_scripts",
    "prepare_jupyter_data",
    "serve_voila",
    "skipped_extensions",
    "voila_argv",
]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8866
DEFAULT_POOL_SIZE = 1
TOKEN_ENV = "QUANTDESK_VOILA_TOKEN"
"""The environment variable ``quantdesk voila`` reads its token from."""
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter_data"
"""A Jupyter data folder holding quantdesk's Voila template."""
TEMPLATE = "quantdesk"
SKIP_EXTENSIONS = "skip_lab_extensions"
"""The notebook metadata field (under ``quantdesk``) naming lab extensions its page skips."""
PAGE_SCRIPTS_MIME = "application/vnd.quantdesk.page-scripts+json"
"""The output type quantdesk's template turns into the page's own ``<script defer>`` tags."""
# Lab extensions that cannot load in Voila 0.5.13's JupyterLab 4.2 core.
_DENIED_EXTENSIONS = ["@pyviz/jupyterlab_pyviz"]


def prepare_jupyter_data(folder: str | Path) -> Path:
    """Return the template's ``static`` folder after copying quantdesk's template into ``folder``.

    ``folder`` becomes a Jupyter data folder (``voila/templates/quantdesk/``) whose
    ``static/`` Voila serves at ``/voila/static/``: the kernels copy BokehJS and Panel's
    files there (:func:`quantdesk.dashboards.explorers.load_bokeh`).
    """
    target = Path(folder) / "voila" / "templates" / TEMPLATE
    shutil.copytree(JUPYTER_DATA / "voila" / "templates" / TEMPLATE, target, dirs_exist_ok=True)
    static = target / "static"
    static.mkdir(exist_ok=True)
    return static


def page_scripts(urls: list[str]) -> dict[str, dict[str, list[str]]]:
    """Return an output that has the page served by ``quantdesk voila`` load ``urls`` itself.

    Displayed by a kernel, it becomes ``<script defer src=...>`` tags in the page
    quantdesk's template writes, in order: the browser fetches them with the page and
    runs them before the page's ``DOMContentLoaded``, while Voila's own code is still
    loading, so a library the widgets need (BokehJS for ``jupyter_bokeh``) is there
    before any widget renders, and its loading overlaps Voila's.  A frontend that
    renders outputs itself (JupyterLab, Voila's other templates) has no renderer for
    the type and shows nothing.

    Examples
    --------
    >>> page_scripts(["/voila/static/a.js"])
    {'application/vnd.quantdesk.page-scripts+json': {'scripts': ['/voila/static/a.js']}}
    """
    return {PAGE_SCRIPTS_MIME: {"scripts": list(urls)}}


def skipped_extensions(notebook: str | Path) -> list[str]:
    """Return the lab extensions ``notebook``'s metadata says its page does not use.

    They are listed under ``metadata.quantdesk.skip_lab_extensions`` (none if absent).

    Raises
    ------
    ValueError
        The field is there but not a list of extension names.
    """
    path = Path(notebook)
    try:
        metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return []  # Voila reports an unreadable notebook itself
    names = metadata.get("quantdesk", {}).get(SKIP_EXTENSIONS, [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(
            f"{path}: metadata.quantdesk.{SKIP_EXTENSIONS} must be a list of lab extension "
            f"names, not {names!r}"
        )
    return names


def voila_argv(
    notebook: str | Path,
    *,
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    pool_size: int = DEFAULT_POOL_SIZE,
    preheat: bool = True,
) -> list[str]:
    """Return Voila's command-line arguments for serving ``notebook`` (no token in them).

    Parameters
    ----------
    notebook
        The ``.ipynb`` to serve; its folder becomes Voila's root.
    port
        The TCP port (``0`` is not accepted by Voila; pick a free one).
    address
        The interface to listen on.
    pool_size
        How many preheated kernels wait for visitors.
    preheat
        Whether kernels are started and the notebook run ahead of a request.

    Raises
    ------
    FileNotFoundError
        ``notebook`` is not a file.
    """
    path = Path(notebook).expanduser().resolve()
    if not path.is_file() or path.suffix != ".ipynb":
        raise FileNotFoundError(f"no notebook at {str(notebook)!r}")
    denied = [*_DENIED_EXTENSIONS, *skipped_extensions(path)]
    return [
        str(path),
        "--no-browser",
        f"--port={int(port)}",
        f"--Voila.ip={address}",
        f"--Voila.root_dir={path.parent}",
        f"--preheat_kernel={preheat}",
        f"--pool_size={int(pool_size) if preheat else 0}",
        "--show_tracebacks=False",
        f"--template={TEMPLATE}",
        f"--VoilaConfiguration.extension_denylist={denied!r}",
    ]


def serve_voila(
    notebook: str | Path,
    *,
    port: int = DEFAULT_PORT,
    address: str = DEFAULT_ADDRESS,
    token: str | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
    preheat: bool = True,
) -> None:
    """Return when the Voila server serving ``notebook`` stops (Ctrl-C); it runs in-process.

    Parameters
    ----------
    notebook, port, address, pool_size, preheat
        As for :func:`voila_argv`.
    token
        The token visitors must present (``?token=...`` once; a cookie after).  Required
        for any address that is not loopback; on loopback, ``None`` serves without one.

    Raises
    ------
    quantdesk.dashboards.security.InsecureBindError
        ``address`` is not loopback and no token was given.
    """
    check_bind(
        address,
        authenticated=bool(token),
        what="quantdesk voila",
        how=f"--token or the {TOKEN_ENV} environment variable",
    )
    argv = voila_argv(notebook, port=port, address=address, pool_size=pool_size, preheat=preheat)
    from quantdesk.config import VOILA_STATIC_ENV
    from quantdesk.reports.engine import kernel_data_env

    # The kernels start in the notebook's folder; where the store rule would give them
    # another store than this process's (a notebook outside the project), pin ours, as
    # the report runner does for papermill's kernels.
    pinned, store = kernel_data_env({}, Path(notebook).resolve().parent)
    os.environ.update(pinned)
    logger.info("the app's kernels read the store %s", store)

    with tempfile.TemporaryDirectory(prefix="quantdesk-voila-") as data:
        # Voila looks templates up on the Jupyter path when it starts, in this process;
        # its kernels inherit the environment and find the static folder through it.
        static = prepare_jupyter_data(data)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [data, *filter(None, os.environ.get("JUPYTER_PATH", "").split(os.pathsep))]
        )
        os.environ[VOILA_STATIC_ENV] = str(static)
        _launch(argv, token, address, port)


def _launch(argv: list[str], token: str | None, address: str, port: int) -> None:
    from traitlets.config import Config
    from voila.app import Voila

    config = Config()
    if token:
        config.Voila.token = token
    logger.info(
        "serving %s on http://%s:%d/ (%s)",
        argv[0],
        address,
        port,
        "token required" if token else "no token",
    )
    Voila.launch_instance(argv=argv, config=config)
