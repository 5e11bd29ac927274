"""Published HTML renders its charts in a real Chromium with every network request refused.

:func:`assert_renders_offline` is the check; the notebook suite
(tests/notebooks/test_notebooks.py) runs it on every notebook it publishes, and the
tests here run it on a small hvplot notebook, the runs index and a failed run.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from quantdesk.reports import run_report
from quantdesk.reports.offline import (
    STATIC_DIR_NAME,
    localise_assets,
    markdown_has_tex,
    remote_assets,
)

from ..conftest import CANVAS_SIZES_JS

# For every Bokeh figure in the page, the sizes of the canvases it draws; then the tool
# icons of every toolbar (Bokeh 3 renders both inside shadow roots).
FIGURES_JS = """() => {
  const deep = (root, found) => {
    for (const el of root.querySelectorAll('*')) {
      found.push(el);
      if (el.shadowRoot) deep(el.shadowRoot, found);
    }
    return found;
  };
  const figures = deep(document, []).filter((el) => el.classList.contains('bk-Figure'));
  return figures.map((figure) => {
    const els = deep(figure.shadowRoot || figure, []);
    return {canvases: els.filter((el) => el.tagName === 'CANVAS').map((c) => [c.width, c.height])};
  });
}"""
TOOLS_JS = """() => {
  const tools = new Set();
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      for (const cls of el.classList) if (cls.startsWith('bk-tool-icon-')) tools.add(cls.slice(13));
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return [...tools];
}"""


def assert_renders_offline(page, html_path: Path, figures: int | None = None) -> list[dict]:
    """Return the drawn Bokeh figures of ``html_path``, opened with non-file requests refused.

    Fails when the page asks for any script or stylesheet off the machine, when a
    console error or page error is logged, or when a chart does not draw: every
    figure embedded in the page must have a canvas of non-zero size and a toolbar
    with hover and a zoom tool.  ``figures``, when given, is how many figures the
    page must have.
    """
    text = html_path.read_text(encoding="utf-8")
    assert remote_assets(text) == [], f"{html_path.name} loads assets from the network"
    refused: list[tuple[str, str]] = []

    def only_files(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append((route.request.resource_type, route.request.url))
            route.abort()

    page.route("**/*", only_files)
    page.goto(html_path.resolve().as_uri())
    # One bokeh Figure model per plot, alone or inside a layout.
    expected = text.count('"name":"Figure"')
    if figures is not None:
        assert expected == figures, f"{html_path.name}: {expected} embedded figures"
    if expected:
        # Each figure's canvas gets a size once BokehJS has drawn it; the timeout only
        # bounds a hang (BokehJS never loading).
        page.wait_for_function(
            "(n) => { const figures = (" + FIGURES_JS + ")(); return figures.length >= n"
            " && figures.every((f) => f.canvases.some(([w, h]) => w * h > 0)); }",
            arg=expected,
            timeout=60_000,
        )
    drawn = page.evaluate(FIGURES_JS)
    assert len(drawn) == expected
    for figure in drawn:
        assert any(w > 0 and h > 0 for w, h in figure["canvases"]), figure
    if expected:
        # Still interactive: the toolbars (one per figure, or one per layout) have
        # hover and zoom.
        tools = set(page.evaluate(TOOLS_JS))
        assert "hover" in tools, tools
        assert {"wheel-zoom", "box-zoom"} & tools, tools
        assert all(w > 0 and h > 0 for w, h in page.evaluate(CANVAS_SIZES_JS))
    assets = [(kind, url) for kind, url in refused if kind in ("script", "stylesheet", "font")]
    assert not assets, f"{html_path.name} asked the network for {assets}"
    assert not refused, f"{html_path.name} made network requests: {refused}"
    assert not page.console_errors, page.console_errors
    return drawn


def plot_notebook(path: Path) -> Path:
    """Return ``path`` after writing a two-chart hvplot notebook with a parameters cell."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Two charts"),
            new_code_cell("rows = 5", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "import pandas as pd\nimport hvplot.pandas  # noqa: F401\n"
                "frame = pd.DataFrame({'close': range(rows), 'open': range(rows)})\n"
                "frame.hvplot.line(title='closing-prices')"
            ),
            new_code_cell("frame.hvplot.scatter('open', 'close', title='scatter')"),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


# -------------------------------------------------------------------------- pure parts


def test_remote_assets_finds_tags_and_loader_lists_but_not_links() -> None:
    page = (
        '<script src="https://cdnjs.cloudflare.com/require.min.js"></script>'
        "<link rel='stylesheet' href='http://example.org/a.css'>"
        '<a href="https://github.com/x">a link</a>'
        'const js_urls = ["https://cdn.example.org/x.js"]; const css_urls = [];'
        '{"stylesheets": ["https://cdn.holoviz.org/panel/1.9.4/dist/css/loading.css?v=1"]}'
    )
    assert remote_assets(page) == [
        "https://cdnjs.cloudflare.com/require.min.js",
        "http://example.org/a.css",
        "https://cdn.example.org/x.js",
        "https://cdn.holoviz.org/panel/1.9.4/dist/css/loading.css?v=1",
    ]


def test_localise_assets_copies_once_per_version_and_links_relatively(tmp_path: Path) -> None:
    import bokeh
    import panel

    page = (
        f'["https://cdn.bokeh.org/bokeh/release/bokeh-{bokeh.__version__}.min.js", '
        f'"https://cdn.holoviz.org/panel/{panel.__version__}/dist/css/loading.css?v=x", '
        # Another version is not ours to serve: it stays (and is logged).
        '"https://cdn.bokeh.org/bokeh/release/bokeh-0.0.1.min.js"]'
    )
    static = tmp_path / "reports" / STATIC_DIR_NAME
    run_dir = tmp_path / "reports" / "nb" / "run1"
    out = localise_assets(page, static, run_dir)
    bokeh_js = static / f"bokeh-{bokeh.__version__}" / "bokeh.min.js"
    assert f'"../../_static/bokeh-{bokeh.__version__}/bokeh.min.js"' in out
    assert f'"../../_static/panel-{panel.__version__}/css/loading.css"' in out
    assert "https://cdn.bokeh.org/bokeh/release/bokeh-0.0.1.min.js" in out
    assert bokeh_js.stat().st_size > 500_000
    # loading.css's spinners (url(../assets/...)) come along.
    assert list((static / f"panel-{panel.__version__}" / "assets").glob("*.svg"))
    # A second page reuses the files: nothing is rewritten.
    mtime = bokeh_js.stat().st_mtime_ns
    localise_assets(page, static, tmp_path / "reports" / "nb" / "run2")
    assert bokeh_js.stat().st_mtime_ns == mtime
    assert not [p for p in static.rglob("*.tmp")]
    assert oct(bokeh_js.stat().st_mode & 0o777) == "0o644"


def test_markdown_has_tex() -> None:
    assert markdown_has_tex(["Returns $r_t = p_t / p_{t-1} - 1$"])
    assert markdown_has_tex(["$$x^2$$"])
    assert not markdown_has_tex(["# History coloured by regime", "costs in $ and bps"])


# ---------------------------------------------------------------- in a real Chromium


@pytest.mark.slow
def test_published_charts_and_index_render_with_no_network(page, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    source = plot_notebook(tmp_path / "plots.ipynb")
    first = run_report(source, {"rows": 8}, reports_dir=reports, cwd=tmp_path)
    second = run_report(source, {"rows": 9}, reports_dir=reports, cwd=tmp_path)
    assert first.ok and second.ok, (first.reason, second.reason)

    assert_renders_offline(page, reports / "index.html", figures=0)
    page.unroute("**/*")
    drawn = assert_renders_offline(page, second.html_path, figures=2)
    assert len(drawn) == 2
    # Both runs share one asset folder, referenced relatively.
    text = first.html_path.read_text()
    assert "../../_static/bokeh-" in text
    assert "cdn.bokeh.org/bokeh/release/bokeh-" not in text.replace("cdn\\.bokeh", "")
    assert sorted(p.name for p in reports.iterdir() if p.is_dir()) == ["_static", "plots"]
    page_size = second.html_path.stat().st_size
    static_size = sum(p.stat().st_size for p in (reports / "_static").rglob("*") if p.is_file())
    assert page_size < static_size / 5  # BokehJS is not copied into the page


@pytest.mark.slow
def test_failed_run_page_renders_offline(page, tmp_path: Path) -> None:
    nb = new_notebook(cells=[new_code_cell("raise ValueError('no data')")])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "broken.ipynb")
    record = run_report(tmp_path / "broken.ipynb", {}, reports_dir=tmp_path / "reports")
    assert not record.ok
    assert_renders_offline(page, record.html_path, figures=0)
    assert page.locator("#quantdesk-run-banner").is_visible()


def test_static_folder_is_not_listed_as_a_run(tmp_path: Path) -> None:
    from quantdesk.reports import list_runs

    (tmp_path / STATIC_DIR_NAME / "bokeh-1.0").mkdir(parents=True)
    assert list_runs(tmp_path).empty
    assert os.path.isdir(tmp_path / STATIC_DIR_NAME)
