"""quantdesk inside JupyterLab and Notebook 7: charts that draw offline, a live monitor in a cell.

Charts
------
HoloViews, hvplot, bokeh and Panel outputs carry a loader that fetches BokehJS and
Panel's JavaScript and stylesheets from ``cdn.bokeh.org`` and ``cdn.holoviz.org``;
without a network every chart is blank.  :func:`notebook` registers a hook on the
kernel's display publisher (and display hook) that points those URLs at the files the
Jupyter server itself serves from the installed packages (Panel's server extension:
``/panel-preview/static/js/`` for BokehJS, ``/panel_dist/`` for Panel), through
:func:`quantdesk.reports.offline.serve_from_jupyter`.

Served, not inline: Panel's inline loader (``pn.extension(inline=True)``) puts 6.1 MB
of JavaScript into every notebook's outputs (measured with panel 1.9.4 and bokeh
3.9.2), while the served loader is 39 kB and the browser caches the files once.

``import quantdesk`` calls :func:`notebook` by itself in a kernel that a Jupyter server
started (it sets ``JPY_SESSION_NAME``) and Voila did not: nothing heavy is imported
and it costs microseconds.  Papermill kernels keep the CDN URLs, which publishing
localises (:mod:`quantdesk.reports.offline`); Voila kernels have their own rewrite
(:mod:`quantdesk.dashboards.explorers`).  A server under a base URL other than ``/``
(JupyterHub sets ``JUPYTERHUB_SERVICE_PREFIX``) is followed; otherwise call
``qd.notebook(base_url=...)``.

Live monitor
------------
:func:`monitor_cell` returns the market monitor for a cell: it shares the kernel's one
:class:`~quantdesk.dashboards.hub.LiveHub` (one feed thread per kernel however often
the cell runs), updates on a guarded periodic callback, and is released (callback
stopped, references dropped) when the cell runs again, when its output is cleared or
replaced (JupyterLab tells the kernel), or when the kernel exits.

Examples
--------
>>> import quantdesk as qd
>>> qd.notebook()  # outside a Jupyter kernel there is nothing to do
False
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quantdesk.dashboards.hub import LiveHub
    from quantdesk.dashboards.monitor import MarketMonitor

__all__ = [
    "MonitorCell",
    "in_jupyter_server_kernel",
    "monitor_cell",
    "notebook",
    "rewrite_outputs",
]

logger = logging.getLogger(__name__)

_installed: dict[int, str] = {}  # id(shell) -> the base URL its hook uses
_lock = threading.Lock()


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def in_jupyter_server_kernel() -> bool:
    """Return whether this process is a kernel that a Jupyter server started (not Voila).

    Jupyter server sets ``JPY_SESSION_NAME`` for the kernels of its sessions (JupyterLab,
    Notebook 7); Voila sets ``VOILA_*``; papermill neither.
    """
    from quantdesk.config import settings

    current = settings()
    if not current.in_jupyter_session or current.in_voila:
        return False
    return _shell() is not None


def rewrite_outputs(shell: Any, rewrite: Callable[[str], str]) -> bool:
    """Return whether ``rewrite`` now applies to every string of every output ``shell`` sends.

    Display data (``display(...)``) goes through the display publisher, a cell's last
    value through the display hook; both get the hook.
    """
    publisher = getattr(shell, "display_pub", None)
    if publisher is None or not hasattr(publisher, "register_hook"):
        return False

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return rewrite(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    def hook(msg: dict[str, Any]) -> dict[str, Any]:
        content = msg.get("content", {})
        if isinstance(content, dict) and "data" in content:
            content["data"] = walk(content["data"])
        return msg

    publisher.register_hook(hook)
    displayhook = getattr(shell, "displayhook", None)
    if displayhook is not None and hasattr(displayhook, "register_hook"):
        displayhook.register_hook(hook)
    return True


def notebook(base_url: str | None = None) -> bool:
    """Return whether chart outputs of this kernel now load their JavaScript from the server.

    Installs the output hook once per kernel (later calls do nothing, except that a
    different ``base_url`` replaces the one used).  Outside a Jupyter kernel it does
    nothing and returns ``False``.

    Parameters
    ----------
    base_url
        The Jupyter server's base URL (default ``$JUPYTERHUB_SERVICE_PREFIX``, else
        ``/``).
    """
    shell = _shell()
    if shell is None:
        return False
    from quantdesk.config import settings

    base = base_url or settings().jupyterhub_prefix or "/"
    with _lock:
        first = id(shell) not in _installed
        _installed[id(shell)] = base
    if not first:
        return True

    def rewrite(text: str) -> str:
        if "cdn.bokeh.org" not in text and "cdn.holoviz.org" not in text:
            return text
        from quantdesk.reports.offline import serve_from_jupyter

        return serve_from_jupyter(text, _installed.get(id(shell), "/"))

    if not rewrite_outputs(shell, rewrite):
        with _lock:
            _installed.pop(id(shell), None)
        return False
    logger.debug("chart outputs load BokehJS and Panel from the Jupyter server at %s", base)
    if _extension_loaded():
        # A chart library (``import hvplot.pandas``) sent its CDN loader before quantdesk
        # was imported: send the served one, so the charts of later cells draw.
        from panel.io.notebook import load_notebook

        logger.warning(
            "import quantdesk before hvplot/holoviews/panel: their loader went out with CDN "
            "URLs; sending it again from the Jupyter server"
        )
        load_notebook(inline=False)
    return True


def _extension_loaded() -> bool:
    panel = sys.modules.get("panel")
    holoviews = sys.modules.get("holoviews")
    return bool(
        (panel is not None and getattr(panel.extension, "_loaded", False))
        or (holoviews is not None and getattr(holoviews.extension, "_loaded", False))
    )


def install_if_jupyter() -> bool:
    """Return whether :func:`notebook` was installed (in a Jupyter server's kernel only)."""
    return notebook() if in_jupyter_server_kernel() else False


# -- the live monitor in a cell ---------------------------------------------------------------

_current: MonitorCell | None = None
_hub: LiveHub | None = None
_shown: dict[str, MonitorCell] = {}  # root model id -> the cell that shows it


def _on_delete(root_id: str) -> None:
    # Panel's delete action: JupyterLab disposed an output (cleared, or replaced by a
    # re-run) and told the kernel which root model it showed.
    cell = _shown.pop(root_id, None)
    if cell is not None and not any(c is cell for c in _shown.values()):
        cell.release()


class MonitorCell:
    """The market monitor shown by a notebook cell; :meth:`release` stops its updates.

    Displaying it renders the monitor (a Panel layout) and starts its periodic
    callback; :func:`monitor_cell` releases the previous cell's monitor first.
    """

    def __init__(self, monitor: MarketMonitor) -> None:
        self.monitor = monitor
        self.released = False
        self._layout: Any = None

    def __repr__(self) -> str:
        state = "released" if self.released else "live"
        return f"MonitorCell({state}, {self.monitor.hub!r})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        from panel.io.state import state

        if self.released:
            return {"text/plain": repr(self)}, {}
        before = set(state._views)
        self._layout = self.monitor.__panel__()
        bundle = self._layout._repr_mimebundle_(include, exclude)
        for root_id in set(state._views) - before:
            _shown[root_id] = self
        self.monitor.start_updates()
        return bundle

    def release(self) -> None:
        """Stop the monitor's periodic callback and drop its references (idempotent)."""
        global _current
        if self.released:
            return
        self.released = True
        self.monitor.release()
        self._layout = None
        for root_id in [r for r, cell in _shown.items() if cell is self]:
            del _shown[root_id]
        if _current is self:
            _current = None
        logger.debug("monitor cell released")


def _kernel_hub() -> LiveHub:
    global _hub
    if _hub is None:
        from quantdesk.dashboards.hub import LiveHub

        _hub = LiveHub()
        atexit.register(_hub.stop)
    return _hub


def monitor_cell(hub: LiveHub | None = None, *, period: int = 500, **params: Any) -> MonitorCell:
    """Return the market monitor for a notebook cell, releasing the previous cell's one.

    Parameters
    ----------
    hub
        The hub whose feeds it shows (default: the kernel's one hub, on the store every
        process finds; its feed threads start once per kernel).
    period
        Milliseconds between two updates.
    **params
        Passed to :class:`~quantdesk.dashboards.monitor.MarketMonitor` (``feed``,
        ``panes``...).

    Examples
    --------
    >>> import quantdesk as qd  # doctest: +SKIP
    >>> qd.dashboards.monitor_cell()  # the last line of a cell shows it  # doctest: +SKIP
    """
    global _current
    import panel as pn

    from quantdesk.dashboards.monitor import MarketMonitor

    pn.extension("tabulator")  # the watchlist's table; loads Panel's JS once per cell
    if _on_delete not in pn.extension._delete_actions:
        pn.extension.add_delete_action(_on_delete)
    if _current is not None:
        _current.release()
    cell = MonitorCell(MarketMonitor(hub or _kernel_hub(), period=period, **params))
    _current = cell
    return cell
