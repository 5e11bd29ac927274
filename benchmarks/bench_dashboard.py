"""The market monitor in headless Chromium: first paint, and tick-to-DOM lag under load.

Every server is a real ``quantdesk dashboard`` process on a free 127.0.0.1 port (the
baselines are minimal Panel apps served the same way, :mod:`benchmarks._panel_baseline`),
every page a real headless Chromium (Debian's, through Playwright).

Rows:

- first complete paint, warm: from ``page.goto`` to the frame after the chart's canvas,
  the watchlist's prices and the document over the websocket are all there; the median
  of 5 loads in one browser context after one untimed load (server and HTTP cache
  warm).  Peer: a Panel app with one Markdown pane, measured the same way.
- tick-to-DOM lag with N symbols at 2 updates/s each (N=50 by default) and one
  browser attached: a MutationObserver in the page stamps every change of a watchlist
  row's tick time and subtracts that tick's timestamp (same machine, same clock).
  p50 and p99 over the run, and p50/p99 of the first and last windows (a minute, or a
  third of a short run): if the lag grew, the last window says so.  Peer: one HTML
  pane showing the newest tick's time, refreshed by the same 250 ms callback.
- server RSS growth (psutil) and page JS heap growth (CDP ``Performance.getMetrics``
  after a forced GC) over the run, monitor beside the baseline ticker.
- saturation: short runs at 200 and 500 symbols: lag p99 and updates reaching the page.

Tabulator draws only the rows in view (about 14 of 50): the lag is measured on those.

Environment: ``QUANTDESK_BENCH_DASHBOARD_SECONDS`` (default 300) is the length of the
50-symbol run (and of its baseline); ``QUANTDESK_BENCH_DASHBOARD_SATURATION`` lists the
symbol counts of the short saturation runs (default ``200,500``; empty for none) and
``QUANTDESK_BENCH_DASHBOARD_SATURATION_SECONDS`` their length (default 20).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._browser import CHROMIUM, CHROMIUM_ARGS
from benchmarks._timing import row

ROOT = Path(__file__).resolve().parents[1]

MONITOR_PAINTED_JS = """() => {
  if (window.Bokeh === undefined || Bokeh.documents.length === 0) return false;
  if (Bokeh.documents[0].get_model_by_name('candles-closed') === null) return false;
  let canvas = false, prices = 0;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) canvas = true;
      if (el.classList && el.classList.contains('tabulator-cell')
          && el.getAttribute('tabulator-field') === 'price'
          && /[0-9]/.test(el.textContent)) prices += 1;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return canvas && prices > 0;
}"""

BASELINE_PAINTED_JS = """() => {
  let found = false;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'H1' && el.textContent.includes('quantdesk baseline')) found = true;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}"""

TICKER_READY_JS = """() => {
  let found = false;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('qd-tick') && /[0-9]/.test(el.textContent)) {
        found = true;
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}"""

NEXT_FRAME_JS = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"

# Stamps every change of a displayed tick time (watchlist rows, or the baseline's
# .qd-tick span) with Date.now() minus that tick's time of day (UTC, ms).
LAG_RECORDER_JS = """() => {
  window.__lags = [];
  const seen = new Map();
  const day = 86400000;
  const parse = (text) => {
    const m = /^(\\d\\d):(\\d\\d):(\\d\\d)\\.(\\d\\d\\d)$/.exec(text.trim());
    return m ? ((+m[1] * 60 + +m[2]) * 60 + +m[3]) * 1000 + +m[4] : null;
  };
  const record = (key, text, now, initial) => {
    if (seen.get(key) === text) return;
    seen.set(key, text);
    const t = parse(text);
    if (initial || t === null) return;
    let lag = (now % day) - t;
    if (lag < -day / 2) lag += day;
    window.__lags.push([now, lag]);
  };
  const scan = (root, initial) => {
    const now = Date.now();
    for (const rowEl of root.querySelectorAll('.tabulator-row')) {
      const sym = rowEl.querySelector('.tabulator-cell[tabulator-field="symbol"]');
      const tim = rowEl.querySelector('.tabulator-cell[tabulator-field="time"]');
      if (sym && tim) record(sym.textContent.trim(), tim.textContent, now, initial);
    }
    for (const el of root.querySelectorAll('.qd-tick')) {
      record('tick', el.textContent, now, initial);
    }
  };
  const roots = [document];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) { roots.push(el.shadowRoot); walk(el.shadowRoot); }
    }
  };
  walk(document);
  // The rows seen drawn (Tabulator draws those in view and a few more).
  window.__rows = () => seen.size;
  for (const root of roots) {
    scan(root, true);
    new MutationObserver(() => scan(root, false)).observe(
      root, {subtree: true, childList: true, characterData: true});
  }
  return roots.length;
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QUANTDESK_HOME"] = str(home)
    env.pop("QUANTDESK_STORE", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")) if p
    )
    return env


def _serve(home: Path, argv: list[str], port: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, *argv],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server {argv} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/liveness", timeout=5) as resp:
                if resp.status == 200:
                    return proc, url + "/"
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server {argv} did not answer /liveness")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _monitor(home: Path, symbols: int) -> tuple[subprocess.Popen[bytes], str]:
    names = ",".join(f"S{i:03d}" for i in range(symbols))
    port = str(_free_port())
    return _serve(home, ["-m", "quantdesk", "dashboard", "--port", port, "--symbols", names], port)


def _baseline(home: Path, mode: str, symbols: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    port = str(_free_port())
    return _serve(home, ["-m", "benchmarks._panel_baseline", mode, port, str(symbols)], port)


def _first_paint(browser: Any, url: str, painted_js: str, loads: int = 5) -> float:
    """Return the median seconds from goto to the frame after ``painted_js`` holds (warm)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    times = []
    for i in range(loads + 1):
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_function(painted_js, polling="raf", timeout=60_000)
        page.evaluate(NEXT_FRAME_JS)
        if i:  # the first load warms the server session path and the HTTP cache
            times.append(time.perf_counter() - t0)
        page.close()
    context.close()
    return statistics.median(times)


def _heap(cdp: Any) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize"))


def _lag_run(
    browser: Any, proc: subprocess.Popen[bytes], url: str, seconds: float, ready_js: str
) -> dict[str, Any]:
    """Return lag samples, RSS and JS heap growth of one page watching ``url``."""
    import psutil

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(ready_js, polling="raf", timeout=60_000)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    server = psutil.Process(proc.pid)
    page.evaluate(LAG_RECORDER_JS)
    time.sleep(min(5.0, seconds / 10))  # settle: the first updates after load
    page.evaluate("() => { window.__lags = []; }")
    rss0, heap0 = server.memory_info().rss, _heap(cdp)
    t0 = time.time() * 1000
    time.sleep(seconds)
    lags = np.asarray(page.evaluate("() => window.__lags"), dtype=float).reshape(-1, 2)
    page_rows = page.evaluate("() => window.__rows()")
    rss1, heap1 = server.memory_info().rss, _heap(cdp)
    context.close()
    window = min(60.0, seconds / 3) * 1000
    first = lags[lags[:, 0] < t0 + window, 1]
    last = lags[lags[:, 0] >= t0 + seconds * 1000 - window, 1]

    def pct(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q)) / 1000 if len(values) else float("nan")

    return {
        "p50": pct(lags[:, 1], 50),
        "p99": pct(lags[:, 1], 99),
        "first_p50": pct(first, 50),
        "first_p99": pct(first, 99),
        "last_p50": pct(last, 50),
        "last_p99": pct(last, 99),
        "updates_per_s": len(lags) / seconds,
        "rows": int(page_rows),
        "rss_mb": (rss1 - rss0) / 2**20,
        "heap_mb": (heap1 - heap0) / 2**20,
    }


def run() -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    seconds = float(os.environ.get("QUANTDESK_BENCH_DASHBOARD_SECONDS", "300"))
    saturation = [
        int(n)
        for n in os.environ.get("QUANTDESK_BENCH_DASHBOARD_SATURATION", "200,500").split(",")
        if n.strip()
    ]
    sat_seconds = float(os.environ.get("QUANTDESK_BENCH_DASHBOARD_SATURATION_SECONDS", "20"))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        home = Path(tmp)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            proc, url = _monitor(home / "paint", 10)
            try:
                ours = _first_paint(browser, url, MONITOR_PAINTED_JS)
            finally:
                _stop(proc)
            proc, url = _baseline(home / "paint_base", "markdown")
            try:
                base = _first_paint(browser, url, BASELINE_PAINTED_JS)
            finally:
                _stop(proc)
            rows.append(
                row(
                    "monitor first complete paint (warm, 10 symbols)",
                    ours,
                    base,
                    "s",
                    "< 3 s",
                    "peer: one Markdown pane served by Panel; median of 5 loads",
                    met=ours < 3.0,
                )
            )

            proc, url = _monitor(home / "lag", 50)
            try:
                mon = _lag_run(browser, proc, url, seconds, MONITOR_PAINTED_JS)
            finally:
                _stop(proc)
            proc, url = _baseline(home / "lag_base", "ticker", 50)
            try:
                bas = _lag_run(browser, proc, url, seconds, TICKER_READY_JS)
            finally:
                _stop(proc)
            grew = mon["last_p50"] > mon["first_p50"] + 0.1
            note = (
                f"{seconds:g} s, {mon['updates_per_s']:.0f} of {2 * mon['rows']} row updates/s "
                f"drawn ({mon['rows']} rows in view); first/last "
                f"window p50 {mon['first_p50']:.3f}/{mon['last_p50']:.3f} s, p99 "
                f"{mon['first_p99']:.3f}/{mon['last_p99']:.3f} s ({'grows' if grew else 'flat'})"
            )
            rows.append(
                row(
                    "tick-to-DOM lag p50, 50 symbols x 2/s",
                    mon["p50"],
                    bas["p50"],
                    "s",
                    "-",
                    "peer: one HTML pane of the newest tick time, same 250 ms callback",
                )
            )
            rows.append(
                row(
                    "tick-to-DOM lag p99, 50 symbols x 2/s",
                    mon["p99"],
                    bas["p99"],
                    "s",
                    "< 1 s, no growth",
                    note,
                    met=mon["p99"] < 1.0 and mon["last_p99"] < 1.0 and not grew,
                )
            )
            rows.append(
                row(
                    "server RSS growth over the lag run",
                    mon["rss_mb"],
                    bas["rss_mb"],
                    "MB",
                    "< 50 MB",
                    f"peer: the baseline ticker over {seconds:g} s",
                    met=mon["rss_mb"] < 50,
                )
            )
            rows.append(
                row(
                    "page JS heap growth over the lag run",
                    mon["heap_mb"],
                    bas["heap_mb"],
                    "MB",
                    "< 50 MB",
                    "after a forced GC at both ends",
                    met=mon["heap_mb"] < 50,
                )
            )
            for n in saturation:
                proc, url = _monitor(home / f"sat{n}", n)
                try:
                    sat = _lag_run(browser, proc, url, sat_seconds, MONITOR_PAINTED_JS)
                finally:
                    _stop(proc)
                rows.append(
                    row(
                        f"saturation: lag p99, {n} symbols x 2/s",
                        sat["p99"],
                        mon["p99"],
                        "s",
                        "-",
                        f"{sat_seconds:g} s; p50 {sat['p50']:.3f} s; {sat['updates_per_s']:.0f} "
                        f"of {2 * sat['rows']} row updates/s drawn ({sat['rows']} rows in view); "
                        f"RSS +{sat['rss_mb']:.0f} MB; peer: 50 symbols",
                    )
                )
        finally:
            browser.close()
    return rows
