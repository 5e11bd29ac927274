"""The Voila apps in a real Chromium, and the size of published reports.

* Request to first complete paint of the regime explorer: ``page.goto`` until a Bokeh
  canvas of non-zero size exists, with a preheated kernel (``quantdesk voila``'s
  default; the request comes once the kernel has run the notebook, i.e. its CPU went
  quiet) and cold (``--pool-size 0``).  Peer: a markdown-only notebook served the
  same way (its metadata skips the lab extensions the app's skips, so both pages load
  the same ones), until its text shows.  One request per server start (a preheated kernel
  serves one visitor; the pool then refills): the preheated figures are the best of
  :data:`PAINTS` server starts, the app's and its peer's taken in turn; cold ones are
  single samples.
* A strategy explorer slider change (target volatility, typed in the readout) to the
  redrawn equity, in the browser, on a 50-symbol universe: until the metrics show the
  new run and a chart data source holds an equity curve the page did not hold before,
  then two animation frames (so the canvas has painted it).  Peer: the package
  function the callback runs (:func:`~quantdesk.dashboards.explorers.run_strategy` on
  the same closes, in this process), so the difference is rendering and transport.
* The size of one published report and of ``reports/`` after the demo batch
  (``research/reports.yaml``, job ``demo``).  Peer: what inlining BokehJS and Panel's
  JavaScript would cost each page (the shared ``_static`` folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._browser import CHROMIUM, CHROMIUM_ARGS
from benchmarks._timing import best_of, row

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "notebooks" / "dashboards"
CANVAS_DRAWN_JS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS' && el.width * el.height > 0) out.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out.length > 0;
}"""
VOLATILITY = 'tr[data-metric="Annual volatility"] td.value'
# The last value of every equity curve ("growth" column) in the page's Bokeh documents.
EQUITY_JS = """() => {
  const out = [];
  for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
    for (const m of doc.all_models) {
      if (m.constructor.__name__ === 'ColumnDataSource' && 'growth' in m.data) {
        const growth = m.data.growth;
        out.push(growth[growth.length - 1]);
      }
    }
  }
  return out;
}"""
REDRAWN_JS = (
    "([sel, old, before]) => { const el = document.querySelector(sel);"
    " if (!el || el.textContent.trim() === old) return false;"
    " return (" + EQUITY_JS + ")().some((v) => !before.includes(v)); }"
)
PAINTED_JS = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
PAINTS = 3


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(notebook: Path, env: dict[str, str], pool_size: int) -> tuple[subprocess.Popen, str]:
    """Return a ``quantdesk voila`` server and its URL once it is ready for a visitor."""
    port = _free_port()
    argv = ["voila", str(notebook), "--port", str(port), "--pool-size", str(pool_size)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantdesk", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Ready: with a pool, when Voila says the pool is filled (the notebook has run in
    # the preheated kernel); without, when it says it is running.
    marker = "is filled with" if pool_size else "Voilà is running at"
    deadline = time.monotonic() + 600
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"voila exited with {proc.returncode}")
        if marker in line:
            break
    else:
        raise RuntimeError("voila did not become ready")
    # Keep draining the log so that the server never blocks on a full pipe.
    import threading

    threading.Thread(target=proc.stdout.read, daemon=True).start()
    if pool_size:
        _settle(proc)
    return proc, f"http://127.0.0.1:{port}/"


def _cpu_ticks(parent: int) -> int:
    """Return the CPU ticks used so far by the children of process ``parent`` (Linux)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _settle(proc: subprocess.Popen, quiet: float = 2.0, timeout: float = 600) -> None:
    """Return once the server's kernels have used no CPU for ``quiet`` seconds.

    Voila says the pool is filled when the preheated kernel has started; the kernel
    then still runs the notebook.  A visitor who comes after that finds it done.
    """
    deadline = time.monotonic() + timeout
    last, since = _cpu_ticks(proc.pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = _cpu_ticks(proc.pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise RuntimeError("the preheated kernel never went quiet")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _paint(browser: Any, notebook: Path, env: dict[str, str], pool: int, ready_js: str) -> float:
    proc, url = _serve(notebook, env, pool)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        t0 = time.perf_counter()
        page.goto(url, timeout=300_000)
        page.wait_for_function(ready_js, timeout=300_000)
        elapsed = time.perf_counter() - t0
        page.close()
        return elapsed
    finally:
        _stop(proc)


def _slider(browser: Any, env: dict[str, str]) -> float:
    proc, url = _serve(APPS / "strategy_explorer.ipynb", env, 1)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url, timeout=300_000)
        page.wait_for_function(CANVAS_DRAWN_JS, timeout=300_000)
        page.wait_for_selector(VOLATILITY, timeout=300_000)
        times = []
        for value in ("0.20", "0.15", "0.25"):
            old = page.locator(VOLATILITY).inner_text()
            before = page.evaluate(EQUITY_JS)
            readout = page.locator(".widget-hslider", has_text="Target volatility").locator(
                ".widget-readout"
            )
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type(value)
            t0 = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_function(REDRAWN_JS, arg=[VOLATILITY, old, before], timeout=300_000)
            page.evaluate(PAINTED_JS)
            times.append(time.perf_counter() - t0)
        page.close()
        return min(times)
    finally:
        _stop(proc)


def _sizes(env: dict[str, str], reports: Path) -> tuple[int, int, int]:
    """Return (regime report HTML, _static folder, whole reports/) in bytes after the demo."""
    from quantdesk.reports.batch import run_batch
    from quantdesk.reports.catalog import load_catalog

    old = dict(os.environ)
    os.environ.update(env)
    try:
        result = run_batch(
            load_catalog(ROOT / "research" / "reports.yaml").job("demo"),
            executor="process",
            max_workers=1,
            reports_dir=reports,
            progress=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(old)
    if not result.ok:
        raise RuntimeError(f"demo batch failed:\n{result.summary()}")

    def size(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    page = max(reports.glob("regime_report/*/regime_report.html"), key=lambda p: p.stat().st_size)
    return page.stat().st_size, size(reports / "_static"), size(reports)


def run() -> list[dict[str, Any]]:
    """Return the rows: first paint (preheated, cold, baseline), slider redraw, sizes."""
    from playwright.sync_api import sync_playwright

    from quantdesk.dashboards.explorers import run_strategy
    from quantdesk.dashboards.voila import SKIP_EXTENSIONS, skipped_extensions
    from quantdesk.data import MarketStore
    from quantdesk.data.sources import samples

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store_path = home / "quantdesk.duckdb"
        store = MarketStore(store_path)
        samples.select_symbols(store, None, universe="samples")
        samples.select_symbols(store, None, universe="simulated", n_symbols=50)
        env = {
            **os.environ,
            "QUANTDESK_HOME": str(home),
            "QUANTDESK_STORE": str(store_path),
            "QUANTDESK_REPORTS": str(home / "reports"),
        }
        baseline = home / "app" / "markdown.ipynb"
        baseline.parent.mkdir()
        import nbformat
        from nbformat.v4 import new_markdown_cell, new_notebook

        nb = new_notebook(cells=[new_markdown_cell("# Markdown only\nbaseline-text")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        # Served the same way: the same lab extensions as the app's page.
        skipped = skipped_extensions(APPS / "regime_explorer.ipynb")
        nb.metadata["quantdesk"] = {SKIP_EXTENSIONS: skipped}
        nbformat.write(nb, baseline)
        text_js = "() => document.body.innerText.includes('baseline-text')"

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            regime = APPS / "regime_explorer.ipynb"
            hots, base_hots = [], []
            for _ in range(PAINTS):
                hots.append(_paint(browser, regime, env, 1, CANVAS_DRAWN_JS))
                base_hots.append(_paint(browser, baseline, env, 1, text_js))
            hot, base_hot = min(hots), min(base_hots)
            cold = _paint(browser, regime, env, 0, CANVAS_DRAWN_JS)
            base_cold = _paint(browser, baseline, env, 0, text_js)
            redraw = _slider(browser, env)
            browser.close()

        chosen = samples.select_symbols(store, None, universe="store", n_symbols=50)
        close = store.panel("close", symbols=chosen)
        compute, _ = best_of(
            lambda: run_strategy(
                close,
                lookbacks=[21, 252],
                target_vol=0.2,
                rebalance="weekly",
                commission_bps=1.0,
                slippage_bps=2.0,
            )
        )
        page_size, static_size, total = _sizes(env, home / "reports")

    note = "one request per server start"
    return [
        row("voila regime explorer: first paint, preheated", hot, base_hot, "s",
            "< 4 s, within 1.5x of the peer",
            f"peer: markdown-only notebook, preheated; best of {PAINTS} server starts each",
            met=hot < 4 and hot <= 1.5 * base_hot),
        row("voila regime explorer: first paint, cold", cold, base_cold, "s", "-",
            f"peer: markdown-only notebook, cold; {note}"),
        row("voila strategy explorer: slider to redrawn equity (50 symbols)", redraw, compute,
            "s", "< 1 s", "browser, best of 3; peer: run_strategy alone in-process",
            met=redraw < 1),
        row("published regime report HTML", page_size / 1e6, (page_size + static_size) / 1e6,
            "MB", "-", "peer: the page with BokehJS/Panel inlined (page + _static)"),
        row("reports/ after the demo batch", total / 1e6, static_size / 1e6, "MB", "-",
            "peer column: the shared _static folder inside it"),
    ]  # fmt: skip
