"""The front door: JupyterLab as ``make lab`` starts it, every notebook run in a real Chromium.

One JupyterLab server for the module, started by ``quantdesk lab`` in a temporary
project folder (a ``pyproject.toml`` with ``[tool.quantdesk]``, a copy of
``notebooks/``, a store filled by the CLI at ``<project>/data/quantdesk.duckdb``) with
no ``QUANTDESK_*`` variable set.  The browser refuses every request that leaves
127.0.0.1 and the test records them: a chart that needs a CDN fails here.

Each notebook is opened at ``/lab/tree/PATH?reset``, run with Run > Run All Cells, and
waited on until no prompt shows ``[*]``; then no cell may show an error, every chart
output must hold a drawn canvas, and the console must be clean.  A notebook outside
``notebooks/`` opens the same store and shows the live monitor, whose prices change
while we watch; running that cell again leaves one feed thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from ..conftest import ARTIFACTS, free_port, wait_for_http
from ..notebooks.test_notebooks import SMALL_PARAMETERS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.relative_to(ROOT) for p in (ROOT / "notebooks").rglob("*.ipynb"))
LOCAL = re.compile(r"^(?:https?|wss?)://127\.0\.0\.1(?::\d+)?/|^(?:data|blob|about):")

# Every chart output (a Bokeh/Panel/HoloViews output whose document holds a plot, or
# whose root BokehJS never rendered) and the drawn canvases inside it (Bokeh draws
# inside shadow roots).
CHARTS_JS = """() => {
  const drawn = (root) => {
    let n = 0;
    const walk = (r) => {
      for (const el of r.querySelectorAll('*')) {
        if (el.tagName === 'CANVAS' && el.width * el.height > 0) n++;
        if (el.shadowRoot) walk(el.shadowRoot);
      }
    };
    walk(root);
    return n;
  };
  const isPlot = (m) => ['Figure', 'Plot', 'GMapPlot'].includes(m.constructor.__name__);
  const out = [];
  for (const el of document.querySelectorAll('.jp-OutputArea-output')) {
    const inner = el.querySelector(':scope .jp-OutputArea-output [data-root-id]');
    const root = el.querySelector('[data-root-id]');
    if (!root || inner) continue;  // the innermost output that shows a Bokeh root
    const id = root ? root.getAttribute('data-root-id') : null;
    // A root BokehJS did not render (no view) counts as a chart that must draw.
    const view = window.Bokeh && window.Bokeh.index && window.Bokeh.index[id];
    const plots = view ? [...view.model.document.all_models].filter(isPlot).length : -1;
    out.push({id: id, plots: plots, canvases: drawn(el)});
  }
  return out;
}"""
RUNNING_JS = """() => [...document.querySelectorAll('.jp-InputArea-prompt')]
  .some((el) => el.textContent.includes('*'))"""
PROMPTS_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
  .map((el) => el.textContent.trim())"""
ERRORS_JS = """() => [...document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map((el) => el.textContent)
  .filter((t) => /Traceback|^\\s*\\w+(Error|Exception)\\b/m.test(t))"""
# The price cells of the monitor's watchlist (Tabulator, inside shadow roots).
PRICES_JS = """() => {
  const out = [];
  const walk = (r) => {
    for (const el of r.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('tabulator-cell')
          && el.getAttribute('tabulator-field') === 'price') out.push(el.textContent.trim());
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out.join('|');
}"""


def _cli(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "quantdesk", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"quantdesk {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def _small(path: Path) -> None:
    """Set the copy's parameters small, in a cell after its ``parameters`` cell."""
    wanted = SMALL_PARAMETERS.get(path.stem, [{}])[0]
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNELSPEC  # no "Select Kernel" dialog
    if not wanted:
        nbformat.write(nb, path)
        return
    tagged = [
        i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    assert len(tagged) == 1, f"{path.name}: needs one cell tagged 'parameters'"
    source = "\n".join(f"{k} = {v!r}" for k, v in wanted.items())
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)


KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
MONITOR_CELLS = [
    "import threading\nimport quantdesk as qd\n\nstore = qd.data.MarketStore()\n"
    "shown = []\nprint('STORE', store.path)",
    "cell = qd.dashboards.monitor_cell(panes=False)\nshown.append(cell)\ncell",
    "feeds = [t.name for t in threading.enumerate() if t.name.endswith('-feed')]\n"
    "print('FEEDS', json.dumps(feeds), 'RELEASED', json.dumps([c.released for c in shown]))",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's project: marker pyproject, a copy of notebooks/, a store filled by the CLI."""
    root = tmp_path_factory.mktemp("lab_project")
    (root / "pyproject.toml").write_text('[project]\nname = "research"\n\n[tool.quantdesk]\n')
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    for path in (root / "notebooks").rglob("*.ipynb"):
        _small(path)
    elsewhere = root / "research" / "live"
    elsewhere.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import json")] + [
        nbformat.v4.new_code_cell(src) for src in MONITOR_CELLS
    ]
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, elsewhere / "monitor.ipynb")
    env = _user_env()
    _cli("ingest", "sample", env=env, cwd=root)
    _cli("ingest", "simulate", "--symbols", "5", "--days", "2520", "--seed", "7", env=env, cwd=root)
    _cli("news", "demo", "--symbols", "5", "--days", "2520", "--seed", "7", env=env, cwd=root)
    _cli("sentiment", "score", "--model", "lexicon", env=env, cwd=root)
    assert (root / "data" / "quantdesk.duckdb").is_file()
    return root


def _user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")}


@pytest.fixture(scope="module")
def lab(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """JupyterLab started as `make lab` does: `quantdesk lab`, here from a subfolder."""
    port = free_port()
    settings = tmp_path_factory.mktemp("lab_settings")
    env = {
        **_user_env(),
        "JUPYTERLAB_SETTINGS_DIR": str(settings / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(settings / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(settings / "runtime"),
    }
    cmd = [sys.executable, "-m", "quantdesk", "lab", "--port", str(port), "--no-browser"]
    cmd += ["--allow-root"] if os.geteuid() == 0 else []  # JupyterLab refuses root without it
    log = (settings / "lab.log").open("w")
    proc = subprocess.Popen(
        cmd, env=env, cwd=project / "notebooks", stdout=subprocess.PIPE, stderr=log, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        url = next((line for line in lines if line.startswith("open: ")), "")
        assert "token=" in url, f"quantdesk lab printed no URL: {lines}"
        token = url.strip().split("token=", 1)[1]
        wait_for_http(f"{base}/api/status?token={token}", proc, timeout=300)
        yield {"base": base, "token": token, "project": project}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(autouse=True)
def _kernels_shut_down(lab: dict[str, Any]) -> Iterator[None]:
    """Shut down the kernels a test started, so later notebooks get the cores (2 here)."""
    yield
    api = f"{lab['base']}/api/kernels"
    headers = {"Authorization": f"token {lab['token']}"}
    with urllib.request.urlopen(urllib.request.Request(api, headers=headers), timeout=30) as r:
        kernels = json.load(r)
    for kernel in kernels:
        request = urllib.request.Request(f"{api}/{kernel['id']}", headers=headers, method="DELETE")
        with contextlib.suppress(urllib.error.HTTPError):  # already gone
            urllib.request.urlopen(request, timeout=30).close()


def _offline(page: Any) -> list[str]:
    refused: list[str] = []

    def route(r: Any) -> None:
        if LOCAL.match(r.request.url):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return refused


def _open(page: Any, lab: dict[str, Any], path: str) -> None:
    page.goto(f"{lab['base']}/lab/tree/{path}?reset&token={lab['token']}")
    page.wait_for_selector(".jp-Notebook:visible", timeout=120_000)
    # JupyterLab may ask for the kernel while its kernel specs load: take the preferred.
    dialog = page.locator(".jp-Dialog button.jp-mod-accept")
    try:
        dialog.wait_for(state="visible", timeout=3_000)
        dialog.click()
    except Exception:  # no dialog: the notebook's kernel started by itself
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)


def _run_all(page: Any, timeout_ms: int) -> None:
    for _ in range(3):
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            page.wait_for_function(
                "() => (" + PROMPTS_JS + ")().some((p) => /\\[(\\*|\\d+)\\]/.test(p))",
                timeout=10_000,
            )
            break
        except Exception:  # the menu opened before the kernel was ready: click again
            continue
    else:
        pytest.fail("Run All Cells did not start the notebook")
    page.wait_for_function("() => !(" + RUNNING_JS + ")()", timeout=timeout_ms, polling=250)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")


def _check(page: Any, refused: list[str], name: str) -> list[dict[str, Any]]:
    prompts = page.evaluate(PROMPTS_JS)
    assert prompts and all(re.search(r"\[\d+\]", p) for p in prompts), (
        f"{name}: not every cell ran (an error stops Run All): {prompts}"
    )
    assert page.evaluate(ERRORS_JS) == [], f"{name}: a cell shows an error"
    # Charts draw after the kernel is idle: wait until every chart output has a canvas.
    page.wait_for_function(
        "() => (" + CHARTS_JS + ")().every((c) => c.plots === 0 || c.canvases > 0)",
        timeout=60_000,
    )
    charts = [c for c in page.evaluate(CHARTS_JS) if c["plots"] != 0]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"lab-{name}.png"), full_page=True)
    assert refused == [], f"{name}: requests outside 127.0.0.1: {refused}"
    assert page.console_errors == [], f"{name}: console errors: {page.console_errors}"
    return charts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_draws_offline(lab: dict[str, Any], page: Any, path: Path) -> None:
    refused = _offline(page)
    _open(page, lab, path.as_posix())
    _run_all(page, timeout_ms=240_000)
    charts = _check(page, refused, path.stem)
    source = (lab["project"] / path).read_text()
    if "hvplot" in source or "figures" in source or "explorer" in source:
        assert charts, f"{path.stem}: no chart output was drawn"


def test_monitor_in_a_cell_elsewhere_updates_and_rerun_leaves_one_feed(
    lab: dict[str, Any], page: Any
) -> None:
    refused = _offline(page)
    _open(page, lab, "research/live/monitor.ipynb")
    _run_all(page, timeout_ms=120_000)
    store = lab["project"] / "data" / "quantdesk.duckdb"
    page.wait_for_selector(f".jp-OutputArea-output:has-text('STORE {store}')")
    # The watchlist's prices change while we watch (the feed ticks a few times a second).
    page.wait_for_function("() => (" + PRICES_JS + ")().length > 0", timeout=60_000)
    first = page.evaluate(PRICES_JS)
    page.wait_for_function(
        f"() => {{ const p = ({PRICES_JS})(); return p.length > 0 && p !== {json.dumps(first)}; }}",
        timeout=30_000,
    )
    # Run the monitor cell again, then the cell that counts feed threads.
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    for index in (2, 3):
        prompt = cells.nth(index).locator(".jp-InputArea-prompt")
        before = prompt.inner_text().strip()
        cells.nth(index).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        # Done when this cell shows a new execution count (not merely "nothing shows
        # [*]": the keypress can land before the cell is queued).
        page.wait_for_function(
            "([el, before]) => /\\[\\d+\\]/.test(el.textContent)"
            " && el.textContent.trim() !== before",
            arg=[prompt.element_handle(), before],
            timeout=120_000,
        )
    text = cells.nth(3).locator(".jp-OutputArea-output").inner_text()
    feeds = json.loads(text.split("FEEDS", 1)[1].split("RELEASED")[0])
    released = json.loads(text.split("RELEASED", 1)[1])
    assert feeds == ["quantdesk-simulator-feed"], text
    assert released == [True, False], text  # the first cell's monitor stopped updating
    _check(page, refused, "monitor")
