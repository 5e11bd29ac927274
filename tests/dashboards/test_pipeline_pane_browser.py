"""The monitor's pipeline pane in a real Panel server and a real headless Chromium.

The server (``quantdesk dashboard``, a subprocess) reads a real store on which a real
pipeline run recorded one session with a failing step.  With ``QUANTDESK_SCREENSHOTS``
set, the page is also saved as ``docs/images/pipeline_pane.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from quantdesk.data.sources.ingest import ingest_simulated
from quantdesk.pipeline import run_pipeline

from .test_monitor_browser import _open, _start, _stop

ROOT = Path(__file__).resolve().parents[2]
RULES = "rules:\n  - {name: up, rule: gap_up, pct: 0.05}\n"
# Tabulator and the HTML panes draw inside shadow roots: collect the pane's table rows.
PANE_ROWS_JS = """() => {
  const rows = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('table.qd-pipeline-steps tr')) {
      rows.push(Array.from(el.children).map((c) => c.textContent.trim()));
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return rows;
}"""


@pytest.fixture(autouse=True)
def _user_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "pipeline"))
    monkeypatch.delenv("QUANTDESK_WEBHOOK_URL", raising=False)


def test_the_served_monitor_shows_the_pipelines_steps_and_its_failure(page, tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = home / "quantdesk.duckdb"
    ingest_simulated(store, symbols=3, days=300, seed=3, start="2023-05-08", progress=False)
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    steps = {
        "update": {"params": {"simulated": True}},
        "screen": {"needs": ["update"], "params": {"rules": str(tmp_path / "rules.yaml"),
                                                   "deliver_alerts": False}},
        "paper": {"needs": ["update"], "params": {"ledgers": ["paper"]}},
        "vendor": {"run": "pipeline_test_steps:fail_with", "needs": ["update"],
                   "params": {"message": "vendor feed refused the request\nsecond line"}},
    }  # fmt: skip
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(json.dumps({"pipeline": {"name": "evening", "steps": steps}}), "utf-8")
    run = run_pipeline(store, session="2024-07-01", definition=catalog, root=tmp_path)
    assert [r.status for r in run.sessions[0].steps] == [
        "succeeded", "succeeded", "succeeded", "failed",
    ]  # fmt: skip

    proc, url = _start(home, "--symbols", "SIM000,SIM001",
                       env={"QUANTDESK_CATALOG": str(catalog)})  # fmt: skip
    try:
        _open(page, url)
        page.wait_for_function(f"() => ({PANE_ROWS_JS})().length === 5", timeout=30_000)
        rows = page.evaluate(PANE_ROWS_JS)
        pane = page.locator(".qd-pipeline").inner_text()
        if os.environ.get("QUANTDESK_SCREENSHOTS"):
            page.screenshot(path=str(ROOT / "docs" / "images" / "pipeline_pane.png"),
                            full_page=True)  # fmt: skip
    finally:
        _stop(proc)
    assert rows[0] == ["step", "state", "attempt", "duration", "error"]
    assert [r[:3] for r in rows[1:]] == [
        ["update", "succeeded", "1"], ["screen", "succeeded", "1"],
        ["paper", "succeeded", "1"], ["vendor", "failed", "1"],
    ]  # fmt: skip
    assert all(r[3].endswith(" s") for r in rows[1:])
    assert rows[4][4] == "RuntimeError: vendor feed refused the request"
    assert "last session 2024-07-01" in pane
    assert "failed sessions (quantdesk pipeline retry): 2024-07-01" in pane
    assert page.console_errors == []
