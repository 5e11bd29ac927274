"""Make published HTML render with no network: CDN assets become files under ``reports/_static``.

A notebook that draws with HoloViews, hvplot or Panel carries a loader script that
fetches BokehJS and Panel's JavaScript and stylesheets from ``cdn.bokeh.org`` and
``cdn.holoviz.org``; nbconvert's page adds require.js, MathJax and mermaid from
``cdnjs``.  A research server without internet then shows tables but no charts.

Two things make a page self-sufficient:

* :data:`OFFLINE_TEMPLATE` (used by :func:`quantdesk.reports.publish.render_html`)
  leaves out the page-level require.js, MathJax, mermaid and widget-manager scripts.
  None is installed locally (nothing here downloads), quantdesk's notebooks need none
  of them, and BokehJS loads more simply without require.js.  A notebook with TeX
  in its markdown shows the TeX source (a warning is logged).
* :func:`localise_assets` rewrites every CDN URL that an installed package can serve
  (bokeh's ``server/static/js``, panel's ``dist``) to a relative path into one shared
  folder, ``<reports_dir>/_static/<package>-<version>/...``, copying each file there
  once.

Why a shared folder and not the files inlined into each page: BokehJS, its widgets,
tables and GL bundles and panel.min.js weigh about 3 MB, which every run would copy;
the shared folder holds them once, and a page stays the size of its own data.  The
folder is named by package version, so a page published before an upgrade keeps the
files it was made with.  A report folder moved out of ``reports/`` loses its assets;
copy ``_static`` beside it (the relative path is ``../../_static``).

Examples
--------
>>> remote_assets('<script src="https://cdn.example.org/x.js"></script><a href="https://x.org">')
['https://cdn.example.org/x.js']
>>> remote_assets('<script src="../../_static/bokeh-3.9.2/bokeh.min.js"></script>')
[]
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "OFFLINE_TEMPLATE",
    "STATIC_DIR_NAME",
    "localise_assets",
    "markdown_has_tex",
    "remote_assets",
    "serve_from_jupyter",
]

logger = logging.getLogger(__name__)

STATIC_DIR_NAME = "_static"
"""The shared asset folder's name under the reports directory."""

OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js_requirejs %}{% endblock html_head_js_requirejs %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block data_widget_view scoped %}
{%- if 'text/html' in output.data %}
<div class="jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output {{ extra_class }}">
{{ output.data['text/html'] }}
</div>
{%- else %}
<pre>{{ output.data['text/plain'] | escape }}</pre>
{%- endif %}
{%- endblock data_widget_view %}
"""
"""nbconvert's lab page without its CDN scripts (require.js, MathJax, mermaid, widgets).

With no widget manager a widget cannot draw, so a widget output shows its static
``text/html`` snapshot when it has one (the explorers do), else its plain text."""

# The CDN URLs that notebook outputs of bokeh, HoloViews, hvplot and Panel carry:
# group 1 is the package's version, group 2 the file's path in the package.
_BOKEH_URL = re.compile(
    r"https://cdn\.bokeh\.org/bokeh/release/(bokeh(?:-[a-z]+)?)-(\d[\w.]*?)\.min\.js"
)
_PANEL_URL = re.compile(
    r"https://cdn\.holoviz\.org/panel/([^/\"'\s\\]+)/dist/([^\"'\s\\?#]+)(\?[^\"'\s\\]*)?"
)
# A script or stylesheet that a page loads from the network: a tag attribute, or an
# entry of the Bokeh loader's js_urls / css_urls lists.
_REMOTE_TAG = re.compile(
    r"<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?(https?://[^\"'\s>]+)", re.IGNORECASE
)
_LOADER_LIST = re.compile(r"(?:js_urls|css_urls|js_modules)\s*=\s*\[([^\]]*)\]")
_URL_IN_LIST = re.compile(r"[\"'](https?://[^\"']+)[\"']")
_CSS_URL = re.compile(r"url\(\s*[\"']?([^\"')]+)[\"']?\s*\)")
_TEX = re.compile(r"\$\$|\\\(|\\\[|(?<![\\$])\$[^$\n]+\$")


def remote_assets(page: str) -> list[str]:
    """Return the ``http(s)://`` scripts and stylesheets that ``page`` would load, in order.

    Looks at ``<script src>`` and ``<link href>`` tags and at the ``js_urls``,
    ``css_urls`` and ``js_modules`` lists of the Bokeh/Panel loader; plain links
    (``<a href>``) and URLs in comments are not loads and are not listed.
    """
    found = [m.group(1) for m in _REMOTE_TAG.finditer(page)]
    for listing in _LOADER_LIST.finditer(page):
        found.extend(m.group(1) for m in _URL_IN_LIST.finditer(listing.group(1)))
    for pattern in (_BOKEH_URL, _PANEL_URL):
        found.extend(m.group(0) for m in pattern.finditer(page))
    return list(dict.fromkeys(found))


def _package_root(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _copy_once(source: Path, target: Path) -> None:
    # Each file is written whole under its final name with a rename, so a page opened
    # while another run publishes never reads half a BokehJS.
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class _AssetFolder:
    """Copies package files into ``<static_dir>/<package>-<version>/`` on first use."""

    def __init__(self, static_dir: Path) -> None:
        self.static_dir = static_dir
        self._roots: dict[str, tuple[Path, str] | None] = {}

    def root(self, package: str, asset_dir: str) -> tuple[Path, str] | None:
        if package not in self._roots:
            base = _package_root(package)
            try:
                version = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                version = ""
            found = base / asset_dir if base is not None else None
            self._roots[package] = (found, version) if found and found.is_dir() else None
        return self._roots[package]

    def installed(self, package: str, asset_dir: str, version: str, relpath: str) -> Path | None:
        """Return the installed file ``relpath`` of ``package`` at ``version``, or ``None``."""
        root = self.root(package, asset_dir)
        if root is None or root[1] != version:
            return None
        source = (root[0] / relpath).resolve()
        if not source.is_file() or not source.is_relative_to(root[0].resolve()):
            return None
        return source

    def copy(self, package: str, asset_dir: str, version: str, relpath: str) -> str | None:
        """Return the file's path under ``static_dir`` (posix) after copying it there."""
        source = self.installed(package, asset_dir, version, relpath)
        root = self.root(package, asset_dir)
        if source is None or root is None:
            return None
        local = f"{package}-{version}/{relpath}"
        target = self.static_dir / local
        _copy_once(source, target)
        if source.suffix == ".css":
            # A stylesheet's own relative url(...)s (Panel's spinners) come along.
            for ref in _CSS_URL.findall(source.read_text(encoding="utf-8", errors="replace")):
                if ":" in ref or ref.startswith(("/", "#")):
                    continue
                dependency = (source.parent / ref).resolve()
                if dependency.is_file() and dependency.is_relative_to(root[0].resolve()):
                    rel = dependency.relative_to(root[0].resolve()).as_posix()
                    _copy_once(dependency, self.static_dir / f"{package}-{version}/{rel}")
        return local


def localise_assets(
    page: str,
    static_dir: str | Path,
    page_dir: str | Path | None = None,
    *,
    url_prefix: str | None = None,
) -> str:
    """Return ``page`` with its bokeh and Panel CDN URLs pointing into ``static_dir``.

    Each file is copied from the installed package into
    ``<static_dir>/<package>-<version>/`` (once; later pages reuse it) and the URL
    becomes a path relative to ``page_dir``, the folder the page will be published
    in, or ``url_prefix`` + the file's path when a server serves ``static_dir`` there
    (``"/voila/static"``).  A URL whose version is not the installed one, or whose
    file the package does not ship, is left alone and logged: the page would need the
    network for it.
    """
    static_dir = Path(static_dir)
    if url_prefix is not None:
        prefix = url_prefix.rstrip("/")
    elif page_dir is not None:
        prefix = Path(os.path.relpath(static_dir, Path(page_dir))).as_posix()
    else:
        raise TypeError("localise_assets needs page_dir or url_prefix")
    assets = _AssetFolder(static_dir)

    def relative(local: str) -> str:
        return quote(f"{prefix}/{local}", safe="/.-_~:")

    def bokeh(match: re.Match[str]) -> str:
        name, version = match.group(1), match.group(2)
        local = assets.copy("bokeh", "server/static/js", version, f"{name}.min.js")
        if local is None:
            logger.warning("no local copy of %s; the page needs the network for it", match[0])
            return match.group(0)
        return relative(local)

    def panel(match: re.Match[str]) -> str:
        version, path = match.group(1), match.group(2)
        local = assets.copy("panel", "dist", version, path)
        if local is None:
            logger.warning("no local copy of %s; the page needs the network for it", match[0])
            return match.group(0)
        return relative(local)

    page = _BOKEH_URL.sub(bokeh, page)
    return _PANEL_URL.sub(panel, page)


# Where Panel's Jupyter server extension (``panel.io.jupyter_server_extension``, enabled
# by installing panel) serves the installed files: bokeh's ``server/static`` and
# panel's ``dist``.
_SERVED_BOKEH = "panel-preview/static/js/"
_SERVED_PANEL = "panel_dist/"


def serve_from_jupyter(page: str, base_url: str = "/") -> str:
    """Return ``page`` with its bokeh and Panel CDN URLs pointing at the Jupyter server.

    Panel's Jupyter server extension serves the installed BokehJS under
    ``<base_url>panel-preview/static/js/`` and Panel's ``dist`` under
    ``<base_url>panel_dist/``; a notebook output rewritten this way draws with no
    network and holds a few URLs instead of 6 MB of inline JavaScript.  A URL whose
    version is not the installed one, or whose file the package does not ship, is left
    alone and logged.

    Examples
    --------
    >>> import bokeh
    >>> url = f"https://cdn.bokeh.org/bokeh/release/bokeh-{bokeh.__version__}.min.js"
    >>> serve_from_jupyter(f'<script src="{url}"></script>')
    '<script src="/panel-preview/static/js/bokeh.min.js"></script>'
    """
    prefix = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    assets = _AssetFolder(Path())

    def bokeh(match: re.Match[str]) -> str:
        name, version = match.group(1), match.group(2)
        if assets.installed("bokeh", "server/static/js", version, f"{name}.min.js") is None:
            logger.warning("no local copy of %s; the output needs the network for it", match[0])
            return match.group(0)
        return f"{prefix}{_SERVED_BOKEH}{name}.min.js"

    def panel(match: re.Match[str]) -> str:
        version, path = match.group(1), match.group(2)
        if assets.installed("panel", "dist", version, path) is None:
            logger.warning("no local copy of %s; the output needs the network for it", match[0])
            return match.group(0)
        return f"{prefix}{_SERVED_PANEL}{quote(path, safe='/.-_~')}"

    page = _BOKEH_URL.sub(bokeh, page)
    return _PANEL_URL.sub(panel, page)


def markdown_has_tex(sources: list[str]) -> bool:
    """Return whether any markdown source looks like it holds TeX (``$...$``, ``\\(``)."""
    return any(_TEX.search(text) for text in sources)
